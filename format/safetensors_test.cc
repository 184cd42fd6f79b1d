// Property test of the safetensors header parser: valid headers parse; every mutation of one
// (byte flips, truncation, random JSON edits) either parses to in-bounds tensors or fails with
// an error, never crashes or reads out of bounds (run under ASan by the fuzz script too).
#include "format/safetensors.h"

#include <random>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace qsl {
namespace {

std::string MakeFile(const nlohmann::json& header, size_t data_bytes) {
  const std::string h = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
  return out + h + std::string(data_bytes, '\x01');
}

nlohmann::json ValidHeader() {
  return {{"__metadata__", {{"format", "pt"}}},
          {"a", {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 24}}}},
          {"b", {{"dtype", "BF16"}, {"shape", {4}}, {"data_offsets", {24, 32}}}},
          {"c", {{"dtype", "I8"}, {"shape", nlohmann::json::array()}, {"data_offsets", {32, 33}}}}};
}

void CheckInBounds(const std::string& file) {
  const auto* base = reinterpret_cast<const uint8_t*>(file.data());
  auto r = SafetensorsFile::ParseHeader(base, file.size(), "mut");
  if (!r.ok()) {
    EXPECT_FALSE(r.status().message().empty());
    return;
  }
  for (const auto& [name, t] : *r) {
    ASSERT_GE(t.data, base);
    ASSERT_LE(t.data + t.nbytes, base + file.size());
    ASSERT_EQ(t.nbytes, t.numel() * DTypeSize(t.dtype));
  }
}

TEST(Safetensors, ValidHeaderParses) {
  const std::string f = MakeFile(ValidHeader(), 33);
  auto r = SafetensorsFile::ParseHeader(reinterpret_cast<const uint8_t*>(f.data()), f.size(), "v");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->size(), 3u);
  EXPECT_EQ(r->at("a").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r->at("c").numel(), 1);
}

TEST(Safetensors, ByteMutationsNeverCrash) {
  const std::string good = MakeFile(ValidHeader(), 33);
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::string f = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int j = 0; j < flips; ++j) f[rng() % f.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) f.resize(rng() % f.size());
    CheckInBounds(f);
  }
}

TEST(Safetensors, StructuredMutationsNeverCrash) {
  std::mt19937 rng(12);
  const nlohmann::json values[] = {-1, 0, 1, 7, 1ll << 40, 18446744073709551615ull, "x", 2.5,
                                   nullptr, nlohmann::json::array(), nlohmann::json::object()};
  const char* fields[] = {"dtype", "shape", "data_offsets"};
  for (int i = 0; i < 5000; ++i) {
    nlohmann::json h = ValidHeader();
    const char* key = (rng() % 3 == 0) ? "a" : (rng() % 2 ? "b" : "c");
    const char* field = fields[rng() % 3];
    const nlohmann::json& v = values[rng() % std::size(values)];
    if (rng() % 2) {
      h[key][field] = v;
    } else if (h[key][field].is_array() && !h[key][field].empty()) {
      h[key][field][rng() % h[key][field].size()] = v;
    }
    CheckInBounds(MakeFile(h, rng() % 40));
  }
}

TEST(Safetensors, RejectsHugeHeaderLength) {
  std::string f(16, '\0');
  f[7] = 0x7f;
  auto r = SafetensorsFile::ParseHeader(reinterpret_cast<const uint8_t*>(f.data()), f.size(), "h");
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace qsl
