#include "engine/linear_backend.h"

#include <cblas.h>

#include "accel/linear.h"

namespace qsl {

absl::Status CpuLinearBackend::Run(const Linear& lin, const float* x, int64_t m, float* y) {
  if (lin.quantized()) {
    const int64_t k_pad = lin.q.layout.k_pad();
    a8_.resize(static_cast<size_t>(m * k_pad));
    a_scale_.resize(static_cast<size_t>(m));
    QuantizeActivations(x, m, lin.k, lin.k, k_pad, a8_.data(), a_scale_.data());
    LinearInt8(lin.q, a8_.data(), a_scale_.data(), m, y, lin.n);
    return absl::OkStatus();
  }
  LinearFp32(lin, x, m, y);
  return absl::OkStatus();
}

void LinearFp32(const Linear& lin, const float* x, int64_t m, float* y) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(lin.n),
              static_cast<int>(lin.k), 1.0f, x, static_cast<int>(lin.k), lin.w.data(),
              static_cast<int>(lin.k), 0.0f, y, static_cast<int>(lin.n));
  if (!lin.bias.empty()) {
    for (int64_t t = 0; t < m; ++t) {
      for (int64_t j = 0; j < lin.n; ++j) y[t * lin.n + j] += lin.bias[j];
    }
  }
}

}  // namespace qsl
