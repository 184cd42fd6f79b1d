// The device pool: spec parsing, pipeline placement, and the generation-level claims on a small
// synthetic decoder (embedding, residual MLP blocks, lm_head, greedy argmax): cpu, sim:1 and
// sim:4 give identical tokens for W8 and W4, and so does sim:4 with a card killed mid-generation.
#include "accel/device_pool.h"

#include "absl/strings/str_cat.h"
#include "accel/testing/tiny_decoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qsl {
namespace {

using ::testing::HasSubstr;

MpeConfig SmallCard() {
  MpeConfig c = DefaultMpeConfig();
  c.name = "test16x16";
  c.rows = 16;
  c.cols = 16;
  c.mem_beats_per_cycle = 4;
  c.mem_latency_cycles = 11;
  c.mem_bytes = 64 << 20;
  c.weight_buffer_bytes = 8 * c.w_slot_bytes();
  c.act_buffer_bytes = 2 * 4096;
  c.acc_buffer_bytes = 64 * 16 * 4;
  return c;
}

using testing::kPrompts;
using testing::kSteps;
using testing::TinyDecoder;

std::unique_ptr<DevicePool> Pool(const std::string& spec, const TinyDecoder& model,
                                 std::vector<int32_t> split = {}) {
  DevicePoolOptions o;
  o.spec = spec;
  o.config = SmallCard();
  o.split = std::move(split);
  auto pool = DevicePool::Create(o);
  EXPECT_TRUE(pool.ok()) << pool.status();
  const std::vector<LinearDesc> linears = model.Linears();
  const absl::Status st = (*pool)->LoadModel(linears);
  EXPECT_TRUE(st.ok()) << st;
  return *std::move(pool);
}

class PoolGeneration : public ::testing::TestWithParam<WeightScheme> {};

TEST_P(PoolGeneration, CpuSim1AndSim4GiveTheSameTokens) {
  const TinyDecoder model(GetParam(), SmallCard().tile(), 17);
  auto cpu = Pool("cpu", model);
  auto want = model.Generate(*cpu, kPrompts, kSteps);
  ASSERT_TRUE(want.ok()) << want.status();
  for (const char* spec : {"sim:1", "sim:4"}) {
    auto pool = Pool(spec, model);
    auto got = model.Generate(*pool, kPrompts, kSteps);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, *want) << spec;
    for (const CardStatus& c : pool->Cards()) {
      EXPECT_TRUE(c.up);
      EXPECT_GT(c.counters.batches, 0) << c.name;
      EXPECT_GT(c.utilization, 0.0);
      EXPECT_LE(c.utilization, 1.0);
    }
  }
}

TEST_P(PoolGeneration, KilledCardMidGenerationLosesNothing) {
  const TinyDecoder model(GetParam(), SmallCard().tile(), 23);
  auto clean = Pool("sim:4", model);
  auto want = model.Generate(*clean, kPrompts, kSteps);
  ASSERT_TRUE(want.ok()) << want.status();
  const int64_t card2_commands = clean->Cards()[2].counters.commands;
  ASSERT_GT(card2_commands, 0);

  for (int victim : {0, 2, 3}) {
    auto pool = Pool("sim:4", model);
    // Fail partway through the run, in the middle of generation.
    ASSERT_TRUE(pool->InjectFault(victim, card2_commands / 2).ok());
    auto got = model.Generate(*pool, kPrompts, kSteps);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, *want) << "victim " << victim;
    EXPECT_EQ(pool->failovers(), 1);
    const std::vector<CardStatus> cards = pool->Cards();
    EXPECT_FALSE(cards[victim].up);
    // The survivors still own contiguous ranges covering every layer.
    int32_t next = 0;
    for (const CardStatus& c : cards) {
      if (!c.up) continue;
      EXPECT_EQ(c.first_layer, next);
      next = c.last_layer + 1;
    }
    EXPECT_EQ(next, TinyDecoder::kLayers);
  }
}

TEST_P(PoolGeneration, EveryCardButOneCanFail) {
  const TinyDecoder model(GetParam(), SmallCard().tile(), 29);
  auto cpu = Pool("cpu", model);
  auto want = model.Generate(*cpu, kPrompts, kSteps);
  ASSERT_TRUE(want.ok());
  auto pool = Pool("sim:4", model, {1, 2, 0, 1});
  for (int card : {0, 1, 3}) ASSERT_TRUE(pool->InjectFault(card, 40 * (card + 1)).ok());
  auto got = model.Generate(*pool, kPrompts, kSteps);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, *want);
  EXPECT_EQ(pool->failovers(), 3);
  const std::vector<CardStatus> cards = pool->Cards();
  EXPECT_TRUE(cards[2].up);
  EXPECT_EQ(cards[2].first_layer, 0);
  EXPECT_EQ(cards[2].last_layer, TinyDecoder::kLayers - 1);
}

