// Packing and unpacking of the tiled weight layout (see weight_tiles.h for the byte layout).
#include "format/weight_tiles.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace qsl {

const char* WeightSchemeName(WeightScheme s) {
  switch (s) {
    case WeightScheme::kW8: return "w8";
    case WeightScheme::kW4: return "w4";
  }
  return "unknown";
}

absl::StatusOr<TiledLayout> TiledLayout::Make(WeightScheme scheme, int64_t n, int64_t k,
                                              TileShape shape, int32_t group) {
  if (n <= 0 || k <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("linear shape [", n, ", ", k, "] is empty"));
  }
  if (shape.tile_k <= 0 || shape.tile_k % 4 != 0 || shape.tile_n <= 0 || shape.tile_n % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("tile ", shape.tile_k, "x", shape.tile_n,
                                                   ": both sides must be positive multiples of 4"));
  }
  if (scheme != WeightScheme::kW8 && scheme != WeightScheme::kW4) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown weight scheme ", static_cast<int>(scheme)));
  }
  if (scheme == WeightScheme::kW8) {
    if (group != 0) return absl::InvalidArgumentError("w8 weights take no group size");
  } else {
    if (group <= 0 || group % 4 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("w4 group size ", group, " must be a positive multiple of 4"));
    }
    if (shape.tile_k % group != 0 && group % shape.tile_k != 0) {
      return absl::InvalidArgumentError(absl::StrCat("w4 group size ", group, " and tile_k ",
                                                     shape.tile_k, ": one must divide the other"));
    }
  }
  TiledLayout l;
  l.scheme = scheme;
  l.n = n;
  l.k = k;
  l.tile_k = shape.tile_k;
  l.tile_n = shape.tile_n;
  l.group = group;
  return l;
}

int32_t TiledLayout::groups_per_tile() const {
  if (scheme != WeightScheme::kW4) return 0;
  return std::max<int32_t>(1, tile_k / group);
}

int64_t TiledLayout::num_groups() const {
  return scheme == WeightScheme::kW4 ? (k + group - 1) / group : 0;
}

int64_t TiledLayout::q_bytes() const {
  const int64_t elems = static_cast<int64_t>(tile_k) * tile_n;
  return scheme == WeightScheme::kW4 ? elems / 2 : elems;
}

int64_t TiledLayout::tile_stride() const {
  int64_t b = q_bytes();
  if (scheme == WeightScheme::kW4) b += static_cast<int64_t>(groups_per_tile()) * tile_n * 3 / 2;
  return (b + 63) / 64 * 64;
}

