// The AMX path (compiled with the AVX-512 flags plus -mavx512vbmi -mamx-tile -mamx-int8): matmuls
// of many rows run on the AMX-INT8 tile unit, everything else (GEMV, activation quantization, the
// epilogue) on the AVX-512 VNNI code of linear_avx512.cc.
//
// One tdpbssd multiplies a 16 x 64 int8 tile of activations by a 64 x 16 int8 tile of weights
// into 16 x 16 int32 accumulators: 16,384 multiply-accumulates, 8x what the AVX-512 path's
// vpdpbusd steps do in the same cycles. Signed times signed, exact int32 sums (no saturation),
// accumulated over the whole padded K: acc = sum A8 * W8 of docs/numeric-contract.md, step 3,
// with no weight bias and no per-group fold.
//
// Weights. A weight tile's k-quad rows (format/weight_tiles.h) are the tile unit's "VNNI" layout
// already: row q holds K 4q..4q+3 of every column, 4 bytes per column. So a W8 tile is read as
// stored (a 64 x 16 weight tile = 16 k-quad rows of 64 bytes, at the tile's row stride). W4 is
// expanded to its W8 levels (q4 - z) * s first, a whole n-tile at a time into a per-thread
// buffer that every row group then reads: each nibble becomes an index (column within 8 | q4)
// into a 128-entry table of that segment's levels, looked up with vpermi2b (AVX512-VBMI).
//
// Rows come in groups of 32 (two activation tiles); with 4 accumulator tiles per 32 columns that
// is the 8 tile registers: C0..C3 = tmm0..3, A = tmm4..5, B = tmm6..7. A short last group reads
// its rows from a zero-padded copy.
#include <cstdlib>

#include "accel/linear_avx512_traits.h"

namespace qsl::kernel {
namespace {

// Rows at which the tile unit takes over. With fewer the AVX-512 path's direct nibble dot
// products beat expanding W4 to bytes (1.1B model, two threads: 8 rows 30.5 vs 42.3 ms a step,
// 12 rows 40.7 vs 43.5, 16 rows 46.3 vs 39.9; qsl-bench-linear, docs/performance.md).
constexpr int64_t kAmxMinRows = 14;
constexpr int kTileRows = 16;   // rows of an A or C tile
constexpr int kTileBytes = 64;  // bytes of a tile row: 64 K of A, 16 columns x 4 K of B
constexpr int64_t kStepK = 64;  // K per tdpbssd

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Every tile used is 16 rows x 64 bytes.
const TileConfig& Config() {
  static const TileConfig c = [] {
    TileConfig t;
    for (int i = 0; i < 8; ++i) {
      t.colsb[i] = kTileBytes;
      t.rows[i] = kTileRows;
    }
    return t;
  }();
  return c;
}

// The 4 tables of one segment of one 16-column block: table t, entry e holds the W8 level of
// column 4t + e / 16 for q4 = e % 16, i.e. (q4 - z) * s as int8 (in range by W4GroupInRange).
struct Levels {
  __m512i t[4];
};

Levels LevelsOf(const uint8_t* s16, const uint8_t* z8) {
  const __m512i s = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s16)));
  const __m128i zw = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(z8)));
  const __m512i z = _mm512_castsi128_si512(
      _mm_and_si128(_mm_or_si128(zw, _mm_slli_epi16(zw, 4)), _mm_set1_epi16(0x0f0f)));
  const __m512i q = _mm512_set_epi32(0x0f0e0d0c, 0x0b0a0908, 0x07060504, 0x03020100, 0x0f0e0d0c,
                                     0x0b0a0908, 0x07060504, 0x03020100, 0x0f0e0d0c, 0x0b0a0908,
                                     0x07060504, 0x03020100, 0x0f0e0d0c, 0x0b0a0908, 0x07060504,
                                     0x03020100);
  const __m512i low_byte = _mm512_set1_epi16(0x00ff);
  Levels l;
  for (int t = 0; t < 4; ++t) {
    // Byte e of the column index: 4t + e / 16 (each 128-bit lane one column).
    constexpr int64_t kBytes = 0x0101010101010101LL;
    const __m512i col =
        _mm512_set_epi64((4 * t + 3) * kBytes, (4 * t + 3) * kBytes, (4 * t + 2) * kBytes,
                         (4 * t + 2) * kBytes, (4 * t + 1) * kBytes, (4 * t + 1) * kBytes,
                         (4 * t) * kBytes, (4 * t) * kBytes);
    const __m512i st = _mm512_permutexvar_epi8(col, s);
    const __m512i d = _mm512_sub_epi8(q, _mm512_permutexvar_epi8(col, z));
    // Byte products from 16-bit ones: the low byte of a 16-bit product depends only on the
    // factors' low bytes, so (d word) * (s even byte) gives the even byte, and (d with its even
    // byte cleared) * (s odd byte) gives the odd byte in the high half.
    const __m512i even = _mm512_mullo_epi16(d, _mm512_and_si512(st, low_byte));
    const __m512i odd =
        _mm512_mullo_epi16(_mm512_andnot_si512(low_byte, d), _mm512_srli_epi16(st, 8));
    l.t[t] = _mm512_mask_blend_epi8(0xaaaaaaaaaaaaaaaaULL, even, odd);
  }
  return l;
}

