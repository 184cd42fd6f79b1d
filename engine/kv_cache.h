// KV storage and the attention that reads it. The forward pass writes each new token's K/V rows
// and asks the cache to attend; a cache implementation owns both its storage format (fp32 rows
// here, paged fp16/int8 blocks in the engine's PagedKvCache) and the attention over it.
#pragma once

#include <cstdint>
#include <vector>

#include "format/model_config.h"

namespace qsl {

// `count` consecutive new tokens of sequence `seq`, at positions [pos, pos + count).
struct SeqChunk {
  int32_t seq = 0;
  int32_t pos = 0;
  int32_t count = 0;
  bool all_logits = false;  // logits for every token of the chunk, else only the last
};

class KvCache {
 public:
  virtual ~KvCache() = default;
  // Stores K and V ([count, kv_dim] each, contiguous) for positions [pos, pos + count) of `seq`.
  virtual void Store(int32_t layer, int32_t seq, int32_t pos, int32_t count, const float* k,
                     const float* v) = 0;
  // Store for every chunk of a step: k and v ([tokens, kv_dim]) hold the chunks' rows one after
  // another. By default chunk by chunk, on the calling thread.
  virtual void StoreChunks(int32_t layer, const std::vector<SeqChunk>& chunks, int64_t kv_dim,
                           const float* k, const float* v);
  // Causal attention for every chunk of a step: the queries at positions [pos, pos + count) of
  // each chunk's sequence over that sequence's cached keys (each query sees positions <= its
  // own, within the sliding window if any). q and out ([tokens, q_dim]) hold the chunks' rows
  // one after another.
  virtual void Attend(int32_t layer, const std::vector<SeqChunk>& chunks, const float* q,
                      float* out) = 0;
};

// The head geometry attention needs.
struct AttentionShape {
  int32_t num_heads = 0, num_kv_heads = 0, head_dim = 0;
  int32_t sliding_window = 0;  // 0 = full
  float scale = 0.0f;          // 1 / sqrt(head_dim)
  static AttentionShape From(const ModelConfig& c);
  int32_t q_dim() const { return num_heads * head_dim; }
  int32_t kv_dim() const { return num_kv_heads * head_dim; }
};

// Dense causal attention over contiguous fp32 K/V rows (row stride kv_dim), through sgemm:
// the reference path's kernel, used by ContiguousKvCache.
void AttendDense(const AttentionShape& s, int32_t pos, int32_t count, const float* q,
                 const float* k_rows, const float* v_rows, float* out, std::vector<float>& scratch);

// fp32 rows per sequence, allocated for `max_len` positions: the simple cache of the reference
// path (qsl eval, tests, calibration).
class ContiguousKvCache final : public KvCache {
 public:
  ContiguousKvCache(const ModelConfig& config, int32_t num_seqs, int32_t max_len);
  void Store(int32_t layer, int32_t seq, int32_t pos, int32_t count, const float* k,
             const float* v) override;
  void Attend(int32_t layer, const std::vector<SeqChunk>& chunks, const float* q,
              float* out) override;
  int32_t max_len() const { return max_len_; }

 private:
  float* Row(std::vector<float>& buf, int32_t layer, int32_t seq, int32_t pos);
  AttentionShape shape_;
  int32_t num_layers_, num_seqs_, max_len_;
  std::vector<float> k_, v_, scratch_;
};

}  // namespace qsl
