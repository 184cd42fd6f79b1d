// The scheduler's decisions on hand-built sequences: budgets, chunking, limits, priorities,
// preemption, copy-on-write after a fork, and prefix-cache hits.
#include "engine/scheduler.h"

#include <numeric>

#include "gtest/gtest.h"

namespace qsl {
namespace {

std::unique_ptr<Sequence> Seq(int32_t len, uint64_t arrival, int32_t first_token = 0) {
  auto s = std::make_unique<Sequence>();
  s->tokens.resize(static_cast<size_t>(len));
  std::iota(s->tokens.begin(), s->tokens.end(), first_token);
  s->prompt_len = len;
  s->arrival = arrival;
  return s;
}

// What a step ran: (arrival, count) per chunk.
std::vector<std::pair<uint64_t, int32_t>> Step(Scheduler& sched, const StepPlan& plan) {
  std::vector<std::pair<uint64_t, int32_t>> out;
  for (const auto& c : plan.chunks) {
    out.emplace_back(c.seq->arrival, c.count);
    sched.Computed(c.seq, c.count);
  }
  return out;
}

using Steps = std::vector<std::pair<uint64_t, int32_t>>;

TEST(Scheduler, ChunkedPrefillSplitsPromptsWithinTheBudget) {
  BlockPool pool(64, 16);
  Scheduler sched({8, 32, true, false}, pool);
  auto a = Seq(40, 0), b = Seq(10, 1), c = Seq(5, 2);
  for (auto* s : {a.get(), b.get(), c.get()}) sched.Enqueue(s);
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{0, 32}}));
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{0, 8}, {1, 10}, {2, 5}}));
  EXPECT_EQ(a->blocks.size(), 3u);  // 40 positions in blocks of 16
  a->tokens.push_back(7);           // sampled: one token to decode
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{0, 1}}));
}

TEST(Scheduler, WithoutChunkingAWholePromptWaitsForRoom) {
  BlockPool pool(64, 16);
  Scheduler sched({8, 32, false, false}, pool);
  auto a = Seq(40, 0), b = Seq(30, 1), c = Seq(3, 2);
  for (auto* s : {a.get(), b.get(), c.get()}) sched.Enqueue(s);
  // Alone, a prompt longer than the budget still runs; then b (30) fits, and c (3) does not fit
  // the 2 tokens left: it waits for the next step rather than being split.
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{0, 40}}));
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{1, 30}}));
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{2, 3}}));
}

TEST(Scheduler, MaxNumSeqsAndPriorities) {
  BlockPool pool(64, 16);
  Scheduler sched({2, 512, true, false}, pool);
  auto a = Seq(4, 0), b = Seq(4, 1), c = Seq(4, 2);
  c->priority = -1;  // jumps the queue
  for (auto* s : {a.get(), b.get(), c.get()}) sched.Enqueue(s);
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{2, 4}, {0, 4}}));
  EXPECT_EQ(sched.num_running(), 2);
  EXPECT_EQ(sched.num_waiting(), 1);
  sched.Remove(c.get());
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{1, 4}}));
}

TEST(Scheduler, PreemptsTheNewestWhenBlocksRunOutAndResumesIt) {
  BlockPool pool(4, 4);
  Scheduler sched({8, 512, true, false}, pool);
  auto a = Seq(7, 0), b = Seq(7, 1);
  sched.Enqueue(a.get());
  sched.Enqueue(b.get());
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{0, 7}, {1, 7}}));
  EXPECT_EQ(pool.num_free(), 0);
  a->tokens.push_back(1);  // a's 8th token fits its second block
  b->tokens.push_back(1);
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{0, 1}, {1, 1}}));
  a->tokens.push_back(2);  // position 8 needs a third block: b is preempted
  b->tokens.push_back(2);
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{0, 1}}));
  EXPECT_EQ(sched.preemptions(), 1);
  EXPECT_EQ(b->num_computed, 0);
  EXPECT_TRUE(b->blocks.empty());
  EXPECT_EQ(sched.num_waiting(), 1);
  sched.Remove(a.get());
  // b recomputes all 9 of its tokens.
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{1, 9}}));
  sched.Remove(b.get());
  EXPECT_EQ(pool.num_free(), 4);
}

TEST(Scheduler, ForkSharesBlocksAndCopiesThePartialOneOnWrite) {
  BlockPool pool(16, 4);
  Scheduler sched({8, 512, true, false}, pool);
  auto a = Seq(6, 0);
  sched.Enqueue(a.get());
  Step(sched, sched.Schedule());
  auto b = Seq(6, 0);
  b->index = 1;
  sched.Fork(*a, b.get());
  EXPECT_EQ(b->blocks, a->blocks);
  EXPECT_EQ(pool.refcount(a->blocks[1]), 2);
  const int32_t shared_partial = a->blocks[1];
  a->tokens.push_back(1);
  b->tokens.push_back(2);
  const StepPlan plan = sched.Schedule();
  ASSERT_EQ(plan.copies.size(), 1u);  // the first writer copies; the second then owns the original
  EXPECT_EQ(plan.copies[0].first, shared_partial);
  EXPECT_NE(a->blocks[1], b->blocks[1]);
  EXPECT_EQ(a->blocks[0], b->blocks[0]);  // the full block stays shared
  EXPECT_EQ(pool.refcount(a->blocks[0]), 2);
  sched.Remove(a.get());
  sched.Remove(b.get());
  EXPECT_EQ(pool.num_free(), 16);
}

TEST(Scheduler, PrefixCacheHitsSkipComputedBlocksButNeverTheLastToken) {
  BlockPool pool(16, 4);
  Scheduler sched({8, 512, true, true}, pool);
  auto a = Seq(12, 0);
  sched.Enqueue(a.get());
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{0, 12}}));
  sched.Remove(a.get());
  EXPECT_EQ(pool.num_free(), 16);  // cached blocks still count as free
  auto b = Seq(13, 1);             // a's 12 tokens + 1
  sched.Enqueue(b.get());
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{1, 1}}));
  EXPECT_EQ(sched.prefix_queries(), 5);  // a: 2 eligible blocks ((12 - 1) / 4), b: 3
  EXPECT_EQ(sched.prefix_hits(), 3);
  auto c = Seq(12, 2);  // exactly a's prompt: its last block is recomputed for the logits
  sched.Enqueue(c.get());
  EXPECT_EQ(Step(sched, sched.Schedule()), (Steps{{2, 4}}));
  EXPECT_EQ(sched.prefix_hits(), 5);
  EXPECT_EQ(c->blocks[0], b->blocks[0]);
  EXPECT_NE(c->blocks[2], b->blocks[2]);
}

}  // namespace
}  // namespace qsl
