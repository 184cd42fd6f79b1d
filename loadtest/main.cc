// qsl-loadtest: drives an OpenAI-compatible server (qsl, llama-server, vLLM, ...) or qsl's gRPC
// API at fixed concurrency levels or open-loop Poisson rates, and reports throughput, TTFT, TPOT,
// inter-token and end-to-end latency percentiles and errors as a table and JSON.
#include <cstdio>
#include <fstream>

#include "CLI/CLI.hpp"
#include "loadtest/driver.h"
#include "loadtest/result.h"
#include "loadtest/target.h"
#include "loadtest/workload.h"

namespace qsl::loadtest {
namespace {

struct Args {
  TargetOptions target;
  WorkloadOptions workload;
  std::vector<int> concurrency;
  std::vector<double> rates;
  size_t requests = 64;
  size_t warmup = 2;
  int64_t seed = 0;
  bool seed_set = false;
  bool no_ignore_eos = false;
  int duration_s = 600;
  size_t max_inflight = 512;
  int timeout_s = 300;
  std::string json_path;
  std::string label;
};

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "qsl-loadtest: error: %s\n", std::string(s.message()).c_str());
  return 1;
}

int Run(Args& a) {
  if (a.concurrency.empty() == a.rates.empty()) {
    return Fail(absl::InvalidArgumentError("give one of --concurrency and --rate"));
  }
  a.target.ignore_eos = !a.no_ignore_eos;
  a.target.timeout = std::chrono::seconds(a.timeout_s);
  if (a.seed_set) a.target.seed = static_cast<uint64_t>(a.seed);
  auto factory = MakeTargetFactory(a.target);
  if (!factory.ok()) return Fail(factory.status());
  a.workload.count = a.requests;
  a.workload.seed = static_cast<uint64_t>(a.seed);
  auto workload = BuildWorkload(a.workload);
  if (!workload.ok()) return Fail(workload.status());
  RunLimits limits{std::chrono::seconds(a.duration_s), a.max_inflight};

  if (a.warmup > 0) {
    std::vector<LoadRequest> warm(workload->begin(),
                                  workload->begin() + std::min(a.warmup, workload->size()));
    std::fprintf(stderr, "warmup: %zu requests\n", warm.size());
    for (const RequestResult& r : RunClosedLoop(*factory, 1, warm, limits)) {
      if (!r.ok()) return Fail(absl::UnavailableError("warmup request failed: " + r.error));
    }
  }

  std::vector<LevelSummary> levels;
  nlohmann::json out = {{"label", a.label},
                        {"target", a.target.url.empty() ? "grpc://" + a.target.grpc : a.target.url},
                        {"prompts", a.workload.prompts_file},
                        {"prompt_tokens", a.workload.prompt_tokens},
                        {"output_tokens", a.workload.output_tokens},
                        {"requests_per_level", a.requests},
                        {"levels", nlohmann::json::array()}};
  auto level = [&](const std::string& mode, double value, std::vector<RequestResult> results) {
    levels.push_back(Summarize(mode, value, results));
    out["levels"].push_back(ToJson(levels.back(), results));
    std::fprintf(stderr, "%s %g: %lld ok, %lld errors, %.1f output tok/s\n", mode.c_str(), value,
                 static_cast<long long>(levels.back().ok),
                 static_cast<long long>(levels.back().errors), levels.back().output_throughput);
  };
  for (int c : a.concurrency) {
    std::fprintf(stderr, "concurrency %d: %zu requests\n", c, workload->size());
    level("concurrency", c, RunClosedLoop(*factory, c, *workload, limits));
  }
  for (double rate : a.rates) {
    std::fprintf(stderr, "rate %g req/s: %zu requests\n", rate, workload->size());
    level("rate", rate, RunOpenLoop(*factory, rate, static_cast<uint64_t>(a.seed), *workload, limits));
  }
  std::fputs(Table(levels).c_str(), stdout);
  if (!a.json_path.empty()) {
    std::ofstream f(a.json_path);
    f << out.dump(1) << "\n";
    if (!f) return Fail(absl::UnavailableError("cannot write " + a.json_path));
  }
  int64_t errors = 0;
  for (const LevelSummary& l : levels) errors += l.errors;
  return errors > 0 ? 2 : 0;
}

}  // namespace
}  // namespace qsl::loadtest

int main(int argc, char** argv) {
  qsl::loadtest::Args a;
  CLI::App app{"qsl-loadtest: load an OpenAI-compatible or qsl gRPC server and report latency "
               "percentiles and throughput (exit 2 when any request failed)",
               "qsl-loadtest"};
  app.add_option("--url", a.target.url, "OpenAI-compatible server, http://HOST:PORT");
  app.add_option("--grpc", a.target.grpc, "qsl gRPC server, HOST:PORT (instead of --url)");
  app.add_option("--model", a.target.model, "model name to send");
  app.add_option("--api-key", a.target.api_key, "bearer token")->envname("QSL_API_KEY");
  app.add_option("--prompts", a.workload.prompts_file,
                 "prompt file: one prompt per line, or JSONL with \"prompt\"")
      ->required()->check(CLI::ExistingFile);
  app.add_option("--prompt-tokens", a.workload.prompt_tokens,
                 "cut prompts of N, uniform:MIN:MAX or normal:MEAN:STD tokens from the file's "
                 "text (needs --tokenizer)");
  app.add_option("--tokenizer", a.workload.tokenizer, "tokenizer.model for --prompt-tokens");
  app.add_option("--output-tokens", a.workload.output_tokens,
                 "max_tokens per request: N, uniform:MIN:MAX or normal:MEAN:STD")
      ->capture_default_str();
  app.add_option("--concurrency", a.concurrency, "closed-loop streams, e.g. 1,4,16,32")
      ->delimiter(',');
  app.add_option("--rate", a.rates, "open-loop Poisson rates in requests/s, e.g. 1,2,4")
      ->delimiter(',');
  app.add_option("--requests", a.requests, "requests per level")->capture_default_str();
  app.add_option("--warmup", a.warmup, "unmeasured requests before the first level")
      ->capture_default_str();
  app.add_option("--duration", a.duration_s, "stop issuing a level's requests after S seconds")
      ->capture_default_str();
  app.add_option("--max-inflight", a.max_inflight, "open loop: most requests in flight")
      ->capture_default_str();
  app.add_option("--temperature", a.target.temperature)->capture_default_str();
  app.add_option("--seed", a.seed, "workload seed; also sent as the request seed")
      ->each([&](const std::string&) { a.seed_set = true; });
  app.add_flag("--no-ignore-eos", a.no_ignore_eos,
               "let generation stop at EOS (default: exactly max_tokens)");
  app.add_option("--timeout", a.timeout_s, "per-request timeout, seconds")->capture_default_str();
  app.add_option("--json", a.json_path, "write the summary and per-request records here");
  app.add_option("--label", a.label, "name of this run in the JSON (for plots)");
  CLI11_PARSE(app, argc, argv);
  return qsl::loadtest::Run(a);
}
