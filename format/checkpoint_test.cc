// Loading real checkpoints of the three supported layouts, and every malformed-input case the
// loader must reject with a message naming the file and the problem.
#include "format/checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace qsl {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using nlohmann::json;

const std::string kSrc = QSL_SOURCE_DIR;

TEST(Checkpoint, LoadsBundledLlama) {
  auto ck = HfCheckpoint::Open(kSrc + "/models/qsl-tiny-llama");
  ASSERT_TRUE(ck.ok()) << ck.status();
  const ModelConfig& c = (*ck)->config();
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.hidden_size, 256);
  EXPECT_EQ(c.num_layers, 6);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.rope.theta, 10000.0);
  EXPECT_FALSE(c.tie_word_embeddings);
  const TensorInfo* t = (*ck)->Find("lm_head.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::kBF16);
  auto w = (*ck)->ReadF32("model.norm.weight");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->size(), 256u);
}

TEST(Checkpoint, LoadsQwen2WithBiasAndTiedEmbeddings) {
  auto ck = HfCheckpoint::Open(kSrc + "/tests/models/qwen2-tiny-random");
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_TRUE((*ck)->config().attention_bias);
  EXPECT_FALSE((*ck)->config().o_bias);
  EXPECT_TRUE((*ck)->config().tie_word_embeddings);
  EXPECT_EQ((*ck)->config().rope.theta, 1e6);
  EXPECT_NE((*ck)->Find("model.layers.0.self_attn.q_proj.bias"), nullptr);
  EXPECT_EQ((*ck)->Find("model.layers.0.self_attn.q_proj.bias")->dtype, DType::kF16);
}

TEST(Checkpoint, LoadsShardedLlama3WithRopeScaling) {
  auto ck = HfCheckpoint::Open(kSrc + "/tests/models/llama3-tiny-random");
  ASSERT_TRUE(ck.ok()) << ck.status();
  const ModelConfig& c = (*ck)->config();
  EXPECT_EQ(c.rope.type, RopeConfig::Type::kLlama3);
  EXPECT_EQ(c.rope.factor, 8.0);
  EXPECT_EQ(c.rope.original_max_position, 256);
  EXPECT_EQ((*ck)->weight_files().size(), 4u);
  // Llama 3 scaling leaves high frequencies alone and divides low ones by the factor.
  RopeConfig plain = c.rope;
  plain.type = RopeConfig::Type::kDefault;
  const auto scaled = c.rope.InverseFrequencies(c.head_dim);
  const auto base = plain.InverseFrequencies(c.head_dim);
  EXPECT_EQ(scaled.front(), base.front());
  EXPECT_FLOAT_EQ(scaled.back(), base.back() / 8.0f);
}

// ---- malformed input ---------------------------------------------------------------------------

// A scratch copy of a tiny synthetic Llama checkpoint (hidden 8, 1 layer) that each test breaks.
class BadCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("qsl_ck_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    config_ = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
               {"hidden_size", 8}, {"intermediate_size", 16}, {"num_hidden_layers", 1},
               {"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"vocab_size", 4096},
               {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"tie_word_embeddings", true}};
    fs::copy_file(kSrc + "/models/qsl-tiny-llama/tokenizer.model", dir_ / "tokenizer.model");
    WriteConfig();
    for (const TensorSpec& s : Specs()) tensors_.push_back({s.name, "F32", s.shape});
  }
  void TearDown() override { fs::remove_all(dir_); }

  struct Entry {
    std::string name, dtype;
    std::vector<int64_t> shape;
  };

  std::vector<TensorSpec> Specs() {
    auto c = ModelConfig::FromJson(config_.dump(), "config.json");
    EXPECT_TRUE(c.ok()) << c.status();
    return LlamaTensorSpecs(*c);
  }
  void WriteConfig() { std::ofstream(dir_ / "config.json") << config_.dump(); }

  // Writes model.safetensors from tensors_; `edit` may change the header before it is written.
  void WriteWeights(const std::function<void(json&)>& edit = nullptr) {
    json header = json::object();
    uint64_t off = 0;
    for (const Entry& e : tensors_) {
      int64_t n = 1;
      for (int64_t d : e.shape) n *= d;
      const uint64_t bytes = static_cast<uint64_t>(n) * (e.dtype == "F32" ? 4 : 2);
      header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {off, off + bytes}}};
      off += bytes;
    }
    if (edit) edit(header);
    const std::string h = header.dump();
    WriteRaw(h, off);
  }
  void WriteRaw(const std::string& header, uint64_t data_bytes) {
    std::ofstream out(dir_ / "model.safetensors", std::ios::binary);
    const uint64_t n = header.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out << header;
    out << std::string(data_bytes, '\0');
  }
  absl::Status Open() { return HfCheckpoint::Open(dir_.string()).status(); }

  fs::path dir_;
  json config_;
  std::vector<Entry> tensors_;
};

TEST_F(BadCheckpoint, ValidSyntheticLoads) {
  WriteWeights();
  EXPECT_TRUE(Open().ok()) << Open();
}

TEST_F(BadCheckpoint, MissingDirectory) {
  auto s = HfCheckpoint::Open((dir_ / "nope").string()).status();
  EXPECT_THAT(s.message(), HasSubstr("not a directory"));
}

