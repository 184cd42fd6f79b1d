// `qsl eval`: perplexity of a text file (protocol of data/README.md), with a progress bar. The
// KV cache is the reference path's fp32 rows, or the engine's paged cache in a chosen dtype.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_format.h"
#include "base/progress.h"
#include "base/status.h"
#include "engine/paged_kv_cache.h"
#include "engine/perplexity.h"
#include "tools/qsl/commands.h"

namespace qsl::cli {
namespace {

struct EvalOptions {
  std::string model;
  std::string text;
  int32_t window = 512;
  int64_t max_windows = 0;
  std::string kv_dtype;  // empty: ContiguousKvCache (fp32 rows)
  bool mmap = false;     // map the packed file in place instead of reading it into memory
};

// One sequence of `len` positions in the engine's paged cache; the table outlives the cache's use.
absl::StatusOr<std::unique_ptr<KvCache>> PagedCache(const ModelConfig& c, absl::string_view dtype,
                                                    int32_t len, std::vector<int32_t>& table) {
  QSL_ASSIGN_OR_RETURN(const KvDtype d, ParseKvDtype(dtype));
  constexpr int32_t kBlock = 16;
  table.resize(static_cast<size_t>((len + kBlock - 1) / kBlock));
  for (size_t b = 0; b < table.size(); ++b) table[b] = static_cast<int32_t>(b);
  QSL_ASSIGN_OR_RETURN(auto cache,
                       PagedKvCache::Create(c, d, kBlock, static_cast<int32_t>(table.size())));
  cache->Bind({&table});
  return std::unique_ptr<KvCache>(std::move(cache));
}

absl::Status Run(const EvalOptions& o) {
  std::ifstream in(o.text, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(o.text, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  QSL_ASSIGN_OR_RETURN(auto model, Model::Load(o.model, o.mmap ? MappedFile::Backing::kMapped
                                                              : MappedFile::Backing::kInMemory));
  const std::vector<int32_t> ids = model->tokenizer().Encode(ss.str(), false);
  if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat(o.text, ": no tokens to score"));
  CpuLinearBackend backend;
  Transformer tf(*model, backend);
  std::vector<int32_t> table;
  std::unique_ptr<KvCache> cache;
  if (o.kv_dtype.empty()) {
    cache = std::make_unique<ContiguousKvCache>(model->config(), 1, o.window + 1);
  } else {
    QSL_ASSIGN_OR_RETURN(cache, PagedCache(model->config(), o.kv_dtype, o.window + 1, table));
  }
  ProgressBar bar("eval", static_cast<int64_t>(ids.size()), "tok");
  QSL_ASSIGN_OR_RETURN(
      PerplexityResult r,
      Perplexity(tf, *cache, ids, o.window, model->config().bos_token_id,
                 [&bar](int64_t done, double ppl) {
                   bar.SetSuffix(absl::StrFormat("ppl %.4f", ppl));
                   bar.Set(done);
                 },
                 o.max_windows));
  bar.Finish();
  std::printf("perplexity %.4f over %lld tokens (%lld windows of %d), KV %s\n", r.perplexity,
              static_cast<long long>(r.tokens), static_cast<long long>(r.windows), o.window,
              o.kv_dtype.empty() ? "fp32 rows" : (o.kv_dtype + " paged").c_str());
  return absl::OkStatus();
}

}  // namespace

void AddEvalCommand(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Perplexity of a text file: windows of --window tokens, each scored after BOS");
  cmd->add_option("--model", o->model, "Hugging Face checkpoint directory or packed model file")->required();
  cmd->add_option("--text", o->text, "UTF-8 text file to score")->required();
  cmd->add_option("--window", o->window, "Tokens per window")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--max-windows", o->max_windows, "Stop after this many windows (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--kv-dtype", o->kv_dtype,
                  "Score through the engine's paged KV cache in this dtype: fp16, int8 or fp32 "
                  "(default: the reference path's fp32 rows)")
      ->check(CLI::IsMember({"fp16", "int8", "fp32"}));
  cmd->add_flag("--mmap", o->mmap,
                "Map the packed file in place instead of reading it into huge-page memory");
  cmd->callback([o] { ExitOnError("eval", Run(*o)); });
}

}  // namespace qsl::cli