INSTANTIATE_TEST_SUITE_P(Schemes, PoolGeneration,
                         ::testing::Values(WeightScheme::kW8, WeightScheme::kW4),
                         [](const auto& info) { return WeightSchemeName(info.param); });

TEST(DevicePool, AllCardsDownIsAnError) {
  const TinyDecoder model(WeightScheme::kW8, SmallCard().tile(), 3);
  auto pool = Pool("sim:2", model);
  ASSERT_TRUE(pool->InjectFault(0, 0).ok());
  ASSERT_TRUE(pool->InjectFault(1, 0).ok());
  auto got = model.Generate(*pool, kPrompts, kSteps);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("every card is down"));
}

TEST(DevicePool, SplitPlacesLayersInPipelineOrder) {
  const TinyDecoder model(WeightScheme::kW8, SmallCard().tile(), 3);
  auto pool = Pool("sim:3", model, {2, 0, 2});
  const std::vector<CardStatus> cards = pool->Cards();
  ASSERT_EQ(cards.size(), 3u);
  EXPECT_EQ(cards[0].first_layer, 0);
  EXPECT_EQ(cards[0].last_layer, 1);
  EXPECT_EQ(cards[1].resident_bytes, 0);
  EXPECT_EQ(cards[2].first_layer, 2);
  EXPECT_EQ(cards[2].last_layer, 3);
  EXPECT_GT(cards[2].resident_bytes, cards[0].resident_bytes);  // it also holds the lm_head
}

TEST(DevicePool, BadSplitIsAnError) {
  const TinyDecoder model(WeightScheme::kW8, SmallCard().tile(), 3);
  DevicePoolOptions o;
  o.spec = "sim:2";
  o.config = SmallCard();
  o.split = {3, 3};
  auto pool = DevicePool::Create(o);
  ASSERT_TRUE(pool.ok());
  const std::vector<LinearDesc> linears = model.Linears();
  const absl::Status st = (*pool)->LoadModel(linears);
  EXPECT_THAT(std::string(st.message()), HasSubstr("adding up to the model's 4 layers"));
}

TEST(DevicePool, SpecErrors) {
  for (const char* spec : {"gpu", "sim:0", "sim:x", "cpu:2", "xrt:a", "sim:65"}) {
    DevicePoolOptions o;
    o.spec = spec;
    auto pool = DevicePool::Create(o);
    EXPECT_FALSE(pool.ok()) << spec;
    EXPECT_THAT(std::string(pool.status().message()), HasSubstr(spec));
  }
}

TEST(DevicePool, XrtWithoutACardSaysSo) {
  DevicePoolOptions o;
  o.spec = "xrt";
  auto pool = DevicePool::Create(o);
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(pool.status().message()), HasSubstr("no XRT device found"));
}

TEST(DevicePool, FaultSpecFromOptions) {
  DevicePoolOptions o;
  o.spec = "sim:2";
  o.sim_fault = "5:10";
  EXPECT_THAT(std::string(DevicePool::Create(o).status().message()), HasSubstr("card 5"));
  o.sim_fault = "1-10";
  EXPECT_THAT(std::string(DevicePool::Create(o).status().message()), HasSubstr("CARD:COMMANDS"));
  o.spec = "cpu";
  o.sim_fault = "0:1";
  EXPECT_FALSE(DevicePool::Create(o).ok());
}

TEST(DevicePool, ModelTilesMustMatchTheCard) {
  const TinyDecoder model(WeightScheme::kW8, {32, 16}, 3);
  DevicePoolOptions o;
  o.spec = "sim:1";
  o.config = SmallCard();
  auto pool = DevicePool::Create(o);
  ASSERT_TRUE(pool.ok());
  const std::vector<LinearDesc> linears = model.Linears();
  const absl::Status st = (*pool)->LoadModel(linears);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("32x16"));
}

TEST(DevicePool, UtilizationBetweenSnapshots) {
  CardCounters before, now;
  now.cycles = 100;
  now.useful_macs = 2560;
  EXPECT_DOUBLE_EQ(Utilization(now, before, 256), 0.1);
  EXPECT_EQ(Utilization(now, now, 256), 0.0);
}

}  // namespace
}  // namespace qsl
