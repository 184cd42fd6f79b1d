// The transformer forward pass over a flattened batch (vLLM-style): the new tokens of several
// sequences concatenated, each sequence's chunk at its own positions. Linear layers go to a
// LinearBackend (CPU kernels or the device pool); norms, RoPE and attention run on the host in
// fp32 (attention through the KvCache, which owns the K/V format).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <vector>

#include "absl/status/status.h"
#include "engine/kv_cache.h"
#include "engine/linear_backend.h"
#include "engine/model.h"

namespace qsl {

struct ForwardBatch {
  std::vector<int32_t> tokens;  // all chunks' tokens, chunk after chunk
  std::vector<SeqChunk> chunks;
  int64_t logit_rows() const;
};

// Sees the input of every linear layer (calibration statistics for quantization).
using LinearObserver =
    std::function<void(int32_t layer, LinearSlot slot, const float* x, int64_t m, int64_t k)>;


// Cumulative wall time of the parts of Forward that a profile separates.
struct ForwardTimes {
  double linear_s = 0.0;     // the LinearBackend calls
  double attention_s = 0.0;  // KvCache Store and Attend
};

class Transformer {
 public:
  Transformer(const Model& model, LinearBackend& backend);

  void set_observer(LinearObserver observer) { observer_ = std::move(observer); }

  // Runs the batch through every layer, storing K/V in `cache`, and writes logits
  // ([batch.logit_rows(), vocab], chunk order) to `logits`.
  absl::Status Forward(const ForwardBatch& batch, KvCache& cache, std::vector<float>& logits);

  // The pieces of Forward, for layer-by-layer calibration: embedding lookup into hidden
  // [tokens, hidden], one decoder block applied in place, and the head.
  void Embed(const std::vector<int32_t>& tokens, float* hidden) const;
  absl::Status Block(int32_t layer, const LayerWeights& w, const ForwardBatch& batch,
                     float* hidden, KvCache& cache);
  absl::Status Head(const ForwardBatch& batch, const float* hidden, std::vector<float>& logits);

  const Model& model() const { return model_; }
  const ForwardTimes& times() const { return times_; }

 private:
  absl::Status RunLinear(int32_t layer, LinearSlot slot, const Linear& lin, const float* x,
                         int64_t m, float* y);
  // Linears of one input in one backend call (LinearBackend::RunShared).
  absl::Status RunLinears(int32_t layer, std::initializer_list<LinearSlot> slots,
                          std::initializer_list<const Linear*> lins, const float* x, int64_t m,
                          std::initializer_list<float*> ys);
  // The MLP's gate/up projections and SwiGLU into gate_ (LinearBackend::RunSwiGlu; up_ is the
  // scratch). Counted as linear time: on the CPU backend the SwiGLU runs inside the linear's
  // work items.
  absl::Status RunSwiGlu(int32_t layer, const LayerWeights& w, const float* x, int64_t m);
  // cos/sin of every batch token's position, computed once per batch for all layers.
  void PrepareRope(const ForwardBatch& batch);
  void ApplyRope(int64_t tokens, float* x, int32_t heads) const;
  // One decoder block. `normed_in`: normed_ already holds the block's input RMSNorm of hidden
  // (the previous block computed it); `next_norm` (or nullptr): the next block's input norm
  // weights, whose RMSNorm of the block's output goes to normed_ in the pass of the last
  // residual add.
  absl::Status BlockImpl(int32_t layer, const LayerWeights& w, const ForwardBatch& batch,
                         float* hidden, KvCache& cache, bool normed_in, const float* next_norm);

  const Model& model_;
  LinearBackend& backend_;
  LinearObserver observer_;
  ForwardTimes times_;
  std::vector<float> inv_freq_;
  std::vector<float> rope_cos_, rope_sin_;  // [tokens, head_dim / 2]
  // Scratch, grown to the largest batch seen.
  std::vector<float> hidden_, normed_, q_, k_, v_, attn_, proj_, gate_, up_, rows_;
};

}  // namespace qsl
