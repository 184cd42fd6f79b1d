// Scalar reference of the integer contract: the definition the SIMD paths, the simulated card
// and the RTL are all compared against. Written for clarity, not speed.
#include <algorithm>
#include <cmath>

#include "accel/linear.h"

namespace qsl::scalar {

void QuantizeActivations(const float* x, int64_t m, int64_t k, int64_t ldx, int64_t k_pad,
                         int8_t* q, float* scale) {
  for (int64_t t = 0; t < m; ++t) {
    const float* row = x + t * ldx;
    int8_t* out = q + t * k_pad;
    float amax = 0.0f;
    for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(row[i]));
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    scale[t] = amax / 127.0f;
    for (int64_t i = 0; i < k; ++i) {
      // nearbyint rounds half to even in the default rounding mode, as cvtps2dq does.
      const float r = std::nearbyint(row[i] * inv);
      out[i] = static_cast<int8_t>(std::clamp(r, -127.0f, 127.0f));
    }
    std::fill(out + k, out + k_pad, int8_t{0});
  }
}

namespace {

// The int8 weight value of element (n, k), expanding W4 on the fly exactly as the card does.
int8_t WeightAt(const TiledLayout& l, const uint8_t* tiles, int64_t n, int64_t k) {
  const int64_t rec = l.tile_offset(n / l.tile_n, k / l.tile_k);
  const int64_t kk = k % l.tile_k, nn = n % l.tile_n;
  const int64_t e = TiledLayout::ElementIndex(kk, nn, l.tile_n);
  if (l.scheme == WeightScheme::kW8) return static_cast<int8_t>(tiles[rec + e]);
  const uint8_t* t = tiles + rec;
  const uint8_t q4 = (e % 2 == 0) ? (t[e / 2] & 0x0f) : (t[e / 2] >> 4);
  const int64_t j = l.group >= l.tile_k ? 0 : kk / l.group;
  const uint8_t s = t[l.scale_offset() + j * l.tile_n + nn];
  const int64_t ze = 2 * (l.zero_offset() + j * (l.tile_n / 2)) + nn;
  const uint8_t z = (ze % 2 == 0) ? (t[ze / 2] & 0x0f) : (t[ze / 2] >> 4);
  return ExpandW4(q4, z, s);
}

}  // namespace

void MatmulInt8(const LinearWeightsView& w, const int8_t* a, int64_t m, int32_t* acc,
                int64_t ldacc) {
  const TiledLayout& l = w.layout;
  const int64_t k_pad = l.k_pad();
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t n = 0; n < l.n; ++n) {
      int32_t sum = 0;
      for (int64_t k = 0; k < k_pad; ++k) {
        sum += static_cast<int32_t>(a[t * k_pad + k]) * WeightAt(l, w.tiles, n, k);
      }
      acc[t * ldacc + n] = sum;
    }
  }
}

void Epilogue(const LinearWeightsView& w, const int32_t* acc, int64_t ldacc, const float* a_scale,
              int64_t m, float* y, int64_t ldy) {
  const int64_t n_out = w.layout.n;
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t n = 0; n < n_out; ++n) {
      float v = static_cast<float>(acc[t * ldacc + n]) * w.scale[n] * a_scale[t];
      if (w.bias != nullptr) v += w.bias[n];
      y[t * ldy + n] = v;
    }
  }
}

}  // namespace qsl::scalar