// One k-quad row of a 16-column block: 32 bytes of nibbles -> 64 int8 levels, stored at `dst`.
inline void ExpandRow(const uint8_t* nib, const Levels& l, __m512i col_bits, int8_t* dst) {
  const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(nib)));
  // (w | w << 4) & 0x0f0f puts the low nibble in the even byte and the high one in the odd byte
  // (element order); the column within 8 goes to bits 4..6, the table pair's index.
  const __m512i q4 = _mm512_and_si512(_mm512_or_si512(w, _mm512_slli_epi16(w, 4)),
                                      _mm512_set1_epi16(0x0f0f));
  const __m512i idx = _mm512_or_si512(q4, col_bits);
  const __m512i lo = _mm512_permutex2var_epi8(l.t[0], idx, l.t[1]);  // columns 0..7
  const __m512i hi = _mm512_permutex2var_epi8(l.t[2], idx, l.t[3]);  // columns 8..15
  _mm512_store_si512(dst, _mm512_mask_blend_epi8(0xffffffff00000000ULL, lo, hi));
}

// Expands n-tile `slab` (all k-tiles) to int8 B tiles: tile (step s, column block b) of 16 k-quad
// rows x 64 bytes at buf + (s * blocks + b) * 1024.
void ExpandW4(const Weights& w, const uint8_t* slab, int8_t* buf) {
  const int64_t blocks = w.tile_n / 16;
  const int64_t quad_bytes = w.tile_n * 2;  // nibbles of one k-quad row
  const int64_t seg_quads = SegmentLength(w) / 4;
  const int64_t segs = w.tile_k / SegmentLength(w);
  const int64_t steps_per_tile = w.tile_k / kStepK;
  __m512i col_bits;
  {
    alignas(64) uint8_t c[64];
    for (int i = 0; i < 64; ++i) c[i] = static_cast<uint8_t>(((i / 4) % 8) << 4);
    col_bits = _mm512_load_si512(c);
  }
  // Column blocks in chunks of 4 (the tables of 4 blocks are 16 registers): for tile_n = 64 the
  // whole k-quad row, so the tile is read front to back as stored.
  constexpr int64_t kChunk = 4;
  const int64_t bytes = Min(blocks, kChunk) * 32;  // nibble bytes of a chunk's k-quad row
  for (int64_t kt = 0; kt < w.k_tiles; ++kt) {
    const uint8_t* tile = slab + kt * w.tile_stride;
    for (int64_t b0 = 0; b0 < blocks; b0 += kChunk) {
      const int64_t nb = Min(kChunk, blocks - b0);
      for (int64_t j = 0; j < segs; ++j) {
        Levels l[kChunk];
        for (int64_t b = 0; b < nb; ++b) {
          l[b] = LevelsOf(tile + w.scale_offset + j * w.tile_n + (b0 + b) * 16,
                          tile + w.zero_offset + j * (w.tile_n / 2) + (b0 + b) * 8);
        }
        for (int64_t q = j * seg_quads; q < (j + 1) * seg_quads; ++q) {
          const uint8_t* row = tile + q * quad_bytes + b0 * 32;
          // The same row of the tile two ahead: about 8 KiB ahead of the reads for the default
          // tile, which the expansion's work between reads needs to keep the DRAM busy.
          for (int64_t o = 0; o < bytes; o += 64) {
            __builtin_prefetch(row + 2 * w.tile_stride + o, 0, 1);
          }
          const int64_t s = kt * steps_per_tile + q / 16;
          for (int64_t b = 0; b < nb; ++b) {
            ExpandRow(row + b * 32, l[b], col_bits,
                      buf + (s * blocks + b0 + b) * 1024 + (q % 16) * kTileBytes);
          }
        }
      }
    }
  }
}

