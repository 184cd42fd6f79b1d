// Random weights inside the numeric contract, for tests.
#include "accel/testing/random_linear.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace qsl::testing {
namespace {

PackedLinear OrDie(absl::StatusOr<PackedLinear> p) {
  if (!p.ok()) {
    std::fprintf(stderr, "RandomLinear: %s\n", std::string(p.status().message()).c_str());
    std::abort();
  }
  return *std::move(p);
}

}  // namespace

PackedLinear RandomLinear(std::mt19937& rng, WeightScheme scheme, int64_t n, int64_t k,
                          TileShape tile, int32_t group) {
  std::uniform_real_distribution<float> scale(1e-3f, 2e-2f);
  if (scheme == WeightScheme::kW8) {
    std::uniform_int_distribution<int> q(-127, 127);
    W8Weights w{n, k, std::vector<int8_t>(n * k), std::vector<float>(n)};
    for (auto& v : w.q) v = static_cast<int8_t>(q(rng));
    for (auto& s : w.scale) s = scale(rng);
    return OrDie(PackW8(w, tile));
  }
  W4Weights w;
  w.n = n;
  w.k = k;
  w.group = group;
  const int64_t ng = w.num_groups();
  std::uniform_int_distribution<int> nib(0, 15);
  w.q4.resize(n * k);
  for (auto& v : w.q4) v = static_cast<uint8_t>(nib(rng));
  w.gzero.resize(n * ng);
  w.gscale.resize(n * ng);
  for (int64_t i = 0; i < n * ng; ++i) {
    const int z = nib(rng);
    const int smax = 127 / std::max(z, 15 - z);
    w.gzero[i] = static_cast<uint8_t>(z);
    w.gscale[i] = static_cast<uint8_t>(std::uniform_int_distribution<int>(1, smax)(rng));
  }
  w.scale.resize(n);
  for (auto& s : w.scale) s = scale(rng);
  return OrDie(PackW4(w, tile));
}

std::vector<int8_t> RandomActivations(std::mt19937& rng, int64_t m, int64_t k, int64_t k_pad) {
  std::uniform_int_distribution<int> q(-127, 127);
  std::vector<int8_t> a(m * k_pad, 0);
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t i = 0; i < k; ++i) a[t * k_pad + i] = static_cast<int8_t>(q(rng));
  }
  return a;
}

std::vector<float> RandomFloats(std::mt19937& rng, int64_t m, int64_t k) {
  std::normal_distribution<float> x(0.0f, 1.0f);
  std::vector<float> out(m * k);
  for (int64_t t = 0; t < m; ++t) {
    const float mag = std::ldexp(1.0f, static_cast<int>(t % 7) - 3);
    for (int64_t i = 0; i < k; ++i) out[t * k + i] = (m > 2 && t == 1) ? 0.0f : x(rng) * mag;
  }
  return out;
}

}  // namespace qsl::testing
