// Dispatch of the integer linear op. Until the SIMD paths land every entry point runs the
// scalar reference.
#include "accel/linear.h"

#include <vector>

namespace qsl {

void QuantizeActivations(const float* x, int64_t m, int64_t k, int64_t ldx, int64_t k_pad,
                         int8_t* q, float* scale) {
  scalar::QuantizeActivations(x, m, k, ldx, k_pad, q, scale);
}

void MatmulInt8(const LinearWeightsView& w, const int8_t* a, int64_t m, int32_t* acc,
                int64_t ldacc) {
  scalar::MatmulInt8(w, a, m, acc, ldacc);
}

void Epilogue(const LinearWeightsView& w, const int32_t* acc, int64_t ldacc, const float* a_scale,
              int64_t m, float* y, int64_t ldy) {
  scalar::Epilogue(w, acc, ldacc, a_scale, m, y, ldy);
}

void LinearInt8(const LinearWeightsView& w, const int8_t* a, const float* a_scale, int64_t m,
                float* y, int64_t ldy) {
  std::vector<int32_t> acc(static_cast<size_t>(m * w.layout.n));
  scalar::MatmulInt8(w, a, m, acc.data(), w.layout.n);
  scalar::Epilogue(w, acc.data(), w.layout.n, a_scale, m, y, ldy);
}

}  // namespace qsl
