// The engine's public API: what the server (HTTP and gRPC threads) and the CLI call.
// One engine loop thread owns the model, the KV cache and the scheduler; requests are submitted
// and cancelled from any thread, and results stream back through a per-request callback that runs
// on the engine thread (it must not block: post to your own executor).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "accel/device_pool.h"
#include "engine/sampling_params.h"

namespace qsl {

class Tokenizer;
struct ModelConfig;

enum class FinishReason { kStop, kLength, kCancelled, kError };
const char* FinishReasonName(FinishReason r);  // "stop", "length", "cancelled", "error"

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;  // token ids, BOS included when the tokenizer adds one
  SamplingParams params;
  int32_t priority = 0;  // lower runs first among waiting requests; FCFS within a priority
};

// Streamed back for one of the request's n choices. Events of one choice arrive in order; the
// last one has `finish` set. Text is always whole UTF-8 and never contains (any part of) a stop
// string; tokens whose text is held back (a possible stop-string prefix, an incomplete UTF-8
// character) are released in a later event or dropped if a stop string matches.
struct GenerationEvent {
  int32_t index = 0;                   // choice index, 0..n-1
  std::vector<int32_t> token_ids;      // tokens generated since the previous event
  std::string text;                    // text released since the previous event
  std::vector<float> logprobs;         // logprob of each token in token_ids (when requested)
  std::vector<std::vector<TokenLogprob>> top_logprobs;  // top-`logprobs` alternatives per token
  std::optional<FinishReason> finish;  // set on the choice's last event
  std::string error;                   // with FinishReason::kError
  // Usage, filled on every event: tokens of the prompt and generated so far by this choice.
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
};

// Prompt logprobs for echo with logprobs (first prompt token has none), sent once, before any
// GenerationEvent, when params.echo && params.logprobs >= 0.
struct PromptLogprobs {
  std::vector<float> logprobs;  // size prompt - 1, for prompt[1..]
  std::vector<std::vector<TokenLogprob>> top_logprobs;
};

struct RequestCallbacks {
  std::function<void(const GenerationEvent&)> on_event;
  std::function<void(const PromptLogprobs&)> on_prompt_logprobs;  // optional
};

struct EngineStats {
  int32_t running = 0;
  int32_t waiting = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t prefix_queries = 0;  // cumulative prompt blocks looked up
  int64_t prefix_hits = 0;     // cumulative prompt blocks found cached
  int64_t preemptions = 0;     // cumulative
  int64_t prompt_tokens = 0;   // cumulative
  int64_t generation_tokens = 0;
};

// How CreateEngine builds an engine; the server maps its flags onto this.
struct EngineOptions {
  std::string model;             // Hugging Face checkpoint directory (fp32) or packed model file
  std::string devices = "cpu";   // where linear layers run: cpu, sim:N, ... (accel's DevicePool)
  std::string mpe_config;        // MpeConfig JSON for sim/xrt devices; empty = the default card
  int64_t kv_cache_mb = 512;     // memory budget of the KV block pool, MiB
  int32_t num_kv_blocks = 0;     // exact pool size in blocks, overriding kv_cache_mb when > 0
  int32_t block_size = 16;       // tokens per KV block
  std::string kv_dtype;          // fp16, int8 (per head and token), fp32; empty = the file's --kv
  int32_t max_num_seqs = 64;     // running sequences at most (the batch)
  int32_t max_queue = 1024;      // waiting requests at most; Submit says ResourceExhausted beyond
  int32_t max_num_batched_tokens = 512;  // tokens per forward step (prefill chunks + decodes)
  bool chunked_prefill = true;   // split long prompts across steps, mixed with decodes
  bool prefix_caching = true;    // reuse cached full blocks of a matching prompt prefix
  int32_t max_model_len = 0;     // prompt + max_tokens limit; 0 = the model's context
  std::vector<int32_t> layer_split;  // transformer layers per card (pipeline); empty = even
  // A packed file's weights, when the CPU computes from them, are read into huge-page memory
  // (8-15 % faster linears, the file's size in resident memory); true maps the file in place
  // instead (page cache, shared between processes). Cards get their own copy either way, so
  // for sim/xrt devices the file is always mapped.
  bool mmap_weights = false;
};

// What the linear layers run on, for `qsl devices`, logs and the per-card metrics.
struct DeviceReport {
  std::string description = "cpu";
  std::vector<CardStatus> cards;  // empty on the CPU
  int64_t failovers = 0;          // cumulative
  int64_t macs_per_cycle = 0;     // rows * cols of a card (utilization between two readings)
};

class Engine {
 public:
  virtual ~Engine() = default;

  // Queues a request. Errors: InvalidArgument (bad params or prompt, message "<param>: why"),
  // ResourceExhausted (queue full: HTTP 429), Unavailable (draining: HTTP 503).
  virtual absl::StatusOr<uint64_t> Submit(GenerationRequest request,
                                          RequestCallbacks callbacks) = 0;
  // Cancels at any point; blocks are freed at once and each unfinished choice gets a final event
  // with FinishReason::kCancelled. Unknown or finished ids are ignored.
  virtual void Cancel(uint64_t request_id) = 0;
  // Stops accepting (Submit returns Unavailable) and waits up to `timeout_ms` for in-flight
  // requests to finish; cancels what is left. Returns true when all finished in time.
  virtual bool Drain(int64_t timeout_ms) = 0;

  virtual EngineStats Stats() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual const ModelConfig& config() const = 0;
  virtual int32_t max_model_len() const = 0;  // prompt + max_tokens must fit
  // Thread-safe, like Stats().
  virtual DeviceReport Devices() const = 0;
};

// Loads the model, opens the devices, allocates the KV pool and starts the engine thread.
// Errors name the bad option or file (InvalidArgument, NotFound, ...).
absl::StatusOr<std::unique_ptr<Engine>> CreateEngine(const EngineOptions& options);

}  // namespace qsl
