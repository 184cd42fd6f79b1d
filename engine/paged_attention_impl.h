// The body of the paged attention kernel, compiled once per ISA (paged_attention_*.cc define
// QSL_ATTENTION_ISA and their own compiler flags). Why every build gives the same bits:
// - fp16/int8 -> fp32 conversion is exact, however it is done (table, F16C);
// - a score is one lane: sum over d in order 0..hd-1 of q[d] * k[d], a plain sequential sum;
//   keys, not dimensions, fill the vector lanes (K is stored transposed inside a block for
//   that), so no horizontal reduction reorders anything;
// - V accumulation is per output element, sequential over keys in position order;
// - exp is Exp() below: IEEE add/mul/convert only, the same sequence in every lane;
// - -ffp-contract=off everywhere and no -mfma: the compiler cannot fuse a*b+c in one build and
//   not in another. Vectorizing independent lanes never reassociates (no -ffast-math).
// Online softmax over key blocks in position order (blocks are fixed at multiples of the block
// size), so a query's result does not depend on how many queries share the call either.
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

// One KV head's keys [jbegin, jend) of a block as fp32 K^T [hd][lanes] and V [slot][hd]. Both
// planes keep each head's slice of a block contiguous: K as [head][d][slot], V as
// [head][slot][d] (PagedKvCache::Store). K is loaded whole, unwritten slots included (the pool
// starts zeroed; a slot not yet written holds zeros or an earlier tenant's values): their lanes
// are computed and ignored, and whole rows convert fastest.
void LoadBlock(const PagedKv& kv, const uint8_t* block, int32_t head, int32_t hd,
               int32_t num_kv_heads, int32_t jbegin, int32_t jend, int32_t lanes,
               AttentionScratch& w) {
  const int32_t bs = kv.block_size, n = jend - jbegin;
  const int64_t head0 = static_cast<int64_t>(head) * hd * bs;
  if (lanes == bs) {
    Load(kv.dtype, block + kv.k_offset, head0, hd * bs, w.kt.data());  // one contiguous run
  } else {
    for (int32_t d = 0; d < hd; ++d) {
      Load(kv.dtype, block + kv.k_offset, head0 + static_cast<int64_t>(d) * bs, bs,
           w.kt.data() + static_cast<int64_t>(d) * lanes);
    }
  }
  Load(kv.dtype, block + kv.v_offset, head0 + static_cast<int64_t>(jbegin) * hd, n * hd,
       w.v.data() + static_cast<int64_t>(jbegin) * hd);
  if (kv.dtype != KvDtype::kInt8) return;
  const auto* ks = reinterpret_cast<const float*>(block + kv.k_scale_offset);
  const auto* vs = reinterpret_cast<const float*>(block + kv.v_scale_offset);
  for (int32_t d = 0; d < hd; ++d) {
    float* row = w.kt.data() + static_cast<int64_t>(d) * lanes;
    for (int32_t j = jbegin; j < jend; ++j) row[j] *= ks[j * num_kv_heads + head];
  }
  for (int32_t j = jbegin; j < jend; ++j) {
    float* row = w.v.data() + static_cast<int64_t>(j) * hd;
    const float scale = vs[j * num_kv_heads + head];
    for (int32_t d = 0; d < hd; ++d) row[d] *= scale;
  }
}

// Asks for the next block's slices of this KV head (K and V, 2 * hd * block_size values)
// while the current block is computed: blocks are scattered over the pool, so the hardware
// prefetcher cannot guess the next one, and at decode the KV cache is read from DRAM.
void Prefetch(const PagedKv& kv, const uint8_t* block, int32_t head, int32_t hd) {
  const int64_t elem = kv.dtype == KvDtype::kF32 ? 4 : kv.dtype == KvDtype::kF16 ? 2 : 1;
  const int64_t bytes = static_cast<int64_t>(hd) * kv.block_size * elem;
  const int64_t at = head * bytes;
  for (int64_t o = 0; o < bytes; o += 64) {
    __builtin_prefetch(block + kv.k_offset + at + o);
    __builtin_prefetch(block + kv.v_offset + at + o);
  }
}

