// Where linear layers run. The forward pass hands every linear to a LinearBackend; the host CPU
// backend is here, the device pool (accel/) provides the card-backed one.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/engine.h"
#include "engine/model.h"

namespace qsl {

class LinearBackend {
 public:
  virtual ~LinearBackend() = default;
  // y[m, lin.n] = x[m, lin.k] W^T (+ b). x rows are contiguous (stride lin.k), y rows stride lin.n.
  virtual absl::Status Run(const Linear& lin, const float* x, int64_t m, float* y) = 0;
  // Several linears of the same input x[m, k] (Q/K/V, gate/up): ys[i] is [m, lins[i]->n]. A
  // backend that can share the activation quantization and one dispatch overrides it; the
  // default runs them one by one.
  virtual absl::Status RunShared(absl::Span<const Linear* const> lins, const float* x, int64_t m,
                                 absl::Span<float* const> ys);
  // The MLP's gate and up projections of x[m, k] and SwiGLU: out[m, gate.n] =
  // silu(x gate^T) * (x up^T), elementwise as host_ops SwiGlu computes it. `scratch` holds
  // [m, up.n] for a backend that produces the two outputs whole; the default runs RunShared
  // into out and scratch, then SwiGlu.
  virtual absl::Status RunSwiGlu(const Linear& gate, const Linear& up, const float* x, int64_t m,
                                 float* out, float* scratch);
  // Safe to call from any thread while Run runs on another.
  virtual DeviceReport Devices() const { return {}; }
};

// fp32 weights through OpenBLAS sgemm (the reference-quality path); packed weights through the
// int8 kernels of the integer contract (accel/linear.h).
class CpuLinearBackend final : public LinearBackend {
 public:
  absl::Status Run(const Linear& lin, const float* x, int64_t m, float* y) override;
  // Quantized linears of one K: one quantization of x and one split over the pool.
  absl::Status RunShared(absl::Span<const Linear* const> lins, const float* x, int64_t m,
                         absl::Span<float* const> ys) override;
  // Quantized gate/up of one layout: one quantization of x, and each work item computes its
  // tile of both outputs and applies SwiGLU to it in place (accel/linear.h, LinearInt8Pair), so
  // the two [m, n] outputs are never written out and read back.
  absl::Status RunSwiGlu(const Linear& gate, const Linear& up, const float* x, int64_t m,
                         float* out, float* scratch) override;

 private:
  // x[m, lin.k] as int8 rows of stride lin's k_pad into a8_, with their scales in a_scale_.
  void Quantize(const Linear& lin, const float* x, int64_t m);

  std::vector<int8_t> a8_;
  std::vector<float> a_scale_;
  std::vector<LinearWeightsView> views_;
};

// y[m, lin.n] = x[m, lin.k] lin.w^T (+ b) in fp32 through OpenBLAS: the reference-quality path.
void LinearFp32(const Linear& lin, const float* x, int64_t m, float* y);

}  // namespace qsl
