// The host interface every transport shares (sim, RTL, XRT): the 16-byte command encoding, its
// rejection of corrupt words, and the activation-block and accumulator-region layouts.
#include "accel/command_stream.h"

#include <cstring>
#include <random>

#include "accel/driver.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qsl {
namespace {

using ::testing::HasSubstr;

TEST(CommandStream, EncodingRoundTrips) {
  const Command cmds[] = {
      Command::LoadWeights(64 * 12345, 128, WeightScheme::kW8, 0),
      Command::LoadWeights(uint64_t{1} << 40, 66, WeightScheme::kW4, 7),
      Command::LoadActivations(4096, 65535),
      Command::Stream(512, 0xfffffff0u, true, false, false),
      Command::Stream(1, 3, false, true, true),
      Command::Drain(64, 7),
  };
  const std::vector<uint8_t> bytes = EncodeCommands(cmds);
  ASSERT_EQ(bytes.size(), sizeof(cmds) / sizeof(cmds[0]) * kCommandBytes);
  auto back = DecodeCommands(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, std::vector<Command>(std::begin(cmds), std::end(cmds)));
}

TEST(CommandStream, BitLayoutIsTheDocumentedOne) {
  uint8_t b[kCommandBytes];
  EncodeCommand(Command::Stream(0x1234, 0xa5a5a5a5u, true, true, false), b);
  uint64_t w0, w1;
  std::memcpy(&w0, b, 8);
  std::memcpy(&w1, b + 8, 8);
  EXPECT_EQ(w0 & 0xf, 3u);                   // opcode
  EXPECT_EQ((w0 >> 8) & 0x7, 0x3u);          // acc_first, acc_last, not pop_act
  EXPECT_EQ((w0 >> 16) & 0xffff, 0x1234u);   // rows
  EXPECT_EQ(w0 >> 32, 0xa5a5a5a5u);          // act_row
  EXPECT_EQ(w1, 0u);
  EncodeCommand(Command::LoadWeights(0x1000, 66, WeightScheme::kW4, 5), b);
  std::memcpy(&w0, b, 8);
  std::memcpy(&w1, b + 8, 8);
  EXPECT_EQ(w0, 1u | (1u << 8) | (5u << 12) | (66u << 16));
  EXPECT_EQ(w1, 0x1000u);
}

struct Corrupt {
  uint64_t w0, w1;
  const char* message;
};

class CommandStreamErrors : public ::testing::TestWithParam<Corrupt> {};

TEST_P(CommandStreamErrors, CorruptWordsAreRejected) {
  uint8_t b[kCommandBytes];
  std::memcpy(b, &GetParam().w0, 8);
  std::memcpy(b + 8, &GetParam().w1, 8);
  auto c = DecodeCommand(b);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    All, CommandStreamErrors,
    ::testing::Values(Corrupt{0, 0, "unknown opcode 0"}, Corrupt{9 | (1 << 16), 0, "unknown opcode 9"},
                      Corrupt{3 | (1 << 16) | (1 << 5), 0, "must be zero"},
                      Corrupt{3 | (1 << 16) | (1 << 11), 0, "must be zero"},
                      Corrupt{3 | (1 << 16), 64, "word 1 must be zero"},
                      Corrupt{4 | (1 << 16) | (uint64_t{1} << 40), 64, "must be zero"},
                      Corrupt{2 | (1 << 16), 65, "not 64-byte aligned"},
                      Corrupt{2, 64, "count is zero"},
                      Corrupt{1 | (3 << 12) | (1 << 16), 64, "w8 takes no group_shift"}));

TEST(CommandStream, StreamOfTheWrongLengthIsRejected) {
  const std::vector<uint8_t> bytes(kCommandBytes + 3, 0);
  EXPECT_THAT(std::string(DecodeCommands(bytes).status().message()), HasSubstr("19 bytes"));
}

TEST(CommandStream, ActivationBlockIsKTileMajor) {
  // 3 rows of k_pad = 8 (two 4-byte k-tiles): row t, k -> value 10 * t + k.
  const int64_t rows = 3, k_pad = 8;
  std::vector<int8_t> a(rows * k_pad);
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t k = 0; k < k_pad; ++k) a[t * k_pad + k] = static_cast<int8_t>(10 * t + k);
  }
  ASSERT_EQ(ActivationBlockBytes(rows, k_pad), 64);
  std::vector<uint8_t> out(64, 0xee);
  PackActivationBlock(a.data(), rows, k_pad, 4, out.data());
  // [kt][t][4]: k-tile 0 of rows 0, 1, 2, then k-tile 1 of rows 0, 1, 2, then zero padding.
  const uint8_t want[] = {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23,
                          4, 5, 6, 7, 14, 15, 16, 17, 24, 25, 26, 27};
  EXPECT_TRUE(std::equal(std::begin(want), std::end(want), out.begin()));
  EXPECT_TRUE(std::all_of(out.begin() + 24, out.end(), [](uint8_t b) { return b == 0; }));
}

TEST(CommandStream, AccumulatorRegionUnpacksIntoItsColumns) {
  const int64_t rows = 2;
  const int32_t cols = 4;
  ASSERT_EQ(AccumulatorRegionBytes(rows, cols), 64);
  std::vector<uint8_t> region(64);
  for (int i = 0; i < 8; ++i) {
    const int32_t v = -100 * i;
    std::memcpy(&region[i * 4], &v, 4);
  }
  std::vector<int32_t> acc(rows * 6, 7);
  UnpackAccumulatorRegion(region.data(), rows, cols, 4, 2, acc.data(), 6);  // the last 2 columns
  EXPECT_EQ(acc, (std::vector<int32_t>{7, 7, 7, 7, 0, -100, 7, 7, 7, 7, -400, -500}));
}

TEST(CommandStream, PlanLaysOutStagingWithoutOverlap) {
  MpeConfig c = DefaultMpeConfig();
  auto layout = TiledLayout::Make(WeightScheme::kW4, 200, 5632, c.tile(), 128);
  ASSERT_TRUE(layout.ok());
  auto plan = PlanLinear(c, *layout, 1 << 20, 1 << 30, 1000);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->block_rows, c.a_slot_rows() / layout->k_tiles());
  EXPECT_EQ(plan->blocks, (1000 + plan->block_rows - 1) / plan->block_rows);
  int64_t end = 0;
  for (int64_t b = 0; b < plan->blocks; ++b) {
    EXPECT_EQ(plan->act_offset[b], end);
    end += ActivationBlockBytes(plan->rows(b), layout->k_pad());
  }
  for (int64_t b = 0; b < plan->blocks; ++b) {
    for (int64_t nt = 0; nt < plan->n_tiles; ++nt) {
      EXPECT_EQ(plan->out_region(b, nt), end);
      end += AccumulatorRegionBytes(plan->rows(b), c.cols);
    }
  }
  EXPECT_EQ(plan->staging_bytes, end);
  EXPECT_EQ(GroupShift(*layout), 7);  // a group of 128 covers the whole 128-row tile
}

}  // namespace
}  // namespace qsl
