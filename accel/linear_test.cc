// Every kernel path this CPU has (scalar, AVX2, AVX-512 VNNI) against the scalar reference, bit
// for bit, for W8 and W4; and the scalar reference against a plain matmul over the format's own
// expansion (ExpandToInt8), so a layout misreading cannot hide in all paths at once.
#include "accel/linear.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "accel/isa.h"
#include "base/thread_pool.h"
#include "format/checkpoint.h"
#include "gtest/gtest.h"

namespace qsl {
namespace {

// Forces a path for the scope of a test and returns to the automatic choice after.
class ScopedIsa {
 public:
  explicit ScopedIsa(Isa isa) { EXPECT_TRUE(SetIsa(isa).ok()); }
  ~ScopedIsa() { EXPECT_TRUE(SelectIsa("auto").ok()); }
};

std::vector<uint32_t> Bits(const std::vector<float>& v) {
  std::vector<uint32_t> out(v.size());
  std::memcpy(out.data(), v.data(), v.size() * sizeof(float));
  return out;
}

struct Case {
  int64_t m, n, k;
  TileShape tile;
  int32_t group;  // 0 = W8
};

std::string Name(const Case& c) {
  return std::string(c.group == 0 ? "w8" : "w4g" + std::to_string(c.group)) + "_m" +
         std::to_string(c.m) + "_n" + std::to_string(c.n) + "_k" + std::to_string(c.k) +
         "_tile" + std::to_string(c.tile.tile_k) + "x" + std::to_string(c.tile.tile_n);
}

void PrintTo(const Case& c, std::ostream* os) { *os << Name(c); }

PackedLinear RandomW8(int64_t n, int64_t k, TileShape tile, std::mt19937& rng) {
  std::uniform_int_distribution<int> q(-127, 127);
  std::uniform_real_distribution<float> s(0.001f, 0.1f);
  W8Weights w{n, k, std::vector<int8_t>(n * k), std::vector<float>(n)};
  for (auto& v : w.q) v = static_cast<int8_t>(q(rng));
  for (auto& v : w.scale) v = s(rng);
  auto p = PackW8(w, tile);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

// Random in-contract groups: any (s, z) with (q - z) * s inside [-127, 127].
PackedLinear RandomW4(int64_t n, int64_t k, TileShape tile, int32_t group, std::mt19937& rng) {
  W4Weights w;
  w.n = n;
  w.k = k;
  w.group = group;
  std::uniform_int_distribution<int> nib(0, 15), sc(0, 127);
  w.q4.resize(n * k);
  for (auto& v : w.q4) v = static_cast<uint8_t>(nib(rng));
  for (int64_t i = 0; i < n * w.num_groups(); ++i) {
    uint8_t s, z;
    do {
      z = static_cast<uint8_t>(nib(rng));
      s = static_cast<uint8_t>(sc(rng) % 18);
    } while (!W4GroupInRange(s, z));
    w.gscale.push_back(s);
    w.gzero.push_back(z);
  }
  std::uniform_real_distribution<float> s(0.001f, 0.1f);
  w.scale.resize(n);
  for (auto& v : w.scale) v = s(rng);
  auto p = PackW4(w, tile);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

PackedLinear RandomWeights(const Case& c, std::mt19937& rng) {
  return c.group == 0 ? RandomW8(c.n, c.k, c.tile, rng) : RandomW4(c.n, c.k, c.tile, c.group, rng);
}

// m rows of stride k_pad, random in [-127, 127] up to k and zero after (as QuantizeActivations
// leaves them).
std::vector<int8_t> RandomActivations(int64_t m, int64_t k, int64_t k_pad, std::mt19937& rng) {
  std::uniform_int_distribution<int> q(-127, 127);
  std::vector<int8_t> a(m * k_pad, 0);
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t i = 0; i < k; ++i) a[t * k_pad + i] = static_cast<int8_t>(q(rng));
  }
  return a;
}

std::vector<float> RandomScales(int64_t m, std::mt19937& rng) {
  std::uniform_real_distribution<float> s(0.001f, 2.0f);
  std::vector<float> out(m);
  for (auto& v : out) v = s(rng);
  return out;
}

// acc = a . W8^T from ExpandToInt8, independent of the kernels' reading of the tiles.
std::vector<int32_t> PlainMatmul(const LinearWeightsView& v, const std::vector<int8_t>& a,
                                 int64_t m) {
  const TiledLayout& l = v.layout;
  const std::vector<int8_t> w = ExpandToInt8(v);
  std::vector<int32_t> acc(m * l.n, 0);
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t n = 0; n < l.n; ++n) {
      int32_t s = 0;
      for (int64_t k = 0; k < l.k; ++k) s += a[t * l.k_pad() + k] * w[n * l.k + k];
      acc[t * l.n + n] = s;
    }
  }
  return acc;
}

