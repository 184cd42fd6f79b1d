#include "engine/kv_cache.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace qsl {

AttentionShape AttentionShape::From(const ModelConfig& c) {
  AttentionShape s;
  s.num_heads = static_cast<int32_t>(c.num_heads);
  s.num_kv_heads = static_cast<int32_t>(c.num_kv_heads);
  s.head_dim = static_cast<int32_t>(c.head_dim);
  s.sliding_window = static_cast<int32_t>(c.sliding_window);
  s.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  return s;
}

void AttendDense(const AttentionShape& s, int32_t pos, int32_t count, const float* q,
                 const float* k_rows, const float* v_rows, float* out,
                 std::vector<float>& scratch) {
  const int32_t n_ctx = pos + count;  // keys 0 .. pos+count-1
  const int32_t group = s.num_heads / s.num_kv_heads;
  const int32_t hd = s.head_dim, qd = s.q_dim(), kvd = s.kv_dim();
  scratch.resize(static_cast<size_t>(count) * n_ctx);
  float* scores = scratch.data();
  for (int32_t h = 0; h < s.num_heads; ++h) {
    const int32_t kvh = h / group;
    // scores[i, j] = scale * q_i . k_j
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, count, n_ctx, hd, s.scale, q + h * hd, qd,
                k_rows + kvh * hd, kvd, 0.0f, scores, n_ctx);
    for (int32_t i = 0; i < count; ++i) {
      float* row = scores + static_cast<size_t>(i) * n_ctx;
      const int32_t last = pos + i;  // causal: keys <= the query's position
      const int32_t first = s.sliding_window > 0 ? std::max(0, last - s.sliding_window + 1) : 0;
      float mx = -std::numeric_limits<float>::infinity();
      for (int32_t j = first; j <= last; ++j) mx = std::max(mx, row[j]);
      float sum = 0.0f;
      for (int32_t j = 0; j < n_ctx; ++j) {
        const float e = (j >= first && j <= last) ? std::exp(row[j] - mx) : 0.0f;
        row[j] = e;
        sum += e;
      }
      const float inv = 1.0f / sum;
      for (int32_t j = first; j <= last; ++j) row[j] *= inv;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, count, hd, n_ctx, 1.0f, scores, n_ctx,
                v_rows + kvh * hd, kvd, 0.0f, out + h * hd, qd);
  }
}

ContiguousKvCache::ContiguousKvCache(const ModelConfig& config, int32_t num_seqs, int32_t max_len)
    : shape_(AttentionShape::From(config)), num_layers_(static_cast<int32_t>(config.num_layers)),
      num_seqs_(num_seqs), max_len_(max_len) {
  const size_t n = static_cast<size_t>(num_layers_) * num_seqs_ * max_len_ * shape_.kv_dim();
  k_.resize(n);
  v_.resize(n);
}

float* ContiguousKvCache::Row(std::vector<float>& buf, int32_t layer, int32_t seq, int32_t pos) {
  const size_t row = (static_cast<size_t>(layer) * num_seqs_ + seq) * max_len_ + pos;
  return buf.data() + row * shape_.kv_dim();
}

void KvCache::StoreChunks(int32_t layer, const std::vector<SeqChunk>& chunks, int64_t kv_dim,
                          const float* k, const float* v) {
  int64_t t0 = 0;
  for (const SeqChunk& c : chunks) {
    Store(layer, c.seq, c.pos, c.count, k + t0 * kv_dim, v + t0 * kv_dim);
    t0 += c.count;
  }
}

void ContiguousKvCache::Store(int32_t layer, int32_t seq, int32_t pos, int32_t count,
                              const float* k, const float* v) {
  const size_t bytes = static_cast<size_t>(count) * shape_.kv_dim() * sizeof(float);
  std::memcpy(Row(k_, layer, seq, pos), k, bytes);
  std::memcpy(Row(v_, layer, seq, pos), v, bytes);
}

void ContiguousKvCache::Attend(int32_t layer, const std::vector<SeqChunk>& chunks, const float* q,
                               float* out) {
  int64_t row = 0;
  for (const SeqChunk& c : chunks) {
    const int64_t at = row * shape_.q_dim();
    AttendDense(shape_, c.pos, c.count, q + at, Row(k_, layer, c.seq, 0), Row(v_, layer, c.seq, 0),
                out + at, scratch_);
    row += c.count;
  }
}

}  // namespace qsl
