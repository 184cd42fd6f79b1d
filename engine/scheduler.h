// Iteration-level continuous batching (Orca/vLLM style). Each step the scheduler picks, within a
// token budget, one chunk of uncomputed tokens per sequence: running sequences first (a decode
// is a chunk of one; a long prompt is split across steps when chunked prefill is on), then
// waiting ones in (priority, arrival) order. It owns block allocation: when the pool runs dry it
// preempts the newest running sequence, which later recomputes its tokens (prefix-cache hits make
// that cheap). It never touches K/V data: copies for copy-on-write are returned to the caller.
#pragma once

#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include "engine/block_pool.h"
#include "engine/sequence.h"

namespace qsl {

struct SchedulerConfig {
  int32_t max_num_seqs = 64;
  int32_t max_num_batched_tokens = 512;
  bool chunked_prefill = true;
  bool prefix_caching = true;
};

struct ScheduledChunk {
  Sequence* seq = nullptr;
  int32_t count = 0;  // tokens [seq->num_computed, + count) run in this step
};

struct StepPlan {
  std::vector<ScheduledChunk> chunks;
  std::vector<std::pair<int32_t, int32_t>> copies;  // (src, dst) blocks to copy before the step
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, BlockPool& pool);

  // A new sequence (or one coming back): waits in (priority, arrival, index) order.
  void Enqueue(Sequence* s);
  StepPlan Schedule();
  // After the forward: the chunk's K/V are in the cache; newly full blocks join the prefix cache.
  void Computed(Sequence* s, int32_t count);
  // A choice split off `parent` after its prompt, sharing all of its blocks (copy-on-write when
  // either writes into a shared partial block).
  void Fork(const Sequence& parent, Sequence* child);
  // Finished or cancelled: out of the queues, blocks released now.
  void Remove(Sequence* s);

  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  int64_t preemptions() const { return preemptions_; }
  int64_t prefix_queries() const { return prefix_queries_; }
  int64_t prefix_hits() const { return prefix_hits_; }

 private:
  struct Order {
    bool operator()(const Sequence* a, const Sequence* b) const;
  };
  // Tokens of `s` to run now given the budget left; 0 when it must wait (whole prompts only).
  int32_t ChunkSize(const Sequence& s, int32_t budget, bool batch_empty) const;
  // Blocks for positions [num_computed, + count) (and copy-on-write of a shared partial block),
  // all or nothing; `reserve` more blocks must stay free afterwards.
  bool Allocate(Sequence& s, int32_t count, int32_t reserve, StepPlan& plan);
  // Reuses cached full blocks of the sequence's prefix. Returns (blocks looked up, hits).
  std::pair<int32_t, int32_t> MatchPrefix(Sequence& s);
  void Preempt(Sequence* s);
  void ReleaseBlocks(Sequence& s);
  void AddRunning(Sequence* s);

  SchedulerConfig config_;
  BlockPool& pool_;
  std::set<Sequence*, Order> waiting_;
  std::vector<Sequence*> running_;  // sorted by Order; preemption takes from the back
  int64_t preemptions_ = 0, prefix_queries_ = 0, prefix_hits_ = 0;
};

}  // namespace qsl
