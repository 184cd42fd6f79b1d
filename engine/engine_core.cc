#include "engine/engine_core.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "engine/card_backend.h"

namespace qsl {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "?";
}

// A request's state on the loop thread: its choices (one sequence until the prompt is done,
// then n) and the prompt logprobs being collected.
struct Request {
  uint64_t id = 0;
  GenerationRequest req;
  RequestCallbacks cb;
  uint64_t seed = 0;
  std::vector<std::unique_ptr<Sequence>> seqs;
  int32_t unfinished = 0;  // choices without their final event yet
  PromptLogprobs prompt_logprobs;
};

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool Contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

absl::Status CheckOptions(const EngineOptions& o) {
  const auto bad = [](absl::string_view flag, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", why));
  };
  if (o.kv_cache_mb < 1) return bad("kv_cache_mb", "must be >= 1");
  if (o.block_size < 1 || o.block_size > 1024) return bad("block_size", "must be in [1, 1024]");
  if (o.max_num_seqs < 1) return bad("max_num_seqs", "must be >= 1");
  if (o.max_queue < 0) return bad("max_queue", "must be >= 0");
  if (o.max_num_batched_tokens < 1) return bad("max_num_batched_tokens", "must be >= 1");
  if (o.max_model_len < 0) return bad("max_model_len", "must be >= 0");
  if (o.num_kv_blocks < 0) return bad("num_kv_blocks", "must be >= 0");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<EngineCore>> EngineCore::Create(
    std::unique_ptr<Model> model, std::unique_ptr<LinearBackend> backend,
    const EngineOptions& options) {
  QSL_RETURN_IF_ERROR(CheckOptions(options));
  QSL_ASSIGN_OR_RETURN(const KvDtype dtype,
                       ParseKvDtype(options.kv_dtype.empty() ? model->kv_cache_dtype()
                                                             : options.kv_dtype));
  const ModelConfig& c = model->config();
  if (options.max_model_len > c.max_position_embeddings) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_model_len: ", options.max_model_len, " exceeds the model's context of ",
                     c.max_position_embeddings));
  }
  const int64_t block_bytes = PagedKvCache::BlockBytes(c, dtype, options.block_size);
  const int64_t blocks = options.num_kv_blocks > 0
                             ? options.num_kv_blocks
                             : options.kv_cache_mb * (int64_t{1} << 20) / block_bytes;
  if (blocks < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_cache_mb: ", options.kv_cache_mb, " MiB holds no KV block of ",
                     block_bytes, " bytes"));
  }
  if (blocks > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError("kv_cache_mb: more than 2^30 KV blocks");
  }
  QSL_ASSIGN_OR_RETURN(auto cache, PagedKvCache::Create(c, dtype, options.block_size,
                                                        static_cast<int32_t>(blocks)));
  return std::unique_ptr<EngineCore>(new EngineCore(std::move(model), std::move(backend), options,
                                                    std::move(cache)));
}

EngineCore::EngineCore(std::unique_ptr<Model> model, std::unique_ptr<LinearBackend> backend,
                       const EngineOptions& options, std::unique_ptr<PagedKvCache> cache)
    : model_(std::move(model)), backend_(std::move(backend)), options_(options),
      max_model_len_(static_cast<int32_t>(options.max_model_len > 0
                                              ? options.max_model_len
                                              : model_->config().max_position_embeddings)),
      num_blocks_(cache->num_blocks()), eos_ids_(model_->config().eos_token_ids),
      cache_(std::move(cache)), pool_(num_blocks_, options.block_size),
      scheduler_(SchedulerConfig{options.max_num_seqs,
                                 // Whole prompts must fit a step when they cannot be split.
                                 options.chunked_prefill
                                     ? options.max_num_batched_tokens
                                     : std::max(options.max_num_batched_tokens, max_model_len_),
                                 options.chunked_prefill, options.prefix_caching},
                 pool_),
      transformer_(*model_, *backend_),
      samplers_(static_cast<size_t>(ThreadPool::Default().size()),
                Sampler(static_cast<int32_t>(model_->config().vocab_size))),
      seed_source_(std::random_device{}()) {
  stats_.kv_blocks_total = num_blocks_;
  spdlog::info("engine: KV cache {} blocks x {} tokens, {}, {:.1f} KiB/token ({:.0f} MiB); max {} "
               "sequences, {} tokens/step, chunked prefill {}, prefix caching {}",
               num_blocks_, options.block_size, KvDtypeName(cache_->dtype()),
               static_cast<double>(cache_->bytes_per_token()) / 1024.0,
               static_cast<double>(cache_->block_bytes()) * num_blocks_ / (1 << 20),
               options.max_num_seqs, options.max_num_batched_tokens,
               options.chunked_prefill ? "on" : "off", options.prefix_caching ? "on" : "off");
  thread_ = std::thread([this] { Loop(); });
}

