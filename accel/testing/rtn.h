// Round-to-nearest quantization of an fp32 weight into the contract's W8 and progressive W4
// forms, for tests that need real weights on the integer path (the quantizer proper lives in
// quantize/; this only has to be valid, not good).
#pragma once

#include <cstdint>

#include "format/weight_tiles.h"

namespace qsl::testing {

// w is row-major [n, k]. Per-channel symmetric int8, scale = amax / 127.
W8Weights RtnW8(const float* w, int64_t n, int64_t k);
// The W8 level, then per (channel, group) a uint8 scale s <= 15 and uint4 zero z chosen so that
// (q4 - z) * s stays in [-127, 127]; values outside a group's range clamp.
W4Weights RtnW4(const float* w, int64_t n, int64_t k, int32_t group);

}  // namespace qsl::testing
