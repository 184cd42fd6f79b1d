// The integer linear op of the numeric contract: y = epilogue(sum_k A8[t,k] * W8[n,k]).
// One entry point per step; each checks nothing on the hot path (callers hold validated views)
// and dispatches to the ISA path chosen at start-up (see isa.h). Every path gives the same bits.
#pragma once

#include <cstdint>

#include "absl/types/span.h"
#include "format/weight_tiles.h"

namespace qsl {

// Activation row length as the kernels and the card read it: K padded to the weight's tile_k.
inline int64_t PaddedK(const TiledLayout& l) { return l.k_pad(); }

// Dynamic per-token symmetric int8 quantization of x[m, k] (row stride ldx):
//   amax = max |x[t, :]|; scale[t] = amax / 127; q = clamp(rne(x * (127 / amax)), -127, 127)
// rne = round half to even. Rows of q have stride k_pad and are zero from k to k_pad.
// A row of zeros (amax == 0) gives q = 0 and scale 0.
void QuantizeActivations(const float* x, int64_t m, int64_t k, int64_t ldx, int64_t k_pad,
                         int8_t* q, float* scale);

// acc[t, n] = sum_{k < k_pad} a[t, k] * w8[n, k] in int32, for n < layout.n (row stride ldacc).
// `a` has m rows of stride layout.k_pad().
void MatmulInt8(const LinearWeightsView& w, const int8_t* a, int64_t m, int32_t* acc,
                int64_t ldacc);

// y[t, n] = float(acc[t, n]) * w.scale[n] * a_scale[t]   (left to right, no fused multiply-add)
//           + w.bias[n] when a bias is present.
void Epilogue(const LinearWeightsView& w, const int32_t* acc, int64_t ldacc, const float* a_scale,
              int64_t m, float* y, int64_t ldy);

// MatmulInt8 then Epilogue, fused; the same bits as the two steps.
void LinearInt8(const LinearWeightsView& w, const int8_t* a, const float* a_scale, int64_t m,
                float* y, int64_t ldy);

// LinearInt8 of several weights over the same activations (one K: Q/K/V, gate/up) as one
// split over the pool: ys[j] is [m, ws[j].layout.n]. The same bits as one call per weight.
void LinearInt8Shared(absl::Span<const LinearWeightsView> ws, const int8_t* a,
                      const float* a_scale, int64_t m, absl::Span<float* const> ys);

// Two weights of one layout over the same activations, their fp32 outputs combined element by
// element: y[t, :] = combine(LinearInt8 of wa, LinearInt8 of wb) with
// combine(a, b, n) writing its result over a (SwiGLU: a = silu(a) * b). Each work item computes
// its tile of both outputs into per-thread buffers, combines them there and writes only the
// result, so neither full output is written to memory or read back. The same bits as the two
// LinearInt8 calls followed by `combine` over each row, for an elementwise `combine`. Both
// weights read `a` with one row stride: their k_pad() must be equal (y is [m, wa.layout.n]).
using PairCombine = void (*)(float* a, const float* b, int64_t n);
void LinearInt8Pair(const LinearWeightsView& wa, const LinearWeightsView& wb, const int8_t* a,
                    const float* a_scale, int64_t m, PairCombine combine, float* y, int64_t ldy);

// The plain scalar reference of each step: the definition every other path is tested against.
namespace scalar {
void QuantizeActivations(const float* x, int64_t m, int64_t k, int64_t ldx, int64_t k_pad,
                         int8_t* q, float* scale);
void MatmulInt8(const LinearWeightsView& w, const int8_t* a, int64_t m, int32_t* acc,
                int64_t ldacc);
void Epilogue(const LinearWeightsView& w, const int32_t* acc, int64_t ldacc, const float* a_scale,
              int64_t m, float* y, int64_t ldy);
}  // namespace scalar

}  // namespace qsl
