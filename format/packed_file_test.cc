// The packed model file: a written file reads back bit for bit, and every malformed file
// (truncated, flipped bytes, foreign magic or version, tensors of another model, broken table)
// is rejected with a message that names the problem.
#include "format/packed_file.h"

#include <unistd.h>
#include <xxhash.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "base/half.h"
#include "format/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace qsl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

const std::string kSrc = QSL_SOURCE_DIR;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// What a test wrote, to compare with what the loader returns.
struct Written {
  std::map<std::string, W8Weights> w8;
  std::map<std::string, W4Weights> w4;
  std::map<std::string, std::vector<float>> floats;  // after the F16 rounding, if any
};

W4Weights RandomW4(int64_t n, int64_t k, int32_t group, std::mt19937& rng) {
  W4Weights w;
  w.n = n;
  w.k = k;
  w.group = group;
  std::uniform_int_distribution<int> nib(0, 15), sc(0, 8);
  for (int64_t i = 0; i < n * k; ++i) w.q4.push_back(static_cast<uint8_t>(nib(rng)));
  for (int64_t i = 0; i < n * w.num_groups(); ++i) {
    w.gscale.push_back(static_cast<uint8_t>(sc(rng)));  // s <= 8: every zero point is in range
    w.gzero.push_back(static_cast<uint8_t>(nib(rng)));
  }
  std::uniform_real_distribution<float> u(0.001f, 0.02f);
  for (int64_t i = 0; i < n; ++i) w.scale.push_back(u(rng));
  return w;
}

W8Weights RandomW8(int64_t n, int64_t k, std::mt19937& rng) {
  W8Weights w{n, k, {}, {}};
  std::uniform_int_distribution<int> q(-127, 127);
  std::uniform_real_distribution<float> u(0.001f, 0.02f);
  for (int64_t i = 0; i < n * k; ++i) w.q.push_back(static_cast<int8_t>(q(rng)));
  for (int64_t i = 0; i < n; ++i) w.scale.push_back(u(rng));
  return w;
}