// Checks MatmulInt8, Epilogue and the fused LinearInt8 of every path against the scalar
// reference, with output strides wider than n. Returns the reference accumulators.
std::vector<int32_t> ExpectPathsMatch(const PackedLinear& p, const std::vector<int8_t>& a,
                                      int64_t m, const std::vector<float>& a_scale,
                                      const float* bias) {
  const LinearWeightsView v = View(p, bias);
  const int64_t n = v.layout.n, ld = n + 3;
  std::vector<int32_t> ref_acc(m * ld, 0);
  scalar::MatmulInt8(v, a.data(), m, ref_acc.data(), ld);
  std::vector<float> ref_y(m * ld, 0.0f);
  scalar::Epilogue(v, ref_acc.data(), ld, a_scale.data(), m, ref_y.data(), ld);
  for (Isa isa : SupportedIsas()) {
    SCOPED_TRACE(IsaName(isa));
    ScopedIsa scoped(isa);
    std::vector<int32_t> acc(m * ld, 0);
    MatmulInt8(v, a.data(), m, acc.data(), ld);
    EXPECT_EQ(acc, ref_acc);
    std::vector<float> y(m * ld, 0.0f), fused(m * ld, 0.0f);
    Epilogue(v, ref_acc.data(), ld, a_scale.data(), m, y.data(), ld);
    EXPECT_EQ(Bits(y), Bits(ref_y));
    LinearInt8(v, a.data(), a_scale.data(), m, fused.data(), ld);
    EXPECT_EQ(Bits(fused), Bits(ref_y));
  }
  return ref_acc;
}

class LinearPathsTest : public ::testing::TestWithParam<Case> {};

TEST_P(LinearPathsTest, AllPathsMatchScalarBitForBit) {
  const Case c = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(c.m * 7919 + c.n * 31 + c.k + c.group));
  const PackedLinear p = RandomWeights(c, rng);
  const int64_t k_pad = p.layout.k_pad();
  const std::vector<int8_t> a = RandomActivations(c.m, c.k, k_pad, rng);
  const std::vector<float> a_scale = RandomScales(c.m, rng);
  std::vector<float> bias(c.n);
  for (auto& b : bias) b = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);

  const std::vector<int32_t> ref = ExpectPathsMatch(p, a, c.m, a_scale, nullptr);
  ExpectPathsMatch(p, a, c.m, a_scale, bias.data());

  // The reference itself agrees with a plain matmul over the format's expansion.
  const std::vector<int32_t> plain = PlainMatmul(View(p), a, c.m);
  const int64_t ld = c.n + 3;
  for (int64_t t = 0; t < c.m; ++t) {
    for (int64_t n = 0; n < c.n; ++n) ASSERT_EQ(ref[t * ld + n], plain[t * c.n + n]) << t << "," << n;
  }
}

