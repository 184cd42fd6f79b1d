// The cycle model against hand-computed schedules (the formulas of docs/mpe.md), its protocol
// checks, and properties that must hold on every driver-planned stream.
#include "accel/cycle_model.h"

#include <random>

#include "accel/driver.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qsl {
namespace {

using ::testing::HasSubstr;

MpeConfig Tiny(int beats = 1, int latency = 5, int queue = 4, int slots = 3,
               bool double_buffer = true) {
  MpeConfig c = DefaultMpeConfig();
  c.rows = 4;
  c.cols = 4;
  c.mem_beats_per_cycle = beats;
  c.mem_latency_cycles = latency;
  c.queue_depth = queue;
  c.weight_buffer_bytes = slots * 64;
  c.act_buffer_bytes = 2 * 256;
  c.acc_buffer_bytes = 2 * 8 * 16;
  c.double_buffer = double_buffer;
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
  return c;
}

Command LoadW(int beats = 1) { return Command::LoadWeights(4096, beats, WeightScheme::kW8, 0); }

TEST(CycleModel, EmptyStreamIsOneCycle) {
  auto a = AccountCycles(Tiny(), {});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->cycles, 1);
}

TEST(CycleModel, OneTileByHand) {
  // LOAD_A: dispatched 0, issued 1, first beat at 1 + 5 = 6 -> ready 7.
  // LOAD_W: dispatched 1, issued 2, its beat follows on the port at 7 -> ready 8.
  // STREAM: dispatched 2, starts at 8 (weights); rows reach the accumulators until 8+2+4 = 14,
  //         so the tile is complete at 15.
  // DRAIN:  dispatched 3, starts 15, reads rows at 15 and 16, writes them at 16 and 17; the last
  //         acknowledge arrives at 17 + 5 = 22, so the card is idle in cycle 23: 24 cycles.
  const Command s[] = {Command::LoadActivations(0, 1), LoadW(),
                       Command::Stream(2, 0, true, true, true), Command::Drain(0, 2)};
  std::vector<CommandTiming> t;
  auto a = AccountCycles(Tiny(), s, &t);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(t[0].issue, 1);
  EXPECT_EQ(t[0].done, 7);
  EXPECT_EQ(t[1].done, 8);
  EXPECT_EQ(t[2].issue, 8);
  EXPECT_EQ(t[2].done, 15);
  EXPECT_EQ(t[3].issue, 15);
  EXPECT_EQ(t[3].done, 23);
  EXPECT_EQ(a->cycles, 24);
  EXPECT_EQ(a->head_cycles, 8);
  EXPECT_EQ(a->stream_rows, 2);
  EXPECT_EQ(a->tail_cycles, 14);
  EXPECT_EQ(a->write_bytes, 2 * 16);
}

TEST(CycleModel, ReadPortPacksBeatsOfConsecutiveRequests) {
  // Two beats per cycle, latency 3. Two 3-beat blocks issued at 1 and 2 are available at 4 and
  // 5; a 1-beat tile issued at 3 at 6. The port delivers 4:{a,a} 5:{a,b} 6:{b,b} 7:{w}, so the
  // blocks are ready at 6 and 7 and the tile at 8.
  const Command s[] = {Command::LoadActivations(0, 3), Command::LoadActivations(256, 3),
                       LoadW(),
                       Command::Stream(1, 0, true, true, true), Command::Drain(0, 1),
                       LoadW(),
                       Command::Stream(1, 0, true, true, true), Command::Drain(0, 1)};
  std::vector<CommandTiming> t;
  auto a = AccountCycles(Tiny(2, 3), s, &t);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(t[0].done, 6);
  EXPECT_EQ(t[1].done, 7);
  EXPECT_EQ(t[2].done, 8);
  EXPECT_EQ(t[3].issue, 8);
  EXPECT_EQ(a->act_beats, 6);
  EXPECT_EQ(a->weight_beats, 2);
}

TEST(CycleModel, PortWaitsForLatencyAfterAnIdleGap) {
  // Queue depth 1 spaces the issues two cycles apart: 1-beat loads issued at 1, 3, 5 with
  // latency 3 arrive at 4, 6, 8 even though the port is free earlier.
  const Command s[] = {Command::LoadActivations(0, 1), LoadW(), LoadW(),
                       Command::Stream(1, 0, true, false, false),
                       Command::Stream(1, 0, false, true, true), Command::Drain(0, 1)};
  std::vector<CommandTiming> t;
  auto a = AccountCycles(Tiny(4, 3, 1), s, &t);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(t[0].done, 5);
  EXPECT_EQ(t[1].done, 7);
  EXPECT_EQ(t[2].done, 9);
  EXPECT_EQ(t[3].issue, 7);
  EXPECT_EQ(t[4].issue, 9);
  EXPECT_EQ(a->stall_weights, 1);
}

TEST(CycleModel, FullQueueHoldsTheDispatcher) {
  // Queue depth 1: a load leaves its queue when issued (the cycle after dispatch), so the next
  // load can be dispatched only the cycle after that.
  const Command s[] = {LoadW(), LoadW(), LoadW(),
                       Command::LoadActivations(0, 1),
                       Command::Stream(1, 0, true, false, false),
                       Command::Stream(1, 0, false, false, false),
                       Command::Stream(1, 0, false, true, true), Command::Drain(0, 1)};
  std::vector<CommandTiming> t;
  auto a = AccountCycles(Tiny(1, 5, 1), s, &t);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(t[0].dispatch, 0);
  EXPECT_EQ(t[1].dispatch, 2);
  EXPECT_EQ(t[2].dispatch, 4);
  EXPECT_EQ(t[2].issue, 5);
}

