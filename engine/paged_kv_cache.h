// The storage of the paged KV cache and the attention that reads it through block tables.
// One preallocated pool of blocks; a block holds `block_size` consecutive positions of one
// sequence for every layer, K and V, in fp16 (default), int8 per head and token, or fp32.
// Inside a block, layer l's K plane is [kv_head][head_dim][slot] (transposed, for the kernel)
// and its V plane [kv_head][slot][head_dim]; int8 scales follow all planes,
// [layer][K|V][slot][kv_head].
// Which block belongs to whom is BlockPool's business; the engine binds each step's block tables.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/kv_cache.h"
#include "engine/paged_attention.h"

namespace qsl {

const char* KvDtypeName(KvDtype d);  // "fp16", "int8", "fp32"
absl::StatusOr<KvDtype> ParseKvDtype(absl::string_view name);

class PagedKvCache final : public KvCache {
 public:
  // Bytes of one block: every layer's K and V rows, plus int8's per-(token, head) fp32 scales.
  static int64_t BlockBytes(const ModelConfig& c, KvDtype dtype, int32_t block_size);

  // Maps the pool (anonymous memory: zero until written, committed page by page as blocks are
  // first used). Errors: a pool the OS will not map.
  static absl::StatusOr<std::unique_ptr<PagedKvCache>> Create(const ModelConfig& c, KvDtype dtype,
                                                              int32_t block_size,
                                                              int32_t num_blocks);
  ~PagedKvCache() override;

  KvDtype dtype() const { return dtype_; }
  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return num_blocks_; }
  int64_t block_bytes() const { return block_bytes_; }
  int64_t bytes_per_token() const { return block_bytes_ / block_size_; }

  // The block tables of the sequences of the next forward, indexed by SeqChunk::seq. Each table
  // must cover every position the step stores; the tables must outlive the forward.
  void Bind(std::vector<const std::vector<int32_t>*> tables) { tables_ = std::move(tables); }
  // Copy-on-write of a shared block (all layers).
  void CopyBlock(int32_t src, int32_t dst);

  // K/V rows are rounded to the cache dtype on the way in; attention reads them back from the
  // cache, so a position's K/V bits never depend on how it was batched or chunked.
  void Store(int32_t layer, int32_t seq, int32_t pos, int32_t count, const float* k,
             const float* v) override;
  // Chunks spread over the thread pool (each writes its own slots; the fp16 / int8 conversion
  // of 32 decoding sequences' K and V was serial work the other thread waited through).
  void StoreChunks(int32_t layer, const std::vector<SeqChunk>& chunks, int64_t kv_dim,
                   const float* k, const float* v) override;
  // Each query's result is computed by one fixed sequence of operations that depends only on
  // its position and the cached K/V (paged_attention_impl.h): batch composition, prefill
  // chunking, the thread split (chunks x KV heads over the pool) and the CPU's ISA cannot
  // change a bit.
  void Attend(int32_t layer, const std::vector<SeqChunk>& chunks, const float* q,
              float* out) override;
  // One chunk with a chosen kernel build, on the calling thread (tests compare the builds).
  void AttendChunk(PagedAttentionFn kernel, int32_t layer, int32_t seq, int32_t pos,
                   int32_t count, const float* q, float* out);

 private:
  PagedKvCache(const ModelConfig& c, KvDtype dtype, int32_t block_size, int32_t num_blocks,
               uint8_t* pool, size_t pool_bytes);
  uint8_t* BlockData(int32_t block) const { return pool_ + block * block_bytes_; }
  void StoreRow(uint8_t* plane, float* scales, int32_t slot, bool transposed,
                const float* row) const;
  int64_t PlaneOffset(int32_t layer, int32_t kv) const;
  // int8's per-(token, head) scales of one plane, from the block start; 0 for float dtypes.
  int64_t ScaleOffset(int32_t layer, int32_t kv) const;
  PagedKv View(int32_t layer, int32_t seq) const;

  AttentionShape shape_;
  KvDtype dtype_;
  int32_t num_layers_, block_size_, num_blocks_;
  int64_t elem_bytes_, block_bytes_;
  uint8_t* pool_;
  size_t pool_bytes_;
  std::vector<const std::vector<int32_t>*> tables_;
};

}  // namespace qsl