// Writes a complete packed file for the checkpoint in `model_dir` with random weights: linear
// weights W4 (group 64) or W8, biases and norms F32, the embedding F16.
Written WriteModel(const std::string& model_dir, const std::string& path, bool w4) {
  const std::string config = ReadFile(model_dir + "/config.json");
  auto cfg = ModelConfig::FromJson(config, model_dir);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  auto writer = PackedFileWriter::Create(path, config, ReadFile(model_dir + "/tokenizer.model"));
  EXPECT_TRUE(writer.ok()) << writer.status();
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Written out;
  std::vector<TensorSpec> specs = LlamaTensorSpecs(*cfg);
  if (cfg->tie_word_embeddings)
    specs.push_back({"lm_head.weight", {cfg->vocab_size, cfg->hidden_size}});
  for (const TensorSpec& spec : specs) {
    const bool linear = spec.shape.size() == 2 && spec.name != "model.embed_tokens.weight";
    if (linear) {
      const std::string base = spec.name.substr(0, spec.name.size() - 7);
      const TileShape tile{};
      absl::StatusOr<PackedLinear> p;
      if (w4) {
        out.w4[base] = RandomW4(spec.shape[0], spec.shape[1], 64, rng);
        p = PackW4(out.w4[base], tile);
      } else {
        out.w8[base] = RandomW8(spec.shape[0], spec.shape[1], rng);
        p = PackW8(out.w8[base], tile);
      }
      EXPECT_TRUE(p.ok()) << p.status();
      EXPECT_TRUE((*writer)->AddLinear(base, *p).ok());
      continue;
    }
    int64_t numel = 1;
    for (int64_t d : spec.shape) numel *= d;
    std::vector<float> v(static_cast<size_t>(numel));
    for (float& x : v) x = normal(rng);
    if (spec.name == "model.embed_tokens.weight") {
      EXPECT_TRUE((*writer)->AddF16(spec.name, spec.shape, v).ok());
      for (float& x : v) x = F16ToF32(F32ToF16(x));
    } else {
      EXPECT_TRUE((*writer)->AddF32(spec.name, spec.shape, v).ok());
    }
    out.floats[spec.name] = v;
  }
  const absl::Status s = (*writer)->Finish(R"({"scheme": "test"})");
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

class PackedFileTest : public ::testing::Test {
 protected:
  // Unique per test and process: ctest runs tests in parallel, and other checkouts share /tmp.
  std::string Path(const std::string& name) const {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return (fs::path(::testing::TempDir()) /
            (std::string(info->name()) + "." + std::to_string(::getpid()) + "." + name))
        .string();
  }
  void TearDown() override {
    for (const auto& e : fs::directory_iterator(::testing::TempDir())) {
      const std::string f = e.path().filename().string();
      const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
      if (f.rfind(std::string(info->name()) + "." + std::to_string(::getpid()) + ".", 0) == 0) {
        fs::remove(e.path());
      }
    }
  }
  // Writes a valid file, lets `edit` change its bytes, and opens the result.
  absl::Status OpenEdited(const std::function<void(std::string&)>& edit,
                          const std::string& model = "/tests/models/qwen2-tiny-random") {
    const std::string path = Path("edited.qslm");
    WriteModel(kSrc + model, path, /*w4=*/true);
    std::string bytes = ReadFile(path);
    edit(bytes);
    WriteFile(path, bytes);
    return PackedModel::Open(path).status();
  }
};

uint64_t U64At(const std::string& b, size_t off) {
  uint64_t v;
  std::memcpy(&v, b.data() + off, 8);
  return v;
}
void SetU64(std::string& b, size_t off, uint64_t v) {
  std::memcpy(b.data() + off, &v, 8);
}
void SetU32(std::string& b, size_t off, uint32_t v) {
  std::memcpy(b.data() + off, &v, 4);
}
void ResealHeader(std::string& b) {
  SetU64(b, 248, XXH3_64bits(b.data(), 248));
}

// Replaces the tensor table (the last section) after `edit`, resealing every checksum, so that
// only the edit itself is wrong.
void EditTable(std::string& b, const std::function<void(json&)>& edit) {
  constexpr size_t kTable = 32 + 3 * 24;
  const uint64_t off = U64At(b, kTable), size = U64At(b, kTable + 8);
  ASSERT_EQ(off + size, b.size());
  json table = json::parse(b.substr(off, size));
  edit(table);
  const std::string text = table.dump();
  b.resize(off);
  b += text;
  SetU64(b, kTable + 8, text.size());
  SetU64(b, kTable + 16, XXH3_64bits(text.data(), text.size()));
  SetU64(b, 24, b.size());
  ResealHeader(b);
}

json& Entry(json& table, const std::string& name) {
  for (json& e : table["tensors"]) {
    if (e["name"] == name) return e;
  }
  ADD_FAILURE() << "no table entry " << name;
  return table;
}

TEST_F(PackedFileTest, RoundTripIsBitIdentical) {
  for (bool w4 : {true, false}) {
    const std::string path = Path(w4 ? "rt4.qslm" : "rt8.qslm");
    const Written in = WriteModel(kSrc + "/tests/models/qwen2-tiny-random", path, w4);
    auto m = PackedModel::Open(path);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ((*m)->config().hidden_size, 128);
    EXPECT_TRUE((*m)->config().tie_word_embeddings);
    EXPECT_EQ((*m)->tokenizer().bytes(),
              ReadFile(kSrc + "/tests/models/qwen2-tiny-random/tokenizer.model"));
    EXPECT_EQ((*m)->provenance_json(), R"({"scheme": "test"})");
    EXPECT_EQ((*m)->format_version(), kPackedFormatVersion);
    for (const PackedTensor& t : (*m)->tensors()) {
      EXPECT_EQ(t.offset % 64, 0u) << t.name;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u) << t.name;
    }
    for (const auto& [base, w] : in.w4) {
      auto v = (*m)->Linear(base);
      ASSERT_TRUE(v.ok()) << v.status();
      const W4Weights got = UnpackW4(*v);
      EXPECT_EQ(got.q4, w.q4) << base;
      EXPECT_EQ(got.gscale, w.gscale) << base;
      EXPECT_EQ(got.gzero, w.gzero) << base;
      EXPECT_EQ(got.scale, w.scale) << base;
      EXPECT_EQ(got.group, 64);
    }
    for (const auto& [base, w] : in.w8) {
      auto v = (*m)->Linear(base);
      ASSERT_TRUE(v.ok()) << v.status();
      const W8Weights got = UnpackW8(*v);
      EXPECT_EQ(got.q, w.q) << base;
      EXPECT_EQ(got.scale, w.scale) << base;
    }
    for (const auto& [name, v] : in.floats) {
      auto got = (*m)->ReadF32(name);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(*got, v) << name;
    }
    // Qwen2 has q/k/v biases: the view carries them.
    auto q = (*m)->Linear("model.layers.1.self_attn.q_proj");
    ASSERT_TRUE(q.ok());
    ASSERT_NE(q->bias, nullptr);
    EXPECT_EQ(q->bias[3], in.floats.at("model.layers.1.self_attn.q_proj.bias")[3]);
    EXPECT_EQ((*m)->Linear("model.layers.1.self_attn.o_proj")->bias, nullptr);
  }
}

