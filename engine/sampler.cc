#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qsl {

TokenHistory TokenHistory::ForPrompt(const std::vector<int32_t>& prompt) {
  auto distinct = std::make_shared<std::vector<int32_t>>(prompt);
  std::sort(distinct->begin(), distinct->end());
  distinct->erase(std::unique(distinct->begin(), distinct->end()), distinct->end());
  TokenHistory h;
  h.prompt_distinct = std::move(distinct);
  return h;
}

std::mt19937_64 ChoiceRng(uint64_t seed, int32_t choice) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(choice)};
  return std::mt19937_64(seq);
}

LogSoftmax::LogSoftmax(const float* logits, int32_t vocab) : logits_(logits), vocab_(vocab) {
  const float mx = *std::max_element(logits, logits + vocab);
  double sum = 0.0;
  for (int32_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - mx));
  log_sum_ = static_cast<double>(mx) + std::log(sum);
}

std::vector<TokenLogprob> LogSoftmax::Top(int32_t k) const {
  // One pass keeping the k best in order; k is at most 5 (SamplingParams::Validate).
  std::vector<int32_t> best;
  const auto better = [&](int32_t a, int32_t b) {
    return logits_[a] > logits_[b] || (logits_[a] == logits_[b] && a < b);
  };
  for (int32_t i = 0; i < vocab_ && k > 0; ++i) {
    if (static_cast<int32_t>(best.size()) == k && !better(i, best.back())) continue;
    best.insert(std::upper_bound(best.begin(), best.end(), i, better), i);
    if (static_cast<int32_t>(best.size()) > k) best.pop_back();
  }
  std::vector<TokenLogprob> out;
  for (int32_t id : best) out.push_back({id, (*this)(id)});
  return out;
}

namespace {

void ApplyPenalties(const SamplingParams& p, const TokenHistory& h, float* work) {
  for (const auto& [id, bias] : p.logit_bias) work[id] += bias;
  if (p.repetition_penalty != 1.0f) {
    // Divides positive logits and multiplies negative ones, once per distinct seen token.
    const auto penalize = [&](int32_t id) {
      work[id] = work[id] > 0.0f ? work[id] / p.repetition_penalty : work[id] * p.repetition_penalty;
    };
    const std::vector<int32_t>* prompt = h.prompt_distinct.get();
    if (prompt != nullptr) {
      for (int32_t id : *prompt) penalize(id);
    }
    for (const auto& [id, n] : h.output_counts) {
      if (prompt == nullptr || !std::binary_search(prompt->begin(), prompt->end(), id)) penalize(id);
    }
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    for (const auto& [id, n] : h.output_counts) {
      work[id] -= static_cast<float>(n) * p.frequency_penalty;
      work[id] -= p.presence_penalty;
    }
  }
}

bool Adjusts(const SamplingParams& p, const TokenHistory& h) {
  const bool penalties = p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f ||
                         p.frequency_penalty != 0.0f;
  return !p.logit_bias.empty() || (penalties && (!h.output_counts.empty() || h.prompt_distinct));
}

// The first index of the largest value, as std::max_element finds it (NaNs never win), with
// 16 independent lane maxima the compiler keeps in vector registers, then one pass for the
// first index holding their maximum: greedy decoding runs this over the vocabulary for every
// sequence of every step.
int32_t ArgMax(const float* x, int32_t n) {
  constexpr int32_t kLanes = 16;
  float lane[kLanes];
  std::fill(lane, lane + kLanes, -std::numeric_limits<float>::infinity());
  int32_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int32_t l = 0; l < kLanes; ++l) lane[l] = x[i + l] > lane[l] ? x[i + l] : lane[l];
  }
  float mx = -std::numeric_limits<float>::infinity();
  for (int32_t l = 0; l < kLanes; ++l) mx = lane[l] > mx ? lane[l] : mx;
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  for (int32_t j = 0; j < n; ++j) {
    if (x[j] == mx) return j;
  }
  return 0;  // every value NaN
}

// Below this a temperature samples like greedy would (vLLM's epsilon); dividing by it would
// only overflow.
constexpr float kGreedyTemperature = 1e-5f;

}  // namespace

SampledToken Sampler::Sample(const float* logits, const SamplingParams& p,
                             const TokenHistory& history, std::mt19937_64& rng) {
  // The adjusted logits: a copy only when something adjusts them.
  const float* row = logits;
  if (Adjusts(p, history)) {
    work_.assign(logits, logits + vocab_);
    ApplyPenalties(p, history, work_.data());
    row = work_.data();
  }
  SampledToken out;
  if (p.temperature < kGreedyTemperature) {
    out.id = ArgMax(row, vocab_);
  } else {
    out.id = Draw(row, p, rng);
  }
  if (p.logprobs >= 0) {
    const LogSoftmax lsm(logits, vocab_);
    out.logprob = lsm(out.id);
    out.top = lsm.Top(p.logprobs);
  }
  return out;
}

int32_t Sampler::Draw(const float* row, const SamplingParams& p, std::mt19937_64& rng) {
  cand_.resize(static_cast<size_t>(vocab_));
  for (int32_t i = 0; i < vocab_; ++i) cand_[i] = i;
  const auto by_logit = [&](int32_t a, int32_t b) {
    return row[a] > row[b] || (row[a] == row[b] && a < b);
  };
  if (p.top_k > 0 && p.top_k < vocab_) {
    std::nth_element(cand_.begin(), cand_.begin() + p.top_k, cand_.end(), by_logit);
    cand_.resize(static_cast<size_t>(p.top_k));
    std::sort(cand_.begin(), cand_.end());  // back to id order: the walk order must be fixed
  }
  float mx = -std::numeric_limits<float>::infinity();
  for (int32_t id : cand_) mx = std::max(mx, row[id]);
  // Probabilities relative to the most likely candidate (which gets exactly 1).
  prob_.resize(static_cast<size_t>(vocab_));
  const float min_p = p.min_p;
  size_t kept = 0;
  double total = 0.0;
  for (int32_t id : cand_) {
    const float pr = std::exp((row[id] - mx) / p.temperature);
    if (pr < min_p) continue;
    prob_[id] = pr;
    cand_[kept++] = id;
    total += pr;
  }
  cand_.resize(kept);
  if (p.top_p < 1.0f) KeepTopP(p.top_p, total);

  double mass = 0.0;
  for (int32_t id : cand_) mass += prob_[id];
  // One uniform double in [0, 1) from 53 random bits.
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  const double target = u * mass;
  double cum = 0.0;
  for (int32_t id : cand_) {
    cum += prob_[id];
    if (cum > target) return id;
  }
  return cand_.back();
}

void Sampler::KeepTopP(float top_p, double total) {
  const auto by_prob = [&](int32_t a, int32_t b) {
    return prob_[a] > prob_[b] || (prob_[a] == prob_[b] && a < b);
  };
  const double want = static_cast<double>(top_p) * total;
  // Sort only as far as needed: the nucleus is usually a few dozen tokens of a large vocabulary.
  size_t sorted = std::min<size_t>(64, cand_.size());
  for (;;) {
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(sorted),
                      cand_.end(), by_prob);
    double cum = 0.0;
    for (size_t i = 0; i < sorted; ++i) {
      // Keep tokens while the mass before them is below top_p: the token that crosses is kept.
      if (cum >= want) {
        cand_.resize(i);
        return;
      }
      cum += prob_[cand_[i]];
    }
    if (sorted == cand_.size()) return;
    sorted = std::min(cand_.size(), sorted * 4);
  }
}

}  // namespace qsl
