// qsl-bench-engine: aggregate output tokens/s of the engine at several concurrencies, with where
// the step time goes, and KV memory per token. Prints a table to paste into docs.
//   qsl-bench-engine --model FILE|DIR [--concurrency 1,4,16,32] [--prompt-tokens 128]
//                    [--output-tokens 64] [--devices cpu] [--kv-dtype fp16] [--rounds 1]
// --rounds N runs the concurrency list N times in turn in one process and summarizes the
// ratios to the single sequence per round: on a shared host the single-sequence rate (bound by
// DRAM bandwidth, which other tenants take) moves far more than the batched one (bound by
// compute), so a ratio from one pair of runs says little.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "engine/engine_core.h"

namespace qsl {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  EngineOptions engine;
  std::vector<int32_t> concurrency = {1, 4, 16, 32};
  int32_t prompt_tokens = 128;
  int32_t output_tokens = 64;
  int32_t rounds = 1;
  float temperature = 0.0f;  // 0: greedy; otherwise drawn (seeded per request)
};

struct RunResult {
  int32_t round = 0;
  int32_t concurrency = 0;
  double wall_s = 0;          // first submit to last finish
  double ttft_mean_s = 0;     // submit to the first released text, mean over requests
  double decode_tok_s = 0;    // output tokens/s of the steps in which all requests decoded
  double e2e_tok_s = 0;       // all output tokens / wall
  StepTimes decode;           // those steps (engine-side)
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Submits `n` requests of random prompts at once (fixed lengths; greedy at temperature 0, else
// drawn with a per-request seed) and times them. The decode rate comes from the engine's own
// account of the steps in which exactly `n` sequences decoded (StepProfile::decode_by_width),
// not from when tokens reach the callbacks: a token's text is released only once it is whole
// UTF-8, and a random-weight model often emits partial byte sequences, so events can lag the
// tokens by several steps (measured: first events carrying 4-8 tokens).
RunResult RunOnce(EngineCore& engine, int32_t n, int32_t prompt_tokens, int32_t output_tokens,
                  float temperature, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> tok(3, static_cast<int32_t>(engine.config().vocab_size) - 1);
  std::mutex mu;
  std::condition_variable cv;
  int32_t pending = n;
  std::vector<Clock::time_point> first(static_cast<size_t>(n));
  const StepProfile before = engine.Profile();  // the engine is idle: its last publication
  const auto t0 = Clock::now();
  for (int32_t i = 0; i < n; ++i) {
    GenerationRequest r;
    r.prompt.push_back(static_cast<int32_t>(engine.config().bos_token_id));
    while (static_cast<int32_t>(r.prompt.size()) < prompt_tokens) r.prompt.push_back(tok(rng));
    r.params.temperature = temperature;
    r.params.seed = seed + static_cast<uint64_t>(i);
    r.params.max_tokens = output_tokens;
    r.params.ignore_eos = true;
    RequestCallbacks cb;
    cb.on_event = [&, i, seen = std::make_shared<bool>(false)](const GenerationEvent& ev) {
      const auto now = Clock::now();
      std::lock_guard<std::mutex> lk(mu);
      if (!*seen && ev.completion_tokens > 0) {
        first[static_cast<size_t>(i)] = now;
        *seen = true;
      }
      if (ev.finish.has_value()) {
        --pending;
        cv.notify_all();
      }
    };
    auto id = engine.Submit(std::move(r), std::move(cb));
    if (!id.ok()) {
      std::fprintf(stderr, "qsl-bench-engine: %s\n", id.status().ToString().c_str());
      std::exit(1);
    }
  }
  std::unique_lock<std::mutex> lk(mu);
  cv.wait(lk, [&] { return pending == 0; });
  const auto t_end = Clock::now();
  lk.unlock();
  // The loop publishes its profile right after the last request's final step.
  while (engine.Stats().running + engine.Stats().waiting > 0) std::this_thread::yield();
  RunResult res;
  res.concurrency = n;
  res.wall_s = Seconds(t_end - t0);
  double ttft = 0;
  for (const auto& f : first) ttft += Seconds(f - t0);
  res.ttft_mean_s = ttft / n;
  res.decode = engine.Profile().DecodeWidth(static_cast<size_t>(n)) -
               before.DecodeWidth(static_cast<size_t>(n));
  const double decode_s = res.decode.total_s();
  res.decode_tok_s = decode_s > 0 ? static_cast<double>(res.decode.tokens) / decode_s : 0.0;
  res.e2e_tok_s = static_cast<double>(n) * output_tokens / res.wall_s;
  return res;
}

void PrintTable(const Options& o, const EngineCore& engine, const std::vector<RunResult>& runs) {
  const ModelConfig& c = engine.config();
  std::printf("\nmodel %s: hidden %lld, layers %lld, heads %lld/%lld, mlp %lld, vocab %lld, %s\n",
              o.engine.model.c_str(), static_cast<long long>(c.hidden_size),
              static_cast<long long>(c.num_layers), static_cast<long long>(c.num_heads),
              static_cast<long long>(c.num_kv_heads), static_cast<long long>(c.intermediate_size),
              static_cast<long long>(c.vocab_size),
              engine.model().quantized() ? "integer path" : "fp32 reference path");
  std::printf("devices %s; KV cache %s, %lld bytes/token (%.1f KiB); prompt %d tokens, output %d "
              "tokens per request, %s; %d tokens/step, chunked prefill %s; %u hardware threads\n\n",
              o.engine.devices.c_str(),
              o.engine.kv_dtype.empty() ? "as the model file says" : o.engine.kv_dtype.c_str(),
              static_cast<long long>(engine.kv_bytes_per_token()),
              static_cast<double>(engine.kv_bytes_per_token()) / 1024.0, o.prompt_tokens,
              o.output_tokens,
              o.temperature > 0 ? absl::StrCat("sampled at temperature ", o.temperature).c_str()
                                : "greedy",
              o.engine.max_num_batched_tokens,
              o.engine.chunked_prefill ? "on" : "off", std::thread::hardware_concurrency());
  std::printf("Decode = the steps in which all N requests decoded (no prompt work), timed "
              "inside the engine; out tok/s (decode) = their tokens / their time, and the "
              "profile columns split that time.\n\n");
  const bool rounds = o.rounds > 1;
  std::printf("|%s concurrent | out tok/s (decode) | out tok/s (end to end) | TTFT mean ms | "
              "N-wide decode steps | ms/step | linear %% | attention %% | other fwd %% | "
              "sample %% | schedule %% |\n",
              rounds ? " round |" : "");
  std::printf("|%s---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
              rounds ? "---:|" : "");
  for (const RunResult& r : runs) {
    const StepTimes& p = r.decode;
    const double total = p.total_s();
    const auto pct = [&](double x) { return total > 0 ? 100.0 * x / total : 0.0; };
    if (rounds) std::printf("| %d ", r.round + 1);
    std::printf("| %d | %.1f | %.1f | %.0f | %lld | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
                r.concurrency, r.decode_tok_s, r.e2e_tok_s, r.ttft_mean_s * 1e3,
                static_cast<long long>(p.steps), p.steps ? 1e3 * total / p.steps : 0.0,
                pct(p.linear_s), pct(p.attention_s), pct(p.forward_s - p.linear_s - p.attention_s),
                pct(p.sample_s), pct(p.schedule_s));
  }
  const auto find = [&](int32_t round, int32_t c) -> const RunResult* {
    for (const RunResult& r : runs) {
      if (r.round == round && r.concurrency == c) return &r;
    }
    return nullptr;
  };
  if (!rounds) {
    const RunResult* one = find(0, 1);
    if (one == nullptr) return;
    for (const RunResult& r : runs) {
      if (r.concurrency == 1) continue;
      std::printf("\n%d concurrent vs 1: %.2fx decode tok/s, %.2fx end to end", r.concurrency,
                  r.decode_tok_s / one->decode_tok_s, r.e2e_tok_s / one->e2e_tok_s);
    }
    std::printf("\n");
    return;
  }
  // Per concurrency: the median and range of decode tok/s over the rounds; with a single
  // sequence in the list, also each round's ratio to its own single-sequence run and the ratio
  // of the median to the fastest single-sequence run (the least disturbed one).
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  };
  std::vector<double> singles;
  for (int32_t k = 0; k < o.rounds; ++k) {
    if (const RunResult* one = find(k, 1)) singles.push_back(one->decode_tok_s);
  }
  const double best_single =
      singles.empty() ? 0.0 : *std::max_element(singles.begin(), singles.end());
  std::printf("\n| concurrent | decode tok/s median | min | max |%s\n",
              singles.empty() ? ""
                              : " x single, per round | median of those |"
                                " median / fastest single |");
  std::printf("|---:|---:|---:|---:|%s\n", singles.empty() ? "" : "---|---:|---:|");
  std::vector<int32_t> seen;
  for (const RunResult& first : runs) {
    if (std::find(seen.begin(), seen.end(), first.concurrency) != seen.end()) continue;
    seen.push_back(first.concurrency);
    std::vector<double> rates, ratios;
    std::string per_round;
    for (int32_t k = 0; k < o.rounds; ++k) {
      const RunResult* r = find(k, first.concurrency);
      if (r == nullptr) continue;
      rates.push_back(r->decode_tok_s);
      const RunResult* one = find(k, 1);
      if (one != nullptr && one->decode_tok_s > 0) {
        ratios.push_back(r->decode_tok_s / one->decode_tok_s);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%.2f", per_round.empty() ? "" : ", ", ratios.back());
        per_round += buf;
      }
    }
    const double med = median(rates);
    std::printf("| %d | %.1f | %.1f | %.1f |", first.concurrency, med,
                *std::min_element(rates.begin(), rates.end()),
                *std::max_element(rates.begin(), rates.end()));
    if (!singles.empty()) {
      std::printf(" %s | %.2f | %.2f |", per_round.c_str(), ratios.empty() ? 0.0 : median(ratios),
                  best_single > 0 ? med / best_single : 0.0);
    }
    std::printf("\n");
  }
}

int Main(int argc, char** argv) {
  Options o;
  o.engine.kv_cache_mb = 2048;
  CLI::App app{"Engine throughput at several concurrencies (aggregate output tokens/s)",
               "qsl-bench-engine"};
  app.add_option("--model", o.engine.model, "Packed model file or Hugging Face directory")
      ->required();
  app.add_option("--devices", o.engine.devices, "cpu, sim:N, ...")->capture_default_str();
  app.add_option("--mpe-config", o.engine.mpe_config, "MpeConfig JSON for sim devices");
  app.add_option("--concurrency", o.concurrency, "Concurrent requests per run")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--prompt-tokens", o.prompt_tokens, "Prompt length")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--output-tokens", o.output_tokens, "Tokens generated per request")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--kv-cache-mb", o.engine.kv_cache_mb, "KV budget, MiB")->capture_default_str();
  app.add_option("--kv-dtype", o.engine.kv_dtype, "fp16, int8 or fp32")->capture_default_str();
  app.add_option("--max-batched-tokens", o.engine.max_num_batched_tokens, "Tokens per step")
      ->capture_default_str();
  app.add_flag("!--no-chunked-prefill", o.engine.chunked_prefill, "Whole prompts per step");
  app.add_flag("--mmap", o.engine.mmap_weights,
               "Map the packed file in place instead of reading it into huge-page memory");
  app.add_option("--temperature", o.temperature,
                 "0: greedy; above 0 every token is drawn (top_p 1, top_k off)")
      ->check(CLI::Range(0.0, 2.0))
      ->capture_default_str();
  app.add_option("--rounds", o.rounds, "Times to run the concurrency list, in turn")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  for (int32_t c : o.concurrency) {
    if (c < 1 || c > 4096) {
      std::fprintf(stderr, "qsl-bench-engine: --concurrency %d: expected 1 to 4096\n", c);
      return 2;
    }
  }
  if (auto s = InitLogging(""); !s.ok()) return 1;

