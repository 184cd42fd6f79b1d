// GPTQ on the contract's grids, with OpenBLAS for the Hessian, the Cholesky factorizations and
// the lazy batch updates.
#include "quantize/gptq.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace qsl {

void Hessian::Add(std::span<const float> x, int64_t m) {
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(k_), static_cast<int>(m),
              1.0f, x.data(), static_cast<int>(k_), 1.0f, h_.data(), static_cast<int>(k_));
  samples_ += m;
}

void Hessian::ScaleChannels(std::span<const float> a) {
  for (int64_t i = 0; i < k_; ++i) {
    for (int64_t j = i; j < k_; ++j) h_[i * k_ + j] *= a[i] * a[j];
  }
}

std::vector<float> Hessian::Full() const {
  std::vector<float> full(h_.size());
  for (int64_t i = 0; i < k_; ++i) {
    for (int64_t j = i; j < k_; ++j) full[i * k_ + j] = full[j * k_ + i] = h_[i * k_ + j];
  }
  return full;
}

namespace {

// U upper with H^-1 = U^T U, from H (row-major, overwritten); false when H is not positive
// definite in float.
bool InverseCholeskyUpper(std::vector<float>& h, int64_t k) {
  const int n = static_cast<int>(k);
  if (LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', n, h.data(), n) != 0) return false;
  if (LAPACKE_spotri(LAPACK_ROW_MAJOR, 'L', n, h.data(), n) != 0) return false;
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = i + 1; j < k; ++j) h[i * k + j] = h[j * k + i];
  }
  if (LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'U', n, h.data(), n) != 0) return false;
  for (int64_t i = 0; i < k; ++i) std::fill_n(h.begin() + i * k, i, 0.0f);  // keep U only
  return true;
}

}  // namespace

absl::StatusOr<GptqSolver> GptqSolver::Make(const Hessian& hessian, const GptqOptions& options) {
  GptqSolver s;
  s.options_ = options;
  const int64_t k = s.k_ = hessian.k();
  std::vector<float> h = hessian.Full();
  s.dead_mask_.assign(static_cast<size_t>(k), 0);
  for (int64_t j = 0; j < k; ++j) {
    if (h[j * k + j] == 0.0f) {
      h[j * k + j] = 1.0f;
      s.dead_mask_[j] = 1;
      ++s.dead_;
    }
  }
  s.perm_.resize(static_cast<size_t>(k));
  std::iota(s.perm_.begin(), s.perm_.end(), 0);
  if (options.act_order) {
    std::stable_sort(s.perm_.begin(), s.perm_.end(),
                     [&](int32_t a, int32_t b) { return h[a * k + a] > h[b * k + b]; });
  }
  double mean_diag = 0.0;
  for (int64_t j = 0; j < k; ++j) mean_diag += h[j * k + j];
  mean_diag /= static_cast<double>(k);

  std::vector<float> hp(h.size());
  for (float damp = options.damp; damp <= 1.0f; damp *= 10.0f) {
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t j = 0; j < k; ++j) hp[i * k + j] = h[s.perm_[i] * k + s.perm_[j]];
      hp[i * k + i] += static_cast<float>(damp * mean_diag);
    }
    if (InverseCholeskyUpper(hp, k)) {
      if (damp != options.damp) {
        spdlog::warn("gptq: Hessian [{}x{}] needed damping {} (asked {})", k, k, damp,
                     options.damp);
      }
      s.damp_used_ = damp;
      s.u_ = std::move(hp);
      return s;
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("gptq: the ", k, "x", k, " Hessian stays singular even with damping 1.0"));
}

