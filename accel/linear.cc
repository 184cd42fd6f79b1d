// Dispatch of the integer linear op: picks the ISA path (isa.h), flattens the weight view for it
// and splits the call over the thread pool. The split never changes the bits: every output is
// one integer dot product, whoever computes it.
#include "accel/linear.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "accel/isa.h"
#include "accel/linear_isa.h"
#include "base/thread_pool.h"

namespace qsl {
namespace {

// Weight bytes of one K block: a slab this size is reused by every row block of a work item
// while it stays in cache. W8 blocks half as large (4 tiles of 8 KiB, within a 48 KiB L1 with
// the rows' activations) ran 2-5 % faster at M = 32 and 0-3 % at M = 128 on Zen 5; W4 keeps
// 64 KiB (8-15 tiles): blocks of 1 tile to 32 KiB measured no better (docs/performance.md,
// session 10).
constexpr int64_t kKBlockBytesW4 = 64 * 1024;
constexpr int64_t kKBlockBytesW8 = 32 * 1024;
// Work per pool range: about this many ranges per thread, for balance without much traffic.
constexpr int64_t kRangesPerThread = 4;

// The SIMD path for a weight, or nullptr for the scalar reference (forced, or a tile_n the path
// does not cut into whole vectors).
const kernel::Kernels* PathFor(const TiledLayout& l) {
  const kernel::Kernels* k = nullptr;
  switch (ActiveIsa()) {
    case Isa::kAmx: k = &kernel::kAmxKernels; break;
    case Isa::kAvx512: k = &kernel::kAvx512Kernels; break;
    case Isa::kAvx2: k = &kernel::kAvx2Kernels; break;
    case Isa::kScalar: return nullptr;
  }
  return l.tile_n % k->cols == 0 ? k : nullptr;
}

const kernel::Kernels* PathForActivations() {
  switch (ActiveIsa()) {
    case Isa::kAmx:  // the same quantize and epilogue
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

// Per-thread buffers of row sums, one per weight of a multi-weight call.
std::vector<int32_t>& SumsBuffer(size_t i) {
  thread_local std::vector<std::vector<int32_t>> bufs;
  if (bufs.size() <= i) bufs.resize(i + 1);
  return bufs[i];
}
std::vector<int32_t>& ScratchBuffer() {
  thread_local std::vector<int32_t> buf;
  return buf;
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t Grain(int64_t items, const ThreadPool& pool) {
  return std::max<int64_t>(1, items / (pool.size() * kRangesPerThread));
}

// One weight's share of a call: its flattened view, activations (with the row sums its scheme
// needs), output, and how its work is cut into items.
struct Plan {
  const kernel::Kernels* k = nullptr;
  kernel::Weights w;
  kernel::Activations act;
  kernel::Output out;
  int64_t m = 0, rows = 0, row_blocks = 0, kt_block = 0, items = 0;
};

Plan MakePlan(const kernel::Kernels& k, const LinearWeightsView& v, const int8_t* a, int64_t m,
              const float* a_scale, const kernel::Output& out, std::vector<int32_t>& sums) {
  Plan p;
  p.k = &k;
  p.w = Flatten(v);
  p.out = out;
  p.m = m;
  const int64_t k_pad = v.layout.k_pad();
  // Row sums: per segment for W4, per row for W8 on a path that biases the weights.
  const int64_t seg = p.w.group != 0 ? kernel::SegmentLength(p.w) : k_pad;
  if (p.w.group != 0 || k.w8_sums) {
    sums.resize(static_cast<size_t>(m * (k_pad / seg)));
    k.row_sums(a, m, k_pad, seg, sums.data());
  }
  p.act = kernel::Activations{a, m, k_pad, sums.data(), k_pad / seg, a_scale};
  // Work items: (n-tile, row block), n-tile major so that neighbouring items share a slab.
  p.row_blocks = CeilDiv(m, k.max_row_block);
  const int64_t step = p.w.group != 0 ? k.rows_w4 : k.rows_w8;
  p.rows = CeilDiv(CeilDiv(m, p.row_blocks), step) * step;
  // A single row block reads each weight once: no reason to cut K.
  const int64_t block_bytes = p.w.group != 0 ? kKBlockBytesW4 : kKBlockBytesW8;
  p.kt_block = m <= step ? p.w.k_tiles : std::max<int64_t>(1, block_bytes / p.w.tile_stride);
  // Equal blocks (16 tiles: 8 + 8, not 15 + 1): each block's passes prefetch the next one.
  p.kt_block = CeilDiv(p.w.k_tiles, CeilDiv(p.w.k_tiles, p.kt_block));
  p.items = v.layout.n_tiles() * p.row_blocks;
  return p;
}

// Work item i of a plan, its results to `out` (the plan's own output by default).
void RunItem(const Plan& p, int64_t i, const kernel::Output& out) {
  std::vector<int32_t>& scratch = ScratchBuffer();
  scratch.resize(static_cast<size_t>(p.rows * p.w.tile_n));
  const int64_t nt = i / p.row_blocks, t0 = (i % p.row_blocks) * p.rows;
  p.k->linear(p.w, p.act, out, nt, nt + 1, t0, std::min(p.m, t0 + p.rows), p.kt_block,
              scratch.data());
}
void RunItem(const Plan& p, int64_t i) { RunItem(p, i, p.out); }

// Runs the matmul of `m` rows on path `k`, writing int32 accumulators or the fused epilogue.
void Run(const kernel::Kernels& k, const LinearWeightsView& v, const int8_t* a, int64_t m,
         const float* a_scale, const kernel::Output& out) {
  if (m <= 0) return;
  const Plan p = MakePlan(k, v, a, m, a_scale, out, SumsBuffer(0));
  ThreadPool& pool = ThreadPool::Default();
  pool.ParallelFor(p.items, Grain(p.items, pool), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) RunItem(p, i);
  });
}

// Rows of a per-row step split over the pool in ranges of about `per_range` values.
template <typename Fn>
void ForRows(int64_t m, int64_t row_len, Fn&& fn) {
  constexpr int64_t per_range = 1 << 14;  // 32 decode rows of 2048: 4 ranges, not 1
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

void LinearInt8Shared(absl::Span<const LinearWeightsView> ws, const int8_t* a,
                      const float* a_scale, int64_t m, absl::Span<float* const> ys) {
  std::vector<Plan> plans;
  std::vector<int64_t> first = {0};  // plans[j]'s items start at first[j] of the joint range
  for (size_t j = 0; j < ws.size(); ++j) {
    const kernel::Kernels* path = PathFor(ws[j].layout);
    if (path == nullptr || m <= 0) {
      LinearInt8(ws[j], a, a_scale, m, ys[j], ws[j].layout.n);
      continue;
    }
    plans.push_back(MakePlan(*path, ws[j], a, m, a_scale,
                             kernel::Output{nullptr, 0, ys[j], ws[j].layout.n}, SumsBuffer(j)));
    first.push_back(first.back() + plans.back().items);
  }
  ThreadPool& pool = ThreadPool::Default();
  pool.ParallelFor(first.back(), Grain(first.back(), pool), [&](int64_t begin, int64_t end) {
    size_t j = 0;
    for (int64_t i = begin; i < end; ++i) {
      while (i >= first[j + 1]) ++j;
      RunItem(plans[j], i - first[j]);
    }
  });
}

void LinearInt8Pair(const LinearWeightsView& wa, const LinearWeightsView& wb, const int8_t* a,
                    const float* a_scale, int64_t m, PairCombine combine, float* y, int64_t ldy) {
  if (m <= 0) return;
  const TiledLayout& la = wa.layout;
  const kernel::Kernels* path = PathFor(la);
  const TiledLayout& lb = wb.layout;
  const bool same = la.n == lb.n && la.k == lb.k && la.tile_k == lb.tile_k &&
                    la.tile_n == lb.tile_n && la.scheme == lb.scheme && la.group == lb.group;
  if (path == nullptr || !same) {
    // Whole outputs, then the combination row by row (the scalar path, or unlike weights).
    std::vector<float> yb(static_cast<size_t>(m * lb.n));
    LinearInt8(wa, a, a_scale, m, y, ldy);
    LinearInt8(wb, a, a_scale, m, yb.data(), lb.n);
    for (int64_t t = 0; t < m; ++t) combine(y + t * ldy, yb.data() + t * lb.n, la.n);
    return;
  }
  const Plan pa = MakePlan(*path, wa, a, m, a_scale, kernel::Output{}, SumsBuffer(0));
  const Plan pb = MakePlan(*path, wb, a, m, a_scale, kernel::Output{}, SumsBuffer(1));
  const int64_t tile_n = la.tile_n;
  ThreadPool& pool = ThreadPool::Default();
  pool.ParallelFor(pa.items, Grain(pa.items, pool), [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> ta, tb;
    ta.resize(static_cast<size_t>(pa.rows * tile_n));
    tb.resize(static_cast<size_t>(pa.rows * tile_n));
    for (int64_t i = begin; i < end; ++i) {
      const int64_t nt = i / pa.row_blocks, t0 = (i % pa.row_blocks) * pa.rows;
      const int64_t t1 = std::min(m, t0 + pa.rows), c0 = nt * tile_n;
      // Each output's tile of rows [t0, t1), columns [c0, c0 + tile_n) into its buffer.
      RunItem(pa, i, kernel::Output{nullptr, 0, ta.data(), tile_n, t0, c0});
      RunItem(pb, i, kernel::Output{nullptr, 0, tb.data(), tile_n, t0, c0});
      const int64_t valid = std::min(tile_n, la.n - c0);
      for (int64_t t = t0; t < t1; ++t) {
        float* row = ta.data() + (t - t0) * tile_n;
        combine(row, tb.data() + (t - t0) * tile_n, valid);
        std::memcpy(y + t * ldy + c0, row, static_cast<size_t>(valid) * sizeof(float));
      }
    }
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
