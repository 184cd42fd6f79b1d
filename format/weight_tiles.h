// The tiled weight layout: the one contract between the packed model file, the CPU kernels and
// the MPE. A linear weight W[n, k] (y = x W^T) is cut into tiles of tile_k rows along K by
// tile_n columns along N; a tile is what the card loads with one DMA and holds in its array.
// docs/numeric-contract.md gives the same layout in prose, with the formulas.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace qsl {

enum class WeightScheme : uint8_t {
  kW8 = 1,  // int8 per-output-channel symmetric, fp32 scale per channel
  kW4 = 2,  // progressive: int8 level as W8, then uint4 groups along K (uint8 scale, uint4 zero)
};
const char* WeightSchemeName(WeightScheme s);

// Every int8 operand of the MAC array (weights after W4 expansion, and activations) lies in
// [-kInt8Max, kInt8Max]: symmetric, never -128, so every SIMD path stays exact.
inline constexpr int kInt8Max = 127;

struct TileShape {
  int32_t tile_k = 128;  // rows of the array (reduction dimension); multiple of 4
  int32_t tile_n = 64;   // columns of the array (output channels); multiple of 4
};

// Geometry and byte layout of one packed linear weight.
//
// Tiles are stored n-tile major, k-tile minor: tile (nt, kt) starts at
// (nt * k_tiles() + kt) * tile_stride(), so the slab of one n-tile is contiguous over all of K.
// Inside a tile, element (kk, nn) (0 <= kk < tile_k, 0 <= nn < tile_n) has index
//   e = (kk / 4) * tile_n * 4 + nn * 4 + kk % 4
// ("k4-interleaved": 4 consecutive K values of one column are adjacent, as a 4-way int8 dot
// product wants them). W8 stores byte e = int8 value. W4 stores nibble e: byte e / 2, low nibble
// when e is even. A W4 tile record continues with its group metadata:
//   scales: groups_per_tile() rows of tile_n uint8
//   zeros:  groups_per_tile() rows of tile_n / 2 bytes (uint4, low nibble = even column)
// Group row j of tile kt holds K group (kt * tile_k) / group + j. Each record is padded with zero
// bytes to a multiple of 64, so every tile starts 64-byte aligned in the file.
// Padding (K up to k_pad, N up to n_pad) holds weight 0 (W4: q4 = zero, scale 0 in padded
// columns), so padded activations and outputs contribute nothing.
struct TiledLayout {
  WeightScheme scheme = WeightScheme::kW8;
  int64_t n = 0, k = 0;  // logical output channels and reduction length
  int32_t tile_k = 128, tile_n = 64;
  int32_t group = 0;  // W4 group size along K; 0 for W8

  // Validates shape and tile/group compatibility (group divides tile_k or tile_k divides group).
  static absl::StatusOr<TiledLayout> Make(WeightScheme scheme, int64_t n, int64_t k,
                                          TileShape shape, int32_t group = 0);

  int64_t k_tiles() const { return (k + tile_k - 1) / tile_k; }
  int64_t n_tiles() const { return (n + tile_n - 1) / tile_n; }
  int64_t k_pad() const { return k_tiles() * tile_k; }
  int64_t n_pad() const { return n_tiles() * tile_n; }
  int32_t groups_per_tile() const;  // W4 only
  int64_t num_groups() const;       // W4: K groups, ceil(k / group)
  int64_t q_bytes() const;          // weight bytes of one tile (tile_k*tile_n, halved for W4)
  int64_t scale_offset() const { return q_bytes(); }                // W4 metadata, in a record
  int64_t zero_offset() const { return q_bytes() + groups_per_tile() * tile_n; }
  int64_t tile_stride() const;      // bytes of one tile record, a multiple of 64
  int64_t bytes() const { return tile_stride() * n_tiles() * k_tiles(); }
  int64_t tile_offset(int64_t nt, int64_t kt) const { return (nt * k_tiles() + kt) * tile_stride(); }
  static int64_t ElementIndex(int64_t kk, int64_t nn, int64_t tile_n) {
    return (kk / 4) * tile_n * 4 + nn * 4 + (kk % 4);
  }
  bool operator==(const TiledLayout&) const = default;
};

// What the quantizer holds before packing (row-major [n, k]).
struct W8Weights {
  int64_t n = 0, k = 0;
  std::vector<int8_t> q;      // [n * k], each in [-127, 127]
  std::vector<float> scale;   // [n]; real weight ~= q * scale
};

struct W4Weights {
  int64_t n = 0, k = 0;
  int32_t group = 128;
  std::vector<uint8_t> q4;      // [n * k], each 0..15
  std::vector<uint8_t> gscale;  // [n * num_groups], uint8 group scale s
  std::vector<uint8_t> gzero;   // [n * num_groups], uint4 zero z (0..15)
  std::vector<float> scale;     // [n] level-1 scale; int8 level = (q4 - z) * s
  int64_t num_groups() const { return (k + group - 1) / group; }
};

// A packed linear weight owning its bytes (what the quantizer writes and tests build).
struct PackedLinear {
  TiledLayout layout;
  std::vector<uint8_t> tiles;  // layout.bytes()
  std::vector<float> scale;    // [n] per-channel fp32 scale
};

// Non-owning view used by kernels, drivers and the file loader (points into an mmap).
struct LinearWeightsView {
  TiledLayout layout;
  const uint8_t* tiles = nullptr;  // layout.bytes()
  const float* scale = nullptr;    // [n]
  const float* bias = nullptr;     // [n] or nullptr
};
inline LinearWeightsView View(const PackedLinear& p, const float* bias = nullptr) {
  return {p.layout, p.tiles.data(), p.scale.data(), bias};
}

// Packing checks every value against the contract (int8 range, nibble range, W4 group range)
// and says which channel and group break it.
absl::StatusOr<PackedLinear> PackW8(const W8Weights& w, TileShape shape);
absl::StatusOr<PackedLinear> PackW4(const W4Weights& w, TileShape shape);

// Inverse of packing, for tests and tools.
W8Weights UnpackW8(const LinearWeightsView& v);
W4Weights UnpackW4(const LinearWeightsView& v);

// The int8 operand the array multiplies, row-major [n, k] (W4 expanded as (q4 - z) * s).
std::vector<int8_t> ExpandToInt8(const LinearWeightsView& v);

// The W4 expansion for one value: integer only, as the card's weight-load path does it.
inline int8_t ExpandW4(uint8_t q4, uint8_t zero, uint8_t scale) {
  return static_cast<int8_t>((static_cast<int>(q4) - static_cast<int>(zero)) * static_cast<int>(scale));
}

// True when (q - z) * s stays within [-127, 127] for every q in 0..15.
inline bool W4GroupInRange(uint8_t scale, uint8_t zero) {
  return zero <= 15 && static_cast<int>(scale) * zero <= kInt8Max &&
         static_cast<int>(scale) * (15 - zero) <= kInt8Max;
}

// Checks every W4 group of a packed weight (a file loader calls this before use).
absl::Status ValidateW4Groups(const LinearWeightsView& v);

}  // namespace qsl
