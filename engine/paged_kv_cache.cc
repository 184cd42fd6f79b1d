#include "engine/paged_kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "base/half.h"

namespace qsl {

const char* KvDtypeName(KvDtype d) {
  switch (d) {
    case KvDtype::kF16: return "fp16";
    case KvDtype::kInt8: return "int8";
    case KvDtype::kF32: return "fp32";
  }
  return "?";
}

absl::StatusOr<KvDtype> ParseKvDtype(absl::string_view name) {
  for (KvDtype d : {KvDtype::kF16, KvDtype::kInt8, KvDtype::kF32}) {
    if (name == KvDtypeName(d)) return d;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("kv dtype '", name, "': expected fp16, int8 or fp32"));
}

namespace {

int64_t ElemBytes(KvDtype d) {
  switch (d) {
    case KvDtype::kF16: return 2;
    case KvDtype::kInt8: return 1;
    case KvDtype::kF32: return 4;
  }
  return 0;
}

// fp16 -> fp32 is exact, so a table gives the same bits as base/half.h at a load per element.
const float* F16Table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = F16ToF32(static_cast<uint16_t>(h));
    return t;
  }();
  return table.data();
}

// a . b in 8 independent lanes summed in a fixed tree: the same bits whether or not the
// compiler vectorizes the lanes (each lane is its own sequential sum; no FMA is allowed).
float Dot(const float* a, const float* b, int32_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int32_t l = 0; l < 8; ++l) s[l] += a[i + l] * b[i + l];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  return (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) + tail;
}

}  // namespace

int64_t PagedKvCache::BlockBytes(const ModelConfig& c, KvDtype dtype, int32_t block_size) {
  const int64_t rows = c.num_layers * 2 * block_size;
  const int64_t scales = dtype == KvDtype::kInt8 ? rows * c.num_kv_heads * 4 : 0;
  return rows * c.kv_dim() * ElemBytes(dtype) + scales;
}

PagedKvCache::PagedKvCache(const ModelConfig& c, KvDtype dtype, int32_t block_size,
                           int32_t num_blocks)
    : shape_(AttentionShape::From(c)), dtype_(dtype),
      num_layers_(static_cast<int32_t>(c.num_layers)), block_size_(block_size),
      num_blocks_(num_blocks), elem_bytes_(ElemBytes(dtype)),
      block_bytes_(BlockBytes(c, dtype, block_size)),
      // Left uninitialized: pages are touched as blocks are first written, and every position is
      // stored before any query reads it.
      pool_(static_cast<uint8_t*>(std::aligned_alloc(
                64, static_cast<size_t>((block_bytes_ * num_blocks + 63) / 64 * 64))),
            std::free) {
  kbuf_.resize(static_cast<size_t>(block_size) * shape_.head_dim);
  vbuf_.resize(kbuf_.size());
  scores_.resize(static_cast<size_t>(block_size));
}

int64_t PagedKvCache::PlaneOffset(int32_t layer, int32_t kv) const {
  return (static_cast<int64_t>(layer) * 2 + kv) * block_size_ * shape_.kv_dim() * elem_bytes_;
}

float* PagedKvCache::Scales(uint8_t* block, int32_t layer, int32_t kv) const {
  if (dtype_ != KvDtype::kInt8) return nullptr;
  const int64_t at = PlaneOffset(num_layers_, 0) +
                     (static_cast<int64_t>(layer) * 2 + kv) * block_size_ * shape_.num_kv_heads * 4;
  return reinterpret_cast<float*>(block + at);
}

void PagedKvCache::CopyBlock(int32_t src, int32_t dst) {
  std::memcpy(BlockData(dst), BlockData(src), static_cast<size_t>(block_bytes_));
}

void PagedKvCache::StoreRow(uint8_t* plane, float* scales, int32_t slot, const float* row) const {
  const int32_t kvd = shape_.kv_dim(), hd = shape_.head_dim;
  switch (dtype_) {
    case KvDtype::kF32:
      std::memcpy(plane + static_cast<int64_t>(slot) * kvd * 4, row, static_cast<size_t>(kvd) * 4);
      return;
    case KvDtype::kF16: {
      auto* dst = reinterpret_cast<uint16_t*>(plane) + static_cast<int64_t>(slot) * kvd;
      for (int32_t i = 0; i < kvd; ++i) dst[i] = F32ToF16(row[i]);
      return;
    }
    case KvDtype::kInt8: {
      // Per (token, head) symmetric, rounded like activations (docs/numeric-contract.md).
      auto* dst = reinterpret_cast<int8_t*>(plane) + static_cast<int64_t>(slot) * kvd;
      for (int32_t h = 0; h < shape_.num_kv_heads; ++h) {
        const float* x = row + h * hd;
        float amax = 0.0f;
        for (int32_t i = 0; i < hd; ++i) amax = std::max(amax, std::fabs(x[i]));
        const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        scales[slot * shape_.num_kv_heads + h] = amax / 127.0f;
        for (int32_t i = 0; i < hd; ++i) {
          dst[h * hd + i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f));
        }
      }
      return;
    }
  }
}

