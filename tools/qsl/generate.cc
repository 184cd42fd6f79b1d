// `qsl generate`: stream a continuation of a prompt to stdout.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "base/status.h"
#include "engine/forward.h"
#include "spdlog/spdlog.h"
#include "tools/qsl/commands.h"

namespace qsl::cli {
namespace {

struct GenerateOptions {
  std::string model;
  std::string prompt;
  int32_t max_tokens = 128;
  float temperature = 0.8f;
  uint64_t seed = 0;
  bool seed_set = false;
};

int32_t Sample(const std::vector<float>& logits, float temperature, std::mt19937_64& rng) {
  if (temperature <= 0.0f) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  const float mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) p[i] = std::exp((logits[i] - mx) / temperature);
  std::discrete_distribution<int32_t> d(p.begin(), p.end());
  return d(rng);
}

absl::Status Run(const GenerateOptions& o) {
  using Clock = std::chrono::steady_clock;
  const auto t_load = Clock::now();
  QSL_ASSIGN_OR_RETURN(auto ck, HfCheckpoint::Open(o.model));
  QSL_ASSIGN_OR_RETURN(auto model, Model::FromCheckpoint(*ck));
  const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
  const ModelConfig& c = model->config();
  const Tokenizer& tok = model->tokenizer();
  const std::vector<int32_t> prompt = tok.Encode(o.prompt, true);
  const int64_t max_len = std::min<int64_t>(c.max_position_embeddings,
                                            static_cast<int64_t>(prompt.size()) + o.max_tokens);
  if (static_cast<int64_t>(prompt.size()) >= c.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("prompt of ", prompt.size(),
                                                   " tokens does not fit the model's context of ",
                                                   c.max_position_embeddings));
  }
  CpuLinearBackend backend;
  Transformer tf(*model, backend);
  ContiguousKvCache cache(c, 1, static_cast<int32_t>(max_len));
  std::mt19937_64 rng(o.seed_set ? o.seed : std::random_device{}());

  std::vector<float> logits;
  ForwardBatch batch;
  batch.tokens = prompt;
  batch.chunks = {{0, 0, static_cast<int32_t>(prompt.size()), false}};
  const auto t0 = Clock::now();
  QSL_RETURN_IF_ERROR(tf.Forward(batch, cache, logits));
  const auto t1 = Clock::now();

  StreamDecoder detok(tok, prompt);
  std::fputs(o.prompt.c_str(), stdout);
  int32_t pos = static_cast<int32_t>(prompt.size());
  int32_t generated = 0;
  while (pos < max_len) {
    const int32_t next = Sample(logits, o.temperature, rng);
    ++generated;
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), next) != c.eos_token_ids.end()) {
      break;
    }
    std::fputs(detok.Add(next).c_str(), stdout);
    std::fflush(stdout);
    if (pos + 1 >= max_len) break;
    batch.tokens = {next};
    batch.chunks = {{0, pos++, 1, false}};
    QSL_RETURN_IF_ERROR(tf.Forward(batch, cache, logits));
  }
  std::fputs(detok.Flush().c_str(), stdout);
  std::fputs("\n", stdout);
  std::fflush(stdout);
  const auto t2 = Clock::now();
  const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
  const double decode_s = std::chrono::duration<double>(t2 - t1).count();
  spdlog::info("load {:.2f} s; prompt {} tokens, prefill {:.1f} ms ({:.0f} tok/s); generated {} "
               "tokens, decode {:.1f} tok/s",
               load_s, prompt.size(), prefill_s * 1e3, prompt.size() / prefill_s, generated,
               generated > 1 ? (generated - 1) / decode_s : 0.0);
  return absl::OkStatus();
}

}  // namespace

void AddGenerateCommand(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Stream a continuation of a prompt to stdout");
  cmd->add_option("--model", o->model, "Hugging Face checkpoint directory")->required();
  cmd->add_option("--prompt", o->prompt, "Prompt text")->required();
  cmd->add_option("--max-tokens", o->max_tokens, "Tokens to generate at most")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--temperature", o->temperature, "Sampling temperature; 0 = greedy")
      ->check(CLI::Range(0.0f, 2.0f));
  cmd->add_option("--seed", o->seed, "Random seed (default: random)")
      ->each([o](const std::string&) { o->seed_set = true; });
  cmd->callback([o] { ExitOnError("generate", Run(*o)); });
}

}  // namespace qsl::cli
