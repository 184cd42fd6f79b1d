// The Engine implementation: one loop thread owns the model's forward pass, the paged KV cache,
// the scheduler and the sampler, and runs steps while there is work. Submit, Cancel, Drain and
// Stats only touch a mutex-guarded inbox and a stats snapshot, so any thread may call them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/block_pool.h"
#include "engine/engine.h"
#include "engine/forward.h"
#include "engine/paged_kv_cache.h"
#include "engine/scheduler.h"

namespace qsl {

// Where the time of a set of engine steps went (for benchmarks and logs).
struct StepTimes {
  int64_t steps = 0;
  int64_t tokens = 0;         // tokens run through the forward
  double schedule_s = 0.0;    // scheduling, block allocation, copy-on-write
  double forward_s = 0.0;     // the whole forward
  double linear_s = 0.0;      // of which linear layers (the backend)
  double attention_s = 0.0;   // of which KV store and attention
  double sample_s = 0.0;      // sampling, logprobs, detokenization, stop strings, callbacks,
                              // freeing finished requests

  double total_s() const { return schedule_s + forward_s + sample_s; }
  StepTimes& operator+=(const StepTimes& o);
  StepTimes operator-(const StepTimes& o) const;
};

// Cumulative since start. decode_by_width[w]: the steps that only decoded — every chunk one
// generated token of its sequence, no prompt work — with w sequences: how fast the engine
// generates at a given batch width. Timed inside the engine, so it does not depend on when a
// client sees the tokens (a token's text is released only once it is whole UTF-8 and cannot
// start a stop string, which can hold several tokens back).
struct StepProfile {
  StepTimes all;
  std::vector<StepTimes> decode_by_width;

  StepTimes DecodeWidth(size_t w) const {
    return w < decode_by_width.size() ? decode_by_width[w] : StepTimes{};
  }
};

class EngineCore final : public Engine {
 public:
  // `model` and `backend` must be ready (a quantized model with the device pool, or any model on
  // the CPU backend); options' model and devices fields are ignored here.
  static absl::StatusOr<std::unique_ptr<EngineCore>> Create(std::unique_ptr<Model> model,
                                                            std::unique_ptr<LinearBackend> backend,
                                                            const EngineOptions& options);
  ~EngineCore() override;

  absl::StatusOr<uint64_t> Submit(GenerationRequest request, RequestCallbacks callbacks) override;
  void Cancel(uint64_t request_id) override;
  bool Drain(int64_t timeout_ms) override;
  EngineStats Stats() const override;
  const Tokenizer& tokenizer() const override { return model_->tokenizer(); }
  const ModelConfig& config() const override { return model_->config(); }
  int32_t max_model_len() const override { return max_model_len_; }
  DeviceReport Devices() const override { return backend_->Devices(); }

  StepProfile Profile() const;
  int64_t kv_bytes_per_token() const { return cache_->bytes_per_token(); }
  const Model& model() const { return *model_; }

 private:
  EngineCore(std::unique_ptr<Model> model, std::unique_ptr<LinearBackend> backend,
             const EngineOptions& options, std::unique_ptr<PagedKvCache> cache);

  void Loop();
  // Moves submitted requests into the scheduler and applies cancellations.
  void TakeInbox();
  void Step();
  // Logprobs of the prompt tokens predicted by the rows of one all-logits chunk.
  void CollectPromptLogprobs(Sequence& s, int32_t first_pos, int32_t count, const float* rows);
  // These sequences computed their last token (logits: the row for each): sample the next one
  // of each (splitting off choices first). The draws run over the thread pool, each with its
  // sequence's own generator, so a token does not depend on which thread drew it; tokens are
  // then appended in order.
  void SampleNext(const std::vector<std::pair<Sequence*, const float*>>& ready);
  void Append(Sequence& s, const SampledToken& tok);
  // Sends released tokens/text, and the finish when given.
  void Emit(Sequence& s, const StopChecker::Release& r, std::optional<FinishReason> finish,
            const std::string& error = {});
  // Ends a choice: sends what `r` releases with the finish, frees its blocks now.
  void Finish(Sequence& s, FinishReason reason, StopChecker::Release r = {},
              const std::string& error = {});
  void CancelRequest(uint64_t id);
  void FailAll(const absl::Status& status);
  // Frees the requests that finished, and tells Drain.
  void ReapDone();
  void PublishStats();
  void PublishStatsLocked();  // mu_ held

  std::unique_ptr<Model> model_;
  std::unique_ptr<LinearBackend> backend_;
  const EngineOptions options_;
  const int32_t max_model_len_;
  const int32_t num_blocks_;
  std::vector<int32_t> eos_ids_;

  // Owned by the loop thread.
  std::unique_ptr<PagedKvCache> cache_;
  BlockPool pool_;
  Scheduler scheduler_;
  Transformer transformer_;
  std::vector<Sampler> samplers_;  // one per pool thread: each has its own scratch
  std::unordered_map<uint64_t, std::unique_ptr<Request>> requests_;
  std::vector<uint64_t> done_;  // requests finished during a step, freed after it
  std::vector<float> logits_;
  uint64_t next_arrival_ = 0;
  int64_t prompt_tokens_ = 0, generation_tokens_ = 0;
  StepProfile profile_;

  // Shared with callers.
  mutable std::mutex mu_;
  std::condition_variable wake_;   // the loop: inbox or stop
  std::condition_variable idle_;   // Drain: in-flight count changed
  std::vector<std::unique_ptr<Request>> inbox_;
  std::vector<uint64_t> cancels_;
  bool cancel_all_ = false;
  bool stop_ = false;
  bool draining_ = false;
  int64_t in_flight_ = 0;
  uint64_t next_id_ = 1;
  std::mt19937_64 seed_source_;
  EngineStats stats_;
  StepProfile published_profile_;

  std::thread thread_;
};

// CreateEngine, keeping the concrete type (for benchmarks that read Profile()).
absl::StatusOr<std::unique_ptr<EngineCore>> CreateEngineCore(const EngineOptions& options);

}  // namespace qsl