// m in {1, 2, 7, 128, 300}; odd n and n not a multiple of tile_n; k not a multiple of the group
// or the tile; tile_n 48 (AVX-512 takes it as 3 vectors), 20 (no SIMD path: scalar fallback).
// m = 37, k = 5000: several row blocks over several K blocks of weights (32 KiB W8, 64 KiB W4),
// where the first block stores the totals and each block's passes prefetch the next one.
// W4 tiles of 256 and 512 K with one group each: segments as long as the tile.
constexpr TileShape kDefault{128, 64};
INSTANTIATE_TEST_SUITE_P(
    Shapes, LinearPathsTest,
    ::testing::Values(
        Case{1, 64, 128, kDefault, 0}, Case{1, 67, 300, kDefault, 0},
        Case{2, 131, 257, kDefault, 0}, Case{7, 200, 1000, kDefault, 0},
        Case{128, 130, 260, kDefault, 0}, Case{300, 77, 130, kDefault, 0},
        Case{5, 50, 100, {64, 32}, 0}, Case{9, 99, 200, {32, 16}, 0},
        Case{3, 100, 70, {128, 48}, 0}, Case{6, 300, 129, {256, 128}, 0},
        Case{4, 45, 60, {16, 20}, 0}, Case{37, 130, 5000, kDefault, 0},
        Case{37, 130, 5000, kDefault, 128}, Case{37, 130, 5000, kDefault, 64},
        Case{1, 64, 128, kDefault, 128}, Case{1, 67, 300, kDefault, 128},
        Case{2, 131, 257, kDefault, 64}, Case{7, 200, 1000, kDefault, 32},
        Case{128, 130, 260, kDefault, 128}, Case{300, 77, 130, kDefault, 64},
        Case{5, 50, 100, {64, 32}, 32}, Case{9, 99, 200, {32, 16}, 128},
        Case{3, 100, 70, {128, 48}, 64}, Case{6, 300, 129, {256, 128}, 128},
        Case{13, 33, 300, {64, 32}, 256}, Case{4, 45, 60, {16, 20}, 32},
        Case{37, 130, 1500, {256, 64}, 256}, Case{5, 70, 1100, {512, 64}, 512},
        Case{2, 70, 1100, {512, 128}, 512},
        // The AMX path's cases (14 rows and more, tile_k a multiple of 64, tile_n of 32): whole
        // and short row groups, the smallest row count it takes, groups of 32, wide tiles.
        Case{14, 64, 128, kDefault, 128}, Case{16, 100, 200, {64, 32}, 0},
        Case{20, 130, 700, kDefault, 32}, Case{24, 300, 300, {256, 128}, 128},
        Case{48, 70, 1100, {512, 64}, 512}, Case{50, 140, 400, {128, 32}, 0},
        Case{20, 70, 600, {64, 32}, 256}),  // groups longer than a tile
    [](const ::testing::TestParamInfo<Case>& info) { return Name(info.param); });

// The thread count changes nothing: the same bits with 1, 2 and 3 threads.
TEST(LinearTest, ThreadCountDoesNotChangeBits) {
  std::mt19937 rng(11);
  const Case c{37, 515, 700, kDefault, 128};
  const PackedLinear p = RandomWeights(c, rng);
  const std::vector<int8_t> a = RandomActivations(c.m, c.k, p.layout.k_pad(), rng);
  const std::vector<float> a_scale = RandomScales(c.m, rng);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    ASSERT_TRUE(ThreadPool::SetDefaultSize(threads).ok());
    std::vector<float> y(c.m * c.n);
    LinearInt8(View(p), a.data(), a_scale.data(), c.m, y.data(), c.n);
    results.push_back(y);
  }
  ASSERT_TRUE(ThreadPool::SetDefaultSize(ThreadPool::AvailableCpus()).ok());
  EXPECT_EQ(Bits(results[0]), Bits(results[1]));
  EXPECT_EQ(Bits(results[0]), Bits(results[2]));
}

