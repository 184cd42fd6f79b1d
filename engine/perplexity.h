// Perplexity with the protocol of data/README.md: the text's ids (no BOS) cut into consecutive
// windows, each scored with BOS prepended (BOS itself not scored); exp(total NLL / scored tokens).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/forward.h"
#include "engine/kv_cache.h"

namespace qsl {

struct PerplexityResult {
  double perplexity = 0.0;
  double total_nll = 0.0;
  int64_t tokens = 0;   // scored tokens
  int64_t windows = 0;
};

// `cache` must hold one sequence of window + 1 positions. `progress(done_tokens, running_ppl)`
// is called after each window. max_windows > 0 stops early (for quick checks).
absl::StatusOr<PerplexityResult> Perplexity(
    Transformer& model, KvCache& cache, const std::vector<int32_t>& ids, int32_t window,
    int32_t bos_id, const std::function<void(int64_t, double)>& progress = nullptr,
    int64_t max_windows = 0);

// -log softmax(logits)[target], in double.
double TokenNll(const float* logits, int64_t vocab, int32_t target);

}  // namespace qsl