TEST_F(PackedFileTest, ChecksumsCanBeSkipped) {
  const std::string path = Path("skip.qslm");
  WriteModel(kSrc + "/tests/models/qwen2-tiny-random", path, true);
  uint64_t offset = 0;
  {
    auto m = PackedModel::Open(path);
    ASSERT_TRUE(m.ok());
    offset = (*m)->Find("model.norm.weight")->offset;
  }
  std::string b = ReadFile(path);
  b[offset + 5] ^= 0x01;  // inside an F32 tensor: only its checksum can notice
  WriteFile(path, b);
  EXPECT_TRUE(PackedModel::Open(path, {.verify_checksums = false}).ok());
  auto bad = PackedModel::Open(path);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(bad.status().message(), HasSubstr("tensor 'model.norm.weight': checksum mismatch"));
}

TEST_F(PackedFileTest, RejectsTruncatedFiles) {
  const std::string path = Path("trunc.qslm");
  WriteModel(kSrc + "/tests/models/qwen2-tiny-random", path, true);
  const std::string full = ReadFile(path);
  for (size_t len : {size_t{0}, size_t{5}, size_t{100}, full.size() / 2, full.size() - 1}) {
    WriteFile(path, full.substr(0, len));
    auto m = PackedModel::Open(path);
    ASSERT_FALSE(m.ok()) << len;
    EXPECT_THAT(m.status().message(), HasSubstr(path)) << len;
    if (len >= 8) {
      EXPECT_THAT(m.status().message(), HasSubstr("truncated")) << len;
    }
  }
  WriteFile(path, full + "x");
  EXPECT_THAT(PackedModel::Open(path).status().message(), HasSubstr("1 bytes beyond"));
}

TEST_F(PackedFileTest, RejectsFlippedBytesAnywhere) {
  const std::string path = Path("flip.qslm");
  WriteModel(kSrc + "/tests/models/qwen2-tiny-random", path, true);
  const std::string full = ReadFile(path);
  // One flipped bit at 64 places spread over the file, each in its own copy: header, sections,
  // tensors, table.
  int rejected = 0, tried = 0;
  for (size_t pos = 9; pos < full.size(); pos += full.size() / 64, ++tried) {
    std::string b = full;
    b[pos] ^= 0x04;
    WriteFile(path, b);
    auto m = PackedModel::Open(path);
    if (!m.ok()) {
      ++rejected;
    } else {
      ADD_FAILURE() << "flipped byte at " << pos << " went unnoticed";
    }
  }
  EXPECT_EQ(rejected, tried);
  std::string b = full;
  b[40] ^= 0x01;  // a section offset, in the header
  WriteFile(path, b);
  EXPECT_THAT(PackedModel::Open(path).status().message(), HasSubstr("header checksum mismatch"));
}

