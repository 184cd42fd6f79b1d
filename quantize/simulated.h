// The integer path simulated in fp32 for calibration: activations quantized per token to int8
// exactly as accel/ does (QuantizeActivations) and dequantized, weights already dequantized,
// products through sgemm. Equal to the integer kernels up to fp32 summation order, and as fast
// as the fp32 path, so calibration does not wait on the int8 kernels.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/linear_backend.h"

namespace qsl {

// x [m, k] -> per-token int8 levels times their scale, in fp32.
std::vector<float> FakeQuantActivations(std::span<const float> x, int64_t m, int64_t k);

// Runs fp32 Linears (weights holding dequantized values) on fake-quantized activations.
class SimulatedInt8Backend final : public LinearBackend {
 public:
  absl::Status Run(const Linear& lin, const float* x, int64_t m, float* y) override;
};

}  // namespace qsl
