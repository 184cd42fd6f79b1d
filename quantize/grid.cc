// RTN onto the contract's W8 and progressive W4 grids.
#include "quantize/grid.h"

#include <algorithm>
#include <limits>

#include "base/thread_pool.h"

namespace qsl {

namespace {

// Largest zero point range [lo, hi] for step s under W4GroupInRange.
std::pair<int, int> ZeroRange(int s) {
  const int reach = kInt8Max / s;  // max levels on either side of zero
  return {std::max(0, 15 - reach), std::min(15, reach)};
}

double GroupError(std::span<const float> u, const ErrorMetric& metric, int64_t k0, W4Group g,
                  std::vector<float>& d) {
  d.resize(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    d[i] = u[i] - static_cast<float>(W4Level(RoundW4(u[i], g), g));
  }
  return metric.Error(d, k0);
}

// Level-range candidates L for FitW4Scale, largest first.
constexpr float kLevelRanges[] = {127.0f, 120.0f, 113.0f, 105.0f};

}  // namespace

float W8Scale(std::span<const float> row) {
  float amax = 0.0f;
  for (float v : row) amax = std::fmax(amax, std::fabs(v));
  return amax / 127.0f;
}

W8Weights RtnW8(std::span<const float> w, int64_t n, int64_t k) {
  W8Weights out{n, k, std::vector<int8_t>(static_cast<size_t>(n * k)),
                std::vector<float>(static_cast<size_t>(n))};
  for (int64_t r = 0; r < n; ++r) {
    const std::span<const float> row =
        w.subspan(static_cast<size_t>(r * k), static_cast<size_t>(k));
    out.scale[r] = W8Scale(row);
    for (int64_t c = 0; c < k; ++c) out.q[r * k + c] = RoundW8(row[c], out.scale[r]);
  }
  return out;
}

ErrorMetric ErrorMetric::Diagonal(std::vector<float> imp) {
  ErrorMetric m;
  m.imp_ = std::move(imp);
  return m;
}

ErrorMetric ErrorMetric::GroupBlocks(std::span<const float> h, int64_t k, int32_t group) {
  ErrorMetric m;
  m.group_ = group;
  const int64_t ng = (k + group - 1) / group;
  m.blocks_.assign(static_cast<size_t>(ng * group * group), 0.0f);
  for (int64_t i = 0; i < k; ++i) {
    const int64_t g = i / group, gi = i % group;
    for (int64_t j = g * group; j < std::min(k, (g + 1) * group); ++j) {
      m.blocks_[(g * group + gi) * group + (j - g * group)] = h[i * k + j];
    }
  }
  return m;
}

ErrorMetric ErrorMetric::Diagonal() const {
  if (blocks_.empty()) return *this;
  ErrorMetric m;
  const int64_t ng = static_cast<int64_t>(blocks_.size()) / (group_ * group_);
  m.imp_.resize(static_cast<size_t>(ng * group_));
  for (int64_t i = 0; i < ng * group_; ++i) {
    m.imp_[i] = blocks_[(i / group_) * group_ * group_ + (i % group_) * (group_ + 1)];
  }
  return m;
}

ErrorMetric ErrorMetric::Scaled(std::span<const float> a) const {
  ErrorMetric m = *this;
  for (size_t i = 0; i < m.imp_.size() && i < a.size(); ++i) m.imp_[i] *= a[i] * a[i];
  for (size_t b = 0; b < m.blocks_.size(); ++b) {
    const size_t g = b / (group_ * group_), i = g * group_ + (b / group_) % group_,
                 j = g * group_ + b % group_;
    if (i < a.size() && j < a.size()) m.blocks_[b] *= a[i] * a[j];
  }
  return m;
}

double ErrorMetric::Error(std::span<const float> d, int64_t k0) const {
  double err = 0.0;
  if (!blocks_.empty()) {
    const float* b = blocks_.data() + (k0 / group_) * group_ * group_;
    for (size_t i = 0; i < d.size(); ++i) {
      double row = 0.0;
      for (size_t j = 0; j < d.size(); ++j) row += static_cast<double>(b[i * group_ + j]) * d[j];
      err += row * d[i];
    }
  } else if (!imp_.empty()) {
    for (size_t i = 0; i < d.size(); ++i) err += static_cast<double>(imp_[k0 + i]) * d[i] * d[i];
  } else {
    for (float v : d) err += static_cast<double>(v) * v;
  }
  return err;
}

W4Group FitW4Group(std::span<const float> u, const ErrorMetric& metric, int64_t k0,
                   double* error) {
  float lo = std::numeric_limits<float>::max(), hi = std::numeric_limits<float>::lowest();
  for (float v : u) {
    lo = std::fmin(lo, v);
    hi = std::fmax(hi, v);
  }
  const int s_minmax = std::clamp(static_cast<int>(std::ceil((hi - lo) / 15.0f)), 1, 15);
  W4Group best;
  double best_err = std::numeric_limits<double>::infinity();
  std::vector<float> d;
  for (int s = std::max(1, s_minmax - 2); s <= std::min(15, s_minmax + 1); ++s) {
    const auto [z_lo, z_hi] = ZeroRange(s);
    const float fs = static_cast<float>(s);
    const int pins[3] = {static_cast<int>(Rne(-lo / fs)), 15 - static_cast<int>(Rne(hi / fs)),
                         static_cast<int>(Rne(7.5f - (lo + hi) / (2.0f * fs)))};
    int tried[3];
    int ntried = 0;
    for (int pin : pins) {
      const int z = std::clamp(pin, z_lo, z_hi);
      if (std::find(tried, tried + ntried, z) != tried + ntried) continue;
      tried[ntried++] = z;
      const W4Group g{static_cast<uint8_t>(s), static_cast<uint8_t>(z)};
      const double err = GroupError(u, metric, k0, g, d);
      if (err < best_err) {
        best_err = err;
        best = g;
      }
    }
  }
  if (error != nullptr) *error = best_err;
  return best;
}

namespace {

// Sum of the group errors of `row` at level scale `scale`, in squared weight units; fills the
// groups when `groups` is given.
double RowError(std::span<const float> row, int32_t group, const ErrorMetric& metric,
                float scale, std::vector<float>& u, W4Group* groups) {
  const size_t k = row.size();
  u.resize(k);
  for (size_t i = 0; i < k; ++i) u[i] = row[i] / scale;
  double total = 0.0;
  for (size_t g0 = 0, gi = 0; g0 < k; g0 += static_cast<size_t>(group), ++gi) {
    const size_t len = std::min(k - g0, static_cast<size_t>(group));
    double err = 0.0;
    const W4Group g = FitW4Group(std::span<const float>(u).subspan(g0, len), metric,
                                 static_cast<int64_t>(g0), &err);
    if (groups != nullptr) groups[gi] = g;
    total += err;
  }
  return total * static_cast<double>(scale) * static_cast<double>(scale);
}

}  // namespace

float FitW4Scale(std::span<const float> row, int32_t group, const ErrorMetric& metric) {
  float amax = 0.0f;
  for (float v : row) amax = std::fmax(amax, std::fabs(v));
  if (amax == 0.0f) return 0.0f;
  std::vector<float> u;
  float best = amax / kLevelRanges[0];
  double best_err = std::numeric_limits<double>::infinity();
  for (float range : kLevelRanges) {
    const float scale = amax / range;
    const double err = RowError(row, group, metric, scale, u, nullptr);
    if (err < best_err) {
      best_err = err;
      best = scale;
    }
  }
  return best;
}

W4Weights RtnW4(std::span<const float> w, int64_t n, int64_t k, int32_t group,
                const ErrorMetric& metric) {
  W4Weights out;
  out.n = n;
  out.k = k;
  out.group = group;
  const int64_t ng = out.num_groups();
  out.q4.resize(static_cast<size_t>(n * k));
  out.gscale.resize(static_cast<size_t>(n * ng));
  out.gzero.resize(static_cast<size_t>(n * ng));
  out.scale.resize(static_cast<size_t>(n));
  const ErrorMetric diagonal = metric.Diagonal();
  // Rows are independent (each has its own scale search and group fits), so they split across
  // the pool with the same result as one thread.
  ThreadPool::Default().ParallelFor(n, 8, [&](int64_t r0, int64_t r1) {
    std::vector<float> u;
    std::vector<W4Group> groups(static_cast<size_t>(ng));
    for (int64_t r = r0; r < r1; ++r) {
      const std::span<const float> row =
          w.subspan(static_cast<size_t>(r * k), static_cast<size_t>(k));
      const float scale = FitW4Scale(row, group, diagonal);
      out.scale[r] = scale;
      if (scale == 0.0f) {
        std::fill_n(out.gscale.begin() + r * ng, ng, uint8_t{1});  // q4 = z = 0: all levels 0
        continue;
      }
      RowError(row, group, metric, scale, u, groups.data());
      for (int64_t g = 0; g < ng; ++g) {
        out.gscale[r * ng + g] = groups[g].s;
        out.gzero[r * ng + g] = groups[g].z;
      }
      for (int64_t c = 0; c < k; ++c) out.q4[r * k + c] = RoundW4(u[c], groups[c / group]);
    }
  });
  return out;
}

std::vector<float> Dequantize(const W8Weights& w) {
  std::vector<float> out(w.q.size());
  for (int64_t r = 0; r < w.n; ++r) {
    for (int64_t c = 0; c < w.k; ++c) {
      out[r * w.k + c] = static_cast<float>(w.q[r * w.k + c]) * w.scale[r];
    }
  }
  return out;
}

std::vector<float> Dequantize(const W4Weights& w) {
  std::vector<float> out(w.q4.size());
  const int64_t ng = w.num_groups();
  for (int64_t r = 0; r < w.n; ++r) {
    for (int64_t c = 0; c < w.k; ++c) {
      const int64_t g = r * ng + c / w.group;
      const int level = W4Level(w.q4[r * w.k + c], {w.gscale[g], w.gzero[g]});
      out[r * w.k + c] = static_cast<float>(level) * w.scale[r];
    }
  }
  return out;
}

QuantizedWeight Rtn(std::span<const float> w, int64_t n, int64_t k, WeightFormat format,
                    const ErrorMetric& metric) {
  if (format.scheme == WeightScheme::kW4) return RtnW4(w, n, k, format.group, metric);
  return RtnW8(w, n, k);
}

std::vector<float> Dequantize(const QuantizedWeight& w) {
  return std::visit([](const auto& q) { return Dequantize(q); }, w);
}

absl::StatusOr<PackedLinear> Pack(const QuantizedWeight& w, TileShape tile) {
  if (const auto* w4 = std::get_if<W4Weights>(&w)) return PackW4(*w4, tile);
  return PackW8(std::get<W8Weights>(w), tile);
}

}  // namespace qsl