TEST_F(PackedFileTest, RejectsWrongMagicVersionAndEndianness) {
  EXPECT_THAT(OpenEdited([](std::string& b) { b[0] = 'G'; }).message(),
              HasSubstr("not a qsl packed model file"));
  EXPECT_THAT(OpenEdited([](std::string& b) {
                SetU32(b, 12, 2);
                ResealHeader(b);
              }).message(),
              HasSubstr("format version 2 is not supported"));
  EXPECT_THAT(OpenEdited([](std::string& b) {
                SetU32(b, 8, 0x04030201);
                ResealHeader(b);
              }).message(),
              HasSubstr("big-endian"));
  const std::string path = Path("not-packed.qslm");
  WriteFile(path, ReadFile(kSrc + "/models/qsl-tiny-llama/config.json"));
  EXPECT_THAT(PackedModel::Open(path).status().message(), HasSubstr("not a qsl packed model"));
  EXPECT_EQ(PackedModel::Open(Path("missing.qslm")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PackedFileTest, RejectsTensorsOfAnotherModel) {
  // The Llama 3 test model's config and tokenizer with the Qwen2 test model's tensors.
  const std::string llama3 = kSrc + "/tests/models/llama3-tiny-random";
  const std::string path = Path("foreign.qslm");
  WriteModel(kSrc + "/tests/models/qwen2-tiny-random", path, true);
  auto qwen = PackedModel::Open(path);
  ASSERT_TRUE(qwen.ok());
  const std::string other = Path("spliced.qslm");
  {
    auto w = PackedFileWriter::Create(other, ReadFile(llama3 + "/config.json"),
                                      ReadFile(llama3 + "/tokenizer.model"));
    ASSERT_TRUE(w.ok());
    for (const PackedTensor& t : (*qwen)->tensors()) {
      if (t.dtype == PackedDType::kF32) {
        ASSERT_TRUE((*w)->AddF32(t.name, t.shape, *(*qwen)->F32(t.name)).ok());
      } else if (t.dtype == PackedDType::kF16) {
        ASSERT_TRUE((*w)->AddF16(t.name, t.shape, *(*qwen)->ReadF32(t.name)).ok());
      }
    }
    ASSERT_TRUE((*w)->Finish("{}").ok());
  }
  auto m = PackedModel::Open(other);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("config implies"));
}

TEST_F(PackedFileTest, RejectsInconsistentTables) {
  struct Case {
    std::function<void(json&)> edit;
    std::string message;
  };
  const std::string q = "model.layers.0.self_attn.q_proj.weight";
  const std::vector<Case> cases = {
      {[&](json& t) { Entry(t, q)["offset"] = Entry(t, q)["offset"].get<uint64_t>() + 8; },
       "not 64-byte aligned"},
      {[&](json& t) { Entry(t, q)["offset"] = Entry(t, "model.norm.weight")["offset"]; },
       "overlap"},
      {[&](json& t) { Entry(t, q)["offset"] = 1ull << 40; }, "outside the data section"},
      {[&](json& t) { Entry(t, q)["dtype"] = "Q3_K"; }, "unknown dtype"},
      {[&](json& t) { Entry(t, q)["size"] = 64; }, "needs"},
      {[&](json& t) { Entry(t, q)["group"] = 96; }, "one must divide the other"},
      {[&](json& t) {
         Entry(t, q)["shape"] = {128, 300};
       },
       "needs"},
      {[&](json& t) {
         Entry(t, q)["shape"] = {128, 200000};
       },
       "int32 accumulator"},
      {[&](json& t) {
         Entry(t, q)["shape"] = json::array({-1, 3});
       },
       "shape"},
      {[&](json& t) { Entry(t, q).erase("tile"); }, "tile"},
      {[&](json& t) { Entry(t, q)["xxh3"] = "xyz"; }, "16 hex digits"},
      {[&](json& t) { Entry(t, "model.norm.weight")["name"] = q; }, "appears twice"},
      {[&](json& t) { Entry(t, "model.norm.weight")["name"] = "model.extra"; },
       "missing tensor 'model.norm.weight'"},
      {[&](json& t) { t["tensors"].push_back(Entry(t, "model.norm.weight")); }, "appears twice"},
      {[&](json& t) { Entry(t, "model.norm.weight")["dtype"] = "W8"; }, "[n, k] for W8 and W4"},
      {[&](json& t) { t = json::array(); }, "\"tensors\" array"},
  };
  for (const Case& c : cases) {
    const absl::Status s = OpenEdited([&](std::string& b) { EditTable(b, c.edit); });
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << s;
  }
}

TEST_F(PackedFileTest, RejectsW4GroupsOutsideTheInt8Range) {
  const std::string path = Path("range.qslm");
  WriteModel(kSrc + "/tests/models/qwen2-tiny-random", path, true);
  auto m = PackedModel::Open(path);
  ASSERT_TRUE(m.ok());
  auto v = (*m)->Linear("model.layers.0.mlp.up_proj");
  ASSERT_TRUE(v.ok());
  // Scale 16 with any zero point expands 15 - z or z levels beyond 127: rewrite one group scale
  // and re-seal the tensor's checksum, so only the contract check can catch it.
  std::string b = ReadFile(path);
  const PackedTensor* t = (*m)->Find("model.layers.0.mlp.up_proj.weight");
  const size_t scale_byte = t->offset + v->layout.scale_offset() + 3;
  const uint64_t offset = t->offset, size = t->size;
  m->reset();
  b[scale_byte] = 16;
  const uint64_t sum = XXH3_64bits(b.data() + offset, size);
  EditTable(b, [&](json& table) {
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(sum));
    Entry(table, "model.layers.0.mlp.up_proj.weight")["xxh3"] = hex;
  });
  WriteFile(path, b);
  EXPECT_THAT(PackedModel::Open(path).status().message(),
              HasSubstr("column 3 group row 0: scale 16"));
}

TEST_F(PackedFileTest, WriterChecksItsInput) {
  const std::string dir = kSrc + "/tests/models/qwen2-tiny-random";
  const std::string path = Path("w.qslm");
  auto w = PackedFileWriter::Create(path, ReadFile(dir + "/config.json"),
                                    ReadFile(dir + "/tokenizer.model"));
  ASSERT_TRUE(w.ok());
  const std::vector<float> v(4, 1.0f);
  EXPECT_TRUE((*w)->AddF32("a", {4}, v).ok());
  EXPECT_THAT((*w)->AddF32("a", {4}, v).message(), HasSubstr("added twice"));
  EXPECT_THAT((*w)->AddF32("b", {5}, v).message(), HasSubstr("needs 20 bytes"));
  EXPECT_THAT((*w)->Finish("[1]").message(), HasSubstr("JSON object"));
  w->reset();  // never finished: no file, no partial file left behind
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
  EXPECT_FALSE(PackedFileWriter::Create("/nonexistent-dir/x.qslm", "{}", "").ok());
}

}  // namespace
}  // namespace qsl
