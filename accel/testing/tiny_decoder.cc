// The synthetic decoder of tiny_decoder.h.
#include "accel/testing/tiny_decoder.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "accel/testing/random_linear.h"

namespace qsl::testing {

TinyDecoder::TinyDecoder(WeightScheme scheme, TileShape tile, uint32_t seed) {
  std::mt19937 rng(seed);
  embed_ = RandomFloats(rng, kVocab, kHidden);
  auto add = [&](int64_t n, int64_t k, int32_t layer) {
    weights_.push_back(RandomLinear(rng, scheme, n, k, tile, 16));
    layer_.push_back(layer);
  };
  for (int32_t l = 0; l < kLayers; ++l) {
    add(kMlp, kHidden, l);  // gate
    add(kMlp, kHidden, l);  // up
    add(kHidden, kMlp, l);  // down
  }
  add(kVocab, kHidden, kLayers - 1);  // lm_head, on the last stage
}

std::vector<LinearDesc> TinyDecoder::Linears() const {
  std::vector<LinearDesc> out;
  for (size_t i = 0; i < weights_.size(); ++i) out.push_back({View(weights_[i]), layer_[i]});
  return out;
}

absl::StatusOr<std::vector<std::vector<int>>> TinyDecoder::Generate(
    DevicePool& pool, std::vector<std::vector<int>> seqs, int steps) const {
  const int64_t m = static_cast<int64_t>(seqs.size());
  std::vector<float> state(m * kHidden, 0.0f);
  for (size_t t = 0;; ++t) {
    for (int64_t s = 0; s < m; ++s) {
      const int token = seqs[s][std::min(t, seqs[s].size() - 1)];
      for (int64_t i = 0; i < kHidden; ++i) {
        state[s * kHidden + i] = 0.5f * state[s * kHidden + i] + embed_[token * kHidden + i];
      }
    }
    std::vector<float> h = state;
    for (int32_t l = 0; l < kLayers; ++l) {
      std::vector<float> gate(m * kMlp), up(m * kMlp), down(m * kHidden);
      absl::Status st = pool.Linear(3 * l, h.data(), m, gate.data());
      if (st.ok()) st = pool.Linear(3 * l + 1, h.data(), m, up.data());
      if (!st.ok()) return st;
      for (size_t i = 0; i < gate.size(); ++i) {
        gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
      }
      if (st = pool.Linear(3 * l + 2, gate.data(), m, down.data()); !st.ok()) return st;
      for (size_t i = 0; i < h.size(); ++i) h[i] += down[i];
    }
    const bool prompts_done = std::all_of(seqs.begin(), seqs.end(),
                                          [&](const auto& s) { return t + 1 >= s.size(); });
    if (!prompts_done) continue;
    std::vector<float> logits(m * kVocab);
    if (auto st = pool.Linear(3 * kLayers, h.data(), m, logits.data()); !st.ok()) return st;
    for (int64_t s = 0; s < m; ++s) {
      const float* row = &logits[s * kVocab];
      seqs[s].push_back(static_cast<int>(std::max_element(row, row + kVocab) - row));
    }
    if (static_cast<int>(seqs[0].size()) >= steps) return seqs;
  }
}

}  // namespace qsl::testing
