// The body of the host fp32 kernels (host_ops.h), compiled once per ISA: host_ops_*.cc define
// QSL_HOST_OPS_ISA and get their own compiler flags (engine/CMakeLists.txt). No std::
// templates here: an out-of-line copy built with AVX-512 flags could be picked by the linker
// for the whole binary (accel/linear_isa.h).
#include <cstdint>

#include "engine/simd_math.h"

#ifndef QSL_HOST_OPS_ISA
#error "define QSL_HOST_OPS_ISA to the namespace of this build"
#endif

namespace qsl::host_ops::QSL_HOST_OPS_ISA {

void RmsNorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* o = out + r * dim;
    F32x16 acc = {};
    int64_t i = 0;
    for (; i + kLanes <= dim; i += kLanes) {
      const F32x16 v = LoadU(xr + i);
      acc += v * v;
    }
    float lanes[kLanes];
    std::memcpy(lanes, &acc, sizeof lanes);
    for (int32_t width = kLanes / 2; width >= 1; width /= 2) {
      for (int32_t j = 0; j < width; ++j) lanes[j] += lanes[j + width];
    }
    float ss = lanes[0];
    for (; i < dim; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / __builtin_sqrtf(ss / static_cast<float>(dim) + eps);
    i = 0;
    for (; i + kLanes <= dim; i += kLanes) StoreU(o + i, LoadU(w + i) * (LoadU(xr + i) * inv));
    for (; i < dim; ++i) o[i] = w[i] * (xr[i] * inv);
  }
}

// One lane of SwiGlu, for vectors (V = F32x16) and the scalar tail (V = float): the same ops.
template <typename V, typename I>
inline V SwiGluLane(V g, V u) {
  const V e = Exp<V, I>(g < 0.0f ? g : -g);
  const V d = e + 1.0f;
  const V s = g >= 0.0f ? g / d : (g * e) / d;
  return s * u;
}

void SwiGlu(float* gate, const float* up, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    StoreU(gate + i, SwiGluLane<F32x16, I32x16>(LoadU(gate + i), LoadU(up + i)));
  }
  for (; i < n; ++i) gate[i] = SwiGluLane<float, int32_t>(gate[i], up[i]);
}

void Add(float* x, const float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) StoreU(x + i, LoadU(x + i) + LoadU(y + i));
  for (; i < n; ++i) x[i] += y[i];
}

void Rope(float* x, int64_t tokens, int32_t heads, int64_t half, const float* cos,
          const float* sin) {
  for (int64_t t = 0; t < tokens; ++t) {
    const float* cs = cos + t * half;
    const float* sn = sin + t * half;
    float* row = x + t * heads * 2 * half;
    for (int32_t h = 0; h < heads; ++h) {
      float* v = row + h * 2 * half;
      int64_t j = 0;
      for (; j + kLanes <= half; j += kLanes) {
        const F32x16 a = LoadU(v + j), b = LoadU(v + j + half);
        const F32x16 c = LoadU(cs + j), s = LoadU(sn + j);
        StoreU(v + j, a * c + (-b) * s);
        StoreU(v + j + half, b * c + a * s);
      }
      for (; j < half; ++j) {
        const float a = v[j], b = v[j + half];
        v[j] = a * cs[j] + (-b) * sn[j];
        v[j + half] = b * cs[j] + a * sn[j];
      }
    }
  }
}

}  // namespace qsl::host_ops::QSL_HOST_OPS_ISA
