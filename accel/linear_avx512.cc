// The AVX-512 VNNI path (compiled with -mavx512f/bw/vl/vnni): one zmm lane per output column, a
// 64-byte vector = 16 columns x 4 K of a tile, exactly the k4-interleaved layout, so vpdpbusd
// reads the weight tile as stored.
//
// Exactness. vpdpbusd multiplies unsigned bytes by signed bytes and adds 4 products into an
// int32 lane (no saturation; wraps mod 2^32).
//  - W8: weights are signed, so each weight vector is flipped to unsigned, w ^ 0x80 = w + 128
//    (w in [-127, 127] -> [1, 255]), and multiplied by the signed activations:
//    sum a*(w + 128) = sum a*w + 128 * sum a. The second term is subtracted per row (Finish),
//    with sum a over the whole padded row computed once per call. Every step wraps mod 2^32 and
//    the true sum a*w fits int32, so the result is exact even where a*(w + 128) alone would not.
//  - W4: nibbles q4 in [0, 15] are already unsigned; see FoldW4 in linear_simd.h for the group
//    scale and zero.
#include "accel/linear_avx512_traits.h"

namespace qsl::kernel {

const Kernels kAvx512Kernels = MakeKernels<Avx512>();

}  // namespace qsl::kernel
