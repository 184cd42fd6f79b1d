#include "engine/forward.h"

#include <chrono>
#include <cmath>
#include <cstring>

#include "base/status.h"
#include "engine/host_ops.h"

namespace qsl {

namespace {
using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
// Scratch buffers only grow: every step writes the part it uses, and resizing down then up (a
// prompt chunk, then decodes, then the next chunk) would zero the regrown tail each time.
void Grow(std::vector<float>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}
}  // namespace

int64_t ForwardBatch::logit_rows() const {
  int64_t n = 0;
  for (const SeqChunk& c : chunks) n += c.all_logits ? c.count : 1;
  return n;
}

Transformer::Transformer(const Model& model, LinearBackend& backend)
    : model_(model), backend_(backend),
      inv_freq_(model.config().rope.InverseFrequencies(model.config().head_dim)) {}

absl::Status Transformer::RunLinear(int32_t layer, LinearSlot slot, const Linear& lin,
                                    const float* x, int64_t m, float* y) {
  if (observer_) observer_(layer, slot, x, m, lin.k);
  const auto t0 = Clock::now();
  absl::Status status = backend_.Run(lin, x, m, y);
  times_.linear_s += Since(t0);
  return status;
}

absl::Status Transformer::RunLinears(int32_t layer, std::initializer_list<LinearSlot> slots,
                                     std::initializer_list<const Linear*> lins, const float* x,
                                     int64_t m, std::initializer_list<float*> ys) {
  if (observer_) {
    auto slot = slots.begin();
    for (const Linear* lin : lins) observer_(layer, *slot++, x, m, lin->k);
  }
  const auto t0 = Clock::now();
  absl::Status status =
      backend_.RunShared({lins.begin(), lins.size()}, x, m, {ys.begin(), ys.size()});
  times_.linear_s += Since(t0);
  return status;
}

absl::Status Transformer::RunSwiGlu(int32_t layer, const LayerWeights& w, const float* x,
                                    int64_t m) {
  if (observer_) {
    observer_(layer, LinearSlot::kGate, x, m, w.gate.k);
    observer_(layer, LinearSlot::kUp, x, m, w.up.k);
  }
  const auto t0 = Clock::now();
  absl::Status status = backend_.RunSwiGlu(w.gate, w.up, x, m, gate_.data(), up_.data());
  times_.linear_s += Since(t0);
  return status;
}

void Transformer::PrepareRope(const ForwardBatch& batch) {
  const size_t half = inv_freq_.size();
  Grow(rope_cos_, batch.tokens.size() * half);
  Grow(rope_sin_, batch.tokens.size() * half);
  size_t t = 0;
  for (const SeqChunk& c : batch.chunks) {
    for (int32_t i = 0; i < c.count; ++i, ++t) {
      const float p = static_cast<float>(c.pos + i);
      for (size_t j = 0; j < half; ++j) {
        const float angle = p * inv_freq_[j];  // fp32 product, as transformers computes it
        rope_cos_[t * half + j] = static_cast<float>(std::cos(static_cast<double>(angle)));
        rope_sin_[t * half + j] = static_cast<float>(std::sin(static_cast<double>(angle)));
      }
    }
  }
}

// Rotary embedding in transformers' rotate-half layout: pairs (j, j + d/2) of each head.
void Transformer::ApplyRope(int64_t tokens, float* x, int32_t heads) const {
  qsl::ApplyRope(x, tokens, heads, static_cast<int64_t>(inv_freq_.size()), rope_cos_.data(),
                 rope_sin_.data());
}

void Transformer::Embed(const std::vector<int32_t>& tokens, float* hidden) const {
  const int64_t h = model_.config().hidden_size;
  for (size_t t = 0; t < tokens.size(); ++t) {
    std::memcpy(hidden + t * h, model_.embed().data() + static_cast<int64_t>(tokens[t]) * h,
                static_cast<size_t>(h) * sizeof(float));
  }
}

absl::Status Transformer::Block(int32_t layer, const LayerWeights& w, const ForwardBatch& batch,
                                float* hidden, KvCache& cache) {
  PrepareRope(batch);
  return BlockImpl(layer, w, batch, hidden, cache, /*normed_in=*/false, /*next_norm=*/nullptr);
}

absl::Status Transformer::BlockImpl(int32_t layer, const LayerWeights& w,
                                    const ForwardBatch& batch, float* hidden, KvCache& cache,
                                    bool normed_in, const float* next_norm) {
  const ModelConfig& c = model_.config();
  const int64_t T = static_cast<int64_t>(batch.tokens.size());
  const int64_t H = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim();
  Grow(normed_, T * H);
  Grow(q_, T * Q);
  Grow(k_, T * KV);
  Grow(v_, T * KV);
  Grow(attn_, T * Q);
  Grow(proj_, T * H);
  Grow(gate_, T * I);
  Grow(up_, T * I);

  // Attention.
  if (!normed_in) RmsNorm(hidden, w.attn_norm.data(), T, H, c.rms_norm_eps, normed_.data());
  QSL_RETURN_IF_ERROR(RunLinears(layer, {LinearSlot::kQ, LinearSlot::kK, LinearSlot::kV},
                                 {&w.q, &w.k, &w.v}, normed_.data(), T,
                                 {q_.data(), k_.data(), v_.data()}));
  ApplyRope(T, q_.data(), static_cast<int32_t>(c.num_heads));
  ApplyRope(T, k_.data(), static_cast<int32_t>(c.num_kv_heads));
  const auto attention_start = Clock::now();
  cache.StoreChunks(layer, batch.chunks, KV, k_.data(), v_.data());
  cache.Attend(layer, batch.chunks, q_.data(), attn_.data());
  times_.attention_s += Since(attention_start);
  QSL_RETURN_IF_ERROR(RunLinear(layer, LinearSlot::kO, w.o, attn_.data(), T, proj_.data()));

  // SwiGLU MLP, its norm in the pass of the residual add.
  AddRmsNorm(hidden, proj_.data(), w.mlp_norm.data(), T, H, c.rms_norm_eps, normed_.data());
  QSL_RETURN_IF_ERROR(RunSwiGlu(layer, w, normed_.data(), T));
  QSL_RETURN_IF_ERROR(RunLinear(layer, LinearSlot::kDown, w.down, gate_.data(), T, proj_.data()));
  if (next_norm != nullptr) {
    AddRmsNorm(hidden, proj_.data(), next_norm, T, H, c.rms_norm_eps, normed_.data());
  } else {
    AddInPlace(hidden, proj_.data(), T * H);
  }
  return absl::OkStatus();
}

absl::Status Transformer::Head(const ForwardBatch& batch, const float* hidden,
                               std::vector<float>& logits) {
  const ModelConfig& c = model_.config();
  const int64_t H = c.hidden_size;
  const int64_t rows = batch.logit_rows();
  Grow(rows_, rows * H);
  // Gather the rows that need logits, then normalize only those.
  int64_t t0 = 0, r = 0;
  for (const SeqChunk& ch : batch.chunks) {
    const int64_t first = ch.all_logits ? 0 : ch.count - 1;
    for (int64_t i = first; i < ch.count; ++i, ++r) {
      std::memcpy(rows_.data() + r * H, hidden + (t0 + i) * H, static_cast<size_t>(H) * sizeof(float));
    }
    t0 += ch.count;
  }
  Grow(normed_, rows * H);
  RmsNorm(rows_.data(), model_.final_norm().data(), rows, H, c.rms_norm_eps, normed_.data());
  logits.resize(static_cast<size_t>(rows * c.vocab_size));
  return RunLinear(static_cast<int32_t>(c.num_layers), LinearSlot::kLmHead, model_.lm_head(),
                   normed_.data(), rows, logits.data());
}

absl::Status Transformer::Forward(const ForwardBatch& batch, KvCache& cache,
                                  std::vector<float>& logits) {
  const int64_t H = model_.config().hidden_size;
  Grow(hidden_, batch.tokens.size() * static_cast<size_t>(H));
  Embed(batch.tokens, hidden_.data());
  PrepareRope(batch);
  // Each block but the last leaves the next one's input norm in normed_.
  const std::vector<LayerWeights>& layers = model_.layers();
  for (size_t l = 0; l < layers.size(); ++l) {
    const float* next_norm = l + 1 < layers.size() ? layers[l + 1].attn_norm.data() : nullptr;
    QSL_RETURN_IF_ERROR(BlockImpl(static_cast<int32_t>(l), layers[l], batch, hidden_.data(),
                                  cache, /*normed_in=*/l > 0, next_norm));
  }
  return Head(batch, hidden_.data(), logits);
}

}  // namespace qsl
