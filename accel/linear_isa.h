// Internal: the plain-data interface between the dispatcher (linear.cc) and the per-ISA kernel
// files (linear_avx2.cc, linear_avx512.cc, linear_amx.cc). Those files are compiled with their own
// -m flags and include only this header, linear_simd.h, linear_avx512_traits.h and the C
// headers (<immintrin.h>, <cstring>, <cstdlib>): an inline function or std::
// template instantiated there could be emitted with AVX-512 code and then picked by the linker
// for the whole binary, so they get everything as plain pointers and integers.
#pragma once

#include <cstdint>

namespace qsl::kernel {

// One packed weight (format/weight_tiles.h), flattened.
struct Weights {
  const uint8_t* tiles;
  const float* scale;  // [n]
  const float* bias;   // [n] or nullptr
  int64_t n;
  int64_t k_tiles;
  int64_t tile_stride;
  int64_t scale_offset, zero_offset;  // W4 group metadata, from the start of a tile record
  int32_t tile_k, tile_n;
  int32_t group;  // W4 group size along K; 0 for W8
};

// K values per "segment": the span over which a W4 dot product runs before it is folded with
// one (scale, zero) pair. A group longer than a tile is folded tile by tile, each tile with the
// metadata it stores itself, exactly as the scalar reference reads it.
inline int64_t SegmentLength(const Weights& w) {
  return w.group > 0 && w.group < w.tile_k ? w.group : w.tile_k;
}

// The int8 rows of one call and their sums over each segment (W4) or over the whole padded row
// (W8, on a path whose dot product biases the weights).
struct Activations {
  const int8_t* q;
  int64_t m, lda;        // lda = k_pad
  const int32_t* sums;   // [m][sums_ld]
  int64_t sums_ld;
  const float* scale;    // [m] activation scales (fused epilogue only)
};

// Where results go: int32 accumulators, or, when y is set, the fp32 epilogue. Element (t, n) of
// the call goes to row t - row0, column n - col0 of acc or y (a tile-sized buffer when the
// origin is a work item's first row and column).
struct Output {
  int32_t* acc;
  int64_t ldacc;
  float* y;
  int64_t ldy;
  int64_t row0 = 0, col0 = 0;
};

// One ISA path. The dispatcher cuts the work into blocks of n-tiles x rows, runs them on the
// thread pool and hands each block a scratch area of (t1 - t0) * tile_n int32.
struct Kernels {
  int cols;       // output columns per vector; the path takes tiles with tile_n % cols == 0
  int rows_w8;    // rows of its register block for W8 and W4 (row blocks are cut in multiples)
  int rows_w4;
  bool w8_sums;   // whether W8 needs the row sums
  // Row blocks of a GEMM: up to this many rows share one pass over a weight slab.
  int64_t max_row_block;
  void (*row_sums)(const int8_t* q, int64_t m, int64_t lda, int64_t seg, int32_t* sums);
  void (*linear)(const Weights& w, const Activations& a, const Output& out, int64_t nt0,
                 int64_t nt1, int64_t t0, int64_t t1, int64_t kt_block, int32_t* scratch);
  void (*quantize)(const float* x, int64_t m, int64_t k, int64_t ldx, int64_t k_pad, int8_t* q,
                   float* scale);
  void (*epilogue)(const Weights& w, const int32_t* acc, int64_t ldacc, const float* a_scale,
                   int64_t m, float* y, int64_t ldy);
  // For the benchmark: a register-only loop of the path's int8 dot-product step (returns the
  // multiply-accumulates done), and a streaming read of `bytes` (returns a checksum).
  int64_t (*dot_peak)(int64_t iters);
  uint64_t (*stream_read)(const uint8_t* p, int64_t bytes);
};

extern const Kernels kAvx2Kernels;
extern const Kernels kAvx512Kernels;
extern const Kernels kAmxKernels;  // kAvx512Kernels with the matmul of many rows on AMX tiles

}  // namespace qsl::kernel
