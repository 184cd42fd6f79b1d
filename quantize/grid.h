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

// How a row's rounding errors d (one per input channel, in level or weight units) are weighed
// when a W4 grid is chosen: a plain sum of squares; per-channel importance imp[i] ~ E[x_i^2];
// or, per W4 group g, the inputs' second-moment block H_gg, so that the error d_g^T H_gg d_g is
// the output error over the calibration inputs (the criterion of AWQ's clipping search; terms
// across groups are ignored).
class ErrorMetric {
 public:
  ErrorMetric() = default;  // unweighted
  static ErrorMetric Diagonal(std::vector<float> imp);
  // From the full symmetric [k, k] matrix h.
  static ErrorMetric GroupBlocks(std::span<const float> h, int64_t k, int32_t group);
  // The error of d, the len errors of input channels [k0, k0 + len) (within one group).
  double Error(std::span<const float> d, int64_t k0) const;
  // Only the diagonal: what the per-row level-scale search uses (it fits every group four
  // times, so the full blocks would multiply its cost by the group size).
  ErrorMetric Diagonal() const;
  // The metric of inputs x * a (after folding scales s into the weights, a = 1 / s).
  ErrorMetric Scaled(std::span<const float> a) const;

 private:
  std::vector<float> imp_;
  std::vector<float> blocks_;  // [groups][group][group]
  int32_t group_ = 0;
};

// The (s, z) within the contract's range that minimizes the metric's error of u - level for
// values `u` in level units starting at input channel k0. Candidates: steps around the min-max
// step (smaller ones trade clipping for resolution) and zero points that pin the minimum, the
// maximum or the centre; returns the best with its error.
W4Group FitW4Group(std::span<const float> u, const ErrorMetric& metric = {}, int64_t k0 = 0,
                   double* error = nullptr);

// The per-channel level scale of a W4 row: max |w| / L, with L searched over a few "protective
// ranges" (docs/quality.md): the largest level any group can reach is 126 (s * (15 - z) <= 127
// with s <= 15), and a group spanning both signs of the extremes only fits if L is lower, so
// the best L depends on the row. Returns 0 for an all-zero row.
float FitW4Scale(std::span<const float> row, int32_t group, const ErrorMetric& metric = {});

// w[n, k] row-major to progressive W4.
W4Weights RtnW4(std::span<const float> w, int64_t n, int64_t k, int32_t group,
                const ErrorMetric& metric = {});

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
                    const ErrorMetric& metric = {});
std::vector<float> Dequantize(const QuantizedWeight& w);
absl::StatusOr<PackedLinear> Pack(const QuantizedWeight& w, TileShape tile);

}  // namespace qsl
