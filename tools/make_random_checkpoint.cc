// qsl-random-checkpoint: writes a random-weight Llama checkpoint of any shape (config.json,
// model.safetensors, tokenizer.model) so speed and memory can be measured at realistic sizes
// without downloading weights. Weights ~ N(0, std), norms 1. Streams to disk: memory stays small.
#include <bit>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numbers>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "base/half.h"
#include "base/progress.h"
#include "format/checkpoint.h"
#include "nlohmann/json.hpp"

namespace {

namespace fs = std::filesystem;

struct Options {
  std::string out, preset = "tinyllama-1.1b", dtype = "f16", tokenizer;
  int64_t hidden = 0, intermediate = 0, layers = 0, heads = 0, kv_heads = 0, vocab = 0;
  int64_t max_position = 2048;
  double rope_theta = 10000.0, stddev = 0.02;
  uint64_t seed = 1;
};

// splitmix64 + Box-Muller: fast, reproducible normals.
class Normal {
 public:
  explicit Normal(uint64_t seed) : s_(seed) {}
  float operator()() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = static_cast<double>(Next() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = static_cast<float>(r * std::sin(2.0 * std::numbers::pi * u2));
    has_spare_ = true;
    return static_cast<float>(r * std::cos(2.0 * std::numbers::pi * u2));
  }

 private:
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t s_;
  float spare_ = 0;
  bool has_spare_ = false;
};

int ApplyPreset(Options& o) {
  struct Shape {
    int64_t hidden, intermediate, layers, heads, kv_heads, vocab;
  };
  Shape s;
  if (o.preset == "tinyllama-1.1b") {
    s = {2048, 5632, 22, 32, 4, 32000};
  } else if (o.preset == "llama-7b") {
    s = {4096, 11008, 32, 32, 32, 32000};
  } else if (o.preset == "tiny") {
    s = {256, 768, 6, 4, 2, 4096};
  } else {
    std::fprintf(stderr, "unknown --preset '%s' (tinyllama-1.1b, llama-7b, tiny)\n",
                 o.preset.c_str());
    return 1;
  }
  for (auto [field, value] : {std::pair{&o.hidden, s.hidden}, {&o.intermediate, s.intermediate},
                              {&o.layers, s.layers}, {&o.heads, s.heads},
                              {&o.kv_heads, s.kv_heads}, {&o.vocab, s.vocab}}) {
    if (*field == 0) *field = value;
  }
  return 0;
}

int Run(Options& o) {
  if (ApplyPreset(o) != 0) return 1;
  if (o.hidden % o.heads != 0 || o.heads % o.kv_heads != 0) {
    std::fprintf(stderr, "hidden must be a multiple of heads, heads a multiple of kv-heads\n");
    return 1;
  }
  const char* st_dtype = o.dtype == "f16" ? "F16" : o.dtype == "bf16" ? "BF16" : "F32";
  const int elem = o.dtype == "f32" ? 4 : 2;
  nlohmann::json config = {
      {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
      {"hidden_size", o.hidden}, {"intermediate_size", o.intermediate},
      {"num_hidden_layers", o.layers}, {"num_attention_heads", o.heads},
      {"num_key_value_heads", o.kv_heads}, {"vocab_size", o.vocab},
      {"max_position_embeddings", o.max_position}, {"rms_norm_eps", 1e-5},
      {"rope_theta", o.rope_theta}, {"tie_word_embeddings", false}, {"bos_token_id", 1},
      {"eos_token_id", 2}, {"hidden_act", "silu"},
      {"torch_dtype", o.dtype == "f16" ? "float16" : o.dtype == "bf16" ? "bfloat16" : "float32"}};
  auto parsed = qsl::ModelConfig::FromJson(config.dump(), "config.json");
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s\n", std::string(parsed.status().message()).c_str());
    return 1;
  }
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) {
    std::fprintf(stderr, "%s: %s\n", o.out.c_str(), ec.message().c_str());
    return 1;
  }
  std::ofstream(fs::path(o.out) / "config.json") << config.dump(2) << "\n";
  fs::copy_file(o.tokenizer, fs::path(o.out) / "tokenizer.model",
                fs::copy_options::overwrite_existing, ec);
  if (ec) {
    std::fprintf(stderr, "%s: %s\n", o.tokenizer.c_str(), ec.message().c_str());
    return 1;
  }

