// `qsl generate`: stream a continuation of a prompt to stdout, through the same Engine the
// server uses (paged KV cache, scheduler, sampler), with the OpenAI sampling parameters as flags.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <iterator>

#include "base/status.h"
#include "engine/engine.h"
#include "format/tokenizer.h"
#include "spdlog/spdlog.h"
#include "tools/qsl/commands.h"

namespace qsl::cli {
namespace {

struct GenerateOptions {
  EngineOptions engine;
  std::string prompt;
  std::string prompt_file;
  SamplingParams params;
  uint64_t seed = 0;
  bool seed_set = false;
};

using Clock = std::chrono::steady_clock;

absl::Status ReadPromptFile(GenerateOptions& o) {
  if (o.prompt_file.empty()) return absl::OkStatus();
  std::ifstream in(o.prompt_file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(o.prompt_file, ": cannot open"));
  o.prompt.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return absl::OkStatus();
}

absl::Status Run(GenerateOptions o) {
  QSL_RETURN_IF_ERROR(ReadPromptFile(o));
  const auto t_load = Clock::now();
  QSL_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, CreateEngine(o.engine));
  const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();

  GenerationRequest req;
  req.prompt = engine->tokenizer().Encode(o.prompt, /*add_bos=*/true);
  req.params = o.params;
  if (o.seed_set) req.params.seed = o.seed;
  // Like the old single-sequence loop: stop at the model's context rather than refuse.
  const int32_t room = engine->max_model_len() - static_cast<int32_t>(req.prompt.size());
  if (room < 1) {
    return absl::InvalidArgumentError(absl::StrCat("prompt of ", req.prompt.size(),
                                                   " tokens does not fit the model's context of ",
                                                   engine->max_model_len()));
  }
  req.params.max_tokens = std::min(req.params.max_tokens, room);
  const size_t prompt_tokens = req.prompt.size();

  std::promise<absl::Status> done;
  Clock::time_point t_first, t_last;
  int32_t generated = 0;
  RequestCallbacks cb;
  cb.on_event = [&](const GenerationEvent& ev) {  // runs on the engine thread
    if (generated == 0 && ev.completion_tokens > 0) t_first = Clock::now();
    generated = ev.completion_tokens;
    t_last = Clock::now();
    std::fputs(ev.text.c_str(), stdout);
    std::fflush(stdout);
    if (ev.finish.has_value()) {
      done.set_value(*ev.finish == FinishReason::kError ? absl::InternalError(ev.error)
                                                        : absl::OkStatus());
    }
  };
  std::fputs(o.prompt.c_str(), stdout);
  const auto t0 = Clock::now();
  QSL_RETURN_IF_ERROR(engine->Submit(std::move(req), std::move(cb)).status());
  const absl::Status status = done.get_future().get();
  std::fputs("\n", stdout);
  std::fflush(stdout);
  QSL_RETURN_IF_ERROR(status);
  const double ttft = std::chrono::duration<double>(t_first - t0).count();
  const double decode_s = std::chrono::duration<double>(t_last - t_first).count();
  spdlog::info("load {:.2f} s; prompt {} tokens, first token after {:.1f} ms; generated {} "
               "tokens, decode {:.1f} tok/s",
               load_s, prompt_tokens, ttft * 1e3, generated,
               generated > 1 && decode_s > 0 ? (generated - 1) / decode_s : 0.0);
  return absl::OkStatus();
}

}  // namespace

void AddGenerateCommand(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  o->params.max_tokens = 128;
  o->params.temperature = 0.8f;
  o->engine.kv_cache_mb = 256;
  SamplingParams& p = o->params;
  EngineOptions& e = o->engine;
  CLI::App* cmd = app.add_subcommand("generate", "Stream a continuation of a prompt to stdout");
  cmd->add_option("--model", e.model, "Hugging Face checkpoint directory or packed model file")
      ->required();
  auto* prompt = cmd->add_option("--prompt", o->prompt, "Prompt text");
  auto* prompt_file =
      cmd->add_option("--prompt-file", o->prompt_file, "Read the prompt from a file (exact bytes)");
  prompt->excludes(prompt_file);
  cmd->add_option("--max-tokens", p.max_tokens, "Tokens to generate at most")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--temperature", p.temperature, "Sampling temperature; 0 = greedy")
      ->check(CLI::Range(0.0f, 2.0f));
  cmd->add_option("--seed", o->seed, "Random seed (default: random)")
      ->each([o](const std::string&) { o->seed_set = true; });
  cmd->add_option("--top-p", p.top_p, "Nucleus sampling: keep the smallest set reaching this mass")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--top-k", p.top_k, "Keep the k most likely tokens (-1 = off)");
  cmd->add_option("--min-p", p.min_p, "Drop tokens below this fraction of the best one's probability")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--presence-penalty", p.presence_penalty, "OpenAI presence penalty [-2, 2]");
  cmd->add_option("--frequency-penalty", p.frequency_penalty, "OpenAI frequency penalty [-2, 2]");
  cmd->add_option("--repetition-penalty", p.repetition_penalty,
                  "HF repetition penalty over prompt and output (1 = off)");
  cmd->add_option("--stop", p.stop, "Stop string (repeatable, up to 4); not printed");
  cmd->add_flag("--ignore-eos", p.ignore_eos, "Keep generating past the end-of-sequence token");
  cmd->add_option("--devices", e.devices, "Where linear layers run: cpu, sim:N, ...")
      ->capture_default_str();
  cmd->add_option("--mpe-config", e.mpe_config, "MpeConfig JSON for sim/xrt devices");
  cmd->add_option("--kv-cache-mb", e.kv_cache_mb, "KV cache budget in MiB")->capture_default_str();
  cmd->add_option("--kv-dtype", e.kv_dtype,
                  "KV cache dtype: fp16, int8 or fp32 (default: the packed file's, else fp16)");
  cmd->add_flag("--mmap", e.mmap_weights,
                "Map the packed file in place instead of reading it into huge-page memory");
  cmd->callback([o, cmd] {
    if (cmd->count("--prompt") + cmd->count("--prompt-file") == 0) {
      ExitOnError("generate", absl::InvalidArgumentError("--prompt or --prompt-file is required"));
    }
    // SamplingParams::Validate (in Submit) names any parameter out of range.
    ExitOnError("generate", Run(*o));
  });
}

}  // namespace qsl::cli
