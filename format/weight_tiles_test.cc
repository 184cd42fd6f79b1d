#include "format/weight_tiles.h"

#include <random>

#include "gtest/gtest.h"

namespace qsl {
namespace {

W8Weights RandomW8(int64_t n, int64_t k, std::mt19937& rng) {
  std::uniform_int_distribution<int> d(-127, 127);
  W8Weights w{n, k, std::vector<int8_t>(n * k), std::vector<float>(n)};
  for (auto& q : w.q) q = static_cast<int8_t>(d(rng));
  for (int64_t i = 0; i < n; ++i) w.scale[i] = 0.01f * static_cast<float>(i + 1);
  return w;
}

W4Weights RandomW4(int64_t n, int64_t k, int32_t group, std::mt19937& rng) {
  W4Weights w;
  w.n = n;
  w.k = k;
  w.group = group;
  std::uniform_int_distribution<int> q(0, 15);
  w.q4.resize(n * k);
  for (auto& v : w.q4) v = static_cast<uint8_t>(q(rng));
  for (int64_t i = 0; i < n * w.num_groups(); ++i) {
    uint8_t z, s;
    do {
      z = static_cast<uint8_t>(q(rng));
      s = static_cast<uint8_t>(1 + rng() % 16);
    } while (!W4GroupInRange(s, z));
    w.gzero.push_back(z);
    w.gscale.push_back(s);
  }
  w.scale.assign(n, 0.5f);
  return w;
}

struct Case {
  int64_t n, k;
  TileShape shape;
  int32_t group;
};

class TilesTest : public ::testing::TestWithParam<Case> {};

TEST_P(TilesTest, W8RoundTrips) {
  const Case c = GetParam();
  std::mt19937 rng(1);
  const W8Weights w = RandomW8(c.n, c.k, rng);
  auto p = PackW8(w, c.shape);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->tiles.size() % 64, 0u);
  const W8Weights u = UnpackW8(View(*p));
  EXPECT_EQ(u.q, w.q);
  EXPECT_EQ(u.scale, w.scale);
  EXPECT_EQ(ExpandToInt8(View(*p)), w.q);
}

TEST_P(TilesTest, W4RoundTripsAndExpands) {
  const Case c = GetParam();
  std::mt19937 rng(2);
  const W4Weights w = RandomW4(c.n, c.k, c.group, rng);
  auto p = PackW4(w, c.shape);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(ValidateW4Groups(View(*p)).ok());
  const W4Weights u = UnpackW4(View(*p));
  EXPECT_EQ(u.q4, w.q4);
  EXPECT_EQ(u.gscale, w.gscale);
  EXPECT_EQ(u.gzero, w.gzero);
  const std::vector<int8_t> e = ExpandToInt8(View(*p));
  const int64_t ng = w.num_groups();
  for (int64_t n = 0; n < c.n; ++n) {
    for (int64_t k = 0; k < c.k; ++k) {
      const int64_t g = n * ng + k / c.group;
      ASSERT_EQ(e[n * c.k + k], (w.q4[n * c.k + k] - w.gzero[g]) * w.gscale[g]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, TilesTest,
    ::testing::Values(Case{64, 128, {128, 64}, 128}, Case{67, 352, {128, 64}, 128},
                      Case{5, 130, {128, 64}, 32}, Case{33, 100, {16, 16}, 128},
                      Case{8, 12, {4, 4}, 4}, Case{17, 260, {8, 8}, 64}));

TEST(Tiles, LayoutRejectsBadShapes) {
  EXPECT_FALSE(TiledLayout::Make(WeightScheme::kW8, 0, 4, {}).ok());
  EXPECT_FALSE(TiledLayout::Make(WeightScheme::kW8, 4, 4, {6, 4}).ok());
  EXPECT_FALSE(TiledLayout::Make(WeightScheme::kW4, 4, 4, {128, 64}, 48).ok());
  EXPECT_FALSE(TiledLayout::Make(WeightScheme::kW4, 4, 4, {128, 64}, 0).ok());
  EXPECT_FALSE(TiledLayout::Make(WeightScheme::kW8, 4, 4, {128, 64}, 128).ok());
}

TEST(Tiles, PackRejectsOutOfContractValues) {
  std::mt19937 rng(3);
  W8Weights w8 = RandomW8(4, 8, rng);
  w8.q[5] = -128;
  EXPECT_FALSE(PackW8(w8, {4, 4}).ok());
  W4Weights w4 = RandomW4(4, 8, 4, rng);
  w4.gscale[0] = 20;
  w4.gzero[0] = 8;  // (15 - 8) * 20 = 140 > 127
  EXPECT_FALSE(PackW4(w4, {4, 4}).ok());
}

TEST(Tiles, ValidateCatchesCorruptGroup) {
  std::mt19937 rng(4);
  auto p = PackW4(RandomW4(8, 16, 8, rng), {8, 8});
  ASSERT_TRUE(p.ok());
  p->tiles[p->layout.scale_offset()] = 255;  // first scale of the first tile
  EXPECT_FALSE(ValidateW4Groups(View(*p)).ok());
}

// A group longer than tile_k: every tile it spans carries its metadata (the doc's "group row j
// of tile kt is group (kt * tile_k) / group + j"), so each tile record is self-contained.
TEST(Tiles, LongGroupMetadataInEveryTile) {
  std::mt19937 rng(6);
  const W4Weights w = RandomW4(4, 40, 32, rng);  // tile_k 8: groups span 4 tiles, the last 1
  auto p = PackW4(w, {8, 4});
  ASSERT_TRUE(p.ok());
  const TiledLayout& l = p->layout;
  for (int64_t kt = 0; kt < l.k_tiles(); ++kt) {
    const uint8_t* rec = p->tiles.data() + l.tile_offset(0, kt);
    const int64_t g = kt * l.tile_k / l.group;
    for (int64_t nn = 0; nn < 4; ++nn) {
      EXPECT_EQ(rec[l.scale_offset() + nn], w.gscale[nn * 2 + g]) << kt << "," << nn;
      const uint8_t zb = rec[l.zero_offset() + nn / 2];
      EXPECT_EQ(nn % 2 == 0 ? (zb & 0x0f) : (zb >> 4), w.gzero[nn * 2 + g]) << kt << "," << nn;
    }
  }
}

TEST(Tiles, PaddedKExpandsToZero) {
  std::mt19937 rng(5);
  const W4Weights w = RandomW4(3, 10, 8, rng);  // k_pad 16, last group covers 8..15
  auto p = PackW4(w, {16, 4});
  ASSERT_TRUE(p.ok());
  // Expand the padded tail through a wider logical view of the same bytes.
  LinearWeightsView v = View(*p);
  v.layout.k = 16;
  W4Weights u = UnpackW4(v);
  for (int64_t n = 0; n < 3; ++n) {
    for (int64_t k = 10; k < 16; ++k) {
      EXPECT_EQ(u.q4[n * 16 + k], w.gzero[n * 2 + 1]) << n << "," << k;
    }
  }
}

}  // namespace
}  // namespace qsl