// Q/K/V and gate/up run as one call over their shared activations: every weight (W8 and W4,
// different N, one with a tile the SIMD paths do not cut so it falls back to the scalar
// reference) must come out as its own LinearInt8 call gives it, on every path and row count.
TEST(LinearTest, SharedCallMatchesOneCallPerWeight) {
  std::mt19937 rng(17);
  const int64_t k = 700;
  std::vector<PackedLinear> packed;
  packed.push_back(RandomW8(515, k, kDefault, rng));
  packed.push_back(RandomW4(64, k, kDefault, 128, rng));
  packed.push_back(RandomW4(300, k, kDefault, 32, rng));
  packed.push_back(RandomW8(40, k, TileShape{kDefault.tile_k, 8}, rng));
  std::vector<LinearWeightsView> views;
  for (const PackedLinear& p : packed) views.push_back(View(p));
  const int64_t k_pad = views[0].layout.k_pad();
  for (const LinearWeightsView& v : views) ASSERT_EQ(v.layout.k_pad(), k_pad);
  for (int64_t m : {1, 7, 32, 130}) {
    SCOPED_TRACE(m);
    const std::vector<int8_t> a = RandomActivations(m, k, k_pad, rng);
    const std::vector<float> a_scale = RandomScales(m, rng);
    for (Isa isa : SupportedIsas()) {
      SCOPED_TRACE(IsaName(isa));
      ScopedIsa scoped(isa);
      std::vector<std::vector<float>> want, got;
      std::vector<float*> ys;
      for (const LinearWeightsView& v : views) {
        want.emplace_back(m * v.layout.n, 0.0f);
        LinearInt8(v, a.data(), a_scale.data(), m, want.back().data(), v.layout.n);
        got.emplace_back(m * v.layout.n, -1.0f);
      }
      for (auto& y : got) ys.push_back(y.data());
      LinearInt8Shared(views, a.data(), a_scale.data(), m, ys);
      for (size_t j = 0; j < views.size(); ++j) EXPECT_EQ(Bits(got[j]), Bits(want[j])) << j;
    }
  }
}

// gate/up as one fused call: each item's tiles of both outputs combined in place and written
// once. Must equal the two LinearInt8 calls and the combination row by row, bit for bit, on
// every path, row count and thread count; weights the SIMD paths cannot pair (different
// layouts, a tile they do not cut) take the whole-output fallback with the same result.
void Combine(float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) a[i] = a[i] * 0.5f - b[i] * b[i];
}

TEST(LinearTest, PairCallMatchesTwoCallsAndCombine) {
  std::mt19937 rng(23);
  const int64_t k = 700;
  struct Pair {
    PackedLinear a, b;
  };
  std::vector<Pair> pairs;
  pairs.push_back({RandomW4(300, k, kDefault, 128, rng), RandomW4(300, k, kDefault, 128, rng)});
  pairs.push_back({RandomW8(131, k, kDefault, rng), RandomW8(131, k, kDefault, rng)});
  pairs.push_back({RandomW4(64, k, kDefault, 32, rng), RandomW4(64, k, kDefault, 64, rng)});
  pairs.push_back({RandomW8(40, k, TileShape{kDefault.tile_k, 8}, rng),
                   RandomW8(40, k, TileShape{kDefault.tile_k, 8}, rng)});
  for (const Pair& pair : pairs) {
    const LinearWeightsView va = View(pair.a), vb = View(pair.b);
    const int64_t n = va.layout.n, k_pad = va.layout.k_pad(), ld = n + 5;
    for (int64_t m : {1, 7, 32, 130}) {
      SCOPED_TRACE(::testing::Message() << "n " << n << " m " << m);
      const std::vector<int8_t> a = RandomActivations(m, k, k_pad, rng);
      const std::vector<float> a_scale = RandomScales(m, rng);
      std::vector<float> want(m * ld, 0.0f), yb(m * n);
      LinearInt8(va, a.data(), a_scale.data(), m, want.data(), ld);
      LinearInt8(vb, a.data(), a_scale.data(), m, yb.data(), n);
      for (int64_t t = 0; t < m; ++t) Combine(want.data() + t * ld, yb.data() + t * n, n);
      for (Isa isa : SupportedIsas()) {
        ScopedIsa scoped(isa);
        for (int threads : {1, 2, 3}) {
          SCOPED_TRACE(::testing::Message() << IsaName(isa) << ", " << threads << " threads");
          ASSERT_TRUE(ThreadPool::SetDefaultSize(threads).ok());
          std::vector<float> got(m * ld, 0.0f);
          LinearInt8Pair(va, vb, a.data(), a_scale.data(), m, &Combine, got.data(), ld);
          EXPECT_EQ(Bits(got), Bits(want));
        }
      }
    }
  }
  ASSERT_TRUE(ThreadPool::SetDefaultSize(ThreadPool::AvailableCpus()).ok());
}

