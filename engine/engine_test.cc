// The engine end to end through its public API: batch invariance (bundled model RTN-quantized
// to W8 and W4, and a random model with int8 KV), preemption, prefix sharing,
// n > 1, cancellation, no leaked blocks after 10,000 requests, stop handling, API errors, and
// the fp32 path against transformers' greedy continuations.
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/card_backend.h"
#include "engine/engine_core.h"
#include "engine/linear_backend.h"
#include "engine/test_model.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace qsl {
namespace {

using testing::QuantizeRtn;
using testing::RandomModel;
using testing::TinyConfig;

struct Choice {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::vector<std::vector<TokenLogprob>> top;
  std::string text;
  std::optional<FinishReason> finish;
  int32_t completion_tokens = 0;
};

struct Result {
  uint64_t id = 0;
  std::vector<Choice> choices;
  std::optional<PromptLogprobs> prompt;
};

// Submits requests and collects their events; Wait() returns when every choice has finished.
class Runner {
 public:
  using Hook = std::function<void(uint64_t id, const GenerationEvent&)>;
  explicit Runner(Engine& e) : engine_(e) {}

  // Returns the slot of the result, or -1 when Submit failed (the status goes to *error).
  int Submit(GenerationRequest r, Hook hook = nullptr, absl::Status* error = nullptr) {
    const int32_t n = r.params.n;
    std::lock_guard<std::mutex> lk(mu_);
    results_.emplace_back();
    Result* res = &results_.back();
    res->choices.resize(static_cast<size_t>(n));
    auto id_box = std::make_shared<std::atomic<uint64_t>>(0);
    RequestCallbacks cb;
    cb.on_event = [this, res, hook, id_box](const GenerationEvent& ev) {
      if (hook) {
        while (id_box->load() == 0) std::this_thread::yield();  // Submit has not returned yet
        hook(id_box->load(), ev);
      }
      Choice& c = res->choices[static_cast<size_t>(ev.index)];
      c.ids.insert(c.ids.end(), ev.token_ids.begin(), ev.token_ids.end());
      c.logprobs.insert(c.logprobs.end(), ev.logprobs.begin(), ev.logprobs.end());
      c.top.insert(c.top.end(), ev.top_logprobs.begin(), ev.top_logprobs.end());
      c.text += ev.text;
      c.completion_tokens = ev.completion_tokens;
      if (ev.finish.has_value()) {
        c.finish = ev.finish;
        std::lock_guard<std::mutex> lk(mu_);
        --pending_;
        cv_.notify_all();
      }
    };
    cb.on_prompt_logprobs = [res](const PromptLogprobs& p) { res->prompt = p; };
    pending_ += n;
    auto id = engine_.Submit(std::move(r), std::move(cb));
    if (!id.ok()) {
      pending_ -= n;
      results_.pop_back();
      if (error != nullptr) *error = id.status();
      return -1;
    }
    res->id = *id;
    id_box->store(*id);
    return static_cast<int>(results_.size()) - 1;
  }

  void Wait() {
    std::unique_lock<std::mutex> lk(mu_);
    ASSERT_TRUE(cv_.wait_for(lk, std::chrono::seconds(120), [&] { return pending_ == 0; }))
        << pending_ << " choices still pending";
  }

  Result& operator[](int i) { return results_[static_cast<size_t>(i)]; }
  size_t size() const { return results_.size(); }

