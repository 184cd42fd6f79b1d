#include "base/mapped_file.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace qsl {
namespace {

class MappedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("qsl_mapped_file_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::vector<uint8_t>& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  std::filesystem::path dir_;
};

std::vector<uint8_t> RandomBytes(size_t n) {
  std::mt19937 rng(11);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

TEST_F(MappedFileTest, BothBackingsHoldTheFileBytes) {
  // Larger than one 2 MiB page and not a multiple of it: the tail of the last page is slack.
  const std::vector<uint8_t> want = RandomBytes((size_t{5} << 20) + 12345);
  const std::string path = Write("w.bin", want);
  for (const auto backing : {MappedFile::Backing::kMapped, MappedFile::Backing::kInMemory}) {
    auto f = MappedFile::Open(path, backing);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->backing(), backing);
    ASSERT_EQ((*f)->size(), want.size());
    EXPECT_EQ(std::vector<uint8_t>((*f)->data(), (*f)->data() + (*f)->size()), want);
    EXPECT_EQ((*f)->path(), path);
  }
}

TEST_F(MappedFileTest, InMemoryCopyStartsOnA2MiBBoundary) {
  const std::string path = Write("a.bin", RandomBytes(3000));
  auto f = MappedFile::Open(path, MappedFile::Backing::kInMemory);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*f)->data()) % (uintptr_t{2} << 20), 0u);
}

TEST_F(MappedFileTest, EmptyFileHasNoBytes) {
  const std::string path = Write("empty.bin", {});
  for (const auto backing : {MappedFile::Backing::kMapped, MappedFile::Backing::kInMemory}) {
    auto f = MappedFile::Open(path, backing);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->size(), 0u);
    EXPECT_TRUE((*f)->bytes().empty());
  }
}

TEST_F(MappedFileTest, ErrorsNameTheFile) {
  const std::string missing = (dir_ / "missing.bin").string();
  for (const auto backing : {MappedFile::Backing::kMapped, MappedFile::Backing::kInMemory}) {
    auto f = MappedFile::Open(missing, backing);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
    EXPECT_NE(f.status().message().find(missing), std::string::npos) << f.status();
    auto d = MappedFile::Open(dir_.string(), backing);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("not a regular file"), std::string::npos) << d.status();
  }
}

}  // namespace
}  // namespace qsl
