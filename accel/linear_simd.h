// Internal: the SIMD kernels of the integer contract, written once over an ISA traits type `I`
// and compiled in linear_avx2.cc and linear_avx512.cc with that file's flags. Everything here
// has internal linkage (see linear_isa.h for why no code may be shared across those files).
//
// `I` provides, for a vector of I::kCols int32 lanes (one lane per output column):
//   Broadcast(p)      the 4 activation bytes p[0..3] in every lane
//   LoadW8(p)         I::kCols columns x 4 K of a W8 tile, in the form DotW8 wants
//   LoadW4(p)         the same from W4 nibbles, expanded to bytes 0..15
//   DotW8 / DotW4     acc + the 4-way int8 dot product of each lane
//   kW8Sums           DotW8 adds 128 * (sum of the activations) that must be subtracted
// and the int32 / fp32 helpers used by the folds and the epilogue.
#pragma once

#include <cstdint>
#include <cstring>

#include "accel/linear_isa.h"

namespace qsl::kernel {
namespace {  // NOLINT: internal linkage on purpose, one copy per ISA file

template <class I>
using Vec = typename I::Vec;

// Rows of the register block: W4 needs registers for expanding nibbles, so it may take fewer.
template <class I, bool kW4>
constexpr int kRowsOf = kW4 ? I::kRowsW4 : I::kRowsW8;

int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }
int64_t Max(int64_t a, int64_t b) { return a > b ? a : b; }

// The register block's accumulator array stays in registers only if every helper that touches
// it is inlined (GCC otherwise keeps the array in memory and stores it every k step).
#define QSL_INLINE inline __attribute__((always_inline))

// Bytes of one column's 4 consecutive K values in a tile: a k-quad row of a tile is tile_n
// times that ("k4-interleaved", format/weight_tiles.h).
template <bool kW4>
constexpr int64_t kQuadBytes = kW4 ? 2 : 4;

// W4 blocks with an even number of vectors expand them two at a time (I::LoadW4Pair): one
// and / shift / and for both, then two in-lane byte interleaves, about half the instructions
// of two single expansions. The interleaves leave the columns of the pair in a fixed
// permuted order inside the accumulators, undone by I::UnpermutePair once per group in FoldW4
// (integer sums do not care in which lane they were accumulated, so the result is the same).
// GEMV (M = 1) is where this counts: there nothing else amortizes the expansion.
template <bool kW4, int V>
constexpr bool kPairedW4 = kW4 && V % 2 == 0;

template <class I, int R, int V>
QSL_INLINE void ZeroAll(Vec<I> (&acc)[R][V]) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = I::Zero();
  }
}

// tot[r][v] += s * (acc - z * sum[r]) (stored instead when `init`): the W4 segment fold.
// Within a segment every column has one (scale s, zero z), so
// sum_k a*(q4 - z)*s = s*(sum_k a*q4 - z*sum_k a) exactly, and the card's expansion (q4 - z)*s
// never has to be materialized. All int32 arithmetic here wraps mod 2^32; the true result fits
// int32 (docs/numeric-contract.md, step 3), so the wrapped one equals it.
template <class I, int R, int V>
QSL_INLINE void FoldW4(Vec<I> (&acc)[R][V], const Weights& w, const uint8_t* tile, int64_t j, int64_t c0,
            const int32_t* sums, int64_t sums_ld, int32_t* tot, bool init) {
  if constexpr (kPairedW4<true, V>) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
      for (int v = 0; v < V; v += 2) I::UnpermutePair(acc[r][v], acc[r][v + 1]);
    }
  }
  Vec<I> s[V], z[V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const int64_t c = c0 + v * I::kCols;
    s[v] = I::LoadU8(tile + w.scale_offset + j * w.tile_n + c);
    z[v] = I::LoadU4(tile + w.zero_offset + j * (w.tile_n / 2) + c / 2);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const Vec<I> gs = I::Set1(sums[r * sums_ld]);
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      int32_t* t = tot + r * w.tile_n + v * I::kCols;
      const Vec<I> d = I::Mul(s[v], I::Sub(acc[r][v], I::Mul(z[v], gs)));
      I::Store(t, init ? d : I::Add(I::Load(t), d));
    }
  }
}

template <class I, int R, int V>
QSL_INLINE void AddTo(const Vec<I> (&acc)[R][V], int64_t ld, int32_t* tot, bool init) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      int32_t* t = tot + r * ld + v * I::kCols;
      I::Store(t, init ? acc[r][v] : I::Add(I::Load(t), acc[r][v]));
    }
  }
}