 private:
  Engine& engine_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Result> results_;  // stable addresses for the callbacks
  int64_t pending_ = 0;
};

// `o.devices` picks the backend: the CPU kernels, or simulated cards ("sim:N").
std::unique_ptr<EngineCore> MakeEngine(std::unique_ptr<Model> model, const EngineOptions& o) {
  auto backend = CreateLinearBackend(*model, o);
  EXPECT_TRUE(backend.ok()) << backend.status();
  if (!backend.ok()) return nullptr;
  auto e = EngineCore::Create(std::move(model), std::move(*backend), o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

// Polls until the loop has published an idle state (stats lag the last event by one publish).
EngineStats IdleStats(const Engine& e) {
  for (int i = 0; i < 2000; ++i) {
    const EngineStats s = e.Stats();
    if (s.running == 0 && s.waiting == 0) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ADD_FAILURE() << "engine never became idle";
  return e.Stats();
}

// Small random models, so the integer path stays quick even on the scalar kernels.
constexpr int32_t kVocab = 1024;
ModelConfig Tiny() { return TinyConfig(64, 2, 4, 2, 128, kVocab); }
std::unique_ptr<Model> TinyQuantized(WeightScheme scheme) {
  return QuantizeRtn(*RandomModel(Tiny(), 5), scheme);
}

std::vector<int32_t> RandomPrompt(std::mt19937_64& rng, int32_t len, int32_t vocab) {
  std::uniform_int_distribution<int32_t> tok(3, vocab - 1);
  std::vector<int32_t> p = {1};
  for (int32_t i = 1; i < len; ++i) p.push_back(tok(rng));
  return p;
}

// 32 requests of mixed prompt and output lengths; odd ones sample with their own seed.
std::vector<GenerationRequest> MixedRequests(int32_t vocab) {
  std::mt19937_64 rng(99);
  std::vector<GenerationRequest> out;
  for (int i = 0; i < 32; ++i) {
    GenerationRequest r;
    r.prompt = RandomPrompt(rng, std::uniform_int_distribution<int32_t>(1, 60)(rng), vocab);
    r.params.max_tokens = std::uniform_int_distribution<int32_t>(3, 12)(rng);
    r.params.logprobs = 2;
    r.params.ignore_eos = true;
    if (i % 2 == 0) {
      r.params.temperature = 0.0f;
    } else {
      r.params.temperature = 0.9f;
      r.params.top_p = 0.9f;
      r.params.top_k = 100;
      r.params.seed = 1000 + i;
    }
    out.push_back(std::move(r));
  }
  return out;
}

// Runs the requests one at a time, or all at once; returns the results and the most sequences
// seen running together.
std::vector<Result> RunRequests(Engine& e, const std::vector<GenerationRequest>& reqs, bool alone,
                                int32_t* max_running = nullptr) {
  Runner run(e);
  auto peak = std::make_shared<std::atomic<int32_t>>(0);
  const Runner::Hook hook = [&e, peak](uint64_t, const GenerationEvent&) {
    const int32_t r = e.Stats().running;
    if (r > peak->load()) peak->store(r);
  };
  for (const auto& r : reqs) {
    EXPECT_GE(run.Submit(r, hook), 0);
    if (alone) run.Wait();
  }
  run.Wait();
  if (max_running != nullptr) *max_running = peak->load();
  std::vector<Result> out;
  for (size_t i = 0; i < run.size(); ++i) out.push_back(run[static_cast<int>(i)]);
  return out;
}

void ExpectSameOutputs(const std::vector<Result>& want, const std::vector<Result>& got,
                       const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].prompt.has_value(), got[i].prompt.has_value()) << what;
    if (want[i].prompt.has_value()) {
      EXPECT_EQ(want[i].prompt->logprobs, got[i].prompt->logprobs) << what << ": request " << i;
    }
    ASSERT_EQ(want[i].choices.size(), got[i].choices.size()) << what;
    for (size_t c = 0; c < want[i].choices.size(); ++c) {
      const Choice& a = want[i].choices[c];
      const Choice& b = got[i].choices[c];
      EXPECT_EQ(a.ids, b.ids) << what << ": request " << i << " choice " << c;
      EXPECT_EQ(a.logprobs, b.logprobs) << what << ": request " << i << " choice " << c;
      EXPECT_EQ(a.text, b.text) << what << ": request " << i;
      EXPECT_EQ(a.finish, b.finish) << what << ": request " << i;
    }
  }
}

EngineOptions SmallSteps(bool chunked) {
  EngineOptions o;
  o.kv_cache_mb = 16;
  o.max_num_batched_tokens = 64;  // long prompts are split over several steps
  o.chunked_prefill = chunked;
  return o;
}

// 32 prompts cut from data/dev.txt with the bundled tokenizer, of mixed lengths, as requests
// like MixedRequests'.
std::vector<GenerationRequest> DevTextRequests(const Tokenizer& tok) {
  std::ifstream in(std::string(QSL_SOURCE_DIR) + "/data/dev.txt", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::vector<int32_t> ids = tok.Encode(text, false);
  std::vector<GenerationRequest> reqs = MixedRequests(tok.vocab_size());
  std::mt19937_64 rng(12);
  for (GenerationRequest& r : reqs) {
    const size_t len = r.prompt.size();
    const size_t at = std::uniform_int_distribution<size_t>(0, ids.size() - len)(rng);
    r.prompt.assign(ids.begin() + static_cast<std::ptrdiff_t>(at),
                    ids.begin() + static_cast<std::ptrdiff_t>(at + len));
    r.prompt[0] = tok.bos_id();
  }
  return reqs;
}

// The CPU backend's fused gate/up + SwiGLU (each work item combines its own tiles) gives the bits
// of the two projections written whole and host_ops SwiGlu over them, for W8 and W4, a width
// that ends in a partial tile, and decode- and prefill-sized row counts.
TEST(CpuLinearBackendTest, FusedSwiGluMatchesTwoProjectionsThenSwiGlu) {
  for (WeightScheme scheme : {WeightScheme::kW8, WeightScheme::kW4}) {
    const auto model = QuantizeRtn(*RandomModel(TinyConfig(256, 1, 4, 2, 320, kVocab), 9), scheme);
    const LayerWeights& w = model->layers()[0];
    ASSERT_TRUE(w.gate.quantized());
    CpuLinearBackend backend;
    for (int64_t m : {1, 32, 77}) {
      SCOPED_TRACE(::testing::Message() << static_cast<int>(scheme) << ", m " << m);
      std::mt19937 rng(static_cast<uint32_t>(m));
      std::normal_distribution<float> d(0.0f, 1.0f);
      std::vector<float> x(static_cast<size_t>(m * w.gate.k));
      for (float& v : x) v = d(rng);
      const size_t n = static_cast<size_t>(m * w.gate.n);
      std::vector<float> fused(n), fused_scratch(n), plain(n), plain_scratch(n);
      ASSERT_TRUE(backend.RunSwiGlu(w.gate, w.up, x.data(), m, fused.data(),
                                    fused_scratch.data()).ok());
      ASSERT_TRUE(backend.LinearBackend::RunSwiGlu(w.gate, w.up, x.data(), m, plain.data(),
                                                   plain_scratch.data()).ok());
      EXPECT_EQ(std::memcmp(fused.data(), plain.data(), n * sizeof(float)), 0);
    }
  }
}

TEST(BatchInvariance, TokensAndLogprobsMatchAloneAndAmong32Requests) {
  const std::unique_ptr<Model> bundled = testing::BundledModel();
  const auto reqs = DevTextRequests(bundled->tokenizer());
  for (WeightScheme scheme : {WeightScheme::kW8, WeightScheme::kW4}) {
    auto alone_engine = MakeEngine(QuantizeRtn(*bundled, scheme), SmallSteps(true));
    const std::vector<Result> alone = RunRequests(*alone_engine, reqs, /*alone=*/true);
    for (const Result& r : alone) ASSERT_FALSE(r.choices[0].ids.empty());
    for (const char* devices : {"cpu", "sim:2"}) {
      for (bool chunked : {true, false}) {
        EngineOptions o = SmallSteps(chunked);
        o.devices = devices;
        auto engine = MakeEngine(QuantizeRtn(*bundled, scheme), o);
        int32_t peak = 0;
        const std::vector<Result> batched = RunRequests(*engine, reqs, /*alone=*/false, &peak);
        EXPECT_GE(peak, 8) << "the requests did not actually share steps";
        ExpectSameOutputs(alone, batched,
                          absl::StrCat(WeightSchemeName(scheme), " on ", devices,
                                       chunked ? " chunked" : " whole"));
      }
    }
  }
}

// Random weights and random prompts, int8 KV.
TEST(BatchInvariance, HoldsWithInt8KvCache) {
  EngineOptions o = SmallSteps(true);
  o.kv_dtype = "int8";
  const auto reqs = MixedRequests(kVocab);
  auto a = MakeEngine(TinyQuantized(WeightScheme::kW8), o);
  auto b = MakeEngine(TinyQuantized(WeightScheme::kW8), o);
  ExpectSameOutputs(RunRequests(*a, reqs, true), RunRequests(*b, reqs, false), "int8 kv");
}

TEST(Preemption, TinyKvBudgetFinishesEverythingWithTheSameTokens) {
  std::mt19937_64 rng(3);
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 16; ++i) {
    GenerationRequest r;
    r.prompt = RandomPrompt(rng, 30 + i, kVocab);
    r.params.temperature = i % 2 ? 0.7f : 0.0f;
    r.params.seed = i;
    r.params.max_tokens = 24;
    r.params.logprobs = 1;
    r.params.echo = i % 4 == 1;  // prompt logprobs survive a preemption mid-prompt too
    r.params.ignore_eos = true;
    reqs.push_back(std::move(r));
  }
  EngineOptions big;
  big.kv_cache_mb = 16;
  EngineOptions tiny = big;
  tiny.num_kv_blocks = 10;  // 160 positions for 16 requests of up to 69
  auto a = MakeEngine(TinyQuantized(WeightScheme::kW8), big);
  auto b = MakeEngine(TinyQuantized(WeightScheme::kW8), tiny);
  const auto want = RunRequests(*a, reqs, false);
  const auto got = RunRequests(*b, reqs, false);
  ExpectSameOutputs(want, got, "tiny kv budget");
  ASSERT_TRUE(got[1].prompt.has_value());
  EXPECT_EQ(got[1].prompt->logprobs.size(), reqs[1].prompt.size() - 1);
  const EngineStats s = IdleStats(*b);
  EXPECT_GT(s.preemptions, 0);
  EXPECT_EQ(s.kv_blocks_used, 0);
  EXPECT_EQ(s.kv_blocks_total, 10);
  EXPECT_EQ(IdleStats(*a).preemptions, 0);
}

// An echo request preempted in the middle of its prompt starts over without sending any prompt
// logprob twice.
TEST(Preemption, MidPromptRestartKeepsPromptLogprobsExact) {
  std::mt19937_64 rng(13);
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 3; ++i) {  // decoders that keep growing
    GenerationRequest r;
    r.prompt = RandomPrompt(rng, 8, kVocab);
    r.params.max_tokens = 100;
    r.params.seed = i;
    r.params.ignore_eos = true;
    reqs.push_back(std::move(r));
  }
  GenerationRequest echo;  // newest: the one preempted while its 200-token prompt is half done
  echo.prompt = RandomPrompt(rng, 200, kVocab);
  echo.params.max_tokens = 1;
  echo.params.temperature = 0.0f;
  echo.params.echo = true;
  echo.params.logprobs = 1;
  reqs.push_back(echo);
  EngineOptions o;
  o.max_num_batched_tokens = 16;
  o.prefix_caching = false;
  auto big = MakeEngine(TinyQuantized(WeightScheme::kW8), o);
  o.num_kv_blocks = 13;
  auto tiny = MakeEngine(TinyQuantized(WeightScheme::kW8), o);
  const auto want = RunRequests(*big, reqs, false);
  const auto got = RunRequests(*tiny, reqs, false);
  EXPECT_GT(IdleStats(*tiny).preemptions, 0);
  ASSERT_TRUE(got[3].prompt.has_value());
  EXPECT_EQ(got[3].prompt->logprobs.size(), 199u);
  ExpectSameOutputs(want, got, "mid-prompt preemption");
}

