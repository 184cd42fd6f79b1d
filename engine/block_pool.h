// Bookkeeping of the paged KV cache: one pool of fixed-size blocks with reference counts, and the
// prefix cache that lets a new sequence reuse full blocks another sequence already computed.
// Storage lives in PagedKvCache; this class only decides which block ids are in use.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "absl/types/span.h"

namespace qsl {

// A full block's identity in the prefix cache: its parent block (the block before it in the
// sequence, -1 for the first) and the tokens it holds. The parent is named by block id and that
// block's allocation generation, so the key is exact (no hash collisions) and goes stale by itself
// when the parent is reused for other tokens.
struct PrefixKey {
  int32_t parent = -1;
  uint32_t parent_generation = 0;
  std::vector<int32_t> tokens;

  bool operator==(const PrefixKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const PrefixKey& k) {
    return H::combine(std::move(h), k.parent, k.parent_generation, k.tokens);
  }
};

class BlockPool {
 public:
  BlockPool(int32_t num_blocks, int32_t block_size);

  int32_t num_blocks() const { return static_cast<int32_t>(refs_.size()); }
  int32_t block_size() const { return block_size_; }
  // Blocks that Allocate can hand out now: never used, released, or cached with no reference.
  int32_t num_free() const { return static_cast<int32_t>(free_.size()) + num_evictable_; }
  int32_t num_used() const { return num_blocks() - num_free(); }
  int32_t refcount(int32_t block) const { return refs_[block]; }
  int32_t num_cached() const { return static_cast<int32_t>(cache_.size()); }

  // A block with reference count 1, or -1 when none is free. Takes a never-cached block first,
  // else evicts the least recently released cached block.
  int32_t Allocate();
  // Another holder of `block` (a forked sequence).
  void Ref(int32_t block);
  // Drops one reference; at zero the block is free again (a cached block stays findable by
  // Lookup until Allocate reuses it).
  void Release(int32_t block);

  // The cached full block that follows `parent` (-1: the first block) and holds `tokens`, with a
  // reference taken for the caller; -1 when there is none.
  int32_t Lookup(int32_t parent, absl::Span<const int32_t> tokens);
  // Makes a computed full block findable. A block already cached under another key, or a key that
  // already has a block (two sequences computed the same prefix at once), is left as it is.
  void Register(int32_t parent, absl::Span<const int32_t> tokens, int32_t block);

 private:
  PrefixKey Key(int32_t parent, absl::Span<const int32_t> tokens) const;
  void Unlink(int32_t block);      // out of the evictable list
  void PushBack(int32_t block);    // newest end of the evictable list

  int32_t block_size_;
  std::vector<int32_t> refs_;
  std::vector<uint32_t> generation_;  // bumped each time a block is handed out
  std::vector<int32_t> free_;         // unreferenced and not cached; a stack
  // Unreferenced cached blocks in release order (a doubly linked list over block ids), evicted
  // from the front: least recently used first.
  std::vector<int32_t> prev_, next_;
  int32_t head_ = -1, tail_ = -1, num_evictable_ = 0;
  // The key a cached block is registered under (node_hash_map keeps the key's address stable).
  std::vector<const PrefixKey*> key_of_;
  absl::node_hash_map<PrefixKey, int32_t> cache_;
};

}  // namespace qsl
