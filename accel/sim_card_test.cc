// The simulated card through the driver: bit-exact int32 accumulators against the scalar
// reference on random shapes and schedules, for W8 and W4, on several array sizes.
#include "accel/sim_card.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "accel/driver.h"
#include "accel/linear.h"
#include "accel/testing/random_linear.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qsl {
namespace {

using ::testing::HasSubstr;

MpeConfig Card(int rows, int cols, int beats, bool double_buffer = true) {
  MpeConfig c = DefaultMpeConfig();
  c.name = absl::StrCat("test", rows, "x", cols);
  c.rows = rows;
  c.cols = cols;
  c.mem_beats_per_cycle = beats;
  c.mem_latency_cycles = 7;
  c.mem_bytes = 64 << 20;
  c.weight_buffer_bytes = 6 * c.w_slot_bytes();
  c.act_buffer_bytes = 2 * 64 * rows * 4;  // an activation slot holds 4 k-tiles of 64 rows
  c.acc_buffer_bytes = 2 * 24 * cols * 4;  // 24 rows per accumulator slot
  c.double_buffer = double_buffer;
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
  return c;
}

struct Shape {
  WeightScheme scheme;
  int64_t n, k, m;
  int32_t group;
};

void ExpectExact(const MpeConfig& config, const Shape& s, const PlanOptions& options,
                 std::mt19937& rng) {
  SCOPED_TRACE(absl::StrCat(config.name, " ", WeightSchemeName(s.scheme), " n=", s.n, " k=", s.k,
                            " m=", s.m, " group=", s.group, " block_rows=", options.block_rows,
                            " prefetch=", options.prefetch));
  const PackedLinear w = testing::RandomLinear(rng, s.scheme, s.n, s.k, config.tile(), s.group);
  const LinearWeightsView v = View(w);
  const std::vector<int8_t> a = testing::RandomActivations(rng, s.m, s.k, v.layout.k_pad());
  std::vector<int32_t> want(s.m * s.n), got(s.m * s.n, -1);
  scalar::MatmulInt8(v, a.data(), s.m, want.data(), s.n);

  MpeDriver driver(std::make_unique<SimCard>(config, 0), options);
  ASSERT_TRUE(driver.Add(7, v).ok());
  const absl::Status st = driver.Matmul(7, a.data(), s.m, got.data());
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(got, want);
  EXPECT_EQ(driver.counters().useful_macs, s.m * s.n * s.k);
  EXPECT_GT(driver.counters().cycles, 0);
}

TEST(SimCard, RandomShapesAreBitExact) {
  std::mt19937 rng(1234);
  const MpeConfig cards[] = {Card(4, 4, 1), Card(8, 8, 2, false), Card(16, 16, 4),
                             Card(32, 16, 3)};
  for (const MpeConfig& c : cards) {
    const int32_t small_group = std::max(4, c.rows / 2);
    const Shape shapes[] = {
        {WeightScheme::kW8, 1, 1, 1, 0},        {WeightScheme::kW8, 37, 53, 1, 0},
        {WeightScheme::kW8, 64, 96, 29, 0},     {WeightScheme::kW4, 33, 70, 1, small_group},
        {WeightScheme::kW4, 45, 130, 9, 128},   {WeightScheme::kW4, 31, 60, 53, 4},
        {WeightScheme::kW4, 17, 200, 25, small_group}};
    for (const Shape& s : shapes) {
      ExpectExact(c, s, {}, rng);
      ExpectExact(c, s, {.block_rows = 5, .prefetch = 1, .early_act_load = false}, rng);
      ExpectExact(c, s, {.block_rows = 3, .prefetch = 2, .early_act_load = true}, rng);
    }
  }
}

TEST(SimCard, DefaultCardIsBitExact) {
  std::mt19937 rng(99);
  ExpectExact(DefaultMpeConfig(), {WeightScheme::kW8, 130, 300, 3, 0}, {}, rng);
  ExpectExact(DefaultMpeConfig(), {WeightScheme::kW4, 70, 260, 2, 128}, {}, rng);
  ExpectExact(DefaultMpeConfig(), {WeightScheme::kW4, 64, 128, 1, 32}, {}, rng);
}

TEST(SimCard, RejectsABadStreamBeforeRunning) {
  SimCard card(Card(4, 4, 1), 3);
  const Command stream[] = {Command::Stream(1, 0, true, true, true)};
  auto run = card.Execute(stream);
  ASSERT_FALSE(run.ok());
  EXPECT_THAT(std::string(run.status().message()), HasSubstr("sim:3"));
  EXPECT_THAT(std::string(run.status().message()), HasSubstr("no LOAD_W"));
}

TEST(SimCard, ReadsOutsideCardMemoryAreErrors) {
  const MpeConfig c = Card(4, 4, 1);
  SimCard card(c, 0);
  auto region = card.Allocate(64);
  ASSERT_TRUE(region.ok());
  const Command stream[] = {Command::LoadActivations(*region, 1),
                            Command::LoadWeights(*region + 4096, 1, WeightScheme::kW8, 0),
                            Command::Stream(1, 0, true, true, true),
                            Command::Drain(*region, 1)};
  auto run = card.Execute(stream);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), absl::StatusCode::kOutOfRange);
}

TEST(SimCard, InjectedFaultTakesTheCardDown) {
  std::mt19937 rng(5);
  const MpeConfig c = Card(8, 8, 2);
  const PackedLinear w = testing::RandomLinear(rng, WeightScheme::kW8, 16, 16, c.tile());
  auto card = std::make_unique<SimCard>(c, 2);
  SimCard* sim = card.get();
  MpeDriver driver(std::move(card));
  ASSERT_TRUE(driver.Add(0, View(w)).ok());
  const std::vector<int8_t> a = testing::RandomActivations(rng, 1, 16, 16);
  std::vector<int32_t> acc(16);
  ASSERT_TRUE(driver.Matmul(0, a.data(), 1, acc.data()).ok());
  sim->InjectFault(1);
  const absl::Status st = driver.Matmul(0, a.data(), 1, acc.data());
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(st.message()), HasSubstr("sim:2: injected fault"));
  EXPECT_TRUE(sim->failed());
  EXPECT_EQ(driver.Matmul(0, a.data(), 1, acc.data()).code(), absl::StatusCode::kUnavailable);
}

TEST(SimCard, TileShapeMustMatchTheArray) {
  std::mt19937 rng(6);
  const PackedLinear w = testing::RandomLinear(rng, WeightScheme::kW8, 16, 16, {16, 16});
  MpeDriver driver(std::make_unique<SimCard>(Card(8, 8, 2), 0));
  const absl::Status st = driver.Add(0, View(w));
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("quantize the model with this --mpe-config"));
}

}  // namespace
}  // namespace qsl