// Rows of a GEMM that share one pass over a weight slab (Kernels::max_row_block).
constexpr int64_t kMaxRowBlock = 96;

// How far ahead of its loads the W4 GEMV prefetches (measured on Zen 5: 1 KiB and 4 KiB gain
// less than 2 KiB; W8, one load per vector and no expansion, showed no clear gain).
constexpr int64_t kW4PrefetchBytes = 2048;

// acc[r][v] += the 4-way dot products of k-quad q of one tile: each weight vector is loaded (for
// W4 also expanded) once and used for R rows; each activation quad is broadcast once and used
// for V vectors.
template <class I, bool kW4, int R, int V>
QSL_INLINE void DotQuad(Vec<I> (&acc)[R][V], const uint8_t* wp, int64_t quad_stride,
                        const int8_t* ap, int64_t lda, int64_t q) {
  Vec<I> wv[V];
  if constexpr (kW4 && R == 1) {
    // GEMV streams the nibbles from DRAM once, with expansion work between the loads: asking
    // for the lines kW4PrefetchBytes ahead keeps enough misses in flight to read at the
    // DRAM rate (docs/performance.md). Past the end of a tile this touches the next one.
#pragma GCC unroll 4
    for (int64_t o = 0; o < V * I::kCols * kQuadBytes<kW4>; o += 64) {
      __builtin_prefetch(wp + q * quad_stride + kW4PrefetchBytes + o);
    }
  }
  if constexpr (kPairedW4<kW4, V>) {
    // Two vectors from one load of their 2 * kCols columns (contiguous in a k-quad row),
    // in the permuted column order of I::LoadW4Pair; FoldW4 puts the columns back.
#pragma GCC unroll 4
    for (int v = 0; v < V; v += 2) {
      I::LoadW4Pair(wp + q * quad_stride + v * I::kCols * kQuadBytes<kW4>, wv[v], wv[v + 1]);
    }
  } else {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const uint8_t* p = wp + q * quad_stride + v * I::kCols * kQuadBytes<kW4>;
      wv[v] = kW4 ? I::LoadW4(p) : I::LoadW8(p);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const Vec<I> ab = I::Broadcast(ap + r * lda + 4 * q);
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      acc[r][v] = kW4 ? I::DotW4(acc[r][v], wv[v], ab) : I::DotW8(acc[r][v], wv[v], ab);
    }
  }
}

// DotQuad over k-quads [q0, q1), asking meanwhile for pf_lines lines from pf (into L2), one
// every pf_every quads: the quads run in stretches between the requests, so the loop that has
// no request to make checks nothing.
template <class I, bool kW4, int R, int V>
QSL_INLINE void DotQuads(Vec<I> (&acc)[R][V], const uint8_t* wp, int64_t quad_stride,
                         const int8_t* ap, int64_t lda, int64_t q0, int64_t q1,
                         const uint8_t* pf = nullptr, int64_t pf_lines = 0, int64_t pf_every = 1) {
  int64_t q = q0;
  for (int64_t l = 0; l < pf_lines && q < q1; ++l) {
    __builtin_prefetch(pf + l * 64, 0, 2);
    for (const int64_t e = Min(q + pf_every, q1); q < e; ++q) {
      DotQuad<I, kW4>(acc, wp, quad_stride, ap, lda, q);
    }
  }
  for (; q < q1; ++q) DotQuad<I, kW4>(acc, wp, quad_stride, ap, lda, q);
}

// Lines of weight bytes a register block asks for (into L2) while it works: its row block's
// share of the K block that follows the one it reads (see Linear), spread over its tiles.
struct Prefetch {
  const uint8_t* p = nullptr;
  int64_t lines = 0;
};

// Tile `tile_index`'s share of the lines: where they start, how many, and every how many k-quads
// of a `quads`-long run one is asked for (a line at a time over the compute: bursts of requests
// were slower, as in the attention kernel).
struct TileLines {
  const uint8_t* p;
  int64_t lines, every;
};
QSL_INLINE TileLines LinesFor(const Prefetch& pf, int64_t tile_index, int64_t per_tile,
                              int64_t quads) {
  const int64_t first = tile_index * per_tile;
  const int64_t n = Max(int64_t{0}, Min(per_tile, pf.lines - first));
  return TileLines{pf.p + first * 64, n, n > 0 ? Max(int64_t{1}, quads / n) : 1};
}