void PagedKvCache::LoadHead(const uint8_t* plane, const float* scales, int32_t head, int32_t first,
                            int32_t last, float* dst) const {
  const int32_t kvd = shape_.kv_dim(), hd = shape_.head_dim;
  for (int32_t slot = first; slot < last; ++slot) {
    const int64_t at = static_cast<int64_t>(slot) * kvd + head * hd;
    float* d = dst + static_cast<int64_t>(slot) * hd;
    switch (dtype_) {
      case KvDtype::kF32:
        std::memcpy(d, reinterpret_cast<const float*>(plane) + at, static_cast<size_t>(hd) * 4);
        break;
      case KvDtype::kF16: {
        const uint16_t* s = reinterpret_cast<const uint16_t*>(plane) + at;
        const float* table = F16Table();
        for (int32_t i = 0; i < hd; ++i) d[i] = table[s[i]];
        break;
      }
      case KvDtype::kInt8: {
        const int8_t* s = reinterpret_cast<const int8_t*>(plane) + at;
        const float scale = scales[slot * shape_.num_kv_heads + head];
        for (int32_t i = 0; i < hd; ++i) d[i] = static_cast<float>(s[i]) * scale;
        break;
      }
    }
  }
}

void PagedKvCache::Store(int32_t layer, int32_t seq, int32_t pos, int32_t count, const float* k,
                         const float* v) {
  const std::vector<int32_t>& table = *tables_[seq];
  const int32_t kvd = shape_.kv_dim();
  for (int32_t t = 0; t < count; ++t) {
    const int32_t p = pos + t;
    uint8_t* block = BlockData(table[p / block_size_]);
    for (int32_t kv = 0; kv < 2; ++kv) {
      StoreRow(block + PlaneOffset(layer, kv), Scales(block, layer, kv), p % block_size_, (kv == 0 ? k : v) + static_cast<int64_t>(t) * kvd);
    }
  }
}

void PagedKvCache::Attend(int32_t layer, int32_t seq, int32_t pos, int32_t count, const float* q,
                          float* out) {
  const std::vector<int32_t>& table = *tables_[seq];
  const AttentionShape& s = shape_;
  const int32_t hd = s.head_dim, qd = s.q_dim(), group = s.num_heads / s.num_kv_heads;
  const int32_t bs = block_size_, last = pos + count - 1;
  const auto first_key = [&](int32_t p) {
    return s.sliding_window > 0 ? std::max(0, p - s.sliding_window + 1) : 0;
  };
  const int32_t lo = first_key(pos);
  const size_t states = static_cast<size_t>(count) * s.num_heads;
  max_.assign(states, -std::numeric_limits<float>::infinity());
  sum_.assign(states, 0.0f);
  std::fill(out, out + static_cast<int64_t>(count) * qd, 0.0f);

  for (int32_t g = 0; g < s.num_kv_heads; ++g) {
    for (int32_t b = lo / bs; b <= last / bs; ++b) {
      const int32_t j0 = b * bs;
      const int32_t jbegin = std::max(j0, lo) - j0, jend = std::min(j0 + bs, last + 1) - j0;
      uint8_t* block = BlockData(table[b]);
      for (int32_t kv = 0; kv < 2; ++kv) {
        LoadHead(block + PlaneOffset(layer, kv), Scales(block, layer, kv), g, jbegin, jend,
                 kv == 0 ? kbuf_.data() : vbuf_.data());
      }
      for (int32_t i = 0; i < count; ++i) {
        const int32_t p = pos + i;
        // Keys of this block that query p sees: causal, and inside its window.
        const int32_t klo = std::max(jbegin, first_key(p) - j0), khi = std::min(jend, p + 1 - j0);
        if (klo >= khi) continue;
        for (int32_t h = g * group; h < (g + 1) * group; ++h) {
          const float* qv = q + static_cast<int64_t>(i) * qd + h * hd;
          float* acc = out + static_cast<int64_t>(i) * qd + h * hd;
          float& m = max_[static_cast<size_t>(i) * s.num_heads + h];
          float& l = sum_[static_cast<size_t>(i) * s.num_heads + h];
          float block_max = -std::numeric_limits<float>::infinity();
          for (int32_t j = klo; j < khi; ++j) {
            scores_[j] = Dot(qv, kbuf_.data() + static_cast<int64_t>(j) * hd, hd) * s.scale;
            block_max = std::max(block_max, scores_[j]);
          }
          if (block_max > m) {  // rescale what was summed under the old max
            const float alpha = std::exp(m - block_max);
            l *= alpha;
            for (int32_t d = 0; d < hd; ++d) acc[d] *= alpha;
            m = block_max;
          }
          for (int32_t j = klo; j < khi; ++j) {
            const float e = std::exp(scores_[j] - m);
            l += e;
            const float* vr = vbuf_.data() + static_cast<int64_t>(j) * hd;
            for (int32_t d = 0; d < hd; ++d) acc[d] += e * vr[d];
          }
        }
      }
    }
  }
  for (int32_t i = 0; i < count; ++i) {
    for (int32_t h = 0; h < s.num_heads; ++h) {
      const float l = sum_[static_cast<size_t>(i) * s.num_heads + h];
      float* acc = out + static_cast<int64_t>(i) * qd + h * hd;
      for (int32_t d = 0; d < hd; ++d) acc[d] /= l;
    }
  }
}

}  // namespace qsl
