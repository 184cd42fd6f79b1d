// `qsl eval`: perplexity of a text file (protocol of data/README.md), with a progress bar.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "base/progress.h"
#include "base/status.h"
#include "engine/perplexity.h"
#include "tools/qsl/commands.h"

namespace qsl::cli {
namespace {

struct EvalOptions {
  std::string model;
  std::string text;
  int32_t window = 512;
  int64_t max_windows = 0;
};

absl::Status Run(const EvalOptions& o) {
  std::ifstream in(o.text, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(o.text, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  QSL_ASSIGN_OR_RETURN(auto ck, HfCheckpoint::Open(o.model));
  QSL_ASSIGN_OR_RETURN(auto model, Model::FromCheckpoint(*ck));
  const std::vector<int32_t> ids = model->tokenizer().Encode(ss.str(), false);
  if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat(o.text, ": no tokens to score"));
  CpuLinearBackend backend;
  Transformer tf(*model, backend);
  ContiguousKvCache cache(model->config(), 1, o.window + 1);
  ProgressBar bar("eval", static_cast<int64_t>(ids.size()), "tok");
  QSL_ASSIGN_OR_RETURN(
      PerplexityResult r,
      Perplexity(tf, cache, ids, o.window, model->config().bos_token_id,
                 [&bar](int64_t done, double ppl) {
                   bar.SetSuffix(absl::StrFormat("ppl %.4f", ppl));
                   bar.Set(done);
                 },
                 o.max_windows));
  bar.Finish();
  std::printf("perplexity %.4f over %lld tokens (%lld windows of %d)\n", r.perplexity,
              static_cast<long long>(r.tokens), static_cast<long long>(r.windows), o.window);
  return absl::OkStatus();
}

}  // namespace

void AddEvalCommand(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Perplexity of a text file: windows of --window tokens, each scored after BOS");
  cmd->add_option("--model", o->model, "Hugging Face checkpoint directory")->required();
  cmd->add_option("--text", o->text, "UTF-8 text file to score")->required();
  cmd->add_option("--window", o->window, "Tokens per window")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--max-windows", o->max_windows, "Stop after this many windows (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([o] { ExitOnError("eval", Run(*o)); });
}

}  // namespace qsl::cli