// Extremes at the contract's limit: |a| = |w| = 127 over the largest K the loader accepts, so
// the int32 sums are near 2^31 and the AVX-512 path's a*(w + 128) sums wrap (and must still
// come out exact); and zero rows.
TEST(LinearTest, ExtremeValuesAtTheLargestK) {
  const int64_t k = 132992, n = 19, m = 3;
  for (int sign : {1, -1}) {
    W8Weights w{n, k, std::vector<int8_t>(n * k, static_cast<int8_t>(127)),
                std::vector<float>(n, 1.0f)};
    auto p = PackW8(w, kDefault);
    ASSERT_TRUE(p.ok());
    std::vector<int8_t> a(m * p->layout.k_pad(), 0);
    for (int64_t i = 0; i < k; ++i) {
      a[i] = static_cast<int8_t>(127 * sign);                // row 0: +-127
      a[p->layout.k_pad() + i] = static_cast<int8_t>(-127);  // row 1: -127; row 2 stays zero
    }
    const std::vector<int32_t> ref = ExpectPathsMatch(*p, a, m, {1.0f, 1.0f, 0.0f}, nullptr);
    EXPECT_EQ(ref[0], sign * 127 * 127 * static_cast<int32_t>(k));
    EXPECT_EQ(ref[(n + 3) * 2], 0);
  }
}

// (q4, z, s) = (15, 0, 8) -> +120 and (0, 15, 8) -> -120 in alternating groups, against rows of
// +-127: the segment sums reach +-127 * segment, for segments of 128, 256 and 512 (one group per
// tile of that many K).
TEST(LinearTest, ExtremeW4Groups) {
  for (int32_t group : {128, 256, 512}) {
    SCOPED_TRACE(group);
    const int64_t n = 21, k = 2 * group + 200, m = 3;
    W4Weights w;
    w.n = n;
    w.k = k;
    w.group = group;
    w.q4.resize(n * k);
    for (int64_t i = 0; i < n * k; ++i) w.q4[i] = ((i % k) / group) % 2 == 0 ? 15 : 0;
    for (int64_t i = 0; i < n * w.num_groups(); ++i) {
      w.gscale.push_back(8);
      w.gzero.push_back((i % w.num_groups()) % 2 == 0 ? 0 : 15);
    }
    w.scale.assign(n, 0.5f);
    auto p = PackW4(w, TileShape{group, 64});
    ASSERT_TRUE(p.ok());
    const int64_t k_pad = p->layout.k_pad();
    std::vector<int8_t> a(m * k_pad, 0);
    for (int64_t i = 0; i < k; ++i) {
      a[i] = static_cast<int8_t>(i % 2 == 0 ? 127 : -127);
      a[k_pad + i] = 127;
      a[2 * k_pad + i] = -127;
    }
    const std::vector<int32_t> ref = ExpectPathsMatch(*p, a, m, {0.25f, 3.0f, 1.0f}, nullptr);
    // Row 1: +120 * 127 for each K of an even group, -120 * 127 for each of an odd one.
    int64_t want = 0;
    for (int64_t i = 0; i < k; ++i) want += (i / group) % 2 == 0 ? 120 * 127 : -120 * 127;
    EXPECT_EQ(ref[n + 3], want);
  }
}

// --- activation quantization -----------------------------------------------------------------

void ExpectQuantizeMatches(const std::vector<float>& x, int64_t m, int64_t k, int64_t ldx,
                           int64_t k_pad) {
  std::vector<int8_t> ref_q(m * k_pad, 99);
  std::vector<float> ref_s(m);
  scalar::QuantizeActivations(x.data(), m, k, ldx, k_pad, ref_q.data(), ref_s.data());
  for (Isa isa : SupportedIsas()) {
    SCOPED_TRACE(IsaName(isa));
    ScopedIsa scoped(isa);
    std::vector<int8_t> q(m * k_pad, 99);
    std::vector<float> s(m);
    QuantizeActivations(x.data(), m, k, ldx, k_pad, q.data(), s.data());
    EXPECT_EQ(q, ref_q);
    EXPECT_EQ(Bits(s), Bits(ref_s));
  }
}

