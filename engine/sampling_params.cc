#include "engine/sampling_params.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace qsl {

namespace {
absl::Status Bad(absl::string_view param, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(param, ": ", why));
}
bool Finite(float v) { return std::isfinite(v); }
}  // namespace

absl::Status SamplingParams::Validate(int32_t vocab_size) const {
  if (max_tokens < 0) return Bad("max_tokens", "must be >= 0");
  if (!Finite(temperature) || temperature < 0.0f || temperature > 2.0f) {
    return Bad("temperature", "must be in [0, 2]");
  }
  if (!Finite(top_p) || top_p <= 0.0f || top_p > 1.0f) return Bad("top_p", "must be in (0, 1]");
  if (top_k < -1) return Bad("top_k", "must be -1 (off) or >= 0");
  if (!Finite(min_p) || min_p < 0.0f || min_p > 1.0f) return Bad("min_p", "must be in [0, 1]");
  if (!Finite(presence_penalty) || std::fabs(presence_penalty) > 2.0f) {
    return Bad("presence_penalty", "must be in [-2, 2]");
  }
  if (!Finite(frequency_penalty) || std::fabs(frequency_penalty) > 2.0f) {
    return Bad("frequency_penalty", "must be in [-2, 2]");
  }
  if (!Finite(repetition_penalty) || repetition_penalty <= 0.0f) {
    return Bad("repetition_penalty", "must be > 0");
  }
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return Bad("logit_bias", absl::StrCat("token id ", id, " is outside the vocabulary (",
                                            vocab_size, ")"));
    }
    if (!Finite(bias) || std::fabs(bias) > 100.0f) {
      return Bad("logit_bias", absl::StrCat("bias for token ", id, " must be in [-100, 100]"));
    }
  }
  if (n < 1 || n > 128) return Bad("n", "must be in [1, 128]");
  if (logprobs < -1 || logprobs > 5) return Bad("logprobs", "must be in [0, 5]");
  if (stop.size() > 4) return Bad("stop", "at most 4 stop sequences");
  for (const auto& s : stop) {
    if (s.empty()) return Bad("stop", "stop sequences must not be empty");
  }
  for (int32_t id : stop_token_ids) {
    if (id < 0 || id >= vocab_size) return Bad("stop_token_ids", "token id outside the vocabulary");
  }
  return absl::OkStatus();
}

}  // namespace qsl