  o.engine.prefix_caching = false;  // random prompts; keep runs independent
  o.engine.max_num_seqs = std::max(64, *std::max_element(o.concurrency.begin(), o.concurrency.end()));
  auto engine = CreateEngineCore(o.engine);
  if (!engine.ok()) {
    std::fprintf(stderr, "qsl-bench-engine: %s\n", engine.status().ToString().c_str());
    return 1;
  }
  // Warm-up: touches the weights and grows every scratch buffer once.
  RunOnce(**engine, 2, o.prompt_tokens, 4, o.temperature, 1);
  std::vector<RunResult> runs;
  for (int32_t k = 0; k < o.rounds; ++k) {
    for (int32_t c : o.concurrency) {
      if (o.rounds > 1) {
        std::fprintf(stderr, "round %d/%d: running %d concurrent requests...\n", k + 1, o.rounds,
                     c);
      } else {
        std::fprintf(stderr, "running %d concurrent requests...\n", c);
      }
      runs.push_back(RunOnce(**engine, c, o.prompt_tokens, o.output_tokens, o.temperature,
                             100 + c + 1000 * k));
      runs.back().round = k;
    }
  }
  PrintTable(o, **engine, runs);
  return 0;
}

}  // namespace
}  // namespace qsl

int main(int argc, char** argv) { return qsl::Main(argc, argv); }