EngineCore::~EngineCore() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

absl::StatusOr<uint64_t> EngineCore::Submit(GenerationRequest request, RequestCallbacks callbacks) {
  const ModelConfig& c = model_->config();
  const SamplingParams& p = request.params;
  QSL_RETURN_IF_ERROR(p.Validate(static_cast<int32_t>(c.vocab_size)));
  const auto prompt_len = static_cast<int64_t>(request.prompt.size());
  if (prompt_len == 0) return absl::InvalidArgumentError("prompt: must not be empty");
  for (int32_t id : request.prompt) {
    if (id < 0 || id >= c.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt: token id ", id, " is outside the vocabulary (", c.vocab_size, ")"));
    }
  }
  if (prompt_len + p.max_tokens > max_model_len_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_tokens: this model's maximum context length is ", max_model_len_,
        " tokens; the prompt has ", prompt_len, " and max_tokens asks for ", p.max_tokens));
  }
  const int64_t blocks = (prompt_len + p.max_tokens + options_.block_size - 1) / options_.block_size;
  if (blocks > num_blocks_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_tokens: prompt + max_tokens needs ", blocks, " KV blocks and the cache holds ",
        num_blocks_, " (raise the KV cache budget)"));
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (draining_ || stop_) return absl::UnavailableError("the engine is draining");
  const int64_t waiting = stats_.waiting + static_cast<int64_t>(inbox_.size());
  if (waiting >= options_.max_queue) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many requests: ", waiting, " are waiting (limit ", options_.max_queue, ")"));
  }
  auto r = std::make_unique<Request>();
  r->id = next_id_++;
  r->seed = p.seed.has_value() ? *p.seed : seed_source_();
  r->req = std::move(request);
  r->cb = std::move(callbacks);
  const uint64_t id = r->id;
  inbox_.push_back(std::move(r));
  ++in_flight_;
  wake_.notify_one();
  return id;
}

void EngineCore::Cancel(uint64_t request_id) {
  std::lock_guard<std::mutex> lk(mu_);
  cancels_.push_back(request_id);
  wake_.notify_one();
}

bool EngineCore::Drain(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lk(mu_);
  draining_ = true;
  const bool all = idle_.wait_for(lk, std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0)),
                                  [&] { return in_flight_ == 0; });
  if (!all) {
    cancel_all_ = true;
    wake_.notify_one();
    idle_.wait(lk, [&] { return in_flight_ == 0; });
  }
  return all;
}

EngineStats EngineCore::Stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  EngineStats s = stats_;
  s.waiting += static_cast<int32_t>(inbox_.size());
  return s;
}

StepTimes& StepTimes::operator+=(const StepTimes& o) {
  steps += o.steps;
  tokens += o.tokens;
  schedule_s += o.schedule_s;
  forward_s += o.forward_s;
  linear_s += o.linear_s;
  attention_s += o.attention_s;
  sample_s += o.sample_s;
  return *this;
}

StepTimes StepTimes::operator-(const StepTimes& o) const {
  return {steps - o.steps,         tokens - o.tokens,           schedule_s - o.schedule_s,
          forward_s - o.forward_s, linear_s - o.linear_s,       attention_s - o.attention_s,
          sample_s - o.sample_s};
}

StepProfile EngineCore::Profile() const {
  std::lock_guard<std::mutex> lk(mu_);
  return published_profile_;
}

void EngineCore::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      wake_.wait(lk, [&] {
        return stop_ || !inbox_.empty() || !cancels_.empty() || cancel_all_ ||
               scheduler_.num_running() + scheduler_.num_waiting() > 0;
      });
      if (stop_) {
        cancel_all_ = true;
        lk.unlock();
        TakeInbox();
        PublishStats();
        return;
      }
    }
    TakeInbox();
    if (scheduler_.num_running() + scheduler_.num_waiting() > 0) Step();
    PublishStats();
  }
}