TEST(PrefixSharing, CommonPrefixUsesFewerBlocksAndCountsHits) {
  std::mt19937_64 rng(4);
  const std::vector<int32_t> prefix = RandomPrompt(rng, 256, kVocab);
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 5; ++i) {
    GenerationRequest r;
    r.prompt = prefix;
    const auto suffix = RandomPrompt(rng, 9, kVocab);
    r.prompt.insert(r.prompt.end(), suffix.begin() + 1, suffix.end());  // 264 tokens
    r.params.temperature = 0.0f;
    r.params.max_tokens = 8;
    r.params.ignore_eos = true;
    reqs.push_back(std::move(r));
  }
  const auto run = [&](bool caching, int32_t* peak_blocks) {
    EngineOptions o;
    o.kv_cache_mb = 16;
    o.prefix_caching = caching;
    auto e = MakeEngine(TinyQuantized(WeightScheme::kW8), o);
    std::vector<Result> out = RunRequests(*e, {reqs[0]}, true);  // warms the cache
    Runner run(*e);
    auto peak = std::make_shared<std::atomic<int32_t>>(0);
    for (size_t i = 1; i < reqs.size(); ++i) {
      run.Submit(reqs[i], [&e, peak](uint64_t, const GenerationEvent&) {
        const auto used = static_cast<int32_t>(e->Stats().kv_blocks_used);
        if (used > peak->load()) peak->store(used);
      });
    }
    run.Wait();
    for (size_t i = 0; i < run.size(); ++i) out.push_back(run[static_cast<int>(i)]);
    *peak_blocks = peak->load();
    const EngineStats s = IdleStats(*e);
    if (caching) {
      // 264-token prompts: (264 - 1) / 16 = 16 full blocks looked up each; the 16 of the
      // shared 256-token prefix hit for the four requests after the first.
      EXPECT_EQ(s.prefix_queries, 5 * 16);
      EXPECT_EQ(s.prefix_hits, 4 * 16);
    } else {
      EXPECT_EQ(s.prefix_queries, 0);
    }
    return out;
  };
  int32_t shared_peak = 0, plain_peak = 0;
  const auto shared = run(true, &shared_peak);
  const auto plain = run(false, &plain_peak);
  ExpectSameOutputs(plain, shared, "prefix caching");
  // Four concurrent requests: 4 x 17 blocks without sharing, 16 + 4 x 1 with it.
  EXPECT_GE(plain_peak, 4 * 17);
  EXPECT_LE(shared_peak, 16 + 4 * 1);
}

