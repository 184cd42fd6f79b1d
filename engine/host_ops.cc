// Picks the host fp32 kernels' build (the one matching the integer kernels' ISA path) and splits
// each call over the thread pool: by rows for RMSNorm and RoPE, by 16-float-aligned element
// ranges for the elementwise ops. Small calls (a single decoding sequence) stay on the caller,
// where a pool hand-off would cost more than the work.
#include "engine/host_ops.h"

#include <algorithm>

#include "accel/isa.h"
#include "base/thread_pool.h"

namespace qsl {

namespace host_ops {
#define QSL_DECLARE_HOST_OPS(isa)                                                             \
  namespace isa {                                                                             \
  void RmsNorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps,          \
               float* out);                                                                   \
  void SwiGlu(float* gate, const float* up, int64_t n);                                       \
  void Add(float* x, const float* y, int64_t n);                                              \
  void Rope(float* x, int64_t tokens, int32_t heads, int64_t half, const float* cos,          \
            const float* sin);                                                                \
  }
QSL_DECLARE_HOST_OPS(generic)
QSL_DECLARE_HOST_OPS(avx2)
QSL_DECLARE_HOST_OPS(avx512)
#undef QSL_DECLARE_HOST_OPS
}  // namespace host_ops

namespace {

HostOpsKernels BuildFor(Isa isa) {
  switch (isa) {
    case Isa::kAmx:  // tiles are for the linears; these run their AVX-512 build
    case Isa::kAvx512:
      return {"avx512", &host_ops::avx512::RmsNorm, &host_ops::avx512::SwiGlu,
              &host_ops::avx512::Add, &host_ops::avx512::Rope};
    case Isa::kAvx2:
      return {"avx2", &host_ops::avx2::RmsNorm, &host_ops::avx2::SwiGlu, &host_ops::avx2::Add,
              &host_ops::avx2::Rope};
    case Isa::kScalar: break;
  }
  return {"generic", &host_ops::generic::RmsNorm, &host_ops::generic::SwiGlu,
          &host_ops::generic::Add, &host_ops::generic::Rope};
}

HostOpsKernels Active() { return BuildFor(ActiveIsa()); }

// Below this many floats per call the work stays on the calling thread.
constexpr int64_t kMinParallel = 16 * 1024;
// Elementwise ranges start at multiples of one vector of the kernels (16 floats).
constexpr int64_t kLanes16 = 16;

// Rows [0, rows) of `row_len` floats each, in ranges of whole rows over the pool.
template <typename Fn>
void ForRows(int64_t rows, int64_t row_len, Fn&& fn) {
  ThreadPool& pool = ThreadPool::Default();
  if (rows < 2 || rows * row_len < kMinParallel || pool.size() < 2) return fn(0, rows);
  const int64_t grain = std::max<int64_t>(1, rows / (2 * pool.size()));
  pool.ParallelFor(rows, grain, fn);
}

// Elements [0, n) in ranges that start at multiples of 16 over the pool.
template <typename Fn>
void ForElements(int64_t n, Fn&& fn) {
  ThreadPool& pool = ThreadPool::Default();
  if (n < kMinParallel || pool.size() < 2) return fn(0, n);
  const int64_t chunks = (n + kLanes16 - 1) / kLanes16;
  pool.ParallelFor(chunks, std::max<int64_t>(1, chunks / (2 * pool.size())),
                   [&](int64_t b, int64_t e) { fn(b * kLanes16, std::min(n, e * kLanes16)); });
}

}  // namespace

void RmsNorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out) {
  const auto k = Active().rms_norm;
  ForRows(rows, dim, [&](int64_t b, int64_t e) {
    k(x + b * dim, w, e - b, dim, eps, out + b * dim);
  });
}

void SwiGlu(float* gate, const float* up, int64_t n) {
  const auto k = Active().swiglu;
  ForElements(n, [&](int64_t b, int64_t e) { k(gate + b, up + b, e - b); });
}

SwiGluFn SwiGluKernel() { return Active().swiglu; }

void AddInPlace(float* x, const float* y, int64_t n) {
  const auto k = Active().add;
  ForElements(n, [&](int64_t b, int64_t e) { k(x + b, y + b, e - b); });
}

void AddRmsNorm(float* x, const float* y, const float* w, int64_t rows, int64_t dim, float eps,
                float* out) {
  const HostOpsKernels k = Active();
  ForRows(rows, dim, [&](int64_t b, int64_t e) {
    k.add(x + b * dim, y + b * dim, (e - b) * dim);
    k.rms_norm(x + b * dim, w, e - b, dim, eps, out + b * dim);
  });
}

void ApplyRope(float* x, int64_t tokens, int32_t heads, int64_t half, const float* cos,
               const float* sin) {
  const auto k = Active().rope;
  const int64_t row = heads * 2 * half;
  ForRows(tokens, row, [&](int64_t b, int64_t e) {
    k(x + b * row, e - b, heads, half, cos + b * half, sin + b * half);
  });
}

std::vector<HostOpsKernels> HostOpsBuilds() {
  std::vector<HostOpsKernels> v;
  for (Isa isa : SupportedIsas()) {
    if (isa != Isa::kAmx) v.push_back(BuildFor(isa));  // the avx512 build again
  }
  return v;
}

}  // namespace qsl
