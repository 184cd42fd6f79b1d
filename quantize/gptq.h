// GPTQ (arXiv:2210.17323): quantizes a linear column by column, each column's rounding error
// spread over the columns not yet quantized through the inverse Hessian of its calibration
// inputs. Lazy batch updates over blocks of 128 columns, damping, optional act-order; W4 group
// parameters (s, z) are fixed when the group's first column is reached (with act-order, before
// the start from the original weights, since our groups are contiguous in the original K order).
// Every value lands on the contract's grid (quantize/grid.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "quantize/grid.h"

namespace qsl {

// H = sum_t x_t x_t^T over calibration rows x_t [k] (GPTQ's Hessian up to a factor 2 / N that
// damping makes irrelevant).
class Hessian {
 public:
  explicit Hessian(int64_t k) : k_(k), h_(static_cast<size_t>(k * k), 0.0f) {}
  // x: m rows of k.
  void Add(std::span<const float> x, int64_t m);
  // H_ij *= a_i * a_j: the Hessian of inputs x * a (after folding scales s, a = 1 / s).
  void ScaleChannels(std::span<const float> a);

  int64_t k() const { return k_; }
  int64_t samples() const { return samples_; }
  // Full symmetric matrix [k, k].
  std::vector<float> Full() const;

 private:
  int64_t k_;
  int64_t samples_ = 0;
  std::vector<float> h_;  // upper triangle, row-major
};

struct GptqOptions {
  WeightFormat format;
  float damp = 0.01f;      // added to the diagonal, as a fraction of its mean
  bool act_order = false;  // columns in decreasing H_jj order
  int32_t block = 128;     // columns per lazy batch update
};

// The Cholesky factor of the damped inverse Hessian, computed once and shared by every linear
// that reads the same inputs (q/k/v, gate/up).
class GptqSolver {
 public:
  static absl::StatusOr<GptqSolver> Make(const Hessian& h, const GptqOptions& options);
  // w [n, k] row-major.
  QuantizedWeight Quantize(std::span<const float> w, int64_t n) const;

  float damp_used() const { return damp_used_; }  // > options.damp when Cholesky needed more
  int64_t dead_columns() const { return dead_; }  // inputs that were always zero

 private:
  GptqSolver() = default;
  GptqOptions options_;
  int64_t k_ = 0;
  std::vector<int32_t> perm_;       // processing order -> original column
  std::vector<float> u_;            // upper Cholesky factor of H^-1 (permuted), row-major [k, k]
  std::vector<uint8_t> dead_mask_;  // original column had H_jj = 0
  float damp_used_ = 0.0f;
  int64_t dead_ = 0;
};

}  // namespace qsl