TEST(ChoicesN, ShareThePromptAndChoiceZeroMatchesASingleRequest) {
  auto e = MakeEngine(TinyQuantized(WeightScheme::kW8), EngineOptions{});
  std::mt19937_64 rng(5);
  GenerationRequest r;
  r.prompt = RandomPrompt(rng, 40, kVocab);
  r.params.temperature = 1.0f;
  r.params.seed = 77;
  r.params.max_tokens = 12;
  r.params.ignore_eos = true;
  const Result one = RunRequests(*e, {r}, true)[0];
  r.params.n = 3;
  const Result three = RunRequests(*e, {r}, true)[0];
  ASSERT_EQ(three.choices.size(), 3u);
  EXPECT_EQ(three.choices[0].ids, one.choices[0].ids);
  EXPECT_NE(three.choices[1].ids, three.choices[0].ids);
  EXPECT_NE(three.choices[2].ids, three.choices[1].ids);
  for (const Choice& c : three.choices) EXPECT_EQ(c.finish, FinishReason::kLength);
  r.params.temperature = 0.0f;  // greedy choices are all the same
  const Result greedy = RunRequests(*e, {r}, true)[0];
  EXPECT_EQ(greedy.choices[0].ids, greedy.choices[2].ids);
  EXPECT_EQ(IdleStats(*e).kv_blocks_used, 0);
}

