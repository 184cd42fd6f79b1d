// AWQ: on inputs with outlier channels the search finds scales that cut the integer path's
// output error well below plain RTN, never does worse than RTN, and honours tied channels.
#include "quantize/awq.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace qsl {
namespace {

struct Data {
  int64_t m = 256, k = 256, n = 96;
  std::vector<float> x, w, mean_abs, mean_sq;
};

// Activations with a few channels 30x larger than the rest, as LLM activations have.
Data MakeData(uint32_t seed) {
  Data d;
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  d.x.resize(static_cast<size_t>(d.m * d.k));
  d.w.resize(static_cast<size_t>(d.n * d.k));
  for (int64_t t = 0; t < d.m; ++t) {
    for (int64_t i = 0; i < d.k; ++i) d.x[t * d.k + i] = g(rng) * (i % 37 == 5 ? 30.0f : 1.0f);
  }
  for (float& v : d.w) v = g(rng) * 0.05f;
  d.mean_abs.assign(static_cast<size_t>(d.k), 0.0f);
  d.mean_sq.assign(static_cast<size_t>(d.k), 0.0f);
  for (int64_t t = 0; t < d.m; ++t) {
    for (int64_t i = 0; i < d.k; ++i) {
      d.mean_abs[i] += std::fabs(d.x[t * d.k + i]) / static_cast<float>(d.m);
      d.mean_sq[i] += d.x[t * d.k + i] * d.x[t * d.k + i] / static_cast<float>(d.m);
    }
  }
  return d;
}

AwqProblem Problem(const Data& d) {
  AwqProblem p;
  p.x = d.x;
  p.m = d.m;
  p.k = d.k;
  p.mean_abs = d.mean_abs;
  p.metric = ErrorMetric::Diagonal(d.mean_sq);
  p.weights = {{d.w, d.n}};
  return p;
}

TEST(Awq, ScalesCutTheOutputErrorOfW4) {
  const Data d = MakeData(1);
  const AwqResult r = AwqSearch(Problem(d), {WeightScheme::kW4, 128});
  EXPECT_GT(r.alpha, 0.0f);
  EXPECT_LT(r.loss, 0.8 * r.base_loss) << r.loss << " vs " << r.base_loss;
  // Outlier channels get the largest scales; scales are centred (max * min = 1).
  const auto [lo, hi] = std::minmax_element(r.scales.begin(), r.scales.end());
  EXPECT_NEAR(*lo * *hi, 1.0f, 1e-3f);
  EXPECT_EQ((hi - r.scales.begin()) % 37, 5);
  // The loss is the one a direct evaluation of the chosen scales gives.
  std::vector<float> xs(d.x), ws(d.w);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] /= r.scales[i % d.k];
  ScaleColumns(ws, d.k, r.scales);
  std::vector<float> imp(d.mean_sq);
  for (int64_t j = 0; j < d.k; ++j) imp[j] /= r.scales[j] * r.scales[j];
  std::vector<float> ref(static_cast<size_t>(d.m * d.n), 0.0f);
  for (int64_t t = 0; t < d.m; ++t) {
    for (int64_t o = 0; o < d.n; ++o) {
      double acc = 0.0;
      for (int64_t i = 0; i < d.k; ++i) acc += double(d.x[t * d.k + i]) * d.w[o * d.k + i];
      ref[t * d.n + o] = static_cast<float>(acc);
    }
  }
  const double direct = IntegerPathError(
      xs, d.m, d.k, Dequantize(Rtn(ws, d.n, d.k, {WeightScheme::kW4, 128}, ErrorMetric::Diagonal(imp))), d.n, ref);
  EXPECT_NEAR(direct, r.loss, 1e-3 * r.loss);
}

TEST(Awq, NeverWorseThanRtnAndTiedChannelsShareScales) {
  const Data d = MakeData(2);
  AwqProblem p = Problem(d);
  p.tie = ChannelTie::Gqa(8, 2, 32);  // 256 input channels over 64 free ones
  const AwqResult r = AwqSearch(p, {WeightScheme::kW8, 0});
  EXPECT_LE(r.loss, r.base_loss);
  EXPECT_EQ(r.scales, p.tie.Expand(p.tie.Reduce(r.scales, /*max=*/true)));
}

}  // namespace
}  // namespace qsl
