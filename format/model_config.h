// The model hyper-parameters qsl needs, parsed from a Hugging Face config.json of the Llama family
// (Llama, Mistral, Qwen2). The packed model file stores the same config.json bytes, so one parser
// serves both.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qsl {

struct RopeConfig {
  enum class Type { kDefault, kLinear, kLlama3 };
  Type type = Type::kDefault;
  double theta = 10000.0;
  double factor = 1.0;               // linear, llama3
  double low_freq_factor = 1.0;      // llama3
  double high_freq_factor = 4.0;     // llama3
  int64_t original_max_position = 8192;  // llama3

  // The per-pair inverse frequencies (head_dim / 2 of them), as transformers computes them.
  std::vector<float> InverseFrequencies(int64_t head_dim) const;
};

struct ModelConfig {
  std::string architecture;  // LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM
  std::string model_type;    // llama, mistral, qwen2
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t sliding_window = 0;  // 0 = full attention
  float rms_norm_eps = 1e-6f;
  RopeConfig rope;
  bool attention_bias = false;  // bias on q/k/v (Qwen2 always; Llama when attention_bias)
  bool o_bias = false;          // bias on o_proj (Llama attention_bias; never Qwen2)
  bool mlp_bias = false;
  bool tie_word_embeddings = false;
  int32_t bos_token_id = 1;
  std::vector<int32_t> eos_token_ids = {2};

  // Parses and validates config.json text; `source` (a path) prefixes every error. A config
  // outside the supported set gets "unsupported: ..." naming what is missing or different.
  static absl::StatusOr<ModelConfig> FromJson(const std::string& text, const std::string& source);

  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
};

}  // namespace qsl