// Where B tile (step s, column block b) is read from, and its row stride.
struct BSource {
  const int8_t* base;
  int64_t stride;  // bytes between k-quad rows
  int64_t blocks;  // column blocks per n-tile (expanded W4)
  const Weights* w;
  bool expanded;
  const int8_t* At(int64_t s, int64_t b) const {
    if (expanded) return base + (s * blocks + b) * 1024;
    const int64_t steps_per_tile = w->tile_k / kStepK;
    return base + (s / steps_per_tile) * w->tile_stride +
           (s % steps_per_tile) * kTileRows * stride + b * kTileBytes;
  }
};

// C tiles of rows [r, r + 16 * groups) x columns [c, c + 32) over all K steps, stored to `tot`
// (row stride ld int32). a0 / a1: the two row tiles' first rows, row stride lda.
template <int kGroups>
void TileBlock(const int8_t* a0, const int8_t* a1, int64_t lda, const BSource& b, int64_t b0,
               int64_t steps, int32_t* tot, int64_t ld) {
  _tile_zero(0);
  _tile_zero(1);
  if constexpr (kGroups == 2) {
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t s = 0; s < steps; ++s) {
    _tile_loadd(6, b.At(s, b0), b.stride);
    _tile_loadd(7, b.At(s, b0 + 1), b.stride);
    _tile_loadd(4, a0 + s * kStepK, lda);
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    if constexpr (kGroups == 2) {
      _tile_loadd(5, a1 + s * kStepK, lda);
      _tile_dpbssd(2, 5, 6);
      _tile_dpbssd(3, 5, 7);
    }
  }
  const int64_t ldb = ld * static_cast<int64_t>(sizeof(int32_t));
  _tile_stored(0, tot, ldb);
  _tile_stored(1, tot + 16, ldb);
  if constexpr (kGroups == 2) {
    _tile_stored(2, tot + kTileRows * ld, ldb);
    _tile_stored(3, tot + kTileRows * ld + 16, ldb);
  }
}

// A per-thread 64-byte aligned buffer that only grows. Not a std::vector: this file's flags must
// not reach any template the linker could share with other files (linear_isa.h).
struct Buffer {
  int8_t* p = nullptr;
  size_t size = 0;
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { std::free(p); }
  // nullptr when memory runs out (the caller then takes the AVX-512 path, which needs none).
  int8_t* Get(size_t bytes) {
    if (bytes > size) {
      std::free(p);
      size = (bytes + 63) / 64 * 64;
      p = static_cast<int8_t*>(std::aligned_alloc(64, size));
      if (p == nullptr) size = 0;
    }
    return p;
  }
};
thread_local Buffer expand_buffer, pad_buffer;