TEST_F(BadCheckpoint, MissingConfig) {
  WriteWeights();
  fs::remove(dir_ / "config.json");
  EXPECT_THAT(Open().message(), HasSubstr("missing config.json"));
}

TEST_F(BadCheckpoint, MissingWeights) {
  EXPECT_THAT(Open().message(), HasSubstr("missing weights"));
}

TEST_F(BadCheckpoint, MissingTokenizer) {
  WriteWeights();
  fs::remove(dir_ / "tokenizer.model");
  EXPECT_THAT(Open().message(), HasSubstr("missing tokenizer.model"));
}

TEST_F(BadCheckpoint, TokenizerNotSentencepiece) {
  WriteWeights();
  std::ofstream(dir_ / "tokenizer.model") << "{\"not\": \"a model\"}";
  EXPECT_THAT(Open().message(), HasSubstr("not a sentencepiece model"));
}

TEST_F(BadCheckpoint, UnsupportedArchitecture) {
  config_["architectures"] = {"GPT2LMHeadModel"};
  WriteConfig();
  WriteWeights();
  const absl::Status s = Open();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("unsupported: architecture 'GPT2LMHeadModel'"));
}

TEST_F(BadCheckpoint, UnsupportedActivationAndRope) {
  config_["hidden_act"] = "gelu";
  WriteConfig();
  EXPECT_THAT(Open().message(), HasSubstr("unsupported: hidden_act 'gelu'"));
  config_["hidden_act"] = "silu";
  config_["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  WriteConfig();
  EXPECT_THAT(Open().message(), HasSubstr("unsupported: rope_type 'yarn'"));
}

TEST_F(BadCheckpoint, InvalidConfigJson) {
  std::ofstream(dir_ / "config.json") << "{\"hidden_size\": 8,";
  EXPECT_THAT(Open().message(), HasSubstr("config.json: invalid JSON"));
}

TEST_F(BadCheckpoint, ConfigFieldWrongType) {
  config_["hidden_size"] = "eight";
  WriteConfig();
  EXPECT_THAT(Open().message(), HasSubstr("'hidden_size' must be an integer"));
}

TEST_F(BadCheckpoint, HeaderLongerThanFile) {
  WriteRaw(std::string(100, ' '), 0);
  // Rewrite the length field to claim more than the file holds.
  std::fstream f(dir_ / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
  const char len[8] = {static_cast<char>(0xff), 0x10, 0, 0, 0, 0, 0, 0};
  f.write(len, 8);
  f.close();
  EXPECT_THAT(Open().message(), HasSubstr("longer than the file"));
}

TEST_F(BadCheckpoint, HeaderNotJson) {
  WriteRaw("{\"a\": [1, 2", 0);
  EXPECT_THAT(Open().message(), HasSubstr("header is not valid JSON"));
}

TEST_F(BadCheckpoint, OffsetsOutOfRange) {
  WriteWeights([](json& h) { h["model.norm.weight"]["data_offsets"] = {0, 1u << 30}; });
  EXPECT_THAT(Open().message(), HasSubstr("outside the data region"));
}

TEST_F(BadCheckpoint, OffsetsOverlap) {
  WriteWeights([](json& h) {
    auto off = h["model.layers.0.input_layernorm.weight"]["data_offsets"];
    h["model.norm.weight"]["data_offsets"] = off;
  });
  EXPECT_THAT(Open().message(), HasSubstr("overlap"));
}

TEST_F(BadCheckpoint, SizeDoesNotMatchShape) {
  WriteWeights([](json& h) { h["model.norm.weight"]["shape"] = {9}; });
  EXPECT_THAT(Open().message(), HasSubstr("needs 36 bytes"));
}

TEST_F(BadCheckpoint, WrongDtype) {
  for (auto& e : tensors_) {
    if (e.name == "model.norm.weight") e.dtype = "I16";
  }
  WriteWeights();
  EXPECT_THAT(Open().message(), HasSubstr("'model.norm.weight' has dtype I16"));
}

TEST_F(BadCheckpoint, UnknownDtype) {
  WriteWeights([](json& h) { h["model.norm.weight"]["dtype"] = "F8_E9"; });
  EXPECT_THAT(Open().message(), HasSubstr("unknown dtype"));
}

TEST_F(BadCheckpoint, WrongShape) {
  for (auto& e : tensors_) {
    if (e.name == "model.layers.0.mlp.up_proj.weight") e.shape = {8, 16};
  }
  WriteWeights();
  EXPECT_THAT(Open().message(), HasSubstr("has shape [8, 16]; config.json implies [16, 8]"));
}

TEST_F(BadCheckpoint, MissingTensor) {
  tensors_.pop_back();
  WriteWeights();
  EXPECT_THAT(Open().message(), HasSubstr("missing tensor"));
}

TEST_F(BadCheckpoint, ShardIndexPointsAtWrongFile) {
  WriteWeights();
  json index = {{"weight_map", {{"model.norm.weight", "model.safetensors"},
                                {"lm_head.weight", "model.safetensors"}}}};
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();
  EXPECT_THAT(Open().message(), HasSubstr("which does not hold it"));
}

TEST_F(BadCheckpoint, ShardIndexEscapesDirectory) {
  json index = {{"weight_map", {{"model.norm.weight", "../x.safetensors"}}}};
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();
  EXPECT_THAT(Open().message(), HasSubstr("plain file name"));
}

}  // namespace
}  // namespace qsl
