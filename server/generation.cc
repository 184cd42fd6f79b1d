#include "server/generation.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "boost/asio/post.hpp"
#include "format/tokenizer.h"
#include "server/metrics.h"

namespace qsl::server {

namespace {

int32_t CodePoints(const std::string& s) {
  int32_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// "<0xAB>" -> 0xAB; -1 for any other piece.
int ByteFallback(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  int value = 0;
  for (char c : piece.substr(3, 2)) {
    int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

}  // namespace

std::string TokenText(const Tokenizer& tok, int32_t id) {
  const std::string piece = tok.Piece(id);
  if (int byte = ByteFallback(piece); byte >= 0) {
    if (byte < 0x80) return std::string(1, static_cast<char>(byte));
    return absl::StrFormat("bytes:\\x%02x", byte);
  }
  return absl::StrReplaceAll(piece, {{"\xE2\x96\x81", " "}});  // U+2581, sentencepiece's space
}

void ChoiceResult::Append(ChoiceDelta delta) {
  text += delta.text;
  token_ids.insert(token_ids.end(), delta.token_ids.begin(), delta.token_ids.end());
  for (LogprobEntry& e : delta.logprobs) logprobs.push_back(std::move(e));
  if (delta.finish) finish = *delta.finish;
}

Generation::Generation(Engine& engine, std::vector<PreparedPrompt> prompts,
                       const SamplingParams& params, boost::asio::any_io_executor executor,
                       Sink sink, Metrics* metrics, Clock::time_point arrival)
    : engine_(engine),
      prompts_(std::move(prompts)),
      params_(params),
      executor_(std::move(executor)),
      sink_(std::move(sink)),
      metrics_(metrics),
      arrival_(arrival),
      prompt_logprobs_(prompts_.size()),
      choices_(prompts_.size() * params.n),
      open_choices_(choices_.size()) {}

absl::StatusOr<std::shared_ptr<Generation>> Generation::Start(
    Engine& engine, std::vector<PreparedPrompt> prompts, const SamplingParams& params,
    boost::asio::any_io_executor executor, Sink sink, Metrics* metrics,
    Clock::time_point arrival) {
  auto g = std::make_shared<Generation>(engine, std::move(prompts), params, std::move(executor),
                                        std::move(sink), metrics, arrival);
  absl::Status s = g->SubmitAll();
  if (!s.ok()) return s;
  return g;
}

absl::Status Generation::SubmitAll() {
  for (size_t p = 0; p < prompts_.size(); ++p) {
    RequestCallbacks callbacks;
    // The engine calls these on its own thread; everything past the copy runs on the executor.
    callbacks.on_event = [self = shared_from_this(), p](const GenerationEvent& e) {
      boost::asio::post(self->executor_, [self, p, e] { self->OnEvent(p, e); });
    };
    callbacks.on_prompt_logprobs = [self = shared_from_this(), p](const PromptLogprobs& l) {
      boost::asio::post(self->executor_, [self, p, l] { self->OnPromptLogprobs(p, l); });
    };
    GenerationRequest request{prompts_[p].ids, params_, 0};
    absl::StatusOr<uint64_t> id = engine_.Submit(std::move(request), std::move(callbacks));
    if (!id.ok()) {
      abandoned_ = true;
      Cancel();
      return id.status();
    }
    request_ids_.push_back(*id);
  }
  return absl::OkStatus();
}

void Generation::Cancel() {
  for (uint64_t id : request_ids_) engine_.Cancel(id);
}

void Generation::OnPromptLogprobs(size_t prompt, PromptLogprobs logprobs) {
  prompt_logprobs_[prompt] = std::move(logprobs);
}

LogprobEntry Generation::MakeEntry(int32_t id, std::optional<float> logprob,
                                   const std::vector<TokenLogprob>& top,
                                   ChoiceState& state) const {
  const Tokenizer& tok = engine_.tokenizer();
  LogprobEntry e;
  e.token_id = id;
  e.token = TokenText(tok, id);
  e.logprob = logprob;
  e.text_offset = state.text_offset;
  state.text_offset += CodePoints(e.token);
  if (!logprob) return e;
  bool has_sampled = false;
  for (const TokenLogprob& t : top) {
    e.top.push_back({t.id, TokenText(tok, t.id), t.logprob});
    has_sampled |= t.id == id;
  }
  if (!has_sampled) e.top.push_back({id, e.token, *logprob});
  return e;
}

// The first delta of an echoing choice carries the prompt's text and, with logprobs, its tokens.
void Generation::AppendEcho(size_t prompt, ChoiceState& state, ChoiceDelta& delta) {
  const PreparedPrompt& p = prompts_[prompt];
  delta.text = p.text;
  if (params_.logprobs < 0) return;
  const PromptLogprobs& pl = prompt_logprobs_[prompt];
  static const std::vector<TokenLogprob> kNone;
  for (size_t i = 0; i < p.ids.size(); ++i) {
    // The engine scores prompt[1..]; the first token has no logprob.
    std::optional<float> lp;
    if (i > 0 && i - 1 < pl.logprobs.size()) lp = pl.logprobs[i - 1];
    const auto& top = (i > 0 && i - 1 < pl.top_logprobs.size()) ? pl.top_logprobs[i - 1] : kNone;
    delta.logprobs.push_back(MakeEntry(p.ids[i], lp, top, state));
  }
}

void Generation::OnEvent(size_t prompt, GenerationEvent event) {
  const size_t index = prompt * params_.n + event.index;
  if (index >= choices_.size()) return;  // an engine bug; never index past our choices
  ChoiceState& state = choices_[index];
  if (state.finished) return;

  ChoiceDelta delta;
  delta.index = static_cast<int32_t>(index);
  if (!state.started) {
    state.started = true;
    if (params_.echo) AppendEcho(prompt, state, delta);
  }
  delta.text += event.text;
  if (!event.token_ids.empty()) {
    const Clock::time_point now = Clock::now();
    if (state.completion_tokens == 0) state.first_token = now;
    state.last_token = now;
    if (!first_token_) {
      first_token_ = now;
      if (metrics_) metrics_->ObserveTimeToFirstToken(now - arrival_);
    }
  }
  for (size_t i = 0; i < event.token_ids.size() && params_.logprobs >= 0; ++i) {
    static const std::vector<TokenLogprob> kNone;
    const float lp = i < event.logprobs.size() ? event.logprobs[i] : 0.0f;
    const auto& top = i < event.top_logprobs.size() ? event.top_logprobs[i] : kNone;
    delta.logprobs.push_back(MakeEntry(event.token_ids[i], lp, top, state));
  }
  delta.token_ids = std::move(event.token_ids);
  state.completion_tokens = event.completion_tokens;
  delta.finish = event.finish;
  if (event.finish) state.finished = true;

  if (!abandoned_) sink_.on_delta(std::move(delta));
  if (event.finish) Finish(*event.finish, event.error, state);
}

void Generation::Finish(FinishReason reason, const std::string& error, const ChoiceState& state) {
  if (metrics_) {
    metrics_->CountFinished(reason);
    if (state.completion_tokens > 1) {
      metrics_->ObserveTimePerOutputToken((state.last_token - state.first_token) /
                                          (state.completion_tokens - 1));
    }
  }
  if (reason == FinishReason::kError && error_.empty()) error_ = error.empty() ? "engine error" : error;
  if (--open_choices_ > 0 || abandoned_) return;
  Usage usage;
  for (const PreparedPrompt& p : prompts_) usage.prompt_tokens += static_cast<int32_t>(p.ids.size());
  for (const ChoiceState& c : choices_) usage.completion_tokens += c.completion_tokens;
  sink_.on_done(usage, error_.empty() ? absl::OkStatus() : absl::InternalError(error_));
}

}  // namespace qsl::server