QuantizedWeight GptqSolver::Quantize(std::span<const float> w, int64_t n) const {
  const int64_t k = k_;
  const bool w4 = options_.format.scheme == WeightScheme::kW4;
  const int32_t group = options_.format.group;
  // The grid: per-channel scales, and for W4 the group parameters, all in original order.
  std::vector<float> scale(static_cast<size_t>(n));
  W8Weights q8{n, k, {}, {}};
  W4Weights q4;
  q4.n = n;
  q4.k = k;
  q4.group = group;
  const int64_t ng = w4 ? q4.num_groups() : 0;
  std::vector<W4Group> groups(static_cast<size_t>(n * ng));
  for (int64_t r = 0; r < n; ++r) {
    const std::span<const float> row =
        w.subspan(static_cast<size_t>(r * k), static_cast<size_t>(k));
    scale[r] = w4 ? FitW4Scale(row, group) : W8Scale(row);
  }
  std::vector<float> u;
  // Fits the groups g of every row from values v(r, i), i in [0, len) of that group.
  auto fit_group = [&](int64_t g, auto&& value) {
    const int64_t len = std::min<int64_t>(group, k - g * group);
    u.resize(static_cast<size_t>(len));
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t i = 0; i < len; ++i) u[i] = scale[r] > 0.0f ? value(r, i) / scale[r] : 0.0f;
      groups[r * ng + g] = FitW4Group(u);
    }
  };
  if (w4 && options_.act_order) {  // static groups from the original weights
    for (int64_t g = 0; g < ng; ++g) {
      fit_group(g, [&](int64_t r, int64_t i) { return w[r * k + g * group + i]; });
    }
  }

  std::vector<float> wp(static_cast<size_t>(n * k));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < k; ++i) {
      wp[r * k + i] = dead_mask_[perm_[i]] ? 0.0f : w[r * k + perm_[i]];
    }
  }
  if (w4) {
    q4.q4.resize(static_cast<size_t>(n * k));
  } else {
    q8.q.resize(static_cast<size_t>(n * k));
  }

  // A W4 group's parameters are fitted from its columns' current values, so no group may
  // straddle a block boundary unless it starts one (the later columns would miss this block's
  // lazy update).
  const int64_t block =
      (!w4 || options_.block % group == 0 || group % options_.block == 0) ? options_.block : group;
  std::vector<float> err(static_cast<size_t>(n * block));
  for (int64_t i1 = 0; i1 < k; i1 += block) {
    const int64_t i2 = std::min(i1 + block, k), nb = i2 - i1;
    for (int64_t i = i1; i < i2; ++i) {
      const int32_t c = perm_[i];
      if (w4 && !options_.act_order && c % group == 0) {  // identity order: columns c.. are i..
        fit_group(c / group, [&](int64_t r, int64_t j) { return wp[r * k + i + j]; });
      }
      const float d = u_[i * k + i];
      for (int64_t r = 0; r < n; ++r) {
        const float x = wp[r * k + i];
        float deq;
        if (w4) {
          const W4Group g = groups[r * ng + c / group];
          const uint8_t q = scale[r] > 0.0f ? RoundW4(x / scale[r], g) : g.z;
          q4.q4[r * k + c] = q;
          deq = static_cast<float>(W4Level(q, g)) * scale[r];
        } else {
          const int8_t q = RoundW8(x, scale[r]);
          q8.q[r * k + c] = q;
          deq = static_cast<float>(q) * scale[r];
        }
        const float e = (x - deq) / d;
        err[r * nb + (i - i1)] = e;
        float* row = wp.data() + r * k;
        const float* urow = u_.data() + i * k;
        for (int64_t j = i + 1; j < i2; ++j) row[j] -= e * urow[j];
      }
    }
    if (i2 < k) {  // the lazy batch update of every later column
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n),
                  static_cast<int>(k - i2), static_cast<int>(nb), -1.0f, err.data(),
                  static_cast<int>(nb), u_.data() + i1 * k + i2, static_cast<int>(k), 1.0f,
                  wp.data() + i2, static_cast<int>(k));
    }
  }
  if (!w4) {
    q8.scale = std::move(scale);
    return q8;
  }
  q4.scale = std::move(scale);
  q4.gscale.resize(groups.size());
  q4.gzero.resize(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    q4.gscale[i] = groups[i].s;
    q4.gzero[i] = groups[i].z;
  }
  return q4;
}

}  // namespace qsl
