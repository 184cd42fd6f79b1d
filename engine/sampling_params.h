// What a request asks of generation: the OpenAI completion parameters plus the common extras
// (top_k, min_p, repetition_penalty). The server fills this from HTTP or gRPC; the engine's
// sampler and stop logic read it. Validate() is the single source of range checks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace qsl {

struct SamplingParams {
  int32_t max_tokens = 16;           // OpenAI default for /v1/completions
  float temperature = 1.0f;          // 0 = greedy
  float top_p = 1.0f;                // (0, 1]
  int32_t top_k = -1;                // -1 or 0 = off
  float min_p = 0.0f;                // [0, 1]
  float presence_penalty = 0.0f;     // [-2, 2]
  float frequency_penalty = 0.0f;    // [-2, 2]
  float repetition_penalty = 1.0f;   // > 0, 1 = off (HF/vLLM semantics)
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id -> bias in [-100, 100]
  std::optional<uint64_t> seed;      // per-request deterministic sampling when set
  int32_t n = 1;                     // completions per prompt, sharing the prompt's KV blocks
  int32_t logprobs = -1;             // -1 = none; 0..5 top alternatives per token (plus chosen)
  bool echo = false;                 // prepend the prompt (and its logprobs) to the output
  std::vector<std::string> stop;     // up to 4 stop strings, never included in the output
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;

  // Checks every range; the message names the parameter (OpenAI's `param` field).
  // Returns InvalidArgument with message "<param>: <reason>".
  absl::Status Validate(int32_t vocab_size) const;
};

}  // namespace qsl
