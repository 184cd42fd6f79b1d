// AWQ scale search against the integer path's output error.
#include "quantize/awq.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "quantize/simulated.h"

namespace qsl {

namespace {

// y[m, n] = x[m, k] w[n, k]^T
std::vector<float> MatmulT(std::span<const float> x, int64_t m, int64_t k, std::span<const float> w,
                           int64_t n) {
  std::vector<float> y(static_cast<size_t>(m * n));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, x.data(), static_cast<int>(k), w.data(),
              static_cast<int>(k), 0.0f, y.data(), static_cast<int>(n));
  return y;
}

}  // namespace

double IntegerPathError(std::span<const float> x, int64_t m, int64_t k, std::span<const float> q,
                        int64_t n, std::span<const float> ref) {
  const std::vector<float> y = MatmulT(FakeQuantActivations(x, m, k), m, k, q, n);
  double err = 0.0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double d = static_cast<double>(y[i]) - ref[i];
    err += d * d;
  }
  return err / static_cast<double>(y.size());
}

AwqResult AwqSearch(const AwqProblem& p, WeightFormat format, int grid) {
  std::vector<std::vector<float>> refs;
  for (const AwqWeight& w : p.weights) refs.push_back(MatmulT(p.x, p.m, p.k, w.w, w.n));
  const std::vector<float> mean_abs = p.tie.Reduce(p.mean_abs, /*max=*/false);
  int64_t outputs = 0;
  for (const AwqWeight& w : p.weights) outputs += w.n;

  AwqResult best;
  best.loss = std::numeric_limits<double>::infinity();
  std::vector<float> xs(p.x.size()), ws, inv(static_cast<size_t>(p.k));
  for (int step = 0; step < grid; ++step) {
    const float alpha = static_cast<float>(step) / static_cast<float>(grid);
    std::vector<float> free(mean_abs.size());
    float lo = std::numeric_limits<float>::max(), hi = 0.0f;
    for (size_t j = 0; j < free.size(); ++j) {
      free[j] = std::pow(std::max(mean_abs[j], 1e-4f), alpha);
      lo = std::min(lo, free[j]);
      hi = std::max(hi, free[j]);
    }
    for (float& v : free) v /= std::sqrt(lo * hi);
    const std::vector<float> s = p.tie.Expand(free);

    for (size_t i = 0; i < xs.size(); ++i) xs[i] = p.x[i] / s[i % static_cast<size_t>(p.k)];
    for (size_t j = 0; j < inv.size(); ++j) inv[j] = 1.0f / s[j];
    const ErrorMetric metric = p.metric.Scaled(inv);
    double loss = 0.0;
    for (size_t i = 0; i < p.weights.size(); ++i) {
      const AwqWeight& w = p.weights[i];
      ws.assign(w.w.begin(), w.w.end());
      ScaleColumns(ws, p.k, s);
      const std::vector<float> q =
          Dequantize(Rtn(ws, w.n, p.k, format, metric));
      loss += IntegerPathError(xs, p.m, p.k, q, w.n, refs[i]) * static_cast<double>(w.n);
    }
    loss /= static_cast<double>(outputs);
    if (step == 0) best.base_loss = loss;
    if (loss < best.loss) {
      best.loss = loss;
      best.alpha = alpha;
      best.scales = s;
    }
  }
  return best;
}

}  // namespace qsl
