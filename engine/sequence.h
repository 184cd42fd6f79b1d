// One choice of a request as the scheduler and the engine loop see it: its tokens, how many of
// them are in the KV cache, its block table, and its sampling state.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <vector>

#include "engine/sampler.h"
#include "engine/stop_checker.h"

namespace qsl {

struct Request;  // the engine's per-request state (engine_core.cc)

// A generated token waiting for its text to be released (StopChecker).
struct HeldToken {
  int32_t id = 0;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;
};

struct Sequence {
  Request* request = nullptr;
  int32_t index = 0;     // choice index
  int32_t priority = 0;  // lower runs first
  uint64_t arrival = 0;  // FCFS order within a priority

  // Scheduling state.
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int32_t prompt_len = 0;
  int32_t num_computed = 0;     // leading tokens whose K/V are in the cache
  std::vector<int32_t> blocks;  // block table: position p lives in blocks[p / block_size]
  int32_t num_registered = 0;   // leading full blocks already offered to the prefix cache
  int32_t fork = 1;             // choices this sequence becomes at its first sample (n)
  bool need_prompt_logprobs = false;  // every prompt row's logits wanted: no prefix-cache hits
  bool running = false;
  bool finished = false;

  // Sampling state, consumed only by this sequence.
  std::mt19937_64 rng;
  TokenHistory history;
  std::unique_ptr<StopChecker> stop;
  std::deque<HeldToken> held;
  int32_t generated = 0;

  int32_t uncomputed() const { return static_cast<int32_t>(tokens.size()) - num_computed; }
};

}  // namespace qsl