TEST(QuantizeActivationsTest, RandomRowsMatchScalar) {
  std::mt19937 rng(5);
  for (int64_t k : {1, 15, 16, 17, 100, 1000, 4099}) {
    const int64_t m = 5, ldx = k + 5, k_pad = (k + 127) / 128 * 128;
    std::vector<float> x(m * ldx);
    std::normal_distribution<float> d(0.0f, 3.0f);
    for (auto& v : x) v = d(rng);
    for (int64_t i = 0; i < ldx; ++i) x[2 * ldx + i] = 0.0f;  // a zero row: scale 0, q 0
    ExpectQuantizeMatches(x, m, k, ldx, k_pad);
  }
}

// x * (127 / amax) exactly k + 0.5: amax 127 gives inv 1, amax 63.5 gives inv 2.
TEST(QuantizeActivationsTest, TiesRoundHalfToEven) {
  const std::vector<float> row1 = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, -126.5f,
                                   3.5f, 4.5f, -127.0f, 0.0f, 5.5f, 6.5f, 7.5f, 8.5f, 9.5f};
  std::vector<float> row2(row1.size());
  for (size_t i = 0; i < row1.size(); ++i) row2[i] = row1[i] / 2.0f;
  const std::vector<int8_t> expect = {127, 0, 2, 2, 0, -2, -2, 126, -126,
                                      4, 4, -127, 0, 6, 6, 8, 8, 10};
  const int64_t k = static_cast<int64_t>(row1.size()), k_pad = 32;
  std::vector<float> x(row1);
  x.insert(x.end(), row2.begin(), row2.end());
  for (Isa isa : SupportedIsas()) {
    SCOPED_TRACE(IsaName(isa));
    ScopedIsa scoped(isa);
    std::vector<int8_t> q(2 * k_pad);
    std::vector<float> s(2);
    QuantizeActivations(x.data(), 2, k, k, k_pad, q.data(), s.data());
    for (int t = 0; t < 2; ++t) {
      EXPECT_EQ(std::vector<int8_t>(q.begin() + t * k_pad, q.begin() + t * k_pad + k), expect);
      EXPECT_EQ(std::vector<int8_t>(q.begin() + t * k_pad + k, q.begin() + (t + 1) * k_pad),
                std::vector<int8_t>(k_pad - k, 0));
    }
    EXPECT_EQ(s[0], 1.0f);
  }
  ExpectQuantizeMatches(x, 2, k, k, k_pad);
}

// A row whose amax is the smallest denormal: 127 / amax overflows to inf, x * inf = +-inf, and
// every path must clamp to +-127 (a bare cvtps2dq would give 0x80000000).
TEST(QuantizeActivationsTest, DenormalRowSaturates) {
  const float tiny = std::nextafter(0.0f, 1.0f);
  std::vector<float> x(40);
  for (size_t i = 0; i < x.size(); ++i) x[i] = i % 3 == 0 ? -tiny : tiny;
  ExpectQuantizeMatches(x, 1, 40, 40, 128);
}

// --- every linear layer of the bundled model ----------------------------------------------------

// Round-to-nearest quantization, enough to give the kernels real weight distributions: W8 per
// channel; W4 on top of it with zero 8 and the smallest scale that keeps each group in range.
PackedLinear QuantizeW8(const std::vector<float>& f, int64_t n, int64_t k) {
  W8Weights w{n, k, std::vector<int8_t>(n * k), std::vector<float>(n)};
  for (int64_t r = 0; r < n; ++r) {
    float amax = 0.0f;
    for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(f[r * k + i]));
    w.scale[r] = amax > 0.0f ? amax / 127.0f : 1.0f;
    for (int64_t i = 0; i < k; ++i) {
      w.q[r * k + i] = static_cast<int8_t>(std::clamp(std::nearbyint(f[r * k + i] / w.scale[r]),
                                                      -127.0f, 127.0f));
    }
  }
  return *PackW8(w, kDefault);
}

