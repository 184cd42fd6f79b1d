// GPTQ: the Hessian accumulates X^T X; with an identity Hessian it reduces to RTN bit for bit;
// on correlated inputs it beats RTN's output error clearly, for W8 and W4, in order or with
// act-order; dead inputs quantize to zero; every result packs.
#include "quantize/gptq.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace qsl {
namespace {

// ||X (W - Q)^T||^2 / ||X W^T||^2
double RelativeOutputError(const std::vector<float>& x, int64_t m, int64_t k,
                           const std::vector<float>& w, const std::vector<float>& q, int64_t n) {
  double err = 0.0, norm = 0.0;
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t o = 0; o < n; ++o) {
      double y = 0.0, yq = 0.0;
      for (int64_t i = 0; i < k; ++i) {
        y += double(x[t * k + i]) * w[o * k + i];
        yq += double(x[t * k + i]) * q[o * k + i];
      }
      err += (y - yq) * (y - yq);
      norm += y * y;
    }
  }
  return err / norm;
}

// Inputs that live near a low-dimensional subspace, as LLM activations do: GPTQ's lever.
std::vector<float> CorrelatedInputs(int64_t m, int64_t k, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  const int64_t rank = 16;
  std::vector<float> basis(static_cast<size_t>(rank * k));
  for (float& v : basis) v = g(rng);
  std::vector<float> x(static_cast<size_t>(m * k));
  for (int64_t t = 0; t < m; ++t) {
    float c[rank];
    for (float& v : c) v = g(rng);
    for (int64_t i = 0; i < k; ++i) {
      float s = 0.1f * g(rng);
      for (int64_t r = 0; r < rank; ++r) s += c[r] * basis[r * k + i];
      x[t * k + i] = s;
    }
  }
  return x;
}

std::vector<float> Gaussian(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 0.05f);
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

TEST(Gptq, HessianIsXtX) {
  std::mt19937 rng(1);
  const int64_t m = 9, k = 6;
  const std::vector<float> x = Gaussian(m * k, rng);
  Hessian h(k);
  h.Add(std::span<const float>(x).subspan(0, 4 * k), 4);
  h.Add(std::span<const float>(x).subspan(4 * k), 5);
  EXPECT_EQ(h.samples(), 9);
  const std::vector<float> a = {1.0f, 2.0f, 0.5f, 1.0f, 3.0f, 1.0f};
  h.ScaleChannels(a);
  const std::vector<float> full = h.Full();
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      double s = 0.0;
      for (int64_t t = 0; t < m; ++t) s += double(x[t * k + i]) * x[t * k + j];
      EXPECT_NEAR(full[i * k + j], s * a[i] * a[j], 1e-6) << i << "," << j;
    }
  }
}

TEST(Gptq, IdentityHessianIsRtn) {
  std::mt19937 rng(2);
  const int64_t n = 40, k = 256;
  const std::vector<float> w = Gaussian(n * k, rng);
  // Orthogonal inputs: the rows of a scaled identity give H = 4 I.
  std::vector<float> x(static_cast<size_t>(k * k), 0.0f);
  for (int64_t i = 0; i < k; ++i) x[i * k + i] = 2.0f;
  Hessian h(k);
  h.Add(x, k);
  for (const WeightFormat f :
       {WeightFormat{WeightScheme::kW8, 0}, WeightFormat{WeightScheme::kW4, 64}}) {
    auto solver = GptqSolver::Make(h, {.format = f, .damp = 0.01f});
    ASSERT_TRUE(solver.ok()) << solver.status();
    EXPECT_EQ(Dequantize(solver->Quantize(w, n)), Dequantize(Rtn(w, n, k, f)));
  }
}

TEST(Gptq, BeatsRtnOnCorrelatedInputs) {
  std::mt19937 rng(3);
  const int64_t m = 1024, k = 256, n = 64;
  const std::vector<float> x = CorrelatedInputs(m, k, rng);
  const std::vector<float> w = Gaussian(n * k, rng);
  Hessian h(k);
  h.Add(x, m);
  for (const WeightFormat f :
       {WeightFormat{WeightScheme::kW8, 0}, WeightFormat{WeightScheme::kW4, 128},
        WeightFormat{WeightScheme::kW4, 32}}) {
    const double rtn = RelativeOutputError(x, m, k, w, Dequantize(Rtn(w, n, k, f)), n);
    for (bool act_order : {false, true}) {
      auto solver = GptqSolver::Make(h, {.format = f, .act_order = act_order, .block = 64});
      ASSERT_TRUE(solver.ok()) << solver.status();
      const QuantizedWeight q = solver->Quantize(w, n);
      ASSERT_TRUE(Pack(q, TileShape{}).ok());
      const double gptq = RelativeOutputError(x, m, k, w, Dequantize(q), n);
      EXPECT_LT(gptq, 0.5 * rtn) << "group " << f.group << " act_order " << act_order << ": "
                                 << gptq << " vs RTN " << rtn;
    }
  }
}

TEST(Gptq, DeadInputsQuantizeToZero) {
  std::mt19937 rng(4);
  const int64_t m = 300, k = 128, n = 16;
  std::vector<float> x = CorrelatedInputs(m, k, rng);
  for (int64_t t = 0; t < m; ++t) x[t * k + 17] = 0.0f;
  Hessian h(k);
  h.Add(x, m);
  const std::vector<float> w = Gaussian(n * k, rng);
  auto solver = GptqSolver::Make(h, {.format = {WeightScheme::kW4, 64}});
  ASSERT_TRUE(solver.ok());
  EXPECT_EQ(solver->dead_columns(), 1);
  const std::vector<float> q = Dequantize(solver->Quantize(w, n));
  for (int64_t r = 0; r < n; ++r) EXPECT_EQ(q[r * k + 17], 0.0f) << r;
}

}  // namespace
}  // namespace qsl
