// Internal: 16-float GCC vectors and the exp used by the host fp32 kernels that are built once
// per ISA (paged_attention_impl.h, host_ops_impl.h). Include it only from those per-ISA files:
// everything here has internal linkage so that each build keeps its own copy (see
// accel/linear_isa.h for why nothing may be shared across files built with different -m flags).
//
// Why every build gives the same bits: each vector operation is lane-wise IEEE fp32 (+, -, *, /,
// compare, convert, and Fma below: fusedMultiplyAdd, one rounding), and -ffp-contract=off
// everywhere, so the compiler never fuses a * b + c on its own in one build and not in another;
// a vector of 16 floats becomes one zmm, two ymm or four xmm registers doing exactly the same
// per-lane arithmetic.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

namespace qsl {
namespace {  // NOLINT: internal linkage on purpose, one copy per ISA file

constexpr int32_t kLanes = 16;
typedef float F32x16 __attribute__((vector_size(64)));
typedef int32_t I32x16 __attribute__((vector_size(64)));

inline F32x16 LoadU(const float* p) {
  F32x16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void StoreU(float* p, F32x16 v) { std::memcpy(p, &v, sizeof v); }

// x * b + c rounded once (IEEE 754 fusedMultiplyAdd), lane by lane: vfmadd in the AVX-512 and
// the AVX2 (+FMA3) builds, the correctly rounded std::fma per lane in the generic one, so every
// build gives the same bits. One instruction instead of a multiply and a dependent add.
inline F32x16 Fma(float x, F32x16 b, F32x16 c) {
#if defined(__AVX512F__)
  __m512 vb, vc;
  std::memcpy(&vb, &b, sizeof vb);
  std::memcpy(&vc, &c, sizeof vc);
  const __m512 r = _mm512_fmadd_ps(_mm512_set1_ps(x), vb, vc);
  std::memcpy(&c, &r, sizeof c);
  return c;
#elif defined(__FMA__)
  __m256 vb[2], vc[2];
  std::memcpy(vb, &b, sizeof vb);
  std::memcpy(vc, &c, sizeof vc);
  const __m256 vx = _mm256_set1_ps(x);
  const __m256 r[2] = {_mm256_fmadd_ps(vx, vb[0], vc[0]), _mm256_fmadd_ps(vx, vb[1], vc[1])};
  std::memcpy(&c, r, sizeof c);
  return c;
#else
  for (int32_t i = 0; i < kLanes; ++i) c[i] = std::fma(x, b[i], c[i]);
  return c;
#endif
}

// exp(x) for x <= 0 (softmax and sigmoid arguments), ~2 ulp, lane by lane: Cody-Waite reduction
// x = n ln2 + r, a degree-6 polynomial for e^r (Cephes expf coefficients), and 2^n from the
// exponent bits. Below -87 the result flushes to ~1e-38 instead of 0, which no softmax weight
// or sigmoid can notice. Hand-written because libm's expf is scalar and libmvec's vector expf
// may round differently from it: this one is the same IEEE sequence in every build and lane,
// and V = float gives the same bits as one lane of V = F32x16.
template <typename V, typename I>
inline V Exp(V x) {
  x = x < -87.0f ? V{} - 87.0f : x;
  // n = rne(x / ln 2) by the 1.5 * 2^23 trick: plain adds, exact in every lane.
  const V n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const V r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  V p = V{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const V y = (p * (r * r) + r) + 1.0f;
  I e;
  if constexpr (std::is_same_v<V, float>) {
    e = (static_cast<int32_t>(n) + 127) << 23;
  } else {
    e = (__builtin_convertvector(n, I) + 127) << 23;
  }
  V scale;
  std::memcpy(&scale, &e, sizeof scale);
  return y * scale;
}

}  // namespace
}  // namespace qsl