// Query heads updated together: their accumulator chains are independent (so they overlap in
// the pipeline) and they share each K/V load. Up to the group size of the KV head.
constexpr int32_t kMaxHeads = 8;

// The online softmax state of one query head.
struct HeadState {
  const float* q;
  float* acc;  // output accumulator [hd]
  float* m;    // running max
  float* l;    // running sum
};

// NH query heads against the keys [klo, khi) of the loaded block. For each head and lane the
// operations are exactly those of one head alone: NH only interleaves independent work.
template <int NH>
void UpdateHeads(const HeadState* hs, const float* kt, const float* v, int32_t hd, int32_t lanes,
                 int32_t klo, int32_t khi, float scale, float* sc) {
  const int32_t t0 = klo / kLanes * kLanes, t1 = (khi + kLanes - 1) / kLanes * kLanes;
  // Scores, 16 keys per lane group: a sequential sum over d per lane.
  for (int32_t t = t0; t < t1; t += kLanes) {
    F32x16 lane[NH] = {};
    for (int32_t d = 0; d < hd; ++d) {
      const F32x16 k = LoadU(kt + static_cast<int64_t>(d) * lanes + t);
      for (int h = 0; h < NH; ++h) lane[h] += hs[h].q[d] * k;
    }
    for (int h = 0; h < NH; ++h) StoreU(sc + h * lanes + t, lane[h] * scale);
  }
  // Online softmax: rescale under a new max, then exponentiate (whole lane groups; lanes
  // outside [klo, khi) are computed and ignored).
  for (int h = 0; h < NH; ++h) {
    float* s = sc + h * lanes;
    // The block's max over [klo, khi): lane-wise over whole lane groups with the lanes outside
    // set to -inf, then across lanes (max is exact in any order).
    const F32x16 neg_inf = F32x16{} - std::numeric_limits<float>::infinity();
    F32x16 mv = neg_inf;
    for (int32_t t = t0; t < t1; t += kLanes) {
      I32x16 j = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
      j += t;
      const F32x16 x = LoadU(s + t);
      const F32x16 in = (j >= klo && j < khi) ? x : neg_inf;
      mv = mv > in ? mv : in;
    }
    float lanes_max[kLanes];
    std::memcpy(lanes_max, &mv, sizeof lanes_max);
    float block_max = lanes_max[0];
    for (int32_t j = 1; j < kLanes; ++j) block_max = std::max(block_max, lanes_max[j]);
    float& m = *hs[h].m;
    if (block_max > m) {
      const float alpha = Exp<float, int32_t>(m - block_max);
      *hs[h].l *= alpha;
      for (int32_t d = 0; d < hd; ++d) hs[h].acc[d] *= alpha;
      m = block_max;
    }
    for (int32_t t = t0; t < t1; t += kLanes) StoreU(s + t, Exp<F32x16, I32x16>(LoadU(s + t) - m));
    // In a local: through the reference the compiler must store it on every add (it might
    // alias s), a store-to-load chain that perf showed as the softmax's hottest instruction.
    float l = *hs[h].l;
    for (int32_t j = klo; j < khi; ++j) l += s[j];
    *hs[h].l = l;
  }
  // acc[d] += e[j] * v[j][d] over j in order, 16 outputs per register.
  int32_t d0 = 0;
  for (; d0 + kLanes <= hd; d0 += kLanes) {
    F32x16 a[NH];
    for (int h = 0; h < NH; ++h) a[h] = LoadU(hs[h].acc + d0);
    for (int32_t j = klo; j < khi; ++j) {
      const F32x16 vv = LoadU(v + static_cast<int64_t>(j) * hd + d0);
      for (int h = 0; h < NH; ++h) a[h] += sc[h * lanes + j] * vv;
    }
    for (int h = 0; h < NH; ++h) StoreU(hs[h].acc + d0, a[h]);
  }
  for (; d0 < hd; ++d0) {
    for (int h = 0; h < NH; ++h) {
      for (int32_t j = klo; j < khi; ++j) {
        hs[h].acc[d0] += sc[h * lanes + j] * v[static_cast<int64_t>(j) * hd + d0];
      }
    }
  }
}

