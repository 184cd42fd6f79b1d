// RTN onto the contract's grids: values in range, round half to even, W4 groups that the packer
// accepts, a group fit close to the exhaustive optimum, and dequantized weights that are exactly
// what the integer path multiplies.
#include "quantize/grid.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace qsl {
namespace {

std::vector<float> Gaussian(size_t n, std::mt19937& rng, float sigma = 1.0f) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(Grid, W8RoundsHalfToEvenWithinRange) {
  EXPECT_EQ(RoundW8(2.5f, 1.0f), 2);
  EXPECT_EQ(RoundW8(3.5f, 1.0f), 4);
  EXPECT_EQ(RoundW8(-2.5f, 1.0f), -2);
  EXPECT_EQ(RoundW8(-300.0f, 1.0f), -127);
  EXPECT_EQ(RoundW8(5.0f, 0.0f), 0);
}

TEST(Grid, RtnW8KeepsEveryChannelOnItsGrid) {
  std::mt19937 rng(1);
  const int64_t n = 7, k = 45;
  std::vector<float> w = Gaussian(n * k, rng);
  std::fill_n(w.begin() + 2 * k, k, 0.0f);  // an all-zero channel
  const W8Weights q = RtnW8(w, n, k);
  EXPECT_EQ(q.scale[2], 0.0f);
  for (int64_t r = 0; r < n; ++r) {
    int amax = 0;
    for (int64_t c = 0; c < k; ++c) {
      const int v = q.q[r * k + c];
      amax = std::max(amax, std::abs(v));
      EXPECT_LE(std::fabs(w[r * k + c] - static_cast<float>(v) * q.scale[r]),
                0.5f * q.scale[r] * 1.0001f);
    }
    EXPECT_EQ(amax, r == 2 ? 0 : 127) << r;
  }
  EXPECT_TRUE(PackW8(q, TileShape{}).ok());
}

// The best error over every (s, z) the contract allows: the reference the fit is judged by.
double ExhaustiveError(std::span<const float> u) {
  double best = std::numeric_limits<double>::infinity();
  for (int s = 1; s <= 15; ++s) {
    for (int z = 0; z <= 15; ++z) {
      const W4Group g{static_cast<uint8_t>(s), static_cast<uint8_t>(z)};
      if (!W4GroupInRange(g.s, g.z)) continue;
      double e = 0.0;
      for (float v : u) {
        // The exhaustive search also picks each value's best level, not just the rounded one.
        double bq = std::numeric_limits<double>::infinity();
        for (int q = 0; q <= 15; ++q) {
          const double d = v - W4Level(static_cast<uint8_t>(q), g);
          bq = std::min(bq, d * d);
        }
        e += bq;
      }
      best = std::min(best, e);
    }
  }
  return best;
}

TEST(Grid, W4GroupFitIsInRangeAndNearTheExhaustiveOptimum) {
  std::mt19937 rng(2);
  double fit_total = 0.0, best_total = 0.0;
  for (int trial = 0; trial < 300; ++trial) {
    // Groups of every spread: narrow, typical, and spanning the whole level range.
    const float sigma = std::array<float, 4>{3.0f, 20.0f, 45.0f, 90.0f}[trial % 4];
    std::vector<float> u = Gaussian(64, rng, sigma);
    for (float& v : u) v = std::clamp(v, -127.0f, 127.0f);
    double err = 0.0;
    const W4Group g = FitW4Group(u, {}, 0, &err);
    ASSERT_TRUE(W4GroupInRange(g.s, g.z)) << int(g.s) << " " << int(g.z);
    const double best = ExhaustiveError(u);
    EXPECT_LE(err, best * 1.5 + 1e-9) << "trial " << trial;
    fit_total += err;
    best_total += best;
  }
  EXPECT_LE(fit_total, best_total * 1.1);
}

TEST(Grid, W4GroupFitIsExactOnRepresentableValues) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> q(0, 15);
  for (const W4Group g : {W4Group{7, 9}, W4Group{15, 8}, W4Group{1, 0}, W4Group{9, 1}}) {
    std::vector<float> u(128);
    for (float& v : u) v = static_cast<float>(W4Level(static_cast<uint8_t>(q(rng)), g));
    u[0] = static_cast<float>(W4Level(0, g));  // both ends present
    u[1] = static_cast<float>(W4Level(15, g));
    double err = -1.0;
    FitW4Group(u, {}, 0, &err);
    EXPECT_EQ(err, 0.0) << int(g.s) << " " << int(g.z);
  }
}

TEST(Grid, W4ImportanceShiftsTheErrorToUnimportantChannels) {
  std::mt19937 rng(4);
  const std::vector<float> u = Gaussian(128, rng, 40.0f);
  std::vector<float> imp(128, 1.0f);
  for (int i = 0; i < 8; ++i) imp[i] = 1000.0f;
  const W4Group plain = FitW4Group(u, {});
  const W4Group weighted = FitW4Group(u, ErrorMetric::Diagonal(imp));
  double e_plain = 0.0, e_weighted = 0.0;
  for (int i = 0; i < 8; ++i) {
    const double dp = u[i] - W4Level(RoundW4(u[i], plain), plain);
    const double dw = u[i] - W4Level(RoundW4(u[i], weighted), weighted);
    e_plain += dp * dp;
    e_weighted += dw * dw;
  }
  EXPECT_LE(e_weighted, e_plain);
}

