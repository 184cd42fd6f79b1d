#include "server/fake_engine.h"

#include "absl/strings/str_cat.h"
#include "server/generation.h"

namespace qsl::server {

struct FakeEngine::Live {
  GenerationRequest request;
  RequestCallbacks callbacks;
  std::vector<int32_t> steps;  // tokens generated per choice
  std::vector<bool> done;
  bool cancelled = false;
  bool prompt_logprobs_sent = false;
};

FakeEngine::FakeEngine(Options options) : options_(options) {
  auto tok = Tokenizer::FromFile(std::string(QSL_SOURCE_DIR) + "/models/qsl-tiny-llama/tokenizer.model");
  tokenizer_ = std::move(*tok);
  config_.vocab_size = tokenizer_->vocab_size();
  config_.max_position_embeddings = options_.max_model_len;
  thread_ = std::thread([this] { Loop(); });
}

FakeEngine::~FakeEngine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int32_t FakeEngine::TokenAt(const GenerationRequest& r, int32_t choice, int32_t step) {
  uint64_t h = r.params.seed.value_or(7) * 1000003u + static_cast<uint64_t>(choice) * 7919u +
               static_cast<uint64_t>(step) * 104729u;
  for (int32_t id : r.prompt) h = h * 31u + static_cast<uint64_t>(id);
  // Ordinary word pieces of the bundled vocabulary (past the byte-fallback and control ids).
  return 300 + static_cast<int32_t>(h % 3000);
}

absl::StatusOr<uint64_t> FakeEngine::Submit(GenerationRequest request, RequestCallbacks callbacks) {
  absl::Status valid = request.params.Validate(config_.vocab_size);
  if (!valid.ok()) return valid;
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_) return absl::UnavailableError("draining");
  if (live_.size() >= options_.max_queue) {
    return absl::ResourceExhaustedError(absl::StrCat("queue full (", options_.max_queue, ")"));
  }
  auto live = std::make_unique<Live>();
  live->steps.assign(request.params.n, 0);
  live->done.assign(request.params.n, false);
  last_ = request;
  live->request = std::move(request);
  live->callbacks = std::move(callbacks);
  prompt_tokens_ += static_cast<int64_t>(live->request.prompt.size());
  const uint64_t id = next_id_++;
  live_[id] = std::move(live);
  submitted_++;
  cv_.notify_all();
  return id;
}

void FakeEngine::Cancel(uint64_t request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(request_id);
  if (it != live_.end()) it->second->cancelled = true;
  cv_.notify_all();
}

bool FakeEngine::Drain(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  draining_ = true;
  const bool all = cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                [this] { return live_.empty(); });
  for (auto& [id, r] : live_) r->cancelled = true;
  cv_.notify_all();
  cv_.wait(lock, [this] { return live_.empty(); });
  return all;
}

EngineStats FakeEngine::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineStats s;
  s.running = static_cast<int32_t>(live_.size());
  s.kv_blocks_total = 100;
  s.kv_blocks_used = static_cast<int64_t>(live_.size());
  s.prompt_tokens = prompt_tokens_;
  s.generation_tokens = generated_;
  return s;
}

size_t FakeEngine::live_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

std::string FakeEngine::ExpectedText(int32_t choice, int32_t tokens) const {
  const GenerationRequest r = last_request();
  std::string text;
  for (int32_t i = 0; i < tokens; ++i) text += TokenText(*tokenizer_, TokenAt(r, choice, i));
  return text;
}

const GenerationRequest& FakeEngine::last_request() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

void FakeEngine::Step(Live& r) {
  const SamplingParams& p = r.request.params;
  if (!r.prompt_logprobs_sent && p.echo && p.logprobs >= 0 && r.callbacks.on_prompt_logprobs) {
    PromptLogprobs pl;
    for (size_t i = 1; i < r.request.prompt.size(); ++i) {
      pl.logprobs.push_back(-1.0f);
      pl.top_logprobs.push_back({{r.request.prompt[i], -1.0f}});
    }
    r.callbacks.on_prompt_logprobs(pl);
  }
  r.prompt_logprobs_sent = true;
  for (int32_t c = 0; c < p.n; ++c) {
    if (r.done[c]) continue;
    GenerationEvent e;
    e.index = c;
    e.prompt_tokens = static_cast<int32_t>(r.request.prompt.size());
    const bool at_limit = r.steps[c] >= p.max_tokens;
    const bool stopped = options_.stop_after >= 0 && r.steps[c] >= options_.stop_after;
    if (r.cancelled) {
      e.finish = FinishReason::kCancelled;
    } else if (at_limit || stopped) {
      e.finish = stopped && !at_limit ? FinishReason::kStop : FinishReason::kLength;
    } else {
      const int32_t id = TokenAt(r.request, c, r.steps[c]++);
      e.token_ids = {id};
      e.text = TokenText(*tokenizer_, id);
      if (p.logprobs >= 0) {
        e.logprobs = {-0.5f};
        std::vector<TokenLogprob> top;
        for (int32_t k = 0; k < p.logprobs; ++k) top.push_back({id + k + 1, -1.0f - k});
        e.top_logprobs = {top};
      }
      generated_++;
      // The fake's last token of a length-limited choice carries its finish, like an engine
      // that knows the limit while emitting.
      if (r.steps[c] >= p.max_tokens) e.finish = FinishReason::kLength;
    }
    e.completion_tokens = r.steps[c];
    if (e.finish) r.done[c] = true;
    r.callbacks.on_event(e);
  }
}

void FakeEngine::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait(lock, [this] { return stop_ || !live_.empty(); });
    if (stop_) break;
    for (auto it = live_.begin(); it != live_.end();) {
      Step(*it->second);
      bool all_done = true;
      for (bool d : it->second->done) all_done &= d;
      if (all_done && it->second->cancelled) cancelled_++;
      it = all_done ? live_.erase(it) : std::next(it);
    }
    cv_.notify_all();
    cv_.wait_for(lock, options_.step, [this] { return stop_; });
  }
}

}  // namespace qsl::server