TEST(CycleModel, WeightSlotFreesAfterTheArrayLatchesEveryRow) {
  // One weight slot: the second LOAD_W may issue only `rows` cycles after the first STREAM
  // starts (row r latches at start + r).
  const MpeConfig c = Tiny(1, 5, 4, 1, false);
  const Command s[] = {Command::LoadActivations(0, 1), LoadW(),
                       Command::Stream(1, 0, true, false, false), LoadW(),
                       Command::Stream(1, 0, false, true, true), Command::Drain(0, 1)};
  std::vector<CommandTiming> t;
  auto a = AccountCycles(c, s, &t);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(t[3].issue, t[2].issue + c.rows);
}

struct ProtocolCase {
  std::vector<Command> stream;
  std::string message;
};

class CycleModelProtocol : public ::testing::TestWithParam<ProtocolCase> {};

TEST_P(CycleModelProtocol, RejectsWithReason) {
  auto a = AccountCycles(Tiny(), GetParam().stream);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(a.status().message()), HasSubstr(GetParam().message));
}

const Command kA = Command::LoadActivations(0, 1);
const Command kFull = Command::Stream(1, 0, true, true, true);

INSTANTIATE_TEST_SUITE_P(
    All, CycleModelProtocol,
    ::testing::Values(
        ProtocolCase{{kA, kFull}, "no LOAD_W"},
        ProtocolCase{{LoadW(), kFull}, "no LOAD_A"},
        ProtocolCase{{LoadW(), LoadW(), LoadW(), LoadW(), kA}, "deadlock"},
        ProtocolCase{{kA, kA, kA}, "deadlock"},
        ProtocolCase{{kA, LoadW(), kFull, Command::Drain(0, 1), Command::Drain(0, 1)},
                     "no completed accumulator"},
        ProtocolCase{{kA, LoadW(), kFull, Command::Drain(0, 2)}, "2 rows but the tile has 1"},
        ProtocolCase{{kA, LoadW(), Command::Stream(1, 0, false, true, true)}, "no STREAM opened"},
        ProtocolCase{{kA, LoadW(), LoadW(), Command::Stream(1, 0, true, false, false),
                      Command::Stream(1, 0, true, true, true)},
                     "still open"},
        ProtocolCase{{kA, LoadW(), Command::Stream(3, 14, true, true, true)}, "beyond what"},
        ProtocolCase{{kA, LoadW(), Command::Stream(9, 0, true, true, true)}, "exceed"},
        ProtocolCase{{kA, LoadW(), kFull}, "never completed and drained"},
        ProtocolCase{{LoadW(2)}, "slot holds 1"},
        ProtocolCase{{Command::LoadWeights(0, 1, WeightScheme::kW4, 3)}, "group_shift"},
        ProtocolCase{{kA, LoadW(), LoadW(), kFull, Command::Drain(0, 1)}, "never streamed"}));

// Properties on driver-planned streams: more bandwidth never costs cycles, more latency never
// saves any, and the account adds up.
TEST(CycleModel, PropertiesOfPlannedStreams) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    const bool double_buffer = rng() % 4 != 0;
    const MpeConfig c = Tiny(1 + rng() % 3, 1 + rng() % 30, 1 + rng() % 4,
                             double_buffer ? 2 + rng() % 6 : 1, double_buffer);
    const WeightScheme scheme = rng() % 2 ? WeightScheme::kW4 : WeightScheme::kW8;
    auto layout = TiledLayout::Make(scheme, 1 + rng() % 40, 1 + rng() % 40, c.tile(),
                                    scheme == WeightScheme::kW4 ? 4 : 0);
    ASSERT_TRUE(layout.ok());
    auto plan = PlanLinear(c, *layout, 1 << 20, 1 << 24, 1 + rng() % 20,
                           {.block_rows = static_cast<int64_t>(rng() % 5),
                            .prefetch = static_cast<int32_t>(rng() % 4),
                            .early_act_load = rng() % 2 == 0});
    ASSERT_TRUE(plan.ok()) << plan.status();
    auto base = AccountCycles(c, plan->commands);
    ASSERT_TRUE(base.ok()) << base.status();
    const CycleAccount& a = *base;
    EXPECT_EQ(a.cycles, a.head_cycles + a.stream_rows + a.stall_weights + a.stall_acts +
                            a.stall_acc + a.stall_dispatch + a.tail_cycles);
    EXPECT_LE(a.overlap_cycles, a.weight_load_cycles);
    MpeConfig wider = c;
    wider.mem_beats_per_cycle += 1;
    MpeConfig slower = c;
    slower.mem_latency_cycles += 7;
    EXPECT_LE(AccountCycles(wider, plan->commands)->cycles, a.cycles);
    EXPECT_GE(AccountCycles(slower, plan->commands)->cycles, a.cycles);
  }
}

}  // namespace
}  // namespace qsl