  const std::vector<qsl::TensorSpec> specs = qsl::LlamaTensorSpecs(*parsed);
  nlohmann::json header = {{"__metadata__", {{"format", "pt"}, {"generator", "qsl-random-checkpoint"}}}};
  uint64_t off = 0, params = 0;
  for (const auto& s : specs) {
    uint64_t n = 1;
    for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
    header[s.name] = {{"dtype", st_dtype}, {"shape", s.shape}, {"data_offsets", {off, off + n * elem}}};
    off += n * elem;
    params += n;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::ofstream f(fs::path(o.out) / "model.safetensors", std::ios::binary);
  const uint64_t hn = h.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((hn >> (8 * i)) & 0xff);
  f.write(len, 8);
  f.write(h.data(), static_cast<std::streamsize>(h.size()));

  qsl::ProgressBar bar("random weights", static_cast<int64_t>(params), "param");
  Normal normal(o.seed);
  std::vector<char> buf;
  for (const auto& s : specs) {
    uint64_t n = 1;
    for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
    const bool norm = s.shape.size() == 1;
    for (uint64_t done = 0; done < n;) {
      const uint64_t chunk = std::min<uint64_t>(n - done, 1 << 20);
      buf.resize(chunk * elem);
      for (uint64_t i = 0; i < chunk; ++i) {
        const float v = norm ? 1.0f : normal() * static_cast<float>(o.stddev);
        if (elem == 4) {
          std::memcpy(buf.data() + 4 * i, &v, 4);
        } else {
          const uint16_t hv = o.dtype == "f16" ? qsl::F32ToF16(v) : qsl::F32ToBf16(v);
          std::memcpy(buf.data() + 2 * i, &hv, 2);
        }
      }
      f.write(buf.data(), static_cast<std::streamsize>(buf.size()));
      done += chunk;
      bar.Add(static_cast<int64_t>(chunk));
    }
  }
  bar.Finish();
  if (!f) {
    std::fprintf(stderr, "writing %s failed\n", o.out.c_str());
    return 1;
  }
  std::printf("wrote %s: %llu parameters, %s, %.2f GB\n", o.out.c_str(),
              static_cast<unsigned long long>(params), st_dtype, static_cast<double>(off) / 1e9);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.tokenizer = std::string(QSL_SOURCE_DIR) + "/models/qsl-tiny-llama/tokenizer.model";
  CLI::App app{"Write a random-weight Llama checkpoint (Hugging Face layout) of any shape",
               "qsl-random-checkpoint"};
  app.add_option("--out", o.out, "Output directory")->required();
  app.add_option("--preset", o.preset, "tinyllama-1.1b (default), llama-7b or tiny; the shape "
                                       "flags below override it");
  app.add_option("--hidden", o.hidden, "hidden_size")->check(CLI::PositiveNumber);
  app.add_option("--intermediate", o.intermediate, "intermediate_size")->check(CLI::PositiveNumber);
  app.add_option("--layers", o.layers, "num_hidden_layers")->check(CLI::PositiveNumber);
  app.add_option("--heads", o.heads, "num_attention_heads")->check(CLI::PositiveNumber);
  app.add_option("--kv-heads", o.kv_heads, "num_key_value_heads")->check(CLI::PositiveNumber);
  app.add_option("--vocab", o.vocab, "vocab_size (>= the tokenizer's 4096 pieces)")
      ->check(CLI::Range(4096, 1 << 20));
  app.add_option("--max-position", o.max_position, "max_position_embeddings")
      ->check(CLI::PositiveNumber);
  app.add_option("--rope-theta", o.rope_theta, "RoPE base")->check(CLI::PositiveNumber);
  app.add_option("--std", o.stddev, "Standard deviation of the weights")->check(CLI::PositiveNumber);
  app.add_option("--dtype", o.dtype, "f16, bf16 or f32")->check(CLI::IsMember({"f16", "bf16", "f32"}));
  app.add_option("--seed", o.seed, "Random seed");
  app.add_option("--tokenizer", o.tokenizer, "sentencepiece tokenizer.model to copy")
      ->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);
  return Run(o);
}