namespace {

// Calls fn(n, k, rec, e) for each logical element: rec is the byte offset of its tile record,
// e its element index inside the tile (a byte for W8, a nibble for W4).
template <typename Fn>
void ForEachElement(const TiledLayout& l, int64_t k_end, Fn&& fn) {
  for (int64_t n = 0; n < l.n; ++n) {
    const int64_t nt = n / l.tile_n, nn = n % l.tile_n;
    for (int64_t k = 0; k < k_end; ++k) {
      fn(n, k, l.tile_offset(nt, k / l.tile_k), TiledLayout::ElementIndex(k % l.tile_k, nn, l.tile_n));
    }
  }
}

void SetNibble(uint8_t* base, int64_t e, uint8_t v) {
  uint8_t& b = base[e / 2];
  b = (e % 2 == 0) ? static_cast<uint8_t>((b & 0xf0) | (v & 0x0f))
                   : static_cast<uint8_t>((b & 0x0f) | (v << 4));
}

uint8_t GetNibble(const uint8_t* base, int64_t e) {
  const uint8_t b = base[e / 2];
  return (e % 2 == 0) ? (b & 0x0f) : (b >> 4);
}

// Byte offsets (from the tile record start) of the W4 group metadata of column nn, group row j.
int64_t ScaleOffset(const TiledLayout& l, int64_t j, int64_t nn) {
  return l.scale_offset() + j * l.tile_n + nn;
}
int64_t ZeroNibble(const TiledLayout& l, int64_t j, int64_t nn) {
  return 2 * (l.zero_offset() + j * (l.tile_n / 2)) + nn;
}

// Location of group g (global K group index) of column n: tile record offset and group row.
std::pair<int64_t, int64_t> GroupSlot(const TiledLayout& l, int64_t n, int64_t g) {
  const int64_t k0 = g * l.group;
  const int64_t kt = k0 / l.tile_k;
  const int64_t j = (k0 % l.tile_k) / l.group;  // 0 when group >= tile_k
  return {l.tile_offset(n / l.tile_n, kt), j};
}

absl::Status CheckSizes(int64_t n, int64_t k, size_t q, size_t scale, const char* what) {
  if (q != static_cast<size_t>(n * k) || scale != static_cast<size_t>(n)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " [", n, ", ", k, "]: expected ", n * k,
                                                   " values and ", n, " scales, got ", q, " and ",
                                                   scale));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PackedLinear> PackW8(const W8Weights& w, TileShape shape) {
  auto layout = TiledLayout::Make(WeightScheme::kW8, w.n, w.k, shape);
  if (!layout.ok()) return layout.status();
  if (auto s = CheckSizes(w.n, w.k, w.q.size(), w.scale.size(), "w8 weight"); !s.ok()) return s;
  PackedLinear p{*layout, std::vector<uint8_t>(layout->bytes(), 0), w.scale};
  for (int64_t i = 0; i < w.n * w.k; ++i) {
    if (w.q[i] < -kInt8Max) {
      return absl::InvalidArgumentError(absl::StrCat("w8 value -128 at channel ", i / w.k, ", k ",
                                                     i % w.k, ": the contract range is +-127"));
    }
  }
  ForEachElement(*layout, w.k, [&](int64_t n, int64_t k, int64_t rec, int64_t e) {
    p.tiles[rec + e] = static_cast<uint8_t>(w.q[n * w.k + k]);
  });
  return p;
}

absl::StatusOr<PackedLinear> PackW4(const W4Weights& w, TileShape shape) {
  auto layout = TiledLayout::Make(WeightScheme::kW4, w.n, w.k, shape, w.group);
  if (!layout.ok()) return layout.status();
  if (auto s = CheckSizes(w.n, w.k, w.q4.size(), w.scale.size(), "w4 weight"); !s.ok()) return s;
  const int64_t ng = w.num_groups();
  if (w.gscale.size() != static_cast<size_t>(w.n * ng) ||
      w.gzero.size() != static_cast<size_t>(w.n * ng)) {
    return absl::InvalidArgumentError(absl::StrCat("w4 weight [", w.n, ", ", w.k, "] group ",
                                                   w.group, ": expected ", w.n * ng,
                                                   " group scales and zeros"));
  }
  for (int64_t n = 0; n < w.n; ++n) {
    for (int64_t g = 0; g < ng; ++g) {
      const uint8_t s = w.gscale[n * ng + g], z = w.gzero[n * ng + g];
      if (!W4GroupInRange(s, z)) {
        return absl::InvalidArgumentError(
            absl::StrCat("w4 channel ", n, " group ", g, ": scale ", s, " zero ", z,
                         " leaves the int8 range [-127, 127]"));
      }
    }
  }
  for (size_t i = 0; i < w.q4.size(); ++i) {
    if (w.q4[i] > 15) {
      return absl::InvalidArgumentError(absl::StrCat("w4 value ", w.q4[i], " at channel ",
                                                     i / w.k, ", k ", i % w.k, " is not uint4"));
    }
  }
  PackedLinear p{*layout, std::vector<uint8_t>(layout->bytes(), 0), w.scale};
  uint8_t* base = p.tiles.data();
  // Padded K inside the last real group must expand to 0: its nibble is that group's zero.
  const int64_t k_end = std::min(layout->k_pad(), ng * w.group);
  ForEachElement(*layout, k_end, [&](int64_t n, int64_t k, int64_t rec, int64_t e) {
    SetNibble(base + rec, e, k < w.k ? w.q4[n * w.k + k] : w.gzero[n * ng + k / w.group]);
  });
  // A group longer than tile_k spans several tiles; each carries the group's metadata (group row
  // j of tile kt is group (kt * tile_k) / group + j), so every tile record is self-contained.
  const int64_t span = std::max<int64_t>(1, w.group / layout->tile_k);
  for (int64_t n = 0; n < w.n; ++n) {
    for (int64_t g = 0; g < ng; ++g) {
      auto [rec, j] = GroupSlot(*layout, n, g);
      const int64_t nn = n % layout->tile_n;
      const int64_t tiles = std::min(span, layout->k_tiles() - g * w.group / layout->tile_k);
      for (int64_t i = 0; i < tiles; ++i) {
        uint8_t* tile = base + rec + i * layout->tile_stride();
        tile[ScaleOffset(*layout, j, nn)] = w.gscale[n * ng + g];
        SetNibble(tile, ZeroNibble(*layout, j, nn), w.gzero[n * ng + g]);
      }
    }
  }
  return p;
}

W8Weights UnpackW8(const LinearWeightsView& v) {
  const TiledLayout& l = v.layout;
  W8Weights w{l.n, l.k, std::vector<int8_t>(l.n * l.k), std::vector<float>(v.scale, v.scale + l.n)};
  ForEachElement(l, l.k, [&](int64_t n, int64_t k, int64_t rec, int64_t e) {
    w.q[n * l.k + k] = static_cast<int8_t>(v.tiles[rec + e]);
  });
  return w;
}

W4Weights UnpackW4(const LinearWeightsView& v) {
  const TiledLayout& l = v.layout;
  W4Weights w;
  w.n = l.n;
  w.k = l.k;
  w.group = l.group;
  const int64_t ng = w.num_groups();
  w.q4.resize(l.n * l.k);
  w.gscale.resize(l.n * ng);
  w.gzero.resize(l.n * ng);
  w.scale.assign(v.scale, v.scale + l.n);
  ForEachElement(l, l.k, [&](int64_t n, int64_t k, int64_t rec, int64_t e) {
    w.q4[n * l.k + k] = GetNibble(v.tiles + rec, e);
  });
  for (int64_t n = 0; n < l.n; ++n) {
    for (int64_t g = 0; g < ng; ++g) {
      auto [rec, j] = GroupSlot(l, n, g);
      const int64_t nn = n % l.tile_n;
      w.gscale[n * ng + g] = v.tiles[rec + ScaleOffset(l, j, nn)];
      w.gzero[n * ng + g] = GetNibble(v.tiles + rec, ZeroNibble(l, j, nn));
    }
  }
  return w;
}

std::vector<int8_t> ExpandToInt8(const LinearWeightsView& v) {
  const TiledLayout& l = v.layout;
  if (l.scheme == WeightScheme::kW8) return UnpackW8(v).q;
  const W4Weights w = UnpackW4(v);
  const int64_t ng = w.num_groups();
  std::vector<int8_t> out(l.n * l.k);
  for (int64_t n = 0; n < l.n; ++n) {
    for (int64_t k = 0; k < l.k; ++k) {
      const int64_t g = n * ng + k / l.group;
      out[n * l.k + k] = ExpandW4(w.q4[n * l.k + k], w.gzero[g], w.gscale[g]);
    }
  }
  return out;
}

absl::Status ValidateW4Groups(const LinearWeightsView& v) {
  const TiledLayout& l = v.layout;
  if (l.scheme != WeightScheme::kW4) return absl::OkStatus();
  for (int64_t nt = 0; nt < l.n_tiles(); ++nt) {
    for (int64_t kt = 0; kt < l.k_tiles(); ++kt) {
      const uint8_t* rec = v.tiles + l.tile_offset(nt, kt);
      for (int64_t j = 0; j < l.groups_per_tile(); ++j) {
        for (int64_t nn = 0; nn < l.tile_n; ++nn) {
          const uint8_t s = rec[ScaleOffset(l, j, nn)];
          const uint8_t z = GetNibble(rec, ZeroNibble(l, j, nn));
          if (!W4GroupInRange(s, z)) {
            return absl::InvalidArgumentError(absl::StrCat(
                "w4 tile (", nt, ", ", kt, ") column ", nn, " group row ", j, ": scale ", s,
                " zero ", z, " leaves the int8 range [-127, 127]"));
          }
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace qsl