// The register block: R rows x V vectors of columns [c0, c0 + V*kCols) of n-tile nt, over
// k-tiles [kt0, kt1), added into tot (row stride tile_n, already offset to row t0, column c0),
// or stored there when `init` (the first K block of the tile: no zeroing pass needed).
// W8 accumulates across all the tiles; W4 folds each segment (FoldW4). The accumulators are
// scoped to the loop that uses them, which lets GCC keep all of them in registers.
template <class I, bool kW4, int R, int V>
void Block(const Weights& w, const Activations& a, int64_t nt, int64_t kt0, int64_t kt1,
           int64_t t0, int64_t c0, int32_t* tot, bool init, Prefetch pf) {
  const int64_t quad_stride = w.tile_n * kQuadBytes<kW4>;
  const int64_t quads = w.tile_k / 4;
  const uint8_t* slab = w.tiles + nt * w.k_tiles * w.tile_stride;
  const int8_t* rows = a.q + t0 * a.lda;
  const int64_t per_tile = (pf.lines + (kt1 - kt0) - 1) / (kt1 - kt0);
  if constexpr (kW4) {
    const int64_t seg_quads = SegmentLength(w) / 4;
    const int64_t segs = quads / seg_quads;
    for (int64_t kt = kt0; kt < kt1; ++kt) {
      const uint8_t* tile = slab + kt * w.tile_stride;
      const TileLines tl = LinesFor(pf, kt - kt0, per_tile, seg_quads);
      for (int64_t j = 0; j < segs; ++j) {
        Vec<I> acc[R][V];
        ZeroAll<I>(acc);
        DotQuads<I, kW4>(acc, tile + c0 * kQuadBytes<kW4>, quad_stride, rows + kt * w.tile_k,
                         a.lda, j * seg_quads, (j + 1) * seg_quads, tl.p, j == 0 ? tl.lines : 0,
                         tl.every);
        FoldW4<I>(acc, w, tile, j, c0, a.sums + t0 * a.sums_ld + kt * segs + j, a.sums_ld, tot,
                  init && kt == kt0 && j == 0);
      }
    }
  } else {
    Vec<I> acc[R][V];
    ZeroAll<I>(acc);
    for (int64_t kt = kt0; kt < kt1; ++kt) {
      const TileLines tl = LinesFor(pf, kt - kt0, per_tile, quads);
      DotQuads<I, kW4>(acc, slab + kt * w.tile_stride + c0 * kQuadBytes<kW4>, quad_stride,
                       rows + kt * w.tile_k, a.lda, 0, quads, tl.p, tl.lines, tl.every);
    }
    AddTo<I>(acc, w.tile_n, tot, init);
  }
}

using BlockFn = void (*)(const Weights&, const Activations&, int64_t, int64_t, int64_t, int64_t,
                         int64_t, int32_t*, bool, Prefetch);

template <class I, bool kW4, int R, int V = 1>
BlockFn PickVecs(int v) {
  if constexpr (V > I::kVecs) {
    return nullptr;
  } else {
    return v == V ? &Block<I, kW4, R, V> : PickVecs<I, kW4, R, V + 1>(v);
  }
}

template <class I, bool kW4, int R = 1>
BlockFn PickBlock(int r, int v) {
  if constexpr (R > kRowsOf<I, kW4>) {
    return nullptr;
  } else {
    return r == R ? PickVecs<I, kW4, R>(v) : PickBlock<I, kW4, R + 1>(r, v);
  }
}

// fp32 epilogue of one vector of columns [n0, n0 + valid): left to right, no FMA (the project
// builds with -ffp-contract=off), as the scalar reference computes it.
template <class I>
typename I::VecF EpilogueVec(const Weights& w, Vec<I> acc, int64_t n0, int valid,
                             float a_scale) {
  typename I::VecF y = I::MulF(I::ToF(acc), I::LoadF(w.scale + n0, valid));
  y = I::MulF(y, I::Set1F(a_scale));
  if (w.bias != nullptr) y = I::AddF(y, I::LoadF(w.bias + n0, valid));
  return y;
}

