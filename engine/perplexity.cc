#include "engine/perplexity.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace qsl {

double TokenNll(const float* logits, int64_t vocab, int32_t target) {
  double mx = logits[0];
  for (int64_t i = 1; i < vocab; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  return mx + std::log(sum) - static_cast<double>(logits[target]);
}

absl::StatusOr<PerplexityResult> Perplexity(Transformer& model, KvCache& cache,
                                            const std::vector<int32_t>& ids, int32_t window,
                                            int32_t bos_id,
                                            const std::function<void(int64_t, double)>& progress,
                                            int64_t max_windows) {
  if (window < 1) return absl::InvalidArgumentError("window must be >= 1");
  if (ids.empty()) return absl::InvalidArgumentError("no tokens to score");
  const int64_t vocab = model.model().config().vocab_size;
  PerplexityResult r;
  std::vector<float> logits;
  for (size_t start = 0; start < ids.size(); start += static_cast<size_t>(window)) {
    if (max_windows > 0 && r.windows >= max_windows) break;
    const size_t end = std::min(ids.size(), start + static_cast<size_t>(window));
    ForwardBatch batch;
    batch.tokens.push_back(bos_id);
    batch.tokens.insert(batch.tokens.end(), ids.begin() + static_cast<std::ptrdiff_t>(start),
                        ids.begin() + static_cast<std::ptrdiff_t>(end));
    const auto n = static_cast<int32_t>(batch.tokens.size());
    batch.chunks.push_back({0, 0, n, /*all_logits=*/true});
    QSL_RETURN_IF_ERROR(model.Forward(batch, cache, logits));
    // Row i predicts token i + 1; the last row predicts nothing.
    for (int32_t i = 0; i + 1 < n; ++i) {
      r.total_nll += TokenNll(logits.data() + static_cast<int64_t>(i) * vocab, vocab,
                              batch.tokens[i + 1]);
    }
    r.tokens += n - 1;
    ++r.windows;
    r.perplexity = std::exp(r.total_nll / static_cast<double>(r.tokens));
    if (progress) progress(static_cast<int64_t>(end), r.perplexity);
  }
  return r;
}

}  // namespace qsl
