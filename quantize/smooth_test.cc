// SmoothQuant scales and folds: the formula, and folds that leave the fp32 function unchanged
// (norm -> linear, and v_proj -> o_proj across GQA heads).
#include "quantize/smooth.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace qsl {
namespace {

std::vector<float> Uniform(size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// y[m, n] = x[m, k] w[n, k]^T in double.
std::vector<double> Matmul(const std::vector<float>& x, int64_t m, int64_t k,
                           const std::vector<float>& w, int64_t n) {
  std::vector<double> y(static_cast<size_t>(m * n), 0.0);
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t o = 0; o < n; ++o) {
      for (int64_t i = 0; i < k; ++i) y[t * n + o] += double(x[t * k + i]) * w[o * k + i];
    }
  }
  return y;
}

TEST(Smooth, ScalesFollowTheSmoothQuantFormula) {
  const std::vector<float> act = {16.0f, 1.0f, 0.0f, 9.0f};
  const std::vector<float> w = {1.0f, 4.0f, 2.0f, 0.0f};
  const std::vector<float> s = SmoothScales(act, w, 0.5f);
  EXPECT_FLOAT_EQ(s[0], 4.0f);  // sqrt(16) / sqrt(1)
  EXPECT_FLOAT_EQ(s[1], 0.5f);  // sqrt(1) / sqrt(4)
  EXPECT_FLOAT_EQ(s[2], 1.0f);  // no activation statistic: untouched
  EXPECT_FLOAT_EQ(s[3], 1.0f);  // no weight: untouched
  EXPECT_FLOAT_EQ(SmoothScales(act, w, 1.0f)[0], 16.0f);
  EXPECT_FLOAT_EQ(SmoothScales(act, w, 0.0f)[1], 0.25f);
}

TEST(Smooth, NormFoldKeepsTheFunction) {
  std::mt19937 rng(1);
  const int64_t m = 5, k = 16, n = 8;
  const std::vector<float> x = Uniform(m * k, rng, -3.0f, 3.0f);
  std::vector<float> gamma = Uniform(k, rng, 0.5f, 2.0f);
  std::vector<float> w = Uniform(n * k, rng, -1.0f, 1.0f);
  auto normed = [&](const std::vector<float>& g) {
    std::vector<float> out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] * g[i % k];
    return out;
  };
  const std::vector<double> before = Matmul(normed(gamma), m, k, w, n);
  std::vector<float> act(k, 0.0f), wmax(k, 0.0f);
  ColumnAbsMax(normed(gamma), k, act);
  ColumnAbsMax(w, k, wmax);
  const std::vector<float> s = SmoothScales(act, wmax, 0.5f);
  DivideChannels(gamma, s);
  ScaleColumns(w, k, s);
  const std::vector<double> after = Matmul(normed(gamma), m, k, w, n);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_NEAR(after[i], before[i], 1e-4) << i;
  // After smoothing, activation and weight column maxima are balanced: equal at alpha = 0.5.
  std::vector<float> act2(k, 0.0f), wmax2(k, 0.0f);
  ColumnAbsMax(normed(gamma), k, act2);
  ColumnAbsMax(w, k, wmax2);
  for (int64_t j = 0; j < k; ++j) EXPECT_NEAR(act2[j], wmax2[j], 1e-4f * act2[j]) << j;
}

TEST(Smooth, GqaTieKeepsTheValueToOutputFold) {
  // 4 heads over 2 KV heads of dim 3: head h reads KV head h / 2.
  const ChannelTie tie = ChannelTie::Gqa(4, 2, 3);
  ASSERT_EQ(tie.num_free, 6);
  EXPECT_EQ(tie.owner, (std::vector<int32_t>{0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5}));
  std::mt19937 rng(2);
  const int64_t hidden = 5;
  std::vector<float> v = Uniform(6 * hidden, rng, -1.0f, 1.0f);   // v_proj [kv_dim, hidden]
  std::vector<float> o = Uniform(hidden * 12, rng, -1.0f, 1.0f);  // o_proj [hidden, q_dim]
  const std::vector<float> x = Uniform(hidden, rng, -1.0f, 1.0f);
  // With one cached position, attention copies each head's KV value: a[h * 3 + d] = v_out[...].
  auto forward = [&]() {
    const std::vector<double> v_out = Matmul(x, 1, hidden, v, 6);
    std::vector<float> a(12);
    for (size_t c = 0; c < 12; ++c) a[c] = static_cast<float>(v_out[tie.owner[c]]);
    return Matmul(a, 1, 12, o, hidden);
  };
  const std::vector<double> before = forward();
  const std::vector<float> act = Uniform(12, rng, 0.1f, 5.0f);
  std::vector<float> wmax(12, 0.0f);
  ColumnAbsMax(o, 12, wmax);
  const std::vector<float> s = SmoothScales(act, wmax, 0.5f, tie);
  EXPECT_EQ(s, tie.Expand(tie.Reduce(s, /*max=*/true)));  // one scale per KV channel
  DivideRows(v, hidden, tie.Reduce(s, /*max=*/true));
  ScaleColumns(o, 12, s);
  const std::vector<double> after = forward();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_NEAR(after[i], before[i], 1e-5) << i;
}

TEST(Smooth, TieReducesByMaxOrMean) {
  const ChannelTie tie = ChannelTie::Gqa(2, 1, 2);
  const std::vector<float> v = {1.0f, 4.0f, 3.0f, 2.0f};
  EXPECT_EQ(tie.Reduce(v, true), (std::vector<float>{3.0f, 4.0f}));
  EXPECT_EQ(tie.Reduce(v, false), (std::vector<float>{2.0f, 3.0f}));
  EXPECT_EQ(tie.Expand(std::vector<float>{7.0f, 8.0f}),
            (std::vector<float>{7.0f, 8.0f, 7.0f, 8.0f}));
  EXPECT_TRUE(ChannelTie::Gqa(4, 4, 8).identity());
}

}  // namespace
}  // namespace qsl
