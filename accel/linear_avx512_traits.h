// Internal: the AVX-512 VNNI traits of linear_simd.h, shared by linear_avx512.cc and
// linear_amx.cc (both compiled with at least these flags; everything here has internal linkage,
// see linear_isa.h).
#pragma once

// GCC 12's AVX-512 headers start some conversions from _mm512_undefined_*() and then warn about
// it when inlined (GCC bug 105593, fixed in GCC 13); the pragma must precede the header.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "accel/linear_simd.h"

namespace qsl::kernel {
namespace {

struct Avx512 {
  using Vec = __m512i;
  using VecF = __m512;
  static constexpr int kCols = 16;
  static constexpr int kRowsW8 = 6;  // 6 rows x 4 vectors = 24 accumulators of the 32 registers
  static constexpr int kRowsW4 = 4;  // fewer: expanding 4 nibble vectors needs registers too
  static constexpr int kVecs = 4;
  static constexpr bool kW8Sums = true;

  static __mmask16 Mask(int valid) { return static_cast<__mmask16>((1u << valid) - 1u); }

  static Vec Zero() { return _mm512_setzero_si512(); }
  static Vec Set1(int32_t v) { return _mm512_set1_epi32(v); }
  static Vec Add(Vec a, Vec b) { return _mm512_add_epi32(a, b); }
  static Vec Sub(Vec a, Vec b) { return _mm512_sub_epi32(a, b); }
  static Vec Mul(Vec a, Vec b) { return _mm512_mullo_epi32(a, b); }
  static Vec Load(const int32_t* p) { return _mm512_loadu_si512(p); }
  static Vec LoadBytes(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static void Store(int32_t* p, Vec v) { _mm512_storeu_si512(p, v); }
  static Vec LoadMasked(const int32_t* p, int valid) {
    return _mm512_maskz_loadu_epi32(Mask(valid), p);
  }
  static void StoreMasked(int32_t* p, Vec v, int valid) {
    _mm512_mask_storeu_epi32(p, Mask(valid), v);
  }

  static Vec Broadcast(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, sizeof(v));
    return _mm512_set1_epi32(v);
  }
  static Vec LoadW8(const uint8_t* p) {
    return _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_set1_epi8(static_cast<char>(0x80)));
  }
  // 32 bytes of nibbles (byte b = elements 2b low, 2b + 1 high) -> 64 bytes 0..15 in element
  // order: widen each byte to a word 0x00HL, then (w | w << 4) & 0x0f0f = 0x0H0L, i.e. bytes L, H.
  static Vec LoadW4(const uint8_t* p) {
    const Vec w = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_and_si512(_mm512_or_si512(w, _mm512_slli_epi16(w, 4)),
                            _mm512_set1_epi16(0x0f0f));
  }
  // 64 bytes of nibbles = columns c..c+31 of one k-quad (2 bytes per column: kk0 | kk1 << 4,
  // kk2 | kk3 << 4) -> two vectors of bytes 0..15. lo / hi hold each byte's low / high nibble;
  // interleaving their bytes within each 128-bit lane puts a column's kk0..kk3 in one int32
  // lane, but lane l of `a` holds columns 8l..8l+3 and lane l of `b` columns 8l+4..8l+7.
  static void LoadW4Pair(const uint8_t* p, Vec& a, Vec& b) {
    const Vec x = _mm512_loadu_si512(p);
    const Vec m = _mm512_set1_epi8(0x0f);
    const Vec lo = _mm512_and_si512(x, m);
    const Vec hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), m);
    a = _mm512_unpacklo_epi8(lo, hi);
    b = _mm512_unpackhi_epi8(lo, hi);
  }
  // Back to natural order: a = columns c..c+15, b = c+16..c+31 (128-bit lanes = 2 qwords).
  static void UnpermutePair(Vec& a, Vec& b) {
    const Vec x = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), b);
    const Vec y = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15), b);
    a = x;
    b = y;
  }
  static Vec DotW8(Vec acc, Vec w, Vec a) { return Dpbusd(acc, w, a); }
  static Vec DotW4(Vec acc, Vec q, Vec a) { return Dpbusd(acc, q, a); }
  // acc += u8 x s8, 4 per lane. Written as asm, not _mm512_dpbusd_epi32: with the intrinsic GCC
  // 12 copies each accumulator to a scratch register and back around every vpdpbusd (and to the
  // stack once registers run short), which halved the W4 GEMM in qsl-bench-linear.
  static Vec Dpbusd(Vec acc, Vec u, Vec s) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
    return acc;
  }
  // 16 uint8 group scales -> int32 lanes.
  static Vec LoadU8(const uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  // 16 uint4 group zeros (8 bytes, low nibble = even column) -> int32 lanes.
  static Vec LoadU4(const uint8_t* p) {
    const __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    const __m128i b = _mm_and_si128(_mm_or_si128(w, _mm_slli_epi16(w, 4)), _mm_set1_epi16(0x0f0f));
    return _mm512_cvtepu8_epi32(b);
  }

  static VecF Set1F(float v) { return _mm512_set1_ps(v); }
  static VecF LoadF(const float* p, int valid) { return _mm512_maskz_loadu_ps(Mask(valid), p); }
  static void StoreF(float* p, VecF v, int valid) { _mm512_mask_storeu_ps(p, Mask(valid), v); }
  static VecF ToF(Vec v) { return _mm512_cvtepi32_ps(v); }
  static Vec ToI32(VecF v) { return _mm512_cvtps_epi32(v); }
  static VecF MulF(VecF a, VecF b) { return _mm512_mul_ps(a, b); }
  static VecF AddF(VecF a, VecF b) { return _mm512_add_ps(a, b); }
  static VecF MaxF(VecF a, VecF b) { return _mm512_max_ps(a, b); }
  static VecF MinF(VecF a, VecF b) { return _mm512_min_ps(a, b); }
  static VecF AbsF(VecF v) { return _mm512_abs_ps(v); }
  static float ReduceMaxF(VecF v) { return _mm512_reduce_max_ps(v); }
  static void StoreI8(int8_t* p, Vec v, int valid) {
    _mm_mask_storeu_epi8(p, Mask(valid), _mm512_cvtepi32_epi8(v));
  }
};

}  // namespace
}  // namespace qsl::kernel
