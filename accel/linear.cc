// Dispatch of the integer linear op: picks the ISA path (isa.h), flattens the weight view for it
// and splits the call over the thread pool. The split never changes the bits: every output is
// one integer dot product, whoever computes it.
#include "accel/linear.h"

#include <algorithm>
#include <vector>

#include "accel/isa.h"
#include "accel/linear_isa.h"
#include "base/thread_pool.h"

namespace qsl {
namespace {

// Row blocks of a GEMM: up to this many rows share one pass over a weight slab.
constexpr int64_t kMaxRowBlock = 96;
// Weight bytes of one K block: a slab this size is reused by every row block of a work item
// while it stays in the L2 cache.
constexpr int64_t kKBlockBytes = 64 * 1024;
// Work per pool range: about this many ranges per thread, for balance without much traffic.
constexpr int64_t kRangesPerThread = 4;

// The SIMD path for a weight, or nullptr for the scalar reference (forced, or a tile_n the path
// does not cut into whole vectors).
const kernel::Kernels* PathFor(const TiledLayout& l) {
  const kernel::Kernels* k = nullptr;
  switch (ActiveIsa()) {
    case Isa::kAvx512: k = &kernel::kAvx512Kernels; break;
    case Isa::kAvx2: k = &kernel::kAvx2Kernels; break;
    case Isa::kScalar: return nullptr;
  }
  return l.tile_n % k->cols == 0 ? k : nullptr;
}

const kernel::Kernels* PathForActivations() {
  switch (ActiveIsa()) {
    case Isa::kAvx512: return &kernel::kAvx512Kernels;
    case Isa::kAvx2: return &kernel::kAvx2Kernels;
    case Isa::kScalar: break;
  }
  return nullptr;
}

kernel::Weights Flatten(const LinearWeightsView& v) {
  const TiledLayout& l = v.layout;
  const bool w4 = l.scheme == WeightScheme::kW4;
  return kernel::Weights{v.tiles,          v.scale,          v.bias,   l.n,
                         l.k_tiles(),      l.tile_stride(),  l.scale_offset(),
                         l.zero_offset(),  l.tile_k,         l.tile_n, w4 ? l.group : 0};
}

std::vector<int32_t>& SumsBuffer() {
  thread_local std::vector<int32_t> buf;
  return buf;
}
std::vector<int32_t>& ScratchBuffer() {
  thread_local std::vector<int32_t> buf;
  return buf;
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t Grain(int64_t items, const ThreadPool& pool) {
  return std::max<int64_t>(1, items / (pool.size() * kRangesPerThread));
}

// Runs the matmul of `m` rows on path `k`, writing int32 accumulators or the fused epilogue.
void Run(const kernel::Kernels& k, const LinearWeightsView& v, const int8_t* a, int64_t m,
         const float* a_scale, const kernel::Output& out) {
  if (m <= 0) return;
  const kernel::Weights w = Flatten(v);
  const int64_t k_pad = v.layout.k_pad();
  // Row sums: per segment for W4, per row for W8 on a path that biases the weights.
  const int64_t seg = w.group != 0 ? kernel::SegmentLength(w) : k_pad;
  std::vector<int32_t>& sums = SumsBuffer();
  if (w.group != 0 || k.w8_sums) {
    sums.resize(static_cast<size_t>(m * (k_pad / seg)));
    k.row_sums(a, m, k_pad, seg, sums.data());
  }
  const kernel::Activations act{a, m, k_pad, sums.data(), k_pad / seg, a_scale};

  // Work items: (n-tile, row block), n-tile major so that neighbouring items share a slab.
  const int64_t row_blocks = CeilDiv(m, kMaxRowBlock);
  const int64_t rows = CeilDiv(CeilDiv(m, row_blocks), k.rows) * k.rows;
  const int64_t n_tiles = v.layout.n_tiles();
  // A single row block reads each weight once: no reason to cut K.
  const int64_t kt_block =
      m <= k.rows ? w.k_tiles : std::max<int64_t>(1, kKBlockBytes / w.tile_stride);
  ThreadPool& pool = ThreadPool::Default();
  const int64_t items = n_tiles * row_blocks;
  pool.ParallelFor(items, Grain(items, pool), [&](int64_t begin, int64_t end) {
    std::vector<int32_t>& scratch = ScratchBuffer();
    scratch.resize(static_cast<size_t>(rows * w.tile_n));
    for (int64_t i = begin; i < end; ++i) {
      const int64_t nt = i / row_blocks, t0 = (i % row_blocks) * rows;
      k.linear(w, act, out, nt, nt + 1, t0, std::min(m, t0 + rows), kt_block, scratch.data());
    }
  });
}

// Rows of a per-row step split over the pool in ranges of about `per_range` values.
template <typename Fn>
void ForRows(int64_t m, int64_t row_len, Fn&& fn) {
  constexpr int64_t per_range = 1 << 16;
  const int64_t grain = std::max<int64_t>(1, per_range / std::max<int64_t>(1, row_len));
  ThreadPool::Default().ParallelFor(m, grain, fn);
}

}  // namespace

void QuantizeActivations(const float* x, int64_t m, int64_t k, int64_t ldx, int64_t k_pad,
                         int8_t* q, float* scale) {
  const kernel::Kernels* path = PathForActivations();
  if (path == nullptr) return scalar::QuantizeActivations(x, m, k, ldx, k_pad, q, scale);
  ForRows(m, k, [&](int64_t b, int64_t e) {
    path->quantize(x + b * ldx, e - b, k, ldx, k_pad, q + b * k_pad, scale + b);
  });
}

void MatmulInt8(const LinearWeightsView& w, const int8_t* a, int64_t m, int32_t* acc,
                int64_t ldacc) {
  const kernel::Kernels* path = PathFor(w.layout);
  if (path == nullptr) return scalar::MatmulInt8(w, a, m, acc, ldacc);
  Run(*path, w, a, m, nullptr, kernel::Output{acc, ldacc, nullptr, 0});
}

void Epilogue(const LinearWeightsView& w, const int32_t* acc, int64_t ldacc, const float* a_scale,
              int64_t m, float* y, int64_t ldy) {
  const kernel::Kernels* path = PathForActivations();
  if (path == nullptr) return scalar::Epilogue(w, acc, ldacc, a_scale, m, y, ldy);
  const kernel::Weights kw = Flatten(w);
  ForRows(m, w.layout.n, [&](int64_t b, int64_t e) {
    path->epilogue(kw, acc + b * ldacc, ldacc, a_scale + b, e - b, y + b * ldy, ldy);
  });
}

void LinearInt8(const LinearWeightsView& w, const int8_t* a, const float* a_scale, int64_t m,
                float* y, int64_t ldy) {
  const kernel::Kernels* path = PathFor(w.layout);
  if (path != nullptr) return Run(*path, w, a, m, a_scale, kernel::Output{nullptr, 0, y, ldy});
  std::vector<int32_t> acc(static_cast<size_t>(m * w.layout.n));
  scalar::MatmulInt8(w, a, m, acc.data(), w.layout.n);
  scalar::Epilogue(w, acc.data(), w.layout.n, a_scale, m, y, ldy);
}

}  // namespace qsl