void EngineCore::TakeInbox() {
  std::vector<std::unique_ptr<Request>> in;
  std::vector<uint64_t> cancels;
  bool cancel_all;
  {
    std::lock_guard<std::mutex> lk(mu_);
    in.swap(inbox_);
    cancels.swap(cancels_);
    cancel_all = cancel_all_;
    cancel_all_ = false;
  }
  for (auto& r : in) {
    const SamplingParams& p = r->req.params;
    auto s = std::make_unique<Sequence>();
    s->request = r.get();
    s->priority = r->req.priority;
    s->arrival = next_arrival_++;
    s->tokens = r->req.prompt;
    s->prompt_len = static_cast<int32_t>(s->tokens.size());
    s->fork = p.n;
    s->need_prompt_logprobs = p.echo && p.logprobs >= 0;
    s->rng = ChoiceRng(r->seed, 0);
    s->history = TokenHistory::ForPrompt(s->tokens);
    s->stop = std::make_unique<StopChecker>(model_->tokenizer(), s->tokens, p.stop);
    r->unfinished = p.n;
    prompt_tokens_ += s->prompt_len;
    scheduler_.Enqueue(s.get());
    r->seqs.push_back(std::move(s));
    const uint64_t id = r->id;
    requests_.emplace(id, std::move(r));
  }
  if (cancel_all) {
    for (const auto& [id, r] : requests_) cancels.push_back(id);
  }
  for (uint64_t id : cancels) CancelRequest(id);
  ReapDone();
}

void EngineCore::CancelRequest(uint64_t id) {
  const auto it = requests_.find(id);
  if (it == requests_.end()) return;
  for (auto& s : it->second->seqs) {
    if (!s->finished) Finish(*s, FinishReason::kCancelled);
  }
}

void EngineCore::Step() {
  const auto t0 = Clock::now();
  StepPlan plan = scheduler_.Schedule();
  if (plan.chunks.empty()) return;
  for (const auto& [src, dst] : plan.copies) cache_->CopyBlock(src, dst);
  ForwardBatch batch;
  std::vector<const std::vector<int32_t>*> tables;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const Sequence& s = *plan.chunks[i].seq;
    const int32_t count = plan.chunks[i].count;
    const auto first = s.tokens.begin() + s.num_computed;
    batch.tokens.insert(batch.tokens.end(), first, first + count);
    batch.chunks.push_back({static_cast<int32_t>(i), s.num_computed, count,
                            s.need_prompt_logprobs && s.num_computed < s.prompt_len});
    tables.push_back(&s.blocks);
  }
  cache_->Bind(std::move(tables));
  const ForwardTimes before = transformer_.times();
  const auto t1 = Clock::now();
  const absl::Status status = transformer_.Forward(batch, *cache_, logits_);
  const auto t2 = Clock::now();
  if (!status.ok()) {
    spdlog::error("engine: forward failed: {}", status.ToString());
    FailAll(status);
    return;
  }
  // A decode-only step: every chunk is one token past its sequence's prompt.
  bool decode_only = true;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    decode_only = decode_only && batch.chunks[i].count == 1 &&
                  batch.chunks[i].pos >= plan.chunks[i].seq->prompt_len;
  }
  const int64_t vocab = model_->config().vocab_size;
  int64_t row = 0;
  std::vector<std::pair<Sequence*, const float*>> ready;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    Sequence& s = *plan.chunks[i].seq;
    const SeqChunk& ch = batch.chunks[i];
    const int64_t rows = ch.all_logits ? ch.count : 1;
    const float* first_row = logits_.data() + row * vocab;
    if (ch.all_logits) CollectPromptLogprobs(s, ch.pos, ch.count, first_row);
    scheduler_.Computed(&s, ch.count);
    if (s.uncomputed() == 0) ready.emplace_back(&s, first_row + (rows - 1) * vocab);
    row += rows;
  }
  SampleNext(ready);
  ReapDone();
  const ForwardTimes& after = transformer_.times();
  StepTimes st;
  st.steps = 1;
  st.tokens = static_cast<int64_t>(batch.tokens.size());
  st.schedule_s = std::chrono::duration<double>(t1 - t0).count();
  st.forward_s = std::chrono::duration<double>(t2 - t1).count();
  st.linear_s = after.linear_s - before.linear_s;
  st.attention_s = after.attention_s - before.attention_s;
  st.sample_s = Since(t2);
  profile_.all += st;
  if (decode_only) {
    const size_t w = plan.chunks.size();
    if (profile_.decode_by_width.size() <= w) profile_.decode_by_width.resize(w + 1);
    profile_.decode_by_width[w] += st;
  }
}

