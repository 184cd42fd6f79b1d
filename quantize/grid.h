// The weight grids of the numeric contract and round-to-nearest (RTN) onto them. W8: per-channel
// symmetric int8 in [-127, 127]. W4 (progressive): a per-channel fp32 scale to "level" units,
// then per group of K a uint8 step s and uint4 zero z, the level being (q4 - z) * s with both
// s * z <= 127 and s * (15 - z) <= 127 (W4GroupInRange). RTN, AWQ and GPTQ all quantize through
// these functions, so every method lands on exactly the values the packer accepts.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "format/weight_tiles.h"

namespace qsl {

// Round half to even, as the activation path rounds.
inline float Rne(float x) {
  return std::nearbyint(x);
}

// --- W8 ------------------------------------------------------------------------------------
// The channel's scale: max |w| / 127 (0 for an all-zero channel).
float W8Scale(std::span<const float> row);
inline int8_t RoundW8(float w, float scale) {
  if (scale == 0.0f) return 0;
  return static_cast<int8_t>(std::fmax(-127.0f, std::fmin(127.0f, Rne(w / scale))));
}
// w[n, k] row-major to per-channel int8.
W8Weights RtnW8(std::span<const float> w, int64_t n, int64_t k);

// --- W4 ------------------------------------------------------------------------------------
struct W4Group {
  uint8_t s = 1;  // integer step in level units, 1..15 (s = 16 fits no zero point)
  uint8_t z = 0;  // zero point, 0..15
};
inline uint8_t RoundW4(float level, W4Group g) {
  const float q = Rne(level / static_cast<float>(g.s)) + static_cast<float>(g.z);
  return static_cast<uint8_t>(std::fmax(0.0f, std::fmin(15.0f, q)));
}
inline int W4Level(uint8_t q4, W4Group g) {
  return (static_cast<int>(q4) - g.z) * g.s;
}

// The (s, z) within the contract's range that minimizes sum_i imp[i] * (u[i] - level_i)^2 for
// values `u` in level units (imp empty: unweighted). Candidates: steps around the min-max step
// (smaller ones trade clipping for resolution) and zero points that pin the minimum, the
// maximum or the centre; returns the best with its error.
W4Group FitW4Group(std::span<const float> u, std::span<const float> imp, double* error = nullptr);

// The per-channel level scale of a W4 row: max |w| / L, with L searched over a few "protective
// ranges" (docs/quality.md): the largest level any group can reach is 126 (s * (15 - z) <= 127
// with s <= 15), and a group spanning both signs of the extremes only fits if L is lower, so
// the best L depends on the row. Returns 0 for an all-zero row.
float FitW4Scale(std::span<const float> row, int32_t group, std::span<const float> imp);

// w[n, k] row-major to progressive W4; imp ([k] or empty) weights the error per input channel.
W4Weights RtnW4(std::span<const float> w, int64_t n, int64_t k, int32_t group,
                std::span<const float> imp = {});

// Dequantized fp32 weights [n, k], exactly level * scale as the epilogue applies them.
std::vector<float> Dequantize(const W8Weights& w);
std::vector<float> Dequantize(const W4Weights& w);

// --- Either scheme ---------------------------------------------------------------------------
struct WeightFormat {
  WeightScheme scheme = WeightScheme::kW8;
  int32_t group = 0;  // W4 only
};
using QuantizedWeight = std::variant<W8Weights, W4Weights>;

QuantizedWeight Rtn(std::span<const float> w, int64_t n, int64_t k, WeightFormat format,
                    std::span<const float> imp = {});
std::vector<float> Dequantize(const QuantizedWeight& w);
absl::StatusOr<PackedLinear> Pack(const QuantizedWeight& w, TileShape tile);

}  // namespace qsl