// The group-block metric is d^T H_gg d of the group's own block; its diagonal and its scaled
// form agree with metrics built directly from diag(H) and from diag(a) H diag(a).
TEST(Grid, GroupBlockMetricIsTheGroupsQuadraticForm) {
  std::mt19937 rng(6);
  const int64_t k = 20, m = 50;  // groups of 8: the last one partial
  const int32_t group = 8;
  const std::vector<float> x = Gaussian(m * k, rng);
  std::vector<float> h(k * k, 0.0f);
  for (int64_t t = 0; t < m; ++t)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) h[i * k + j] += x[t * k + i] * x[t * k + j];
  std::vector<float> a = Gaussian(k, rng);
  std::vector<float> ha(h), diag(k), diag_a(k);
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < k; ++j) ha[i * k + j] *= a[i] * a[j];
    diag[i] = h[i * k + i];
    diag_a[i] = ha[i * k + i];
  }
  const ErrorMetric blocks = ErrorMetric::GroupBlocks(h, k, group);
  const ErrorMetric scaled = blocks.Scaled(a);
  const ErrorMetric direct_scaled = ErrorMetric::GroupBlocks(ha, k, group);
  int checked = 0;
  for (int64_t k0 = 0; k0 < k; k0 += group) {
    const int64_t len = std::min<int64_t>(group, k - k0);
    const std::vector<float> d = Gaussian(len, rng);
    double want = 0.0, want_diag = 0.0;
    for (int64_t i = 0; i < len; ++i) {
      for (int64_t j = 0; j < len; ++j) want += double(d[i]) * h[(k0 + i) * k + k0 + j] * d[j];
      want_diag += double(diag[k0 + i]) * d[i] * d[i];
    }
    EXPECT_NEAR(blocks.Error(d, k0), want, 1e-4 * std::abs(want)) << k0;
    EXPECT_NEAR(blocks.Diagonal().Error(d, k0), want_diag, 1e-4 * want_diag) << k0;
    EXPECT_NEAR(scaled.Error(d, k0), direct_scaled.Error(d, k0),
                1e-4 * std::abs(direct_scaled.Error(d, k0))) << k0;
    EXPECT_NEAR(scaled.Diagonal().Error(d, k0), ErrorMetric::Diagonal(diag_a).Error(d, k0),
                1e-4 * ErrorMetric::Diagonal(diag_a).Error(d, k0)) << k0;
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

TEST(Grid, RtnW4PacksAndDequantizesToTheIntegerPathValues) {
  std::mt19937 rng(5);
  const int64_t n = 70, k = 200;  // partial last group and partial tiles
  std::vector<float> w = Gaussian(n * k, rng, 0.02f);
  w[5] = 0.5f;  // an outlier channel
  w[k + 3] = -0.4f;
  w[k + 4] = 0.4f;  // both extremes in one group
  std::fill_n(w.begin() + 9 * k, k, 0.0f);
  const W4Weights q = RtnW4(w, n, k, 128);
  auto packed = PackW4(q, TileShape{});
  ASSERT_TRUE(packed.ok()) << packed.status();
  EXPECT_EQ(q.scale[9], 0.0f);
  // The row with both extremes in one group settles on a protective range below 127.
  EXPECT_GT(q.scale[1], 0.4f / 127.0f * 1.01f);
  const std::vector<int8_t> w8 = ExpandToInt8(View(*packed));
  const std::vector<float> deq = Dequantize(q);
  double err = 0.0, norm = 0.0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      ASSERT_EQ(deq[r * k + c], static_cast<float>(w8[r * k + c]) * q.scale[r]);
      err += std::pow(deq[r * k + c] - w[r * k + c], 2);
      norm += std::pow(w[r * k + c], 2);
    }
  }
  // 4-bit groups of Gaussian weights: about 1% relative squared error.
  EXPECT_LT(err / norm, 0.03);
}

TEST(Grid, EitherSchemeThroughOneEntryPoint) {
  std::mt19937 rng(6);
  const std::vector<float> w = Gaussian(64 * 128, rng);
  const QuantizedWeight a = Rtn(w, 64, 128, {WeightScheme::kW8, 0});
  const QuantizedWeight b = Rtn(w, 64, 128, {WeightScheme::kW4, 64});
  ASSERT_TRUE(std::holds_alternative<W8Weights>(a));
  ASSERT_TRUE(std::holds_alternative<W4Weights>(b));
  EXPECT_EQ(Pack(b, TileShape{})->layout.group, 64);
  EXPECT_EQ(Dequantize(a), Dequantize(std::get<W8Weights>(a)));
}

}  // namespace
}  // namespace qsl