// Rows [t0, t1) of n-tile nt from the block totals: undo the W8 weight bias (when the totals
// carry one), then store the int32 accumulators or run the epilogue; columns at or past n (tile
// padding) are not written.
template <class I>
void Finish(const Weights& w, const Activations& a, const Output& out, int64_t nt, int64_t t0,
            int64_t t1, const int32_t* tot, bool biased = I::kW8Sums) {
  const bool unbias = biased && w.group == 0;
  for (int64_t t = t0; t < t1; ++t) {
    const Vec<I> bias = I::Set1(unbias ? static_cast<int32_t>(static_cast<uint32_t>(
                                             a.sums[t * a.sums_ld]) * 128u)
                                       : 0);
    for (int64_t c = 0; c < w.tile_n; c += I::kCols) {
      const int64_t n0 = nt * w.tile_n + c;
      if (n0 >= w.n) break;
      const int valid = static_cast<int>(Min(I::kCols, w.n - n0));
      const Vec<I> v = I::Sub(I::Load(tot + (t - t0) * w.tile_n + c), bias);
      const int64_t r = t - out.row0, n = n0 - out.col0;
      if (out.y != nullptr) {
        I::StoreF(out.y + r * out.ldy + n, EpilogueVec<I>(w, v, n0, valid, a.scale[t]), valid);
      } else {
        I::StoreMasked(out.acc + r * out.ldacc + n, v, valid);
      }
    }
  }
}

template <class I>
void Linear(const Weights& w, const Activations& a, const Output& out, int64_t nt0, int64_t nt1,
            int64_t t0, int64_t t1, int64_t kt_block, int32_t* scratch) {
  const bool w4 = w.group != 0;
  const int64_t rows = t1 - t0;
  const int64_t cols_per_chunk = I::kVecs * I::kCols;
  const int64_t step = w4 ? kRowsOf<I, true> : kRowsOf<I, false>;
  const int64_t row_blocks = (rows + step - 1) / step;
  for (int64_t nt = nt0; nt < nt1; ++nt) {
    for (int64_t kb = 0; kb < w.k_tiles; kb += kt_block) {
      const int64_t ke = Min(kb + kt_block, w.k_tiles);
      // With several row blocks the first one reads the K block from memory and the others find
      // it in L2; left to the hardware prefetcher, that first pass stalls on memory. So every
      // row block asks for its share of the next K block (of this n-tile, or the first of the
      // next one, which follows it in memory; past the weight's end the requests are harmless),
      // a line at a time over its dot products (docs/performance.md, session 7).
      const int64_t lines = row_blocks > 1 ? ((ke - kb) * w.tile_stride + 63) / 64 : 0;
      const int64_t per_block = (lines + row_blocks - 1) / row_blocks;
      const uint8_t* next = w.tiles + (nt * w.k_tiles + ke) * w.tile_stride;
      for (int64_t r0 = t0, b = 0; r0 < t1; r0 += step, ++b) {
        const int r = static_cast<int>(Min(step, t1 - r0));
        const Prefetch pf{next + b * per_block * 64,
                          Max(int64_t{0}, Min(per_block, lines - b * per_block))};
        for (int64_t c0 = 0; c0 < w.tile_n; c0 += cols_per_chunk) {
          const int v = static_cast<int>(Min(cols_per_chunk, w.tile_n - c0) / I::kCols);
          const BlockFn fn = w4 ? PickBlock<I, true>(r, v) : PickBlock<I, false>(r, v);
          fn(w, a, nt, kb, ke, r0, c0, scratch + (r0 - t0) * w.tile_n + c0, kb == 0,
             c0 == 0 ? pf : Prefetch{});
        }
      }
    }
    Finish<I>(w, a, out, nt, t0, t1, scratch);
  }
}

// Sums of each row over consecutive segments of `seg` values (lda is a multiple of seg).
// Plain loops: the compiler vectorizes them with this file's flags, and they cost m * lda adds
// against the m * n * lda multiply-accumulates of the call.
void RowSums(const int8_t* q, int64_t m, int64_t lda, int64_t seg, int32_t* sums) {
  const int64_t segs = lda / seg;
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t s = 0; s < segs; ++s) {
      const int8_t* p = q + t * lda + s * seg;
      int32_t sum = 0;
      for (int64_t i = 0; i < seg; ++i) sum += p[i];
      sums[t * segs + s] = sum;
    }
  }
}

