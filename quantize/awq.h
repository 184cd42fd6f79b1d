// AWQ (arXiv:2306.00978): activation-aware per-input-channel scales, searched on calibration
// inputs. For alpha on a grid, s = mean|x|^alpha (normalized to geometric centre 1); the loss
// is the output error of the linears sharing the input when they run the way the integer path
// runs them: weights W * s quantized to the target grid, inputs x / s quantized per token to
// int8. The best alpha (alpha = 0, no scaling, is on the grid) gives the scales to fold.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "quantize/grid.h"
#include "quantize/smooth.h"

namespace qsl {

struct AwqWeight {
  std::span<const float> w;  // [n, k]
  int64_t n = 0;
};

struct AwqProblem {
  std::span<const float> x;  // [m, k] calibration inputs (a subsample of the tokens)
  int64_t m = 0, k = 0;
  std::span<const float> mean_abs;  // [k] mean |x| over all calibration tokens
  ErrorMetric metric;               // weighs the W4 grid fit of the unscaled inputs
  std::vector<AwqWeight> weights;   // the linears that read x
  ChannelTie tie;                   // channels that must share a scale
};

struct AwqResult {
  std::vector<float> scales;  // [k]
  float alpha = 0.0f;
  double loss = 0.0;       // mean squared output error at the chosen alpha
  double base_loss = 0.0;  // ... at alpha = 0 (plain RTN)
};

AwqResult AwqSearch(const AwqProblem& p, WeightFormat format, int grid = 20);

// Mean squared error of x W^T against the integer path's x8 W8^T (weights `q`, inputs
// quantized per token); `ref` is x W^T [m, n] in fp32.
double IntegerPathError(std::span<const float> x, int64_t m, int64_t k, std::span<const float> q,
                        int64_t n, std::span<const float> ref);

}  // namespace qsl