// Kernels::linear. kt_block is the AVX-512 path's K blocking; the tiles take the whole K at once.
void AmxLinear(const Weights& w, const Activations& a, const Output& out, int64_t nt0,
               int64_t nt1, int64_t t0, int64_t t1, int64_t kt_block, int32_t* scratch) {
  if (t1 - t0 < kAmxMinRows || w.tile_k % kStepK != 0 || w.tile_n % 32 != 0) {
    return kAvx512Kernels.linear(w, a, out, nt0, nt1, t0, t1, kt_block, scratch);
  }
  const bool w4 = w.group != 0;
  const int64_t steps = w.k_tiles * w.tile_k / kStepK;
  const int64_t blocks = w.tile_n / 16;
  int8_t* ebuf = w4 ? expand_buffer.Get(static_cast<size_t>(steps * blocks * 1024)) : nullptr;
  // A short last row group's rows, zero-padded to a whole group (and its totals in `part`).
  int8_t* pad = pad_buffer.Get(static_cast<size_t>(2 * kTileRows * a.lda));
  if ((w4 && ebuf == nullptr) || pad == nullptr) {
    return kAvx512Kernels.linear(w, a, out, nt0, nt1, t0, t1, kt_block, scratch);
  }
  // Filled once for all the n-tiles below.
  const int64_t r_short = t0 + (t1 - t0) / (2 * kTileRows) * (2 * kTileRows);
  const int64_t short_rows = t1 - r_short;
  if (short_rows != 0 && short_rows != kTileRows) {
    std::memcpy(pad, a.q + r_short * a.lda, static_cast<size_t>(short_rows * a.lda));
    std::memset(pad + short_rows * a.lda, 0,
                static_cast<size_t>((2 * kTileRows - short_rows) * a.lda));
  }
  alignas(64) int32_t part[2 * kTileRows * 32];
  _tile_loadconfig(&Config());
  for (int64_t nt = nt0; nt < nt1; ++nt) {
    const uint8_t* slab = w.tiles + nt * w.k_tiles * w.tile_stride;
    if (w4) ExpandW4(w, slab, ebuf);
    const BSource src = w4 ? BSource{ebuf, kTileBytes, blocks, &w, true}
                           : BSource{reinterpret_cast<const int8_t*>(slab), w.tile_n * 4, blocks,
                                     &w, false};
    for (int64_t r0 = t0; r0 < t1; r0 += 2 * kTileRows) {
      const int64_t rows = Min(2 * kTileRows, t1 - r0);
      const bool whole = rows == kTileRows || rows == 2 * kTileRows;
      const int8_t* a0 = whole ? a.q + r0 * a.lda : pad;
      const int64_t lda = a.lda;
      const int8_t* a1 = a0 + kTileRows * lda;
      for (int64_t b = 0; b < blocks; b += 2) {
        int32_t* dst = whole ? scratch + (r0 - t0) * w.tile_n + b * 16 : part;
        const int64_t ld = whole ? w.tile_n : 32;
        if (rows <= kTileRows) {
          TileBlock<1>(a0, a1, lda, src, b, steps, dst, ld);
        } else {
          TileBlock<2>(a0, a1, lda, src, b, steps, dst, ld);
        }
        if (!whole) {
          for (int64_t r = 0; r < rows; ++r) {
            std::memcpy(scratch + (r0 - t0 + r) * w.tile_n + b * 16, part + r * 32,
                        32 * sizeof(int32_t));
          }
        }
      }
    }
    Finish<Avx512>(w, a, out, nt, t0, t1, scratch, /*biased=*/false);
  }
  _tile_release();
}

// Register-only loop of the tile unit: 4 independent tdpbssd per iteration.
int64_t AmxDotPeak(int64_t iters) {
  alignas(64) int8_t x[kTileRows * kTileBytes];
  for (int i = 0; i < kTileRows * kTileBytes; ++i) x[i] = static_cast<int8_t>(i % 7 - 3);
  _tile_loadconfig(&Config());
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, x, kTileBytes);
  _tile_loadd(5, x, kTileBytes);
  _tile_loadd(6, x, kTileBytes);
  _tile_loadd(7, x, kTileBytes);
  for (int64_t i = 0; i < iters; ++i) {
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  }
  alignas(64) int32_t c[kTileRows * 16];
  _tile_stored(0, c, 64);
  volatile int32_t sink = c[0];
  (void)sink;
  _tile_release();
  return iters * 4 * kTileRows * 16 * kStepK;
}

constexpr Kernels MakeAmxKernels() {
  Kernels k = MakeKernels<Avx512>();
  // Each row block of an n-tile expands its W4 weights again, so the tiles take up to 256 rows
  // at once (M = 128 and 512 in qsl-bench-linear: 15-30 % more than in blocks of 96).
  k.max_row_block = 256;
  k.linear = &AmxLinear;
  k.dot_peak = &AmxDotPeak;
  return k;
}

}  // namespace

const Kernels kAmxKernels = MakeAmxKernels();

}  // namespace qsl::kernel
