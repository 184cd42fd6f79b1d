// A synthetic decoder for pool-level generation tests (until the engine's forward pass is used):
// embedding, residual SiLU-MLP blocks and an lm_head, every linear run through a DevicePool,
// greedy argmax. The state carries across steps so every token depends on the whole history.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "accel/device_pool.h"
#include "format/weight_tiles.h"

namespace qsl::testing {

class TinyDecoder {
 public:
  static constexpr int64_t kVocab = 61, kHidden = 40, kMlp = 72;
  static constexpr int32_t kLayers = 4;

  // W4 weights use groups of 16 along K.
  TinyDecoder(WeightScheme scheme, TileShape tile, uint32_t seed);

  // The linears in pool order: gate, up, down of each layer, then the lm_head (last layer).
  std::vector<LinearDesc> Linears() const;

  // Greedy generation of all `seqs` decoded together (m = seqs.size() rows per linear) until
  // the first sequence is `steps` tokens long.
  absl::StatusOr<std::vector<std::vector<int>>> Generate(DevicePool& pool,
                                                         std::vector<std::vector<int>> seqs,
                                                         int steps) const;

 private:
  std::vector<float> embed_;
  std::vector<PackedLinear> weights_;
  std::vector<int32_t> layer_;
};

inline const std::vector<std::vector<int>> kPrompts = {{1, 5, 9}, {7, 7, 2, 40}, {60}};
inline constexpr int kSteps = 20;

}  // namespace qsl::testing