using UpdateFn = void (*)(const HeadState*, const float*, const float*, int32_t, int32_t, int32_t,
                          int32_t, float, float*);
constexpr UpdateFn kUpdate[kMaxHeads + 1] = {nullptr,        &UpdateHeads<1>, &UpdateHeads<2>,
                                             &UpdateHeads<3>, &UpdateHeads<4>, &UpdateHeads<5>,
                                             &UpdateHeads<6>, &UpdateHeads<7>, &UpdateHeads<8>};

}  // namespace

void Attend(const AttentionShape& s, const PagedKv& kv, int32_t pos, int32_t count, const float* q,
            float* out, int32_t kv_head_begin, int32_t kv_head_end, AttentionScratch& w) {
  const int32_t hd = s.head_dim, qd = s.q_dim();
  const int32_t group = s.num_heads / s.num_kv_heads;
  const int32_t bs = kv.block_size, last = pos + count - 1;
  const int32_t lanes = (bs + kLanes - 1) / kLanes * kLanes;
  const auto first_key = [&](int32_t p) {
    return s.sliding_window > 0 ? std::max(0, p - s.sliding_window + 1) : 0;
  };
  const int32_t lo = first_key(pos);
  w.kt.resize(static_cast<size_t>(hd) * lanes);
  w.v.resize(static_cast<size_t>(bs) * hd);
  w.scores.resize(static_cast<size_t>(kMaxHeads) * lanes);
  const size_t states = static_cast<size_t>(count) * s.num_heads;
  w.max.assign(states, -std::numeric_limits<float>::infinity());
  w.sum.assign(states, 0.0f);
  for (int32_t i = 0; i < count; ++i) {
    std::fill(out + static_cast<int64_t>(i) * qd + kv_head_begin * group * hd,
              out + static_cast<int64_t>(i) * qd + kv_head_end * group * hd, 0.0f);
  }

  HeadState hs[kMaxHeads];
  for (int32_t g = kv_head_begin; g < kv_head_end; ++g) {
    for (int32_t b = lo / bs; b <= last / bs; ++b) {
      const int32_t j0 = b * bs;
      const int32_t jbegin = std::max(j0, lo) - j0, jend = std::min(j0 + bs, last + 1) - j0;
      const uint8_t* block = kv.pool + static_cast<int64_t>(kv.table[b]) * kv.block_bytes;
      if (b < last / bs) {
        Prefetch(kv, kv.pool + static_cast<int64_t>(kv.table[b + 1]) * kv.block_bytes, g, hd);
      }
      LoadBlock(kv, block, g, hd, s.num_kv_heads, jbegin, jend, lanes, w);
      for (int32_t i = 0; i < count; ++i) {
        const int32_t p = pos + i;
        // Keys of this block that query p sees: causal, and inside its window.
        const int32_t klo = std::max(jbegin, first_key(p) - j0), khi = std::min(jend, p + 1 - j0);
        if (klo >= khi) continue;
        for (int32_t h0 = g * group; h0 < (g + 1) * group; h0 += kMaxHeads) {
          const int32_t nh = std::min(kMaxHeads, (g + 1) * group - h0);
          for (int32_t k = 0; k < nh; ++k) {
            const int64_t at = static_cast<int64_t>(i) * qd + (h0 + k) * hd;
            const size_t st = static_cast<size_t>(i) * s.num_heads + h0 + k;
            hs[k] = {q + at, out + at, &w.max[st], &w.sum[st]};
          }
          kUpdate[nh](hs, w.kt.data(), w.v.data(), hd, lanes, klo, khi, s.scale, w.scores.data());
        }
      }
    }
  }
  for (int32_t i = 0; i < count; ++i) {
    for (int32_t h = kv_head_begin * group; h < kv_head_end * group; ++h) {
      const float l = w.sum[static_cast<size_t>(i) * s.num_heads + h];
      float* acc = out + static_cast<int64_t>(i) * qd + h * hd;
      for (int32_t d = 0; d < hd; ++d) acc[d] /= l;
    }
  }
}

}  // namespace qsl::attention::QSL_ATTENTION_ISA