PackedLinear QuantizeW4(const PackedLinear& w8, int32_t group) {
  const W8Weights q = UnpackW8(View(w8));
  W4Weights w;
  w.n = q.n;
  w.k = q.k;
  w.group = group;
  w.scale = q.scale;
  w.q4.resize(q.n * q.k);
  for (int64_t r = 0; r < q.n; ++r) {
    for (int64_t g = 0; g < w.num_groups(); ++g) {
      const int64_t k0 = g * group, k1 = std::min<int64_t>(q.k, k0 + group);
      int amax = 0;
      for (int64_t i = k0; i < k1; ++i) amax = std::max(amax, std::abs(int{q.q[r * q.k + i]}));
      const int s = std::clamp((amax + 6) / 7, 1, 15);
      w.gscale.push_back(static_cast<uint8_t>(s));
      w.gzero.push_back(8);
      for (int64_t i = k0; i < k1; ++i) {
        const float lv = std::nearbyint(static_cast<float>(q.q[r * q.k + i]) / s);
        w.q4[r * q.k + i] = static_cast<uint8_t>(std::clamp(lv + 8.0f, 0.0f, 15.0f));
      }
    }
  }
  return *PackW4(w, kDefault);
}

TEST(LinearTest, EveryLayerOfTheBundledModel) {
  auto ckpt = HfCheckpoint::Open(std::string(QSL_SOURCE_DIR) + "/models/qsl-tiny-llama");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  std::mt19937 rng(17);
  int layers = 0;
  for (const TensorSpec& spec : LlamaTensorSpecs((*ckpt)->config())) {
    const bool linear = spec.shape.size() == 2 && spec.name.find("embed") == std::string::npos;
    if (!linear) continue;
    SCOPED_TRACE(spec.name);
    auto f = (*ckpt)->ReadF32(spec.name);
    ASSERT_TRUE(f.ok()) << f.status();
    const int64_t n = spec.shape[0], k = spec.shape[1];
    const PackedLinear w8 = QuantizeW8(*f, n, k);
    const PackedLinear w4 = QuantizeW4(w8, 128);
    // 3 rows: a decode batch on the vector paths; 20: one the AMX path takes, where it has one.
    for (int64_t m : {3, 20}) {
      SCOPED_TRACE(m);
      std::vector<float> x(m * k);
      std::normal_distribution<float> d(0.0f, 1.0f);
      for (auto& v : x) v = d(rng);
      std::vector<int8_t> a(m * w8.layout.k_pad());
      std::vector<float> a_scale(m);
      scalar::QuantizeActivations(x.data(), m, k, k, w8.layout.k_pad(), a.data(),
                                  a_scale.data());
      ExpectQuantizeMatches(x, m, k, k, w8.layout.k_pad());
      ExpectPathsMatch(w8, a, m, a_scale, nullptr);
      ExpectPathsMatch(w4, a, m, a_scale, nullptr);
    }
    ++layers;
  }
  EXPECT_EQ(layers, 6 * 7 + 1);  // q, k, v, o, gate, up, down per layer, and lm_head
}

// --- path selection ------------------------------------------------------------------------------

TEST(IsaTest, NamesParseAndUnknownIsAnError) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    auto parsed = ParseIsa(IsaName(isa));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, isa);
  }
  EXPECT_EQ(*ParseIsa("AVX2"), Isa::kAvx2);
  EXPECT_EQ(*ParseIsa("auto"), BestIsa());
  const absl::Status bad = SelectIsa("avx9000");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("avx9000"), absl::string_view::npos);
}

TEST(IsaTest, ForcingAPathWorksOrSaysWhatIsMissing) {
  EXPECT_TRUE(IsaSupported(Isa::kScalar));
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    const absl::Status s = SetIsa(isa);
    EXPECT_EQ(s.ok(), IsaSupported(isa)) << s;
    if (s.ok()) {
      EXPECT_EQ(ActiveIsa(), isa);
    } else {
      EXPECT_NE(s.message().find("lacks"), absl::string_view::npos) << s;
    }
  }
  ASSERT_TRUE(SelectIsa("auto").ok());
  EXPECT_EQ(ActiveIsa(), BestIsa());
}

}  // namespace
}  // namespace qsl
