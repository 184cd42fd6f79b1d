#include "engine/scheduler.h"

#include <algorithm>
#include <cassert>
#include <tuple>

namespace qsl {

bool Scheduler::Order::operator()(const Sequence* a, const Sequence* b) const {
  return std::tie(a->priority, a->arrival, a->index) < std::tie(b->priority, b->arrival, b->index);
}

Scheduler::Scheduler(const SchedulerConfig& config, BlockPool& pool)
    : config_(config), pool_(pool) {}

void Scheduler::Enqueue(Sequence* s) {
  s->running = false;
  waiting_.insert(s);
}

void Scheduler::AddRunning(Sequence* s) {
  s->running = true;
  running_.insert(std::upper_bound(running_.begin(), running_.end(), s, Order()), s);
}

int32_t Scheduler::ChunkSize(const Sequence& s, int32_t budget, bool batch_empty) const {
  const int32_t need = s.uncomputed();
  if (config_.chunked_prefill) return std::min(need, budget);
  // A whole prompt at once; alone in a step it may exceed the budget rather than never run.
  return need <= budget || batch_empty ? need : 0;
}

bool Scheduler::Allocate(Sequence& s, int32_t count, int32_t reserve, StepPlan& plan) {
  const int32_t bs = pool_.block_size();
  const int32_t end = s.num_computed + count;
  const int32_t grow = (end + bs - 1) / bs - static_cast<int32_t>(s.blocks.size());
  // Writing into a partial block that a forked sibling also holds needs a private copy first.
  const int32_t partial = s.num_computed / bs;
  const bool cow = s.num_computed % bs != 0 && pool_.refcount(s.blocks[partial]) > 1;
  if (std::max(grow, 0) + (cow ? 1 : 0) + reserve > pool_.num_free()) return false;
  if (cow) {
    const int32_t copy = pool_.Allocate();
    plan.copies.emplace_back(s.blocks[partial], copy);
    pool_.Release(s.blocks[partial]);
    s.blocks[partial] = copy;
  }
  for (int32_t i = 0; i < grow; ++i) s.blocks.push_back(pool_.Allocate());
  return true;
}

std::pair<int32_t, int32_t> Scheduler::MatchPrefix(Sequence& s) {
  const int32_t bs = pool_.block_size();
  // The last token is always computed (its logits are needed), so its block never comes from
  // the cache.
  const int32_t eligible = (static_cast<int32_t>(s.tokens.size()) - 1) / bs;
  int32_t parent = -1, hits = 0;
  for (; hits < eligible; ++hits) {
    const int32_t b =
        pool_.Lookup(parent, absl::MakeConstSpan(s.tokens.data() + hits * bs, static_cast<size_t>(bs)));
    if (b < 0) break;
    s.blocks.push_back(b);
    parent = b;
  }
  s.num_computed = hits * bs;
  s.num_registered = hits;
  return {eligible, hits};
}

void Scheduler::ReleaseBlocks(Sequence& s) {
  // Newest first, so that the prefix cache evicts a sequence's tail before its shared head.
  for (auto it = s.blocks.rbegin(); it != s.blocks.rend(); ++it) pool_.Release(*it);
  s.blocks.clear();
  s.num_computed = 0;
  s.num_registered = 0;
}

void Scheduler::Preempt(Sequence* s) {
  running_.erase(std::find(running_.begin(), running_.end(), s));
  ReleaseBlocks(*s);
  Enqueue(s);
  ++preemptions_;
}

StepPlan Scheduler::Schedule() {
  StepPlan plan;
  int32_t budget = config_.max_num_batched_tokens;
  bool preempted = false;
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* s = running_[i];
    const int32_t count = ChunkSize(*s, budget, plan.chunks.empty());
    if (count == 0) {
      ++i;
      continue;
    }
    bool ok = Allocate(*s, count, 0, plan);
    while (!ok) {
      Sequence* victim = running_.back();
      Preempt(victim);
      preempted = true;
      if (victim == s) break;
      ok = Allocate(*s, count, 0, plan);
    }
    if (!ok) continue;  // `s` itself was the newest: it waits now, and running_ shrank past i
    plan.chunks.push_back({s, count});
    budget -= count;
    ++i;
  }
  // Admitting new work right after preempting would only thrash.
  if (preempted) return plan;

  // Keep a little headroom when others run, so admissions do not force immediate preemptions.
  const int32_t watermark = pool_.num_blocks() / 100;
  while (!waiting_.empty() && budget > 0) {
    Sequence* s = *waiting_.begin();
    const bool alone = running_.empty();
    if (!alone && num_running() + s->fork > config_.max_num_seqs) break;
    const bool lookup = config_.prefix_caching && !s->need_prompt_logprobs && s->blocks.empty();
    const auto [queries, hits] = lookup ? MatchPrefix(*s) : std::pair<int32_t, int32_t>{0, 0};
    const int32_t count = ChunkSize(*s, budget, plan.chunks.empty());
    if (count == 0 || !Allocate(*s, count, alone ? 0 : watermark, plan)) {
      ReleaseBlocks(*s);  // give back the prefix hits; it retries next step
      break;
    }
    prefix_queries_ += queries;
    prefix_hits_ += hits;
    waiting_.erase(waiting_.begin());
    AddRunning(s);
    plan.chunks.push_back({s, count});
    budget -= count;
  }
  return plan;
}

void Scheduler::Computed(Sequence* s, int32_t count) {
  s->num_computed += count;
  if (!config_.prefix_caching) return;
  const int32_t bs = pool_.block_size();
  for (; (s->num_registered + 1) * bs <= s->num_computed; ++s->num_registered) {
    const int32_t b = s->num_registered;
    pool_.Register(b > 0 ? s->blocks[b - 1] : -1,
                   absl::MakeConstSpan(s->tokens.data() + b * bs, static_cast<size_t>(bs)),
                   s->blocks[b]);
  }
}

void Scheduler::Fork(const Sequence& parent, Sequence* child) {
  child->blocks = parent.blocks;
  for (int32_t b : child->blocks) pool_.Ref(b);
  child->num_computed = parent.num_computed;
  child->num_registered = parent.num_registered;
  AddRunning(child);
}

void Scheduler::Remove(Sequence* s) {
  if (s->running) {
    running_.erase(std::find(running_.begin(), running_.end(), s));
  } else {
    waiting_.erase(s);
  }
  s->running = false;
  ReleaseBlocks(*s);
}

}  // namespace qsl