// The engine's decode-only account (what qsl-bench-engine rates): steps in which every chunk is
// one generated token, by how many sequences ran, never a step with prompt work.
TEST(Profile, DecodeOnlyStepsAreCountedByWidth) {
  EngineOptions o;
  o.max_num_batched_tokens = 16;  // a 40-token prompt takes 3 steps
  o.prefix_caching = false;
  auto e = MakeEngine(TinyQuantized(WeightScheme::kW8), o);
  std::mt19937_64 rng(9);
  GenerationRequest r;
  r.prompt = RandomPrompt(rng, 40, kVocab);
  r.params.max_tokens = 7;
  r.params.ignore_eos = true;
  RunRequests(*e, {r}, true);
  IdleStats(*e);
  const StepProfile one = e->Profile();
  // 3 prompt steps (the last one samples the first token), then 6 one-token decodes.
  EXPECT_EQ(one.all.steps, 3 + 6);
  EXPECT_EQ(one.DecodeWidth(1).steps, 6);
  EXPECT_EQ(one.DecodeWidth(1).tokens, 6);
  EXPECT_GT(one.DecodeWidth(1).total_s(), 0.0);
  EXPECT_LE(one.DecodeWidth(1).forward_s, one.all.forward_s);
  EXPECT_EQ(one.DecodeWidth(2).steps, 0);

  // Three choices share the prompt and then decode together: 6 steps three wide.
  r.params.n = 3;
  RunRequests(*e, {r}, true);
  IdleStats(*e);
  const StepProfile three = e->Profile();
  EXPECT_EQ(three.all.steps - one.all.steps, 3 + 6);
  EXPECT_EQ(three.DecodeWidth(3).steps, 6);
  EXPECT_EQ(three.DecodeWidth(3).tokens, 18);
  EXPECT_EQ(three.DecodeWidth(1).steps, 6);  // unchanged
  const StepTimes d = three.DecodeWidth(3) - one.DecodeWidth(3);
  EXPECT_EQ(d.steps, 6);
}

