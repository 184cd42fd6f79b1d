// The body of the paged attention kernel, compiled once per ISA (paged_attention_*.cc define
// QSL_ATTENTION_ISA and their own compiler flags). Why every build gives the same bits:
// - fp16/int8 -> fp32 conversion is exact, however it is done (table, F16C);
// - a score is one lane: sum over d in order 0..hd-1 of q[d] * k[d], a plain sequential sum of
//   fused multiply-adds (simd_math.h Fma: one rounding per step in every build);
//   keys, not dimensions, fill the vector lanes (K is stored transposed inside a block for
//   that), so no horizontal reduction reorders anything;
// - V accumulation is per output element, sequential over keys in position order, fused
//   multiply-adds likewise;
// - exp is Exp() below: IEEE add/mul/convert only, the same sequence in every lane;
// - -ffp-contract=off everywhere: the compiler cannot fuse a*b+c in one build and not in another;
//   only the explicit Fma calls fuse, in every build. Vectorizing independent lanes never
//   reassociates (no -ffast-math).
// - the softmax is exact per query (max over all its keys first), and its sum runs over lanes
//   fixed by the key's position (SoftmaxRows below), so a query's result depends on neither how
//   many queries share the call nor how a prompt was chunked.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "base/half.h"
#include "engine/simd_math.h"
#include "engine/paged_attention.h"

#ifndef QSL_ATTENTION_ISA
#error "define QSL_ATTENTION_ISA to the namespace of this build"
#endif

namespace qsl::attention::QSL_ATTENTION_ISA {
namespace {

// Scores are computed kLanes = 16 keys at a time, in one F32x16 (simd_math.h: one zmm, two ymm
// or four xmm registers, the same per-lane arithmetic in each).

const float* F16Table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = F16ToF32(static_cast<uint16_t>(h));
    return t;
  }();
  return table.data();
}

void HalfToFloat(const uint16_t* s, float* d, int32_t n) {
  int32_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
    _mm512_storeu_ps(d + i, _mm512_maskz_cvtph_ps(0xffff, h));
  }
#elif defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  }
#endif
  const float* table = F16Table();
  for (; i < n; ++i) d[i] = table[s[i]];
}

// 16 consecutive values as fp32 lanes: straight from an fp32 or fp16 plane (the conversion is
// exact, so reading fp16 here gives the bits a converted copy would).
F32x16 LoadLanes(const float* p) { return LoadU(p); }
F32x16 LoadLanes(const uint16_t* p) {
  F32x16 v;
#if defined(__AVX512F__)
  // maskz: GCC 12's plain _mm512_cvtph_ps warns about its undefined start (GCC bug 105593).
  const __m512 f =
      _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  std::memcpy(&v, &f, sizeof v);
#elif defined(__F16C__)
  const __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)));
  std::memcpy(&v, &lo, sizeof lo);
  std::memcpy(reinterpret_cast<char*>(&v) + sizeof lo, &hi, sizeof hi);
#else
  const float* table = F16Table();
  float f[kLanes];
  for (int32_t i = 0; i < kLanes; ++i) f[i] = table[p[i]];
  v = LoadU(f);
#endif
  return v;
}
// int8 without its scale (exact in fp32); the caller multiplies by the scale, as LoadK / LoadV do.
F32x16 LoadLanes(const int8_t* p) {
  F32x16 v;
#if defined(__AVX512F__)
  // maskz forms, as for fp16 above (GCC bug 105593).
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m512 f = _mm512_maskz_cvtepi32_ps(0xffff, _mm512_maskz_cvtepi8_epi32(0xffff, b));
  std::memcpy(&v, &f, sizeof v);
#elif defined(__AVX2__)
  const __m256 lo = _mm256_cvtepi32_ps(
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  const __m256 hi = _mm256_cvtepi32_ps(
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8))));
  std::memcpy(&v, &lo, sizeof lo);
  std::memcpy(reinterpret_cast<char*>(&v) + sizeof lo, &hi, sizeof hi);
#else
  float f[kLanes];
  for (int32_t i = 0; i < kLanes; ++i) f[i] = static_cast<float>(p[i]);
  v = LoadU(f);
#endif
  return v;
}
float LoadOne(const float* p) { return *p; }
float LoadOne(const uint16_t* p) { return F16Table()[*p]; }
float LoadOne(const int8_t* p) { return static_cast<float>(*p); }

