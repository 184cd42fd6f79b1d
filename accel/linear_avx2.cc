// The AVX2 path (compiled with -mavx2 only, so it runs on any AVX2 CPU, VNNI or not): one ymm
// lane per output column, a 32-byte vector = 8 columns x 4 K of a tile as stored.
//
// Exactness without VNNI. vpmaddubsw multiplies unsigned by signed bytes and adds adjacent pairs
// into int16 with signed saturation; vpmaddwd against ones then adds the pairs into int32.
//  - W8 (the sign trick): u = |a| (vpabsb) and s = w * sign(a) (vpsignb; 0 where a = 0), so
//    u * s = a * w. Both operands avoid -128 (docs/numeric-contract.md), so |a| <= 127 fits the
//    unsigned operand and negating w cannot overflow; a pair is then at most 2 * 127 * 127 =
//    32258 < 32767: vpmaddubsw never saturates, and vpmaddwd's int32 sums are exact.
//  - W4: q4 in [0, 15] is the unsigned operand as it is; a pair is at most 2 * 15 * 127 = 3810.
#include <immintrin.h>

#include "accel/linear_simd.h"

namespace qsl::kernel {
namespace {

struct Avx2 {
  using Vec = __m256i;
  using VecF = __m256;
  static constexpr int kCols = 8;
  static constexpr int kRowsW8 = 3;  // 3 rows x 2 vectors: more accumulators spill (16 registers)
  static constexpr int kRowsW4 = 3;
  static constexpr int kVecs = 2;
  static constexpr bool kW8Sums = false;

  static Vec Mask(int valid) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }

  static Vec Zero() { return _mm256_setzero_si256(); }
  static Vec Set1(int32_t v) { return _mm256_set1_epi32(v); }
  static Vec Add(Vec a, Vec b) { return _mm256_add_epi32(a, b); }
  static Vec Sub(Vec a, Vec b) { return _mm256_sub_epi32(a, b); }
  static Vec Mul(Vec a, Vec b) { return _mm256_mullo_epi32(a, b); }
  static Vec Load(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const Vec*>(p)); }
  static Vec LoadBytes(const uint8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const Vec*>(p));
  }
  static void Store(int32_t* p, Vec v) { _mm256_storeu_si256(reinterpret_cast<Vec*>(p), v); }
  static Vec LoadMasked(const int32_t* p, int valid) {
    return _mm256_maskload_epi32(p, Mask(valid));
  }
  static void StoreMasked(int32_t* p, Vec v, int valid) {
    _mm256_maskstore_epi32(p, Mask(valid), v);
  }

  static Vec Broadcast(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, sizeof(v));
    return _mm256_set1_epi32(v);
  }
  static Vec LoadW8(const uint8_t* p) { return LoadBytes(p); }
  // 16 bytes of nibbles -> 32 bytes 0..15 in element order (see Avx512::LoadW4).
  static Vec LoadW4(const uint8_t* p) {
    const Vec w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_and_si256(_mm256_or_si256(w, _mm256_slli_epi16(w, 4)),
                            _mm256_set1_epi16(0x0f0f));
  }
  // 32 bytes of nibbles = columns c..c+15 -> two vectors (see Avx512::LoadW4Pair): lane l of
  // `a` holds columns 8l..8l+3, lane l of `b` columns 8l+4..8l+7.
  static void LoadW4Pair(const uint8_t* p, Vec& a, Vec& b) {
    const Vec x = LoadBytes(p);
    const Vec m = _mm256_set1_epi8(0x0f);
    const Vec lo = _mm256_and_si256(x, m);
    const Vec hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m);
    a = _mm256_unpacklo_epi8(lo, hi);
    b = _mm256_unpackhi_epi8(lo, hi);
  }
  static void UnpermutePair(Vec& a, Vec& b) {
    const Vec x = _mm256_permute2x128_si256(a, b, 0x20);
    const Vec y = _mm256_permute2x128_si256(a, b, 0x31);
    a = x;
    b = y;
  }
  static Vec DotW8(Vec acc, Vec w, Vec a) {
    const Vec pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(a), _mm256_sign_epi8(w, a));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
  static Vec DotW4(Vec acc, Vec q, Vec a) {
    const Vec pairs = _mm256_maddubs_epi16(q, a);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
  static Vec LoadU8(const uint8_t* p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static Vec LoadU4(const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p, sizeof(v));
    const __m128i w = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(v));
    const __m128i b = _mm_and_si128(_mm_or_si128(w, _mm_slli_epi16(w, 4)), _mm_set1_epi16(0x0f0f));
    return _mm256_cvtepu8_epi32(b);
  }

  static VecF Set1F(float v) { return _mm256_set1_ps(v); }
  static VecF LoadF(const float* p, int valid) { return _mm256_maskload_ps(p, Mask(valid)); }
  static void StoreF(float* p, VecF v, int valid) { _mm256_maskstore_ps(p, Mask(valid), v); }
  static VecF ToF(Vec v) { return _mm256_cvtepi32_ps(v); }
  static Vec ToI32(VecF v) { return _mm256_cvtps_epi32(v); }
  static VecF MulF(VecF a, VecF b) { return _mm256_mul_ps(a, b); }
  static VecF AddF(VecF a, VecF b) { return _mm256_add_ps(a, b); }
  static VecF MaxF(VecF a, VecF b) { return _mm256_max_ps(a, b); }
  static VecF MinF(VecF a, VecF b) { return _mm256_min_ps(a, b); }
  static VecF AbsF(VecF v) {
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
  }
  static float ReduceMaxF(VecF v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  // v holds int32 already clamped to [-127, 127], so the saturating packs are plain narrowing.
  static void StoreI8(int8_t* p, Vec v, int valid) {
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    const __m128i b = _mm_packs_epi16(w, w);
    if (valid == kCols) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(p), b);
    } else {
      int8_t tmp[16];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), b);
      std::memcpy(p, tmp, static_cast<size_t>(valid));
    }
  }
};

}  // namespace

const Kernels kAvx2Kernels = MakeKernels<Avx2>();

}  // namespace qsl::kernel
