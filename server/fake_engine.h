// A scripted Engine for the server's tests: the bundled model's tokenizer, a deterministic
// token stream per choice (a function of prompt, seed and choice), one token per choice per step
// on its own thread, and the queue, cancel and drain behaviour engine.h promises. It lets the
// HTTP, gRPC and metrics layers be tested without a model.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/engine.h"
#include "format/model_config.h"
#include "format/tokenizer.h"

namespace qsl::server {

class FakeEngine final : public Engine {
 public:
  struct Options {
    std::chrono::milliseconds step{1};  // time per generated token
    size_t max_queue = 64;               // Submit beyond this many live requests: ResourceExhausted
    int32_t max_model_len = 256;
    int32_t stop_after = -1;             // >= 0: a choice ends with "stop" after this many tokens
  };
  explicit FakeEngine(Options options);
  ~FakeEngine() override;

  absl::StatusOr<uint64_t> Submit(GenerationRequest request, RequestCallbacks callbacks) override;
  void Cancel(uint64_t request_id) override;
  bool Drain(int64_t timeout_ms) override;
  EngineStats Stats() const override;
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  const ModelConfig& config() const override { return config_; }
  int32_t max_model_len() const override { return options_.max_model_len; }
  DeviceReport Devices() const override { return {}; }

  // The id the fake generates at `step` of a choice (what tests compare against).
  static int32_t TokenAt(const GenerationRequest& r, int32_t choice, int32_t step);
  // The text of the first `tokens` tokens of `choice` of the last request submitted.
  std::string ExpectedText(int32_t choice, int32_t tokens) const;

  size_t live_requests() const;
  int64_t cancelled_requests() const { return cancelled_; }
  int64_t submitted_requests() const { return submitted_; }
  const GenerationRequest& last_request() const;

 private:
  struct Live;
  void Loop();
  void Step(Live& r);

  Options options_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ModelConfig config_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, std::unique_ptr<Live>> live_;
  GenerationRequest last_;
  uint64_t next_id_ = 1;
  bool draining_ = false;
  bool stop_ = false;
  std::atomic<int64_t> cancelled_{0}, submitted_{0}, prompt_tokens_{0}, generated_{0};
  std::thread thread_;
};

}  // namespace qsl::server
