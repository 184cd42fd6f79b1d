// One completion request in flight: its prompts submitted to the engine, the engine's events
// brought onto the caller's executor and turned into per-choice deltas (echo, logprob token
// strings, text offsets) that the HTTP and gRPC layers only have to format.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/asio/any_io_executor.hpp"
#include "engine/engine.h"
#include "server/completion_request.h"

namespace qsl::server {

class Metrics;

struct TopLogprob {
  int32_t token_id = 0;
  std::string token;
  float logprob = 0.0f;
};

// One token's logprob record, OpenAI-style: the sampled token is always among `top` (so `top`
// holds up to logprobs + 1 entries, as OpenAI documents).
struct LogprobEntry {
  int32_t token_id = 0;
  std::string token;
  std::optional<float> logprob;  // none for the first prompt token when echoing
  std::vector<TopLogprob> top;   // empty for that first prompt token
  int32_t text_offset = 0;       // code points before this token in the choice's text
};

// What one choice produced since its previous delta.
struct ChoiceDelta {
  int32_t index = 0;  // prompt_index * n + choice, as OpenAI numbers batched choices
  std::string text;
  std::vector<int32_t> token_ids;     // generated ids only
  std::vector<LogprobEntry> logprobs; // when requested; echoed prompt tokens come first
  std::optional<FinishReason> finish;
};

// A whole choice, for non-streaming responses.
struct ChoiceResult {
  int32_t index = 0;
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<LogprobEntry> logprobs;
  FinishReason finish = FinishReason::kStop;
  void Append(ChoiceDelta delta);
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  int32_t total() const { return prompt_tokens + completion_tokens; }
};

// The text OpenAI shows for one token: the piece with its space marker as a space; a
// byte-fallback piece that is not UTF-8 on its own as "bytes:\xNN".
std::string TokenText(const Tokenizer& tok, int32_t id);

class Generation : public std::enable_shared_from_this<Generation> {
 public:
  using Clock = std::chrono::steady_clock;
  struct Sink {
    std::function<void(ChoiceDelta)> on_delta;
    // Every choice has finished; `status` is an Internal error when a choice ended in an engine
    // error, else OK (cancelled choices included).
    std::function<void(const Usage&, const absl::Status&)> on_done;
  };

  // Submits every prompt (all or none: a failed Submit cancels the ones before it). Sink
  // callbacks run on `executor`, which must serialize them (a strand).
  static absl::StatusOr<std::shared_ptr<Generation>> Start(
      Engine& engine, std::vector<PreparedPrompt> prompts, const SamplingParams& params,
      boost::asio::any_io_executor executor, Sink sink, Metrics* metrics, Clock::time_point arrival);

  // Cancels every prompt's engine request; the sink then sees each open choice finish as
  // cancelled. Safe to call more than once, from the executor.
  void Cancel();

  Generation(Engine& engine, std::vector<PreparedPrompt> prompts, const SamplingParams& params,
             boost::asio::any_io_executor executor, Sink sink, Metrics* metrics,
             Clock::time_point arrival);

 private:
  struct ChoiceState {
    bool started = false;
    bool finished = false;
    int32_t completion_tokens = 0;
    int32_t text_offset = 0;
    Clock::time_point first_token, last_token;
  };

  absl::Status SubmitAll();
  void OnPromptLogprobs(size_t prompt, PromptLogprobs logprobs);
  void OnEvent(size_t prompt, GenerationEvent event);
  void AppendEcho(size_t prompt, ChoiceState& state, ChoiceDelta& delta);
  LogprobEntry MakeEntry(int32_t id, std::optional<float> logprob,
                         const std::vector<TokenLogprob>& top, ChoiceState& state) const;
  void Finish(FinishReason reason, const std::string& error, const ChoiceState& state);

  Engine& engine_;
  std::vector<PreparedPrompt> prompts_;
  SamplingParams params_;
  boost::asio::any_io_executor executor_;
  Sink sink_;
  Metrics* metrics_;
  Clock::time_point arrival_;
  std::optional<Clock::time_point> first_token_;

  std::vector<uint64_t> request_ids_;
  std::vector<PromptLogprobs> prompt_logprobs_;
  std::vector<ChoiceState> choices_;
  size_t open_choices_ = 0;
  bool abandoned_ = false;  // Start failed: nothing reaches the sink
  std::string error_;
};

}  // namespace qsl::server
