// The host fp32 kernels (host_ops.h): every ISA build gives the same bits, the thread split
// changes nothing, and the results match plain double-precision definitions closely.
#include "engine/host_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/thread_pool.h"

namespace qsl {
namespace {

std::vector<float> Random(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Row lengths with and without a tail after the 16-float vectors.
constexpr int64_t kDims[] = {1, 15, 16, 40, 2048, 2051};

TEST(HostOps, EveryIsaBuildGivesTheSameBits) {
  const std::vector<HostOpsKernels> builds = HostOpsBuilds();
  ASSERT_GE(builds.size(), 1u);
  EXPECT_STREQ(builds.front().name, "generic");
  for (int64_t dim : kDims) {
    const int64_t rows = 5;
    const std::vector<float> x = Random(rows * dim, 1, 3.0f), w = Random(dim, 2, 1.0f);
    // Sigmoid arguments across the whole range, including where exp(-g) overflows.
    std::vector<float> gate = Random(rows * dim, 3, 30.0f), up = Random(rows * dim, 4, 1.0f);
    gate[0] = 200.0f;
    if (gate.size() > 1) gate[1] = -200.0f;
    const int64_t half = 8, heads = 3;
    const std::vector<float> cs = Random(rows * half, 5, 1.0f), sn = Random(rows * half, 6, 1.0f);
    const std::vector<float> q = Random(rows * heads * 2 * half, 7, 1.0f);

    std::vector<float> norm0, silu0, add0, rope0;
    for (size_t i = 0; i < builds.size(); ++i) {
      const HostOpsKernels& k = builds[i];
      std::vector<float> norm(x.size()), silu = gate, add = x, rope = q;
      k.rms_norm(x.data(), w.data(), rows, dim, 1e-5f, norm.data());
      k.swiglu(silu.data(), up.data(), static_cast<int64_t>(silu.size()));
      k.add(add.data(), up.data(), static_cast<int64_t>(add.size()));
      k.rope(rope.data(), rows, heads, half, cs.data(), sn.data());
      if (i == 0) {
        norm0 = norm, silu0 = silu, add0 = add, rope0 = rope;
        continue;
      }
      EXPECT_TRUE(SameBits(norm, norm0)) << k.name << " rms_norm dim " << dim;
      EXPECT_TRUE(SameBits(silu, silu0)) << k.name << " swiglu dim " << dim;
      EXPECT_TRUE(SameBits(add, add0)) << k.name << " add dim " << dim;
      EXPECT_TRUE(SameBits(rope, rope0)) << k.name << " rope dim " << dim;
    }
  }
}

TEST(HostOps, MatchPlainDefinitions) {
  const int64_t rows = 7, dim = 2051;
  const std::vector<float> x = Random(rows * dim, 11, 2.0f), w = Random(dim, 12, 1.0f);
  std::vector<float> out(x.size());
  RmsNorm(x.data(), w.data(), rows, dim, 1e-5f, out.data());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < dim; ++i) ss += double{x[r * dim + i]} * x[r * dim + i];
    const double inv = 1.0 / std::sqrt(ss / dim + 1e-5);
    for (int64_t i = 0; i < dim; ++i) {
      const double want = w[i] * (x[r * dim + i] * inv);
      ASSERT_NEAR(out[r * dim + i], want, 1e-5 * (1.0 + std::fabs(want))) << r << " " << i;
    }
  }
  std::vector<float> gate = Random(rows * dim, 13, 8.0f);
  const std::vector<float> up = Random(rows * dim, 14, 1.0f);
  gate[3] = 100.0f;
  gate[4] = -100.0f;
  std::vector<float> g_in = gate;
  SwiGlu(gate.data(), up.data(), static_cast<int64_t>(gate.size()));
  for (size_t i = 0; i < gate.size(); ++i) {
    const double g = g_in[i];
    const double want = g / (1.0 + std::exp(-g)) * up[i];
    ASSERT_NEAR(gate[i], want, 2e-6 * (1.0 + std::fabs(want))) << i << " g " << g;
  }
}

// The pool split (by rows, by 16-aligned element ranges) does not change a bit.
TEST(HostOps, ThreadCountDoesNotChangeBits) {
  const int64_t rows = 33, dim = 2048, n = rows * 5632 + 7;
  const std::vector<float> x = Random(rows * dim, 21, 1.0f), w = Random(dim, 22, 1.0f);
  const std::vector<float> gate = Random(n, 23, 4.0f), up = Random(n, 24, 1.0f);
  std::vector<std::vector<float>> norms, silus;
  for (int threads : {1, 2, 3}) {
    ASSERT_TRUE(ThreadPool::SetDefaultSize(threads).ok());
    std::vector<float> norm(x.size()), silu = gate;
    RmsNorm(x.data(), w.data(), rows, dim, 1e-6f, norm.data());
    SwiGlu(silu.data(), up.data(), n);
    norms.push_back(norm);
    silus.push_back(silu);
  }
  ASSERT_TRUE(ThreadPool::SetDefaultSize(ThreadPool::AvailableCpus()).ok());
  for (size_t i = 1; i < norms.size(); ++i) {
    EXPECT_TRUE(SameBits(norms[i], norms[0])) << i;
    EXPECT_TRUE(SameBits(silus[i], silus[0])) << i;
  }
}

// The fused residual add + norm is the two calls, bit for bit, with any thread count: on one
// row (the caller alone), a decode batch's rows and a prompt's (split over the pool).
TEST(HostOps, AddRmsNormIsAddThenNorm) {
  for (int threads : {1, 2, 3}) {
    ASSERT_TRUE(ThreadPool::SetDefaultSize(threads).ok());
    for (int64_t rows : {1, 32, 77}) {
      for (int64_t dim : {40, 2051}) {
        const std::vector<float> x = Random(rows * dim, 31, 1.0f), y = Random(rows * dim, 32, 0.5f);
        const std::vector<float> w = Random(dim, 33, 1.0f);
        std::vector<float> want_x = x, want_norm(x.size());
        AddInPlace(want_x.data(), y.data(), rows * dim);
        RmsNorm(want_x.data(), w.data(), rows, dim, 1e-5f, want_norm.data());
        std::vector<float> got_x = x, got_norm(x.size());
        AddRmsNorm(got_x.data(), y.data(), w.data(), rows, dim, 1e-5f, got_norm.data());
        EXPECT_TRUE(SameBits(got_x, want_x)) << threads << " threads, " << rows << "x" << dim;
        EXPECT_TRUE(SameBits(got_norm, want_norm)) << threads << " threads, " << rows << "x" << dim;
      }
    }
  }
  ASSERT_TRUE(ThreadPool::SetDefaultSize(ThreadPool::AvailableCpus()).ok());
}

}  // namespace
}  // namespace qsl