void EngineCore::CollectPromptLogprobs(Sequence& s, int32_t first_pos, int32_t count,
                                       const float* rows) {
  Request& r = *s.request;
  const int32_t vocab = static_cast<int32_t>(model_->config().vocab_size);
  // Row i predicts the token at first_pos + i + 1. Rows already collected (before a preemption
  // made the sequence start over) are skipped.
  for (int32_t i = 0; i < count && first_pos + i + 1 < s.prompt_len; ++i) {
    if (first_pos + i != static_cast<int32_t>(r.prompt_logprobs.logprobs.size())) continue;
    const LogSoftmax lsm(rows + static_cast<int64_t>(i) * vocab, vocab);
    r.prompt_logprobs.logprobs.push_back(lsm(s.tokens[first_pos + i + 1]));
    r.prompt_logprobs.top_logprobs.push_back(lsm.Top(r.req.params.logprobs));
  }
  if (first_pos + count < s.prompt_len) return;
  s.need_prompt_logprobs = false;
  if (r.cb.on_prompt_logprobs) r.cb.on_prompt_logprobs(r.prompt_logprobs);
  r.prompt_logprobs = {};
}

void EngineCore::SampleNext(const std::vector<std::pair<Sequence*, const float*>>& ready) {
  std::vector<std::pair<Sequence*, const float*>> targets;
  for (const auto& [seq, logits] : ready) {
    Sequence& s = *seq;
    Request& r = *s.request;
    const SamplingParams& p = r.req.params;
    if (p.max_tokens == 0) {
      Finish(s, FinishReason::kLength);
      continue;
    }
    targets.emplace_back(&s, logits);
    // The other choices split off now: they share every block of the prompt and sample their
    // first token from the same logits with their own generators.
    for (int32_t c = 1; c < s.fork; ++c) {
      auto child = std::make_unique<Sequence>();
      child->request = &r;
      child->index = s.index + c;
      child->priority = s.priority;
      child->arrival = s.arrival;
      child->tokens = s.tokens;
      child->prompt_len = s.prompt_len;
      child->rng = ChoiceRng(r.seed, child->index);
      child->history = s.history;
      child->stop = std::make_unique<StopChecker>(model_->tokenizer(), r.req.prompt, p.stop);
      scheduler_.Fork(s, child.get());
      targets.emplace_back(child.get(), logits);
      r.seqs.push_back(std::move(child));
    }
    s.fork = 1;
  }
  // One contiguous share of the targets per sampler; a share runs on one thread at a time.
  std::vector<SampledToken> tokens(targets.size());
  const auto n = static_cast<int64_t>(targets.size());
  const int64_t shares = std::min(n, static_cast<int64_t>(samplers_.size()));
  ThreadPool::Default().ParallelFor(shares, 1, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      for (int64_t i = j * n / shares; i < (j + 1) * n / shares; ++i) {
        Sequence& t = *targets[static_cast<size_t>(i)].first;
        tokens[static_cast<size_t>(i)] = samplers_[static_cast<size_t>(j)].Sample(
            targets[static_cast<size_t>(i)].second, t.request->req.params, t.history, t.rng);
      }
    }
  });
  for (size_t i = 0; i < targets.size(); ++i) Append(*targets[i].first, tokens[i]);
}

void EngineCore::Append(Sequence& s, const SampledToken& tok) {
  const SamplingParams& p = s.request->req.params;
  ++s.generated;
  ++generation_tokens_;
  // EOS and stop tokens end the choice and are not part of its output.
  if ((!p.ignore_eos && Contains(eos_ids_, tok.id)) || Contains(p.stop_token_ids, tok.id)) {
    Finish(s, FinishReason::kStop, s.stop->Finish());
    return;
  }
  s.tokens.push_back(tok.id);
  s.history.Add(tok.id);
  s.held.push_back({tok.id, tok.logprob, tok.top});
  StopChecker::Release r = s.stop->Add(tok.id);
  if (r.stopped) {
    Finish(s, FinishReason::kStop, std::move(r));
  } else if (s.generated >= p.max_tokens) {
    StopChecker::Release rest = s.stop->Finish();
    r.tokens += rest.tokens;
    r.text += rest.text;
    Finish(s, rest.stopped ? FinishReason::kStop : FinishReason::kLength, std::move(r));
  } else {
    Emit(s, r, std::nullopt);
  }
}