// Per-token int8 quantization, bit for bit as scalar::QuantizeActivations: the same fp32
// max / divide / multiply, and cvtps2dq rounds half to even in the default MXCSR mode as
// nearbyint does. Clamping in fp32 before the conversion keeps out-of-range values (only
// possible for non-finite input) from turning into the conversion's 0x80000000.
template <class I>
void Quantize(const float* x, int64_t m, int64_t k, int64_t ldx, int64_t k_pad, int8_t* q,
              float* scale) {
  constexpr int kC = I::kCols;
  for (int64_t t = 0; t < m; ++t) {
    const float* row = x + t * ldx;
    int8_t* out = q + t * k_pad;
    typename I::VecF vmax = I::Set1F(0.0f);
    for (int64_t i = 0; i < k; i += kC) {
      // max(|x|, running max): a NaN lane keeps the running max, as std::max(amax, |x|) does.
      vmax = I::MaxF(I::AbsF(I::LoadF(row + i, static_cast<int>(Min(kC, k - i)))), vmax);
    }
    const float amax = I::ReduceMaxF(vmax);
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    scale[t] = amax / 127.0f;
    const typename I::VecF vinv = I::Set1F(inv), lo = I::Set1F(-127.0f), hi = I::Set1F(127.0f);
    for (int64_t i = 0; i < k; i += kC) {
      const int valid = static_cast<int>(Min(kC, k - i));
      const typename I::VecF v = I::MulF(I::LoadF(row + i, valid), vinv);
      I::StoreI8(out + i, I::ToI32(I::MinF(I::MaxF(v, lo), hi)), valid);
    }
    std::memset(out + k, 0, static_cast<size_t>(k_pad - k));
  }
}

template <class I>
void Epilogue(const Weights& w, const int32_t* acc, int64_t ldacc, const float* a_scale,
              int64_t m, float* y, int64_t ldy) {
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t n0 = 0; n0 < w.n; n0 += I::kCols) {
      const int valid = static_cast<int>(Min(I::kCols, w.n - n0));
      const Vec<I> v = I::LoadMasked(acc + t * ldacc + n0, valid);
      I::StoreF(y + t * ldy + n0, EpilogueVec<I>(w, v, n0, valid, a_scale[t]), valid);
    }
  }
}

// Register-only loop of the W8 dot-product step over 12 independent accumulators: the most
// int8 multiply-accumulates per second one core can do on this path. The empty asm makes the
// operands opaque, so no part of the step is hoisted out of the loop.
template <class I>
int64_t DotPeak(int64_t iters) {
  constexpr int kAcc = 12;
  Vec<I> acc[kAcc];
  for (auto& x : acc) x = I::Zero();
  int8_t bytes[4] = {3, -5, 7, -9};
  Vec<I> wv = I::Broadcast(bytes), ab = I::Broadcast(bytes);
  for (int64_t i = 0; i < iters; ++i) {
    __asm__ volatile("" : "+v"(wv), "+v"(ab));
#pragma GCC unroll 12
    for (int j = 0; j < kAcc; ++j) acc[j] = I::DotW8(acc[j], wv, ab);
  }
  Vec<I> sum = acc[0];
  for (int j = 1; j < kAcc; ++j) sum = I::Add(sum, acc[j]);
  int32_t lanes[I::kCols];
  I::Store(lanes, sum);
  volatile int32_t sink = lanes[0];
  (void)sink;
  return iters * kAcc * I::kCols * 4;
}

// Streaming read of `bytes` (a multiple of 4 vectors) with four independent adds in flight.
template <class I>
uint64_t StreamRead(const uint8_t* p, int64_t bytes) {
  constexpr int64_t kStep = 4 * sizeof(Vec<I>);
  Vec<I> s0 = I::Zero(), s1 = I::Zero(), s2 = I::Zero(), s3 = I::Zero();
  for (int64_t i = 0; i + kStep <= bytes; i += kStep) {
    s0 = I::Add(s0, I::LoadBytes(p + i));
    s1 = I::Add(s1, I::LoadBytes(p + i + sizeof(Vec<I>)));
    s2 = I::Add(s2, I::LoadBytes(p + i + 2 * sizeof(Vec<I>)));
    s3 = I::Add(s3, I::LoadBytes(p + i + 3 * sizeof(Vec<I>)));
  }
  int32_t lanes[I::kCols];
  I::Store(lanes, I::Add(I::Add(s0, s1), I::Add(s2, s3)));
  uint64_t sum = 0;
  for (int32_t v : lanes) sum += static_cast<uint32_t>(v);
  return sum;
}

template <class I>
constexpr Kernels MakeKernels() {
  return Kernels{I::kCols,    I::kRowsW8,   I::kRowsW4,    I::kW8Sums,  kMaxRowBlock,
                 &RowSums,    &Linear<I>,   &Quantize<I>,  &Epilogue<I>, &DotPeak<I>,
                 &StreamRead<I>};
}

}  // namespace
}  // namespace qsl::kernel