TEST(ChoicesN, ForkedChoicesHoldOneCopyOfThePrompt) {
  EngineOptions o;
  o.prefix_caching = false;
  auto e = MakeEngine(TinyQuantized(WeightScheme::kW8), o);
  std::mt19937_64 rng(6);
  GenerationRequest r;
  r.prompt = RandomPrompt(rng, 100, kVocab);  // 6 full blocks + 4 tokens
  r.params.n = 4;
  r.params.max_tokens = 8;
  r.params.ignore_eos = true;
  Runner run(*e);
  auto peak = std::make_shared<std::atomic<int64_t>>(0);
  run.Submit(r, [&e, peak](uint64_t, const GenerationEvent&) {
    peak->store(std::max(peak->load(), e->Stats().kv_blocks_used));
  });
  run.Wait();
  // Shared: 6 full prompt blocks once, plus each choice's own copy of the partial block.
  EXPECT_LE(peak->load(), 6 + 4);
  EXPECT_EQ(IdleStats(*e).kv_blocks_used, 0);
}

TEST(Cancel, MidPrefillAndMidDecodeFreeTheBlocksAtOnce) {
  EngineOptions o;
  o.max_num_batched_tokens = 16;
  o.prefix_caching = false;
  auto e = MakeEngine(RandomModel(Tiny(), 7), o);
  std::mt19937_64 rng(7);
  GenerationRequest ticker, longp;
  ticker.prompt = RandomPrompt(rng, 4, kVocab);
  ticker.params.max_tokens = 200;
  ticker.params.ignore_eos = true;
  ticker.priority = -1;  // first in every step: it decodes while the long prompt is chunked
  longp.prompt = RandomPrompt(rng, 300, kVocab);
  longp.params.max_tokens = 5;
  Runner run(*e);
  std::atomic<uint64_t> long_id{0};
  std::atomic<int64_t> used_after_cancel{-1};
  // Events come when text is released, so completion counts may skip: act on the first event at
  // or past each count. The long prompt needs 20 steps of 15 tokens; it is cancelled after the
  // ticker's third token, and the ticker measures the blocks in use three tokens later.
  int cancelled_at = -1;
  const int t = run.Submit(ticker, [&](uint64_t self, const GenerationEvent& ev) {
    if (cancelled_at < 0 && ev.completion_tokens >= 3 && long_id != 0) {
      e->Cancel(long_id);
      cancelled_at = ev.completion_tokens;
    } else if (cancelled_at >= 0 && used_after_cancel < 0 &&
               ev.completion_tokens >= cancelled_at + 3) {
      used_after_cancel = e->Stats().kv_blocks_used;
      e->Cancel(self);
    }
  });
  const int l = run.Submit(longp);
  long_id = run[l].id;
  run.Wait();
  EXPECT_EQ(run[l].choices[0].finish, FinishReason::kCancelled);
  EXPECT_TRUE(run[l].choices[0].ids.empty());
  EXPECT_EQ(run[t].choices[0].finish, FinishReason::kCancelled);
  // Only the ticker's blocks are left (4 + ~6 tokens: 1 block, 2 if its text was held long).
  EXPECT_GE(used_after_cancel.load(), 1);
  EXPECT_LE(used_after_cancel.load(), 2);
  EXPECT_EQ(IdleStats(*e).kv_blocks_used, 0);

  // Mid-decode: a request cancels itself after its third token.
  GenerationRequest self = ticker;
  self.params.max_tokens = 50;
  Runner run2(*e);
  const int s = run2.Submit(self, [&](uint64_t id, const GenerationEvent& ev) {
    if (ev.completion_tokens >= 3 && !ev.finish) e->Cancel(id);
  });
  run2.Wait();
  EXPECT_EQ(run2[s].choices[0].finish, FinishReason::kCancelled);
  EXPECT_LT(run2[s].choices[0].completion_tokens, 50);
  EXPECT_EQ(IdleStats(*e).kv_blocks_used, 0);
}

