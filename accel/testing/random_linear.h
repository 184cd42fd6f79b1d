// Random packed linear weights and activations for the MPE tests (sim card, pool, co-simulation).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "format/weight_tiles.h"

namespace qsl::testing {

// A random W8 or W4 weight [n, k] packed at `tile`; W4 groups are drawn inside the contract's
// range, and k need not be a multiple of the group.
PackedLinear RandomLinear(std::mt19937& rng, WeightScheme scheme, int64_t n, int64_t k,
                          TileShape tile, int32_t group = 128);

// Random A8 rows [m, k_pad] in [-127, 127], zero from k to k_pad (as QuantizeActivations writes).
std::vector<int8_t> RandomActivations(std::mt19937& rng, int64_t m, int64_t k, int64_t k_pad);

// fp32 activations with a spread of magnitudes (and an all-zero row when m > 2).
std::vector<float> RandomFloats(std::mt19937& rng, int64_t m, int64_t k);

}  // namespace qsl::testing