void EngineCore::Emit(Sequence& s, const StopChecker::Release& r,
                      std::optional<FinishReason> finish, const std::string& error) {
  if (r.tokens == 0 && r.text.empty() && !finish.has_value()) return;
  const Request& req = *s.request;
  GenerationEvent ev;
  ev.index = s.index;
  const bool logprobs = req.req.params.logprobs >= 0;
  for (int32_t i = 0; i < r.tokens; ++i) {
    HeldToken& h = s.held.front();
    ev.token_ids.push_back(h.id);
    if (logprobs) {
      ev.logprobs.push_back(h.logprob);
      ev.top_logprobs.push_back(std::move(h.top));
    }
    s.held.pop_front();
  }
  ev.text = r.text;
  ev.finish = finish;
  ev.error = error;
  ev.prompt_tokens = s.prompt_len;
  ev.completion_tokens = s.generated;
  if (req.cb.on_event) req.cb.on_event(ev);
}

void EngineCore::Finish(Sequence& s, FinishReason reason, StopChecker::Release r,
                        const std::string& error) {
  Emit(s, r, reason, error);
  s.held.clear();
  Request& req = *s.request;
  // Choices that never split off (cancelled or failed before the prompt finished, or
  // max_tokens 0) end here too.
  for (int32_t c = 1; c < s.fork; ++c) {
    GenerationEvent ev;
    ev.index = s.index + c;
    ev.finish = reason;
    ev.error = error;
    ev.prompt_tokens = s.prompt_len;
    if (req.cb.on_event) req.cb.on_event(ev);
  }
  req.unfinished -= s.fork;
  s.fork = 1;
  s.finished = true;
  scheduler_.Remove(&s);
  if (req.unfinished == 0) done_.push_back(req.id);
}

void EngineCore::FailAll(const absl::Status& status) {
  const std::string error(status.message());
  for (auto& [id, r] : requests_) {
    for (auto& s : r->seqs) {
      if (!s->finished) Finish(*s, FinishReason::kError, {}, error);
    }
  }
  ReapDone();
}

void EngineCore::ReapDone() {
  if (done_.empty()) return;
  for (uint64_t id : done_) requests_.erase(id);
  {
    // Stats first, so that whoever Drain wakes sees the freed blocks.
    std::lock_guard<std::mutex> lk(mu_);
    PublishStatsLocked();
    in_flight_ -= static_cast<int64_t>(done_.size());
  }
  done_.clear();
  idle_.notify_all();
}

void EngineCore::PublishStats() {
  std::lock_guard<std::mutex> lk(mu_);
  PublishStatsLocked();
}

void EngineCore::PublishStatsLocked() {
  stats_.running = scheduler_.num_running();
  stats_.waiting = scheduler_.num_waiting();
  stats_.kv_blocks_used = pool_.num_used();
  stats_.prefix_queries = scheduler_.prefix_queries();
  stats_.prefix_hits = scheduler_.prefix_hits();
  stats_.preemptions = scheduler_.preemptions();
  stats_.prompt_tokens = prompt_tokens_;
  stats_.generation_tokens = generation_tokens_;
  published_profile_ = profile_;
}

absl::StatusOr<std::unique_ptr<EngineCore>> CreateEngineCore(const EngineOptions& options) {
  const bool in_memory = options.devices == "cpu" && !options.mmap_weights;
  QSL_ASSIGN_OR_RETURN(
      std::unique_ptr<Model> model,
      Model::Load(options.model, in_memory ? MappedFile::Backing::kInMemory
                                           : MappedFile::Backing::kMapped));
  QSL_ASSIGN_OR_RETURN(std::unique_ptr<LinearBackend> backend,
                       CreateLinearBackend(*model, options));
  return EngineCore::Create(std::move(model), std::move(backend), options);
}

absl::StatusOr<std::unique_ptr<Engine>> CreateEngine(const EngineOptions& options) {
  QSL_ASSIGN_OR_RETURN(auto engine, CreateEngineCore(options));
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace qsl