// n elements of a plane from element `at`, as fp32 (int8 still without its scale).
void Load(KvDtype dtype, const uint8_t* plane, int64_t at, int32_t n, float* dst) {
  switch (dtype) {
    case KvDtype::kF32:
      std::memcpy(dst, reinterpret_cast<const float*>(plane) + at, static_cast<size_t>(n) * 4);
      return;
    case KvDtype::kF16:
      HalfToFloat(reinterpret_cast<const uint16_t*>(plane) + at, dst, n);
      return;
    case KvDtype::kInt8: {
      const int8_t* s = reinterpret_cast<const int8_t*>(plane) + at;
      for (int32_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
  }
}

// One KV head's K slice of a block as fp32 K^T [hd][lanes]. The K plane keeps each head's slice
// of a block contiguous, as [head][d][slot] (PagedKvCache::Store). Loaded whole, unwritten slots
// included (the pool starts zeroed; a slot not yet written holds zeros or an earlier tenant's
// values): their lanes are computed and never read, and whole rows convert fastest. int8 scales
// apply to the `n` slots in use.
void LoadK(const PagedKv& kv, const uint8_t* block, int32_t head, int32_t hd, int32_t num_kv_heads,
           int32_t n, int32_t lanes, float* kt) {
  const int32_t bs = kv.block_size;
  const int64_t head0 = static_cast<int64_t>(head) * hd * bs;
  if (lanes == bs) {
    Load(kv.dtype, block + kv.k_offset, head0, hd * bs, kt);  // one contiguous run
  } else {
    for (int32_t d = 0; d < hd; ++d) {
      Load(kv.dtype, block + kv.k_offset, head0 + static_cast<int64_t>(d) * bs, bs,
           kt + static_cast<int64_t>(d) * lanes);
    }
  }
  if (kv.dtype != KvDtype::kInt8) return;
  const auto* ks = reinterpret_cast<const float*>(block + kv.k_scale_offset);
  for (int32_t d = 0; d < hd; ++d) {
    float* row = kt + static_cast<int64_t>(d) * lanes;
    for (int32_t j = 0; j < n; ++j) row[j] *= ks[j * num_kv_heads + head];
  }
}

// One KV head's V rows [0, n) of a block as fp32 [slot][hd] (the V plane is [head][slot][d]).
void LoadV(const PagedKv& kv, const uint8_t* block, int32_t head, int32_t hd, int32_t num_kv_heads,
           int32_t n, float* v) {
  const int64_t head0 = static_cast<int64_t>(head) * hd * kv.block_size;
  Load(kv.dtype, block + kv.v_offset, head0, n * hd, v);
  if (kv.dtype != KvDtype::kInt8) return;
  const auto* vs = reinterpret_cast<const float*>(block + kv.v_scale_offset);
  for (int32_t j = 0; j < n; ++j) {
    float* row = v + static_cast<int64_t>(j) * hd;
    const float scale = vs[j * num_kv_heads + head];
    for (int32_t d = 0; d < hd; ++d) row[d] *= scale;
  }
}

// Asks for one plane's slices of KV heads [head, head + n) in a block (n * hd * block_size
// values, contiguous) at once, ahead of their use: blocks are scattered over the pool, so the
// hardware prefetcher cannot guess the next one, and at decode the KV cache is read from DRAM.
// Used for the first blocks of a pass and, on the converted-copy path, for every block; the
// in-place path spreads its requests over the compute instead (ScoreGroups, Accumulate), which
// reads far faster.
void Prefetch(const PagedKv& kv, const uint8_t* block, int64_t plane_offset, int32_t head,
              int32_t hd, int32_t n) {
  const int64_t elem = kv.dtype == KvDtype::kF32 ? 4 : kv.dtype == KvDtype::kF16 ? 2 : 1;
  const int64_t bytes = static_cast<int64_t>(hd) * kv.block_size * elem;
  const uint8_t* at = block + plane_offset + head * bytes;
  for (int64_t o = 0; o < n * bytes; o += 64) __builtin_prefetch(at + o, 0, 2);
}

// How far ahead (in blocks) K and V are requested. Decode reads the cache from DRAM in
// slices of a few KiB scattered over the pool. With one burst of requests per block, no
// distance helped (qsl-bench-attention, 22 layers: 13-15 ms for 0, 1, 4 or 12 blocks); with
// the requests spread a line at a time over the score and V loops, 2 and 4 both gave 9-10 ms.
constexpr int32_t kPrefetchBlocks = 4;

// Calls with fewer queries than this read K and V in place; calls with more convert each block
// once for all of them (a 512-token prefill ran 7-10 % slower in place, converting
// every block once per query).
constexpr int32_t kInPlaceQueries = 4;

// Query heads computed together: their accumulator chains are independent (so they overlap in
// the pipeline) and they share each K/V load. Up to the group size of the KV head.
constexpr int32_t kMaxHeads = 8;
// Queries of one chunk scored together per KV head (they share each block's conversion), as
// many as fit kScoreFloats of score rows.
constexpr int32_t kMaxQueries = 16;
constexpr int64_t kScoreFloats = 1 << 16;

// Scores of NH query heads against the lane groups [t0, t1) of the loaded block:
// dst[h][t] = scale * sum over d in order 0..hd-1 of q[h][d] * kt[d][t], one lane per key.
// Converted-copy path: kt is the fp32 copy K^T [hd][lanes] of one block.
template <int NH>
void Scores(const float* const* q, const float* kt, int32_t hd, int32_t lanes, int32_t t0,
            int32_t t1, float scale, float* dst) {
  for (int32_t t = t0; t < t1; t += kLanes) {
    F32x16 lane[NH] = {};
    for (int32_t d = 0; d < hd; ++d) {
      const F32x16 k = LoadU(kt + static_cast<int64_t>(d) * lanes + t);
      for (int h = 0; h < NH; ++h) lane[h] = Fma(q[h][d], k, lane[h]);
    }
    for (int h = 0; h < NH; ++h) StoreU(dst + h * lanes + t, lane[h] * scale);
  }
}

// One block's share of the weighted V sum: its V rows [klo, khi) (fp32, fp16 or int8
// [slot][hd]), whose probabilities are p[h][p_off + j]; int8 row j is scaled by
// vs[j * vs_stride] on load, the product LoadV makes for a converted copy. pf (or nullptr): a
// later block's V slice of the same layout, asked for (into L2) a row at a time.
template <typename T>
struct VRun {
  const T* v;
  const T* pf;
  const float* vs;
  int64_t p_off;
  int32_t klo, khi;
};

// acc[h][d] += p[h][p_off + j] * v[j][d] over the runs in order, j in [klo, khi) in order
// within each: every output is one sequential sum over the keys in position order. 16 outputs
// per register, kept in registers across all the runs (a decode's blocks), so each output
// register is loaded and stored once per call instead of once per block.
template <int NH, typename T>
void Accumulate(const float* const* p, float* const* acc, const VRun<T>* runs, int32_t nruns,
                int32_t hd, int32_t vs_stride) {
  constexpr bool kScaled = std::is_same_v<T, int8_t>;
  constexpr int32_t kLine = 64;
  const int32_t row_bytes = hd * static_cast<int32_t>(sizeof(T));
  // The first pass over the runs asks for the whole of each later row (the later passes read
  // what it brought in).
  const auto prefetch_row = [&](const VRun<T>& r, int32_t j) {
    const char* at = reinterpret_cast<const char*>(r.pf + static_cast<int64_t>(j) * hd);
    for (int32_t o = 0; o < row_bytes; o += kLine) __builtin_prefetch(at + o, 0, 2);
  };
  int32_t d0 = 0;
  // Two lane groups of outputs per pass where registers allow: each p[h][j] is broadcast once
  // for 32 outputs instead of 16 (the loop is bound by loads, not arithmetic). Every output is
  // still summed over j in order, so the bits are those of one group at a time.
  if constexpr (2 * NH <= 16) {
    for (; d0 + 2 * kLanes <= hd; d0 += 2 * kLanes) {
      F32x16 a[NH], b[NH];
      for (int h = 0; h < NH; ++h) {
        a[h] = LoadU(acc[h] + d0);
        b[h] = LoadU(acc[h] + d0 + kLanes);
      }
      for (int32_t r = 0; r < nruns; ++r) {
        const VRun<T>& run = runs[r];
        const bool pf = d0 == 0 && run.pf != nullptr;
        for (int32_t j = run.klo; j < run.khi; ++j) {
          const T* row = run.v + static_cast<int64_t>(j) * hd + d0;
          if (pf) prefetch_row(run, j);
          F32x16 v0 = LoadLanes(row), v1 = LoadLanes(row + kLanes);
          if constexpr (kScaled) {
            const float sc = run.vs[j * vs_stride];
            v0 = v0 * sc;
            v1 = v1 * sc;
          }
          for (int h = 0; h < NH; ++h) {
            const float w = p[h][run.p_off + j];
            a[h] = Fma(w, v0, a[h]);
            b[h] = Fma(w, v1, b[h]);
          }
        }
      }
      for (int h = 0; h < NH; ++h) {
        StoreU(acc[h] + d0, a[h]);
        StoreU(acc[h] + d0 + kLanes, b[h]);
      }
    }
  }
  for (; d0 + kLanes <= hd; d0 += kLanes) {
    F32x16 a[NH];
    for (int h = 0; h < NH; ++h) a[h] = LoadU(acc[h] + d0);
    for (int32_t r = 0; r < nruns; ++r) {
      const VRun<T>& run = runs[r];
      const bool pf = d0 == 0 && run.pf != nullptr;
      for (int32_t j = run.klo; j < run.khi; ++j) {
        if (pf) prefetch_row(run, j);
        F32x16 vv = LoadLanes(run.v + static_cast<int64_t>(j) * hd + d0);
        if constexpr (kScaled) vv = vv * run.vs[j * vs_stride];
        for (int h = 0; h < NH; ++h) a[h] = Fma(p[h][run.p_off + j], vv, a[h]);
      }
    }
    for (int h = 0; h < NH; ++h) StoreU(acc[h] + d0, a[h]);
  }
  for (; d0 < hd; ++d0) {
    for (int h = 0; h < NH; ++h) {
      for (int32_t r = 0; r < nruns; ++r) {
        const VRun<T>& run = runs[r];
        for (int32_t j = run.klo; j < run.khi; ++j) {
          float x = LoadOne(run.v + static_cast<int64_t>(j) * hd + d0);
          if constexpr (kScaled) x *= run.vs[j * vs_stride];
          acc[h][d0] = std::fma(p[h][run.p_off + j], x, acc[h][d0]);
        }
      }
    }
  }
}

// In-place path: one lane group of 16 keys from each of the N pointers k[n] (fp32, fp16 or int8
// K^T rows of stride `lanes`, already at the lane group), scored against NH query heads into
// out[h] + off[n]. Two groups at a time (two blocks at decode) share each q broadcast, which
// halves the loads per multiply-add. Each lane is the same in-order sum as in Scores.
// pf[n] (or nullptr): a later block's slice of the same layout, asked for (into L2) a line at a
// time as k[n] is read; spread over the compute, these requests add to the hardware
// prefetcher's where one burst per block did not (blocks are a few KiB scattered in the pool).
// int8: ks[n] holds the 16 keys' scales, applied to each loaded K row as LoadK does.
template <int NH, int N, typename T>
void ScoreGroups(const float* const* q, const T* const* k, const T* const* pf,
                 const float* const* ks, int32_t hd, int32_t lanes, float scale,
                 float* const* out, const int64_t* off) {
  // Zeroed element by element: with `= {}` GCC also clears the array's stack copy (rep stos)
  // although it keeps the accumulators in registers.
  F32x16 lane[N][NH];
  for (int n = 0; n < N; ++n) {
    for (int h = 0; h < NH; ++h) lane[n][h] = F32x16{};
  }
  F32x16 kscale[N];
  if constexpr (std::is_same_v<T, int8_t>) {
    for (int n = 0; n < N; ++n) kscale[n] = LoadU(ks[n]);
  }
  const auto load = [&](int32_t d, F32x16* kv) {
    for (int n = 0; n < N; ++n) {
      const int64_t at = static_cast<int64_t>(d) * lanes;
      if (pf[n] != nullptr) __builtin_prefetch(pf[n] + at, 0, 2);
      kv[n] = LoadLanes(k[n] + at);
      if constexpr (std::is_same_v<T, int8_t>) kv[n] = kv[n] * kscale[n];
    }
  };
  // Row d + 1 is loaded (and converted) while row d is used: the products wait on no conversion.
  // The last step loads its own row again.
  F32x16 kv[N];
  load(0, kv);
  for (int32_t d = 0; d < hd; ++d) {
    F32x16 next[N];
    load(std::min(d + 1, hd - 1), next);
    for (int h = 0; h < NH; ++h) {
      const float x = q[h][d];
      for (int n = 0; n < N; ++n) lane[n][h] = Fma(x, kv[n], lane[n][h]);
    }
    for (int n = 0; n < N; ++n) kv[n] = next[n];
  }
  for (int n = 0; n < N; ++n) {
    for (int h = 0; h < NH; ++h) StoreU(out[h] + off[n], lane[n][h] * scale);
  }
}

template <typename T>
using ScoreGroupsFn = void (*)(const float* const*, const T* const*, const T* const*,
                               const float* const*, int32_t, int32_t, float, float* const*,
                               const int64_t*);
template <typename T, int N>
constexpr ScoreGroupsFn<T> kScoreGroups[kMaxHeads + 1] = {
    nullptr,
    &ScoreGroups<1, N, T>, &ScoreGroups<2, N, T>, &ScoreGroups<3, N, T>, &ScoreGroups<4, N, T>,
    &ScoreGroups<5, N, T>, &ScoreGroups<6, N, T>, &ScoreGroups<7, N, T>, &ScoreGroups<8, N, T>};

using ScoresFn = void (*)(const float* const*, const float*, int32_t, int32_t, int32_t, int32_t,
                          float, float*);
template <typename T>
using AccumulateFn = void (*)(const float* const*, float* const*, const VRun<T>*, int32_t, int32_t,
                              int32_t);
constexpr ScoresFn kScores[kMaxHeads + 1] = {nullptr,    &Scores<1>, &Scores<2>,
                                             &Scores<3>, &Scores<4>, &Scores<5>,
                                             &Scores<6>, &Scores<7>, &Scores<8>};
template <typename T>
constexpr AccumulateFn<T> kAccumulate[kMaxHeads + 1] = {
    nullptr,          &Accumulate<1, T>, &Accumulate<2, T>, &Accumulate<3, T>, &Accumulate<4, T>,
    &Accumulate<5, T>, &Accumulate<6, T>, &Accumulate<7, T>, &Accumulate<8, T>};

// Softmax numerators of n score rows of one query over their entries [a, e), in place: exp(s -
// max) there and 0 elsewhere in the touched lane groups; sum[r] = their sum. Entry i is key
// base + i with base a multiple of 16, so lane i % 16 always holds the same keys (key % 16)
// whatever the chunk: the lane partial sums run over lane groups in key order, then lanes
// 0..15 are added in order. Each step runs over all the rows before the next (the lane
// reductions are chains of dependent scalar operations; the rows' chains then overlap), and
// every row gets exactly the operations it would alone.
void SoftmaxRows(float* const* rows, int32_t n, int32_t a, int32_t e, float* lanes, float* sum) {
  const int32_t t0 = a / kLanes * kLanes, t1 = (e + kLanes - 1) / kLanes * kLanes;
  const F32x16 neg_inf = F32x16{} - std::numeric_limits<float>::infinity();
  const I32x16 iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  // Per-lane maxima of every row, then each row's maximum (exact in any order).
  for (int32_t r = 0; r < n; ++r) {
    F32x16 mv = neg_inf;
    for (int32_t t = t0; t < t1; t += kLanes) {
      const I32x16 j = iota + t;
      const F32x16 in = (j >= a && j < e) ? LoadU(rows[r] + t) : neg_inf;
      mv = mv > in ? mv : in;
    }
    StoreU(lanes + static_cast<int64_t>(r) * kLanes, mv);
  }
  for (int32_t r = 0; r < n; ++r) {
    const float* l = lanes + static_cast<int64_t>(r) * kLanes;
    float m = l[0];
    for (int32_t j = 1; j < kLanes; ++j) m = std::max(m, l[j]);
    sum[r] = m;
  }
  // Numerators and per-lane sums, then each row's sum over lanes 0..15 in order.
  for (int32_t r = 0; r < n; ++r) {
    float* row = rows[r];
    const float m = sum[r];
    F32x16 acc = {};
    for (int32_t t = t0; t < t1; t += kLanes) {
      const I32x16 j = iota + t;
      const F32x16 x = Exp<F32x16, I32x16>(LoadU(row + t) - m);
      const F32x16 p = (j >= a && j < e) ? x : F32x16{};
      StoreU(row + t, p);
      acc += p;
    }
    StoreU(lanes + static_cast<int64_t>(r) * kLanes, acc);
  }
  for (int32_t r = 0; r < n; ++r) {
    const float* l = lanes + static_cast<int64_t>(r) * kLanes;
    float total = 0.0f;
    for (int32_t j = 0; j < kLanes; ++j) total += l[j];
    sum[r] = total;
  }
}

// Exact softmax per query, in three passes over its keys: scores, then max / exp / sum over the
// whole row with vector reductions, then the weighted sum of V. What a query gets depends only
// on its own position and the cache contents, never on how many queries share the call, how
// the prompt was chunked or which KV heads are computed together.
// kDirect: the score and V loops read K and V of type T straight from the blocks (fp32, fp16 or
// int8 planes whose block size is whole lane groups; int8 values times their scales on load,
// the products a copy holds); otherwise each block's slice is first converted to an fp32 copy
// (int8 with its scales).
template <typename T, bool kDirect>
void AttendImpl(const AttentionShape& s, const PagedKv& kv, int32_t pos, int32_t count,
                const float* q, float* out, int32_t kv_head_begin, int32_t kv_head_end,
                AttentionScratch& w) {
  static_assert(kDirect || std::is_same_v<T, float>);
  constexpr bool kScaled = std::is_same_v<T, int8_t>;  // in-place int8: scales applied on load
  const int32_t hd = s.head_dim, qd = s.q_dim();
  const int32_t group = s.num_heads / s.num_kv_heads;
  const int32_t bs = kv.block_size, last = pos + count - 1;
  const int32_t lanes = (bs + kLanes - 1) / kLanes * kLanes;
  const int32_t heads = (kv_head_end - kv_head_begin) * group;  // query heads of the call
  const auto first_key = [&](int32_t p) {
    return s.sliding_window > 0 ? std::max(0, p - s.sliding_window + 1) : 0;
  };
  // Score rows hold keys [base, last], base a multiple of 16 (SoftmaxRows says why), padded to
  // whole lane groups. Queries go in tiles of as many as fit the score budget.
  const int32_t base = first_key(pos) / kLanes * kLanes;
  const int32_t stride = (last + 1 - base + kLanes - 1) / kLanes * kLanes;
  const auto tile = static_cast<int32_t>(std::clamp<int64_t>(
      kScoreFloats / (static_cast<int64_t>(heads) * stride), 1, kMaxQueries));
  if constexpr (!kDirect) {
    w.kt.resize(static_cast<size_t>(hd) * lanes);
    w.v.resize(static_cast<size_t>(bs) * hd);
    w.block.resize(static_cast<size_t>(kMaxHeads) * lanes);
  }
  w.scores.resize(static_cast<size_t>(tile) * heads * stride);
  w.sum.resize(static_cast<size_t>(tile) * heads);
  // Query i of the tile, query head h of the call (h = (g - kv_head_begin) * group + ...).
  const auto row = [&](int32_t i, int32_t h) {
    return w.scores.data() + (static_cast<int64_t>(i) * heads + h) * stride;
  };
  const auto block_at = [&](int32_t b) {
    return kv.pool + static_cast<int64_t>(kv.table[b]) * kv.block_bytes;
  };
  // The call's KV heads are adjacent in each plane of a block: one contiguous run to prefetch.
  const auto prefetch = [&](int32_t b, int64_t plane) {
    Prefetch(kv, block_at(b), plane, kv_head_begin, hd, kv_head_end - kv_head_begin);
  };
  // In place, KV head g's slice of one plane of block b (K^T [hd][bs] or V [bs][hd]).
  const auto slice = [&](int32_t b, int32_t g, int64_t plane) -> const T* {
    if constexpr (kDirect) {
      return reinterpret_cast<const T*>(block_at(b) + plane) + static_cast<int64_t>(g) * hd * bs;
    } else {
      return nullptr;
    }
  };
  // int8: block b's per-(slot, KV head) scales of one plane.
  const auto scales = [&](int32_t b, int64_t scale_offset) {
    return reinterpret_cast<const float*>(block_at(b) + scale_offset);
  };

  const float* qs[kMaxHeads];
  float* accs[kMaxHeads];
  const float* ps[kMaxHeads];
  for (int32_t i0 = 0; i0 < count; i0 += tile) {
    const int32_t i1 = std::min(count, i0 + tile);
    const int32_t b_first = first_key(pos + i0) / bs, b_last = (pos + i1 - 1) / bs;
    // Slots of block b in use by this tile's queries.
    const auto used = [&](int32_t b) { return std::min(bs, pos + i1 - b * bs); };
    // Keys [klo, khi) of block b (relative to its start) that query i sees.
    const auto visible = [&](int32_t b, int32_t i) {
      const int32_t j0 = b * bs, p = pos + i;
      return std::pair{std::max(0, first_key(p) - j0), std::min(bs, p + 1 - j0)};
    };

    // 1. Scores, block by block, into each query's row. K of the block kPrefetchBlocks ahead
    // is requested meanwhile, then V of pass 3's first blocks.
    for (int32_t b = b_first; b < std::min(b_last + 1, b_first + kPrefetchBlocks); ++b) {
      prefetch(b, kv.k_offset);
    }
    // What to prefetch while block b's head g is scored in place: its K slice kPrefetchBlocks
    // blocks ahead, or past the last block pass 3's first V slices.
    const auto pf_for = [&](int32_t b, int32_t g) -> const T* {
      const int32_t ahead = b + kPrefetchBlocks, wrapped = ahead - b_last - 1 + b_first;
      return ahead <= b_last     ? slice(ahead, g, kv.k_offset)
             : wrapped <= b_last ? slice(wrapped, g, kv.v_offset)
                                 : nullptr;
    };
    // In place: blocks in pairs, each query's lane groups of both scored two at a time straight
    // into its rows (lane groups line up with the rows: block size and base are multiples of 16;
    // keys a query does not see are masked by SoftmaxRows and never read by pass 3).
    if constexpr (kDirect) {
      for (int32_t b = b_first; b <= b_last; b += 2) {
        const int32_t nb = std::min(2, b_last + 1 - b);
        for (int32_t g = kv_head_begin; g < kv_head_end; ++g) {
          const T* kt[2] = {nullptr, nullptr};
          const T* pfb[2] = {nullptr, nullptr};
          for (int32_t n = 0; n < nb; ++n) {
            kt[n] = slice(b + n, g, kv.k_offset);
            pfb[n] = pf_for(b + n, g);
          }
          for (int32_t i = i0; i < i1; ++i) {
            for (int32_t h0 = 0; h0 < group; h0 += kMaxHeads) {
              const int32_t nh = std::min(kMaxHeads, group - h0);
              float* outs[kMaxHeads];
              for (int32_t k = 0; k < nh; ++k) {
                const int32_t h = g * group + h0 + k;
                qs[k] = q + static_cast<int64_t>(i) * qd + h * hd;
                outs[k] = row(i - i0, h - kv_head_begin * group);
              }
              const T* gk[2];
              const T* gp[2];
              int64_t go[2];
              float gscale[2][kLanes];  // int8: the lane group's key scales
              const float* gs[2] = {gscale[0], gscale[1]};
              int pending = 0;
              for (int32_t n = 0; n < nb; ++n) {
                const auto [klo, khi] = visible(b + n, i);
                for (int32_t t = klo / kLanes * kLanes; t < khi; t += kLanes) {
                  gk[pending] = kt[n] + t;
                  gp[pending] = i == i0 && h0 == 0 && pfb[n] != nullptr ? pfb[n] + t : nullptr;
                  go[pending] = static_cast<int64_t>(b + n) * bs - base + t;
                  if constexpr (kScaled) {
                    const float* ks = scales(b + n, kv.k_scale_offset) + g;
                    for (int32_t l = 0; l < kLanes; ++l) {
                      gscale[pending][l] = ks[static_cast<int64_t>(t + l) * s.num_kv_heads];
                    }
                  }
                  if (++pending == 2) {
                    kScoreGroups<T, 2>[nh](qs, gk, gp, gs, hd, lanes, s.scale, outs, go);
                    pending = 0;
                  }
                }
              }
              if (pending == 1) {
                kScoreGroups<T, 1>[nh](qs, gk, gp, gs, hd, lanes, s.scale, outs, go);
              }
            }
          }
        }
      }
    } else {
      // Converted copies: block by block, each KV head's K converted once for all the queries.
      for (int32_t b = b_first; b <= b_last; ++b) {
        const int32_t ahead = b + kPrefetchBlocks, wrapped = ahead - b_last - 1 + b_first;
        if (ahead <= b_last) {
          prefetch(ahead, kv.k_offset);
        } else if (wrapped <= b_last) {
          prefetch(wrapped, kv.v_offset);
        }
        for (int32_t g = kv_head_begin; g < kv_head_end; ++g) {
          LoadK(kv, block_at(b), g, hd, s.num_kv_heads, used(b), lanes, w.kt.data());
          const float* kt = w.kt.data();
          for (int32_t i = i0; i < i1; ++i) {
            const auto [klo, khi] = visible(b, i);
            if (klo >= khi) continue;
            const int32_t t0 = klo / kLanes * kLanes, t1 = (khi + kLanes - 1) / kLanes * kLanes;
            for (int32_t h0 = 0; h0 < group; h0 += kMaxHeads) {
              const int32_t nh = std::min(kMaxHeads, group - h0);
              for (int32_t k = 0; k < nh; ++k) {
                qs[k] = q + static_cast<int64_t>(i) * qd + (g * group + h0 + k) * hd;
              }
              kScores[nh](qs, kt, hd, lanes, t0, t1, s.scale, w.block.data());
              for (int32_t k = 0; k < nh; ++k) {
                std::memcpy(row(i - i0, (g - kv_head_begin) * group + h0 + k) + b * bs - base + klo,
                            w.block.data() + k * lanes + klo,
                            static_cast<size_t>(khi - klo) * sizeof(float));
              }
            }
          }
        }
      }
    }
    // 2. Softmax numerators and sums, a query's heads together.
    w.lanes.resize(static_cast<size_t>(heads) * kLanes);
    w.rows.resize(static_cast<size_t>(heads));
    for (int32_t i = i0; i < i1; ++i) {
      const int32_t p = pos + i;
      for (int32_t h = 0; h < heads; ++h) w.rows[static_cast<size_t>(h)] = row(i - i0, h);
      SoftmaxRows(w.rows.data(), heads, first_key(p) - base, p + 1 - base, w.lanes.data(),
                  w.sum.data() + static_cast<int64_t>(i - i0) * heads);
      std::fill(out + static_cast<int64_t>(i) * qd + kv_head_begin * group * hd,
                out + static_cast<int64_t>(i) * qd + kv_head_end * group * hd, 0.0f);
    }
    // 3. Weighted sum of V in key order. In place: per query and head group, a run of up to
    // kMaxRuns blocks per call, the outputs kept in registers across them; V kPrefetchBlocks
    // blocks ahead is requested on the first query's first pass. Converted copies: block by
    // block, each KV head's V converted once for all the queries.
    if constexpr (kDirect) {
      constexpr int32_t kMaxRuns = 64;
      VRun<T> runs[kMaxRuns];
      for (int32_t g = kv_head_begin; g < kv_head_end; ++g) {
        for (int32_t i = i0; i < i1; ++i) {
          for (int32_t h0 = 0; h0 < group; h0 += kMaxHeads) {
            const int32_t nh = std::min(kMaxHeads, group - h0);
            for (int32_t k = 0; k < nh; ++k) {
              ps[k] = row(i - i0, (g - kv_head_begin) * group + h0 + k);
              accs[k] = out + static_cast<int64_t>(i) * qd + (g * group + h0 + k) * hd;
            }
            int32_t n = 0;
            for (int32_t b = b_first; b <= b_last; ++b) {
              const auto [klo, khi] = visible(b, i);
              if (klo < khi) {
                const int32_t ahead = b + kPrefetchBlocks;
                runs[n++] = {slice(b, g, kv.v_offset),
                             i == i0 && h0 == 0 && ahead <= b_last ? slice(ahead, g, kv.v_offset)
                                                                   : nullptr,
                             kScaled ? scales(b, kv.v_scale_offset) + g : nullptr,
                             static_cast<int64_t>(b) * bs - base, klo, khi};
              }
              if (n == kMaxRuns || (b == b_last && n > 0)) {
                kAccumulate<T>[nh](ps, accs, runs, n, hd, s.num_kv_heads);
                n = 0;
              }
            }
          }
        }
      }
    } else {
      for (int32_t b = b_first; b <= b_last; ++b) {
        const int32_t ahead = b + kPrefetchBlocks;
        if (ahead <= b_last) prefetch(ahead, kv.v_offset);
        for (int32_t g = kv_head_begin; g < kv_head_end; ++g) {
          LoadV(kv, block_at(b), g, hd, s.num_kv_heads, used(b), w.v.data());
          const float* v = w.v.data();
          for (int32_t i = i0; i < i1; ++i) {
            const auto [klo, khi] = visible(b, i);
            if (klo >= khi) continue;
            for (int32_t h0 = 0; h0 < group; h0 += kMaxHeads) {
              const int32_t nh = std::min(kMaxHeads, group - h0);
              for (int32_t k = 0; k < nh; ++k) {
                ps[k] = row(i - i0, (g - kv_head_begin) * group + h0 + k);
                accs[k] = out + static_cast<int64_t>(i) * qd + (g * group + h0 + k) * hd;
              }
              const VRun<float> run = {v, nullptr, nullptr, static_cast<int64_t>(b) * bs - base,
                                       klo, khi};
              kAccumulate<float>[nh](ps, accs, &run, 1, hd, s.num_kv_heads);
            }
          }
        }
      }
    }
    for (int32_t i = i0; i < i1; ++i) {
      for (int32_t h = 0; h < heads; ++h) {
        const float l = w.sum[static_cast<size_t>((i - i0) * heads + h)];
        float* acc = out + static_cast<int64_t>(i) * qd + (kv_head_begin * group + h) * hd;
        for (int32_t d = 0; d < hd; ++d) acc[d] /= l;
      }
    }
  }
}

}  // namespace

void Attend(const AttentionShape& s, const PagedKv& kv, int32_t pos, int32_t count, const float* q,
            float* out, int32_t kv_head_begin, int32_t kv_head_end, AttentionScratch& w) {
  if (count <= 0 || kv_head_begin >= kv_head_end) return;
  // In place for decode-sized calls; a prompt chunk's queries share each converted block.
  const bool in_place = kv.block_size % kLanes == 0 && count < kInPlaceQueries;
  if (in_place && kv.dtype == KvDtype::kF16) {
    AttendImpl<uint16_t, true>(s, kv, pos, count, q, out, kv_head_begin, kv_head_end, w);
  } else if (in_place && kv.dtype == KvDtype::kInt8) {
    AttendImpl<int8_t, true>(s, kv, pos, count, q, out, kv_head_begin, kv_head_end, w);
  } else if (in_place && kv.dtype == KvDtype::kF32) {
    AttendImpl<float, true>(s, kv, pos, count, q, out, kv_head_begin, kv_head_end, w);
  } else {
    AttendImpl<float, false>(s, kv, pos, count, q, out, kv_head_begin, kv_head_end, w);
  }
}

}  // namespace qsl::attention::QSL_ATTENTION_ISA
