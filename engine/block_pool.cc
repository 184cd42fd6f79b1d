#include "engine/block_pool.h"

#include <cassert>

namespace qsl {

BlockPool::BlockPool(int32_t num_blocks, int32_t block_size)
    : block_size_(block_size), refs_(num_blocks, 0), generation_(num_blocks, 0),
      prev_(num_blocks, -1), next_(num_blocks, -1), key_of_(num_blocks, nullptr) {
  free_.reserve(num_blocks);
  // Stack order: block 0 comes out first, which keeps early allocations compact in memory.
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

int32_t BlockPool::Allocate() {
  int32_t b = -1;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (head_ >= 0) {
    b = head_;
    Unlink(b);
    cache_.erase(*key_of_[b]);
    key_of_[b] = nullptr;
  } else {
    return -1;
  }
  ++generation_[b];  // children registered under the old contents can no longer match
  refs_[b] = 1;
  return b;
}

void BlockPool::Ref(int32_t block) {
  assert(refs_[block] > 0);
  ++refs_[block];
}

void BlockPool::Release(int32_t block) {
  assert(refs_[block] > 0);
  if (--refs_[block] > 0) return;
  if (key_of_[block] != nullptr) {
    PushBack(block);
  } else {
    free_.push_back(block);
  }
}

PrefixKey BlockPool::Key(int32_t parent, absl::Span<const int32_t> tokens) const {
  return PrefixKey{parent, parent >= 0 ? generation_[parent] : 0u,
                   std::vector<int32_t>(tokens.begin(), tokens.end())};
}

int32_t BlockPool::Lookup(int32_t parent, absl::Span<const int32_t> tokens) {
  const auto it = cache_.find(Key(parent, tokens));
  if (it == cache_.end()) return -1;
  const int32_t b = it->second;
  if (refs_[b] == 0) Unlink(b);
  ++refs_[b];
  return b;
}

void BlockPool::Register(int32_t parent, absl::Span<const int32_t> tokens, int32_t block) {
  assert(static_cast<int32_t>(tokens.size()) == block_size_ && refs_[block] > 0);
  if (key_of_[block] != nullptr) return;
  const auto [it, inserted] = cache_.try_emplace(Key(parent, tokens), block);
  if (inserted) key_of_[block] = &it->first;
}

void BlockPool::Unlink(int32_t b) {
  if (prev_[b] >= 0) next_[prev_[b]] = next_[b]; else head_ = next_[b];
  if (next_[b] >= 0) prev_[next_[b]] = prev_[b]; else tail_ = prev_[b];
  prev_[b] = next_[b] = -1;
  --num_evictable_;
}

void BlockPool::PushBack(int32_t b) {
  prev_[b] = tail_;
  next_[b] = -1;
  if (tail_ >= 0) next_[tail_] = b; else head_ = b;
  tail_ = b;
  ++num_evictable_;
}

}  // namespace qsl
