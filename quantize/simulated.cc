// Fake-quantized activations and the simulated integer linear.
#include "quantize/simulated.h"

#include "accel/linear.h"

namespace qsl {

std::vector<float> FakeQuantActivations(std::span<const float> x, int64_t m, int64_t k) {
  std::vector<int8_t> q(static_cast<size_t>(m * k));
  std::vector<float> scale(static_cast<size_t>(m));
  QuantizeActivations(x.data(), m, k, k, k, q.data(), scale.data());
  std::vector<float> out(q.size());
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t i = 0; i < k; ++i) out[t * k + i] = static_cast<float>(q[t * k + i]) * scale[t];
  }
  return out;
}

absl::Status SimulatedInt8Backend::Run(const Linear& lin, const float* x, int64_t m, float* y) {
  if (lin.w.size() != static_cast<size_t>(lin.n * lin.k)) {
    return absl::InvalidArgumentError("simulated int8 backend needs dequantized fp32 weights");
  }
  const std::vector<float> xq = FakeQuantActivations({x, static_cast<size_t>(m * lin.k)}, m, lin.k);
  LinearFp32(lin, xq.data(), m, y);
  return absl::OkStatus();
}

}  // namespace qsl
