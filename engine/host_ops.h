// The fp32 per-token steps of the forward pass that stay on the host whatever device runs the
// linear layers (docs/engine.md, "what runs where"): RMSNorm, SwiGLU, rotary embedding and the
// residual adds. Vectorized (one build per ISA, picked with the integer kernels' path, so
// QSL_ISA / --isa steer it too) and split over the thread pool by rows or elements.
//
// Every build and every split gives the same bits: lane-wise IEEE arithmetic in a fixed order
// (engine/simd_math.h), and each row's result depends on that row alone, so a token's output
// does not depend on the batch it shares a step with (batch invariance).
#pragma once

#include <cstdint>
#include <vector>

namespace qsl {

// out[r] = w * (x[r] * (1 / sqrt(mean(x[r]^2) + eps))), per row (transformers' LlamaRMSNorm in
// fp32). The sum of squares is taken in 16 interleaved partial sums (element i into lane i % 16,
// in order), combined by a fixed pairwise tree, then the dim % 16 tail in order.
void RmsNorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out);

// gate[i] = silu(gate[i]) * up[i], silu(g) = g * sigmoid(g), computed from e = exp(-|g|) as
// g / (1 + e) for g >= 0 and g * e / (1 + e) below (no overflow for any g).
void SwiGlu(float* gate, const float* up, int64_t n);

// The SwiGlu kernel of the active build over one range, on the caller's thread (for a fused
// linear whose work items each combine their own tile: accel/linear.h, LinearInt8Pair).
using SwiGluFn = void (*)(float* gate, const float* up, int64_t n);
SwiGluFn SwiGluKernel();

// x[i] += y[i].
void AddInPlace(float* x, const float* y, int64_t n);

// AddInPlace(x, y, rows * dim), then RmsNorm(x, w, rows, dim, eps, out), in one pass over the
// pool (each range adds its rows, then normalizes them): the same bits as the two calls.
void AddRmsNorm(float* x, const float* y, const float* w, int64_t rows, int64_t dim, float eps,
                float* out);

// Rotary embedding in transformers' rotate-half layout, in place: for each of `tokens` rows of
// `heads` heads of 2 * half values, (a, b) = (v[j], v[j + half]) becomes
// (a * cos[j] + (-b) * sin[j], b * cos[j] + a * sin[j]), cos/sin rows [tokens][half].
void ApplyRope(float* x, int64_t tokens, int32_t heads, int64_t half, const float* cos,
               const float* sin);

// Each build's kernels over whole ranges, for tests comparing builds: one per ISA this CPU
// supports, generic first (as PagedAttentionIsas()).
struct HostOpsKernels {
  const char* name;
  void (*rms_norm)(const float* x, const float* w, int64_t rows, int64_t dim, float eps,
                   float* out);
  void (*swiglu)(float* gate, const float* up, int64_t n);
  void (*add)(float* x, const float* y, int64_t n);
  void (*rope)(float* x, int64_t tokens, int32_t heads, int64_t half, const float* cos,
               const float* sin);
};
std::vector<HostOpsKernels> HostOpsBuilds();

}  // namespace qsl