TEST(Leak, TenThousandRequestsReturnEveryBlock) {
  const ModelConfig c = TinyConfig(32, 1, 2, 1, 64, 256);
  EngineOptions o;
  o.num_kv_blocks = 24;  // far too few for 32 running sequences: preemption is routine
  o.max_num_seqs = 32;
  o.max_queue = 1 << 20;
  auto e = MakeEngine(RandomModel(c, 8), o);
  std::mt19937_64 rng(8);
  std::vector<std::vector<int32_t>> prefixes;
  for (int i = 0; i < 4; ++i) prefixes.push_back(RandomPrompt(rng, 32, 256));
  Runner run(*e);
  constexpr int kRequests = 10000;
  for (int i = 0; i < kRequests; ++i) {
    GenerationRequest r;
    const auto tail = RandomPrompt(rng, std::uniform_int_distribution<int32_t>(1, 12)(rng), 256);
    r.prompt = i % 2 ? prefixes[static_cast<size_t>(i % 4)] : std::vector<int32_t>{1};
    r.prompt.insert(r.prompt.end(), tail.begin() + 1, tail.end());
    r.params.max_tokens = i % 10 == 1 ? 24 : 1 + i % 3;  // the long ones outgrow their blocks
    r.params.temperature = 0.5f;
    r.params.n = i % 10 == 3 ? 2 : 1;
    Runner::Hook hook;
    if (i % 10 == 7) {  // cancels itself at its first event
      hook = [&e](uint64_t id, const GenerationEvent&) { e->Cancel(id); };
    }
    const int slot = run.Submit(std::move(r), hook);
    ASSERT_GE(slot, 0);
    if (i % 10 == 5) e->Cancel(run[slot].id);  // waiting, mid-prefill or later
  }
  run.Wait();
  int cancelled = 0;
  for (size_t i = 0; i < run.size(); ++i) {
    for (const Choice& ch : run[static_cast<int>(i)].choices) {
      ASSERT_TRUE(ch.finish.has_value());
      cancelled += *ch.finish == FinishReason::kCancelled;
    }
  }
  EXPECT_GT(cancelled, kRequests / 20);
  const EngineStats s = IdleStats(*e);
  EXPECT_EQ(s.kv_blocks_used, 0);
  EXPECT_EQ(s.kv_blocks_total, 24);
  EXPECT_GT(s.prefix_hits, 0);
  EXPECT_GT(s.preemptions, 0);
}

TEST(Stops, StopStringsStopTokensEosAndLength) {
  auto e = MakeEngine(TinyQuantized(WeightScheme::kW8), EngineOptions{});
  std::mt19937_64 rng(9);
  GenerationRequest r;
  r.prompt = RandomPrompt(rng, 12, kVocab);
  r.params.temperature = 0.0f;
  r.params.max_tokens = 24;
  r.params.ignore_eos = true;
  const Choice full = RunRequests(*e, {r}, true)[0].choices[0];
  ASSERT_EQ(full.finish, FinishReason::kLength);
  ASSERT_EQ(full.ids.size(), 24u);
  ASSERT_GT(full.text.size(), 20u);

  GenerationRequest s = r;
  const std::string stop = full.text.substr(full.text.size() / 2, 4);
  s.params.stop = {stop};
  const Choice stopped = RunRequests(*e, {s}, true)[0].choices[0];
  EXPECT_EQ(stopped.finish, FinishReason::kStop);
  EXPECT_EQ(stopped.text, full.text.substr(0, full.text.find(stop)));

  s = r;
  s.params.stop_token_ids = {full.ids[5]};
  const Choice by_id = RunRequests(*e, {s}, true)[0].choices[0];
  EXPECT_EQ(by_id.finish, FinishReason::kStop);
  const auto first = std::find(full.ids.begin(), full.ids.end(), full.ids[5]) - full.ids.begin();
  EXPECT_EQ(by_id.ids, std::vector<int32_t>(full.ids.begin(), full.ids.begin() + first));

  s = r;
  s.params.ignore_eos = false;
  s.params.logit_bias = {{2, 100.0f}};  // EOS at once
  const Choice eos = RunRequests(*e, {s}, true)[0].choices[0];
  EXPECT_EQ(eos.finish, FinishReason::kStop);
  EXPECT_TRUE(eos.ids.empty());
  EXPECT_EQ(eos.completion_tokens, 1);
  s.params.ignore_eos = true;
  s.params.max_tokens = 3;
  const Choice ignored = RunRequests(*e, {s}, true)[0].choices[0];
  EXPECT_EQ(ignored.finish, FinishReason::kLength);
  EXPECT_EQ(ignored.ids, (std::vector<int32_t>{2, 2, 2}));

  s = r;
  s.params.max_tokens = 0;
  s.params.n = 2;
  const Result none = RunRequests(*e, {s}, true)[0];
  for (const Choice& ch : none.choices) {
    EXPECT_EQ(ch.finish, FinishReason::kLength);
    EXPECT_TRUE(ch.ids.empty());
  }
}

