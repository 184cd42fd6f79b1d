// Round-to-nearest W8 / W4 for tests.
#include "accel/testing/rtn.h"

#include <algorithm>
#include <cmath>

namespace qsl::testing {

W8Weights RtnW8(const float* w, int64_t n, int64_t k) {
  W8Weights out{n, k, std::vector<int8_t>(n * k), std::vector<float>(n)};
  for (int64_t r = 0; r < n; ++r) {
    float amax = 0.0f;
    for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(w[r * k + i]));
    out.scale[r] = amax / 127.0f;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int64_t i = 0; i < k; ++i) {
      out.q[r * k + i] = static_cast<int8_t>(std::clamp(std::nearbyint(w[r * k + i] * inv), -127.0f, 127.0f));
    }
  }
  return out;
}

W4Weights RtnW4(const float* w, int64_t n, int64_t k, int32_t group) {
  const W8Weights level = RtnW8(w, n, k);
  W4Weights out;
  out.n = n;
  out.k = k;
  out.group = group;
  out.scale = level.scale;
  const int64_t groups = out.num_groups();
  out.q4.resize(n * k);
  out.gscale.resize(n * groups);
  out.gzero.resize(n * groups);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t k0 = g * group, k1 = std::min<int64_t>(k, k0 + group);
      int lo = 127, hi = -127;
      for (int64_t i = k0; i < k1; ++i) {
        lo = std::min<int>(lo, level.q[r * k + i]);
        hi = std::max<int>(hi, level.q[r * k + i]);
      }
      const int s = std::clamp((hi - lo + 14) / 15, 1, 15);
      int z = std::clamp(static_cast<int>(std::nearbyint(-static_cast<float>(lo) / s)), 0, 15);
      while (s * z > kInt8Max) --z;
      while (s * (15 - z) > kInt8Max) ++z;
      out.gscale[r * groups + g] = static_cast<uint8_t>(s);
      out.gzero[r * groups + g] = static_cast<uint8_t>(z);
      for (int64_t i = k0; i < k1; ++i) {
        const float q = std::nearbyint(static_cast<float>(level.q[r * k + i]) / s) + z;
        out.q4[r * k + i] = static_cast<uint8_t>(std::clamp(q, 0.0f, 15.0f));
      }
    }
  }
  return out;
}

}  // namespace qsl::testing
