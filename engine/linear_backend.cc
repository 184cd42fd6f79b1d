#include "engine/linear_backend.h"

#include <cblas.h>

#include <algorithm>

#include "accel/linear.h"
#include "base/status.h"
#include "engine/host_ops.h"

namespace qsl {

void CpuLinearBackend::Quantize(const Linear& lin, const float* x, int64_t m) {
  const int64_t k_pad = lin.q.layout.k_pad();
  a8_.resize(static_cast<size_t>(m * k_pad));
  a_scale_.resize(static_cast<size_t>(m));
  QuantizeActivations(x, m, lin.k, lin.k, k_pad, a8_.data(), a_scale_.data());
}

absl::Status CpuLinearBackend::Run(const Linear& lin, const float* x, int64_t m, float* y) {
  if (lin.quantized()) {
    Quantize(lin, x, m);
    LinearInt8(lin.q, a8_.data(), a_scale_.data(), m, y, lin.n);
    return absl::OkStatus();
  }
  LinearFp32(lin, x, m, y);
  return absl::OkStatus();
}

absl::Status LinearBackend::RunShared(absl::Span<const Linear* const> lins, const float* x,
                                     int64_t m, absl::Span<float* const> ys) {
  for (size_t i = 0; i < lins.size(); ++i) {
    if (absl::Status s = Run(*lins[i], x, m, ys[i]); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CpuLinearBackend::RunShared(absl::Span<const Linear* const> lins, const float* x,
                                         int64_t m, absl::Span<float* const> ys) {
  const auto shares = [&](const Linear* l) {
    return l->quantized() && l->k == lins[0]->k &&
           l->q.layout.k_pad() == lins[0]->q.layout.k_pad();
  };
  if (lins.empty() || !std::all_of(lins.begin(), lins.end(), shares)) {
    return LinearBackend::RunShared(lins, x, m, ys);
  }
  Quantize(*lins[0], x, m);
  views_.clear();
  for (const Linear* l : lins) views_.push_back(l->q);
  LinearInt8Shared(views_, a8_.data(), a_scale_.data(), m, ys);
  return absl::OkStatus();
}

absl::Status LinearBackend::RunSwiGlu(const Linear& gate, const Linear& up, const float* x,
                                     int64_t m, float* out, float* scratch) {
  const Linear* lins[] = {&gate, &up};
  float* ys[] = {out, scratch};
  QSL_RETURN_IF_ERROR(RunShared(lins, x, m, ys));
  SwiGlu(out, scratch, m * gate.n);
  return absl::OkStatus();
}

absl::Status CpuLinearBackend::RunSwiGlu(const Linear& gate, const Linear& up, const float* x,
                                         int64_t m, float* out, float* scratch) {
  if (!gate.quantized() || !up.quantized() || gate.k != up.k || gate.n != up.n ||
      gate.q.layout.k_pad() != up.q.layout.k_pad()) {
    return LinearBackend::RunSwiGlu(gate, up, x, m, out, scratch);
  }
  Quantize(gate, x, m);
  LinearInt8Pair(gate.q, up.q, a8_.data(), a_scale_.data(), m, SwiGluKernel(), out, gate.n);
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
