// The attention kernel over a paged KV cache: one sequence's queries against its keys, read
// block by block through its block table (no gather of the sequence into contiguous rows).
// Scalar-baseline, AVX2 and AVX-512 builds of one source, following the integer kernels' ISA
// path; every build gives the same bits (paged_attention_impl.h says why).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/kv_cache.h"

namespace qsl {

enum class KvDtype : uint8_t { kF16, kInt8, kF32 };

// One layer of one sequence in the block pool.
struct PagedKv {
  const uint8_t* pool = nullptr;
  int64_t block_bytes = 0;
  int32_t block_size = 0;
  KvDtype dtype = KvDtype::kF16;
  int64_t k_offset = 0, v_offset = 0;              // the layer's K and V planes inside a block
  int64_t k_scale_offset = 0, v_scale_offset = 0;  // int8: per-(token, head) fp32 scales
  const int32_t* table = nullptr;                  // block ids, position p in table[p / block_size]
};

// Per-thread working memory, grown on first use.
struct AttentionScratch {
  std::vector<float> kt, v;  // one block of one KV head: K transposed [hd][lanes], V [slot][hd]
  std::vector<float> block;  // a few heads' scores over one block
  std::vector<float> scores; // score rows of a tile of queries, each over its whole context
  std::vector<float> sum;    // softmax sums per (query, head) of the tile
  std::vector<float> lanes;  // per-lane maxima / sums of one query's rows
  std::vector<float*> rows;  // one query's score rows
};

// Causal attention of the queries at positions [pos, pos + count) (q: [count, q_dim]) over
// keys [0 or window start, own position], for KV heads [kv_head_begin, kv_head_end) and the
// query heads that share them; writes those heads' slices of out [count, q_dim].
using PagedAttentionFn = void (*)(const AttentionShape& s, const PagedKv& kv, int32_t pos,
                                  int32_t count, const float* q, float* out,
                                  int32_t kv_head_begin, int32_t kv_head_end,
                                  AttentionScratch& scratch);

struct PagedAttentionIsa {
  const char* name;  // "generic", "avx2", "avx512"
  PagedAttentionFn fn;
};
// The build for each ISA path this CPU runs (accel/isa.h), generic first.
std::vector<PagedAttentionIsa> PagedAttentionIsas();
// The build of the active ISA path.
PagedAttentionIsa ActivePagedAttention();

}  // namespace qsl
