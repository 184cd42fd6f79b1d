// The token sampler: OpenAI parameters applied to one sequence's logits row, plus logprobs.
// Everything here reads only that row, that sequence's history and its own RNG, so what a
// request samples cannot depend on which other requests share the step.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "engine/engine.h"
#include "engine/sampling_params.h"

namespace qsl {

// The history the penalties read: OpenAI's presence/frequency penalties count generated tokens;
// the repetition penalty (HF/vLLM) also covers the prompt.
struct TokenHistory {
  absl::flat_hash_map<int32_t, int32_t> output_counts;
  std::shared_ptr<const std::vector<int32_t>> prompt_distinct;  // sorted, for repetition_penalty

  static TokenHistory ForPrompt(const std::vector<int32_t>& prompt);
  void Add(int32_t id) { ++output_counts[id]; }
};

// A request's choice draws only from its own generator, seeded from (seed, choice index).
std::mt19937_64 ChoiceRng(uint64_t seed, int32_t choice);

struct SampledToken {
  int32_t id = 0;
  float logprob = 0.0f;           // of `id` under the model's distribution (see LogSoftmax)
  std::vector<TokenLogprob> top;  // the `logprobs` most likely tokens, most likely first
};

// log-softmax of a raw logits row, summed in index order in double: the same value on every path.
// Logprobs are those of the model's raw distribution (as vLLM's default `raw_logprobs`), before
// logit_bias, penalties, temperature and truncation.
class LogSoftmax {
 public:
  LogSoftmax(const float* logits, int32_t vocab);
  float operator()(int32_t id) const {
    return static_cast<float>(static_cast<double>(logits_[id]) - log_sum_);
  }
  // The k largest, ties to the lower id.
  std::vector<TokenLogprob> Top(int32_t k) const;

 private:
  const float* logits_;
  int32_t vocab_;
  double log_sum_;
};

class Sampler {
 public:
  explicit Sampler(int32_t vocab) : vocab_(vocab) {}

  // Pipeline: logit_bias, repetition penalty, presence and frequency penalties; then greedy
  // (temperature 0) or temperature, top_k, min_p, top_p and one uniform draw from `rng`.
  // Logprobs are filled when p.logprobs >= 0.
  SampledToken Sample(const float* logits, const SamplingParams& p, const TokenHistory& history,
                      std::mt19937_64& rng);

 private:
  int32_t Draw(const float* row, const SamplingParams& p, std::mt19937_64& rng);
  // Sorts the candidates by probability (ties: lower id) far enough to hold top_p of the mass,
  // and cuts the list after the token that reaches it.
  void KeepTopP(float top_p, double total);

  int32_t vocab_;
  std::vector<float> work_;    // adjusted logits (when bias or penalties apply)
  std::vector<float> prob_;    // unnormalized probabilities by token id
  std::vector<int32_t> cand_;  // candidate ids, in the order the draw walks them
};

}  // namespace qsl