TEST(PromptLogprobs, EchoedPromptLogprobsEqualTheGeneratedOnes) {
  auto e = MakeEngine(TinyQuantized(WeightScheme::kW8), SmallSteps(true));
  std::mt19937_64 rng(10);
  GenerationRequest a;
  a.prompt = RandomPrompt(rng, 70, kVocab);
  a.params.temperature = 0.0f;
  a.params.max_tokens = 6;
  a.params.logprobs = 2;
  a.params.ignore_eos = true;
  const Choice gen = RunRequests(*e, {a}, true)[0].choices[0];
  ASSERT_EQ(gen.ids.size(), 6u);
  GenerationRequest b = a;
  b.prompt.insert(b.prompt.end(), gen.ids.begin(), gen.ids.end());
  b.params.echo = true;
  b.params.max_tokens = 1;
  const Result echo = RunRequests(*e, {b}, true)[0];
  ASSERT_TRUE(echo.prompt.has_value());
  const PromptLogprobs& p = *echo.prompt;
  ASSERT_EQ(p.logprobs.size(), b.prompt.size() - 1);
  ASSERT_EQ(p.top_logprobs.size(), b.prompt.size() - 1);
  const std::vector<float> tail(p.logprobs.end() - 6, p.logprobs.end());
  EXPECT_EQ(tail, gen.logprobs);
  EXPECT_EQ(p.top_logprobs.back().size(), 2u);
}

TEST(Api, ErrorsNameTheParameterAndOverloadIsReported) {
  EngineOptions o;
  o.max_num_seqs = 1;
  o.max_queue = 2;
  auto e = MakeEngine(RandomModel(Tiny(), 11), o);
  Runner run(*e);
  absl::Status err;
  GenerationRequest r;
  r.prompt = {1, 5, 6};
  r.params.temperature = 3.0f;
  EXPECT_EQ(run.Submit(r, nullptr, &err), -1);
  EXPECT_EQ(err.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(err.message(), "temperature:")) << err;
  r.params = {};
  r.prompt = {};
  EXPECT_EQ(run.Submit(r, nullptr, &err), -1);
  EXPECT_TRUE(absl::StartsWith(err.message(), "prompt:")) << err;
  r.prompt = {1, kVocab};
  EXPECT_EQ(run.Submit(r, nullptr, &err), -1);
  EXPECT_TRUE(absl::StartsWith(err.message(), "prompt:")) << err;
  r.prompt = {1, 5};
  r.params.max_tokens = e->max_model_len();
  EXPECT_EQ(run.Submit(r, nullptr, &err), -1);
  EXPECT_TRUE(absl::StartsWith(err.message(), "max_tokens:")) << err;

  // One running, two waiting: the third waiting request is refused. (Submitted requests count
  // as waiting until the loop takes them, so let it take the first one.)
  r.params.max_tokens = 1000;
  r.params.ignore_eos = true;
  ASSERT_GE(run.Submit(r), 0);
  for (int i = 0; i < 1000 && e->Stats().running < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (int i = 0; i < 2; ++i) ASSERT_GE(run.Submit(r), 0);
  for (int i = 0; i < 1000 && e->Stats().waiting < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(run.Submit(r, nullptr, &err), -1);
  EXPECT_EQ(err.code(), absl::StatusCode::kResourceExhausted) << err;

  // Drain with no time to spare cancels what is in flight and refuses new work.
  EXPECT_FALSE(e->Drain(0));
  run.Wait();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run[i].choices[0].finish, FinishReason::kCancelled);
  EXPECT_EQ(run.Submit(r, nullptr, &err), -1);
  EXPECT_EQ(err.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(e->Drain(0));
  EXPECT_EQ(e->Stats().kv_blocks_used, 0);
}

TEST(Equivalence, Fp32EngineMatchesTransformersGreedy) {
  EngineOptions o;
  o.kv_dtype = "fp32";
  auto e = MakeEngine(testing::BundledModel(), o);
  std::ifstream in(std::string(QSL_SOURCE_DIR) + "/models/qsl-tiny-llama/reference_dev.json");
  const nlohmann::json ref = nlohmann::json::parse(in);
  const nlohmann::json& cases = ref["cases"];
  ASSERT_GE(cases.size(), 3u);
  for (const auto& c : cases) {
    GenerationRequest r;
    r.prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    const auto want = c["greedy_64_ids"].get<std::vector<int32_t>>();
    r.params.temperature = 0.0f;
    r.params.max_tokens = static_cast<int32_t>(want.size());
    r.params.ignore_eos = true;
    EXPECT_EQ(RunRequests(*e, {r}, true)[0].choices[0].ids, want);
  }
}

}  // namespace
}  // namespace qsl
