#include "engine/paged_kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>

#include <sys/mman.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/half.h"
#include "base/thread_pool.h"

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

// The row of q / k / v where each chunk of a step starts (the chunks' rows follow each other).
std::vector<int64_t> FirstRows(const std::vector<SeqChunk>& chunks) {
  std::vector<int64_t> row(chunks.size());
  for (size_t c = 1; c < chunks.size(); ++c) row[c] = row[c - 1] + chunks[c - 1].count;
  return row;
}

}  // namespace

int64_t PagedKvCache::BlockBytes(const ModelConfig& c, KvDtype dtype, int32_t block_size) {
  const int64_t rows = c.num_layers * 2 * block_size;
  const int64_t scales = dtype == KvDtype::kInt8 ? rows * c.num_kv_heads * 4 : 0;
  return rows * c.kv_dim() * ElemBytes(dtype) + scales;
}

namespace {

// Bytes this process may still commit: /proc/meminfo's MemAvailable, capped by a cgroup v2
// memory limit (a Kubernetes pod's) minus what the cgroup already uses, less its page cache
// (reclaimable: the model file just read is charged there). -1 when unknown.
int64_t AvailableMemoryBytes() {
  int64_t avail = -1;
  if (std::ifstream meminfo("/proc/meminfo"); meminfo) {
    std::string key;
    int64_t kb = 0;
    std::string unit;
    while (meminfo >> key >> kb >> unit) {
      if (key == "MemAvailable:") {
        avail = kb * 1024;
        break;
      }
    }
  }
  std::ifstream max_file("/sys/fs/cgroup/memory.max"), cur_file("/sys/fs/cgroup/memory.current");
  std::string max_text;
  int64_t current = 0;
  if (max_file >> max_text && max_text != "max" && cur_file >> current) {
    int64_t limit = 0;
    if (absl::SimpleAtoi(max_text, &limit)) {
      std::ifstream stat("/sys/fs/cgroup/memory.stat");
      std::string key;
      int64_t value = 0, file = 0;
      while (stat >> key >> value) {
        if (key == "file") {
          file = value;
          break;
        }
      }
      const int64_t left = std::max<int64_t>(0, limit - (current - file));
      avail = avail < 0 ? left : std::min(avail, left);
    }
  }
  return avail;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PagedKvCache>> PagedKvCache::Create(const ModelConfig& c,
                                                                   KvDtype dtype,
                                                                   int32_t block_size,
                                                                   int32_t num_blocks) {
  const auto bytes = static_cast<size_t>(BlockBytes(c, dtype, block_size) * num_blocks);
  // The pool is committed below: ask for more than the machine (or the pod) has and the OOM
  // killer would answer instead of an error.
  if (const int64_t avail = AvailableMemoryBytes();
      avail >= 0 && static_cast<int64_t>(bytes) > avail) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "KV cache: ", bytes >> 20, " MiB (", num_blocks, " blocks) asked, but only ",
        avail >> 20, " MiB of memory is available; lower --kv-cache-mb"));
  }
  // Zero pages: a block's unwritten slots read as zeros, so the kernel may load whole blocks.
  void* pool = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pool == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrCat("KV cache: cannot map ", bytes, " bytes (",
                                                     num_blocks, " blocks): ", std::strerror(errno)));
  }
  // Huge pages where the kernel allows them (transparent_hugepage "madvise" or "always"): a
  // decode step reads a few KiB from each of thousands of blocks, and with 4 KiB pages nearly
  // every one is a TLB miss. Only advice: failing it costs speed, not correctness.
  ::madvise(pool, bytes, MADV_HUGEPAGE);
  // Commit every page now, as vLLM and llama.cpp allocate their KV caches up front: otherwise
  // each block's first write takes a page fault that zeroes a 2 MiB page inside a forward step
  // (on this VM ~3 ms each, a few ms per step while 32 growing sequences reach new pages).
  // MADV_POPULATE_WRITE (Linux 5.14) faults them in one call; elsewhere, a write per 4 KiB.
  if (::madvise(pool, bytes, MADV_POPULATE_WRITE) != 0) {
    const int err = errno;
    if (err != EINVAL) {  // EINVAL: a kernel without it; anything else: the memory is not there
      munmap(pool, bytes);
      return absl::ResourceExhaustedError(
          absl::StrCat("KV cache: cannot commit ", bytes, " bytes (", num_blocks,
                       " blocks): ", std::strerror(err), "; lower --kv-cache-mb"));
    }
    auto* p = static_cast<volatile uint8_t*>(pool);
    for (size_t o = 0; o < bytes; o += 4096) p[o] = 0;
  }
  return std::unique_ptr<PagedKvCache>(new PagedKvCache(c, dtype, block_size, num_blocks,
                                                        static_cast<uint8_t*>(pool), bytes));
}

PagedKvCache::PagedKvCache(const ModelConfig& c, KvDtype dtype, int32_t block_size,
                           int32_t num_blocks, uint8_t* pool, size_t pool_bytes)
    : shape_(AttentionShape::From(c)), dtype_(dtype),
      num_layers_(static_cast<int32_t>(c.num_layers)), block_size_(block_size),
      num_blocks_(num_blocks), elem_bytes_(ElemBytes(dtype)),
      block_bytes_(BlockBytes(c, dtype, block_size)), pool_(pool), pool_bytes_(pool_bytes) {}

PagedKvCache::~PagedKvCache() { munmap(pool_, pool_bytes_); }

int64_t PagedKvCache::PlaneOffset(int32_t layer, int32_t kv) const {
  return (static_cast<int64_t>(layer) * 2 + kv) * block_size_ * shape_.kv_dim() * elem_bytes_;
}

int64_t PagedKvCache::ScaleOffset(int32_t layer, int32_t kv) const {
  if (dtype_ != KvDtype::kInt8) return 0;
  return PlaneOffset(num_layers_, 0) +
         (static_cast<int64_t>(layer) * 2 + kv) * block_size_ * shape_.num_kv_heads * 4;
}

void PagedKvCache::CopyBlock(int32_t src, int32_t dst) {
  std::memcpy(BlockData(dst), BlockData(src), static_cast<size_t>(block_bytes_));
}

// Writes a row (kv_dim values, head after head) at `slot` of a plane, keeping each head's
// slice of the block contiguous: K transposed as [head][d][slot], so that attention reads one
// dimension of 16 keys at once; V as [head][slot][d].
void PagedKvCache::StoreRow(uint8_t* plane, float* scales, int32_t slot, bool transposed,
                            const float* row) const {
  const int32_t kvd = shape_.kv_dim(), hd = shape_.head_dim, bs = block_size_;
  const auto at = [&](int32_t i) {
    const int64_t head = i / hd, d = i % hd;
    return transposed ? (head * hd + d) * bs + slot : (head * bs + slot) * hd + d;
  };
  switch (dtype_) {
    case KvDtype::kF32:
      for (int32_t i = 0; i < kvd; ++i) reinterpret_cast<float*>(plane)[at(i)] = row[i];
      return;
    case KvDtype::kF16: {
      // Head by head, without at()'s divisions: K (transposed) strides by the block size.
      auto* out = reinterpret_cast<uint16_t*>(plane);
      for (int32_t h = 0; h < shape_.num_kv_heads; ++h) {
        const float* x = row + h * hd;
        if (transposed) {
          uint16_t* o = out + static_cast<int64_t>(h) * hd * bs + slot;
          for (int32_t d = 0; d < hd; ++d) o[static_cast<int64_t>(d) * bs] = F32ToF16(x[d]);
        } else {
          uint16_t* o = out + (static_cast<int64_t>(h) * bs + slot) * hd;
          for (int32_t d = 0; d < hd; ++d) o[d] = F32ToF16(x[d]);
        }
      }
      return;
    }
    case KvDtype::kInt8:
      // Per (token, head) symmetric, rounded like activations (docs/numeric-contract.md).
      for (int32_t h = 0; h < shape_.num_kv_heads; ++h) {
        const float* x = row + h * hd;
        float amax = 0.0f;
        for (int32_t i = 0; i < hd; ++i) amax = std::max(amax, std::fabs(x[i]));
        const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        scales[slot * shape_.num_kv_heads + h] = amax / 127.0f;
        for (int32_t i = 0; i < hd; ++i) {
          reinterpret_cast<int8_t*>(plane)[at(h * hd + i)] =
              static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f));
        }
      }
      return;
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
      StoreRow(block + PlaneOffset(layer, kv),
               reinterpret_cast<float*>(block + ScaleOffset(layer, kv)), p % block_size_,
               /*transposed=*/kv == 0, (kv == 0 ? k : v) + static_cast<int64_t>(t) * kvd);
    }
  }
}

void PagedKvCache::StoreChunks(int32_t layer, const std::vector<SeqChunk>& chunks,
                               int64_t kv_dim, const float* k, const float* v) {
  const std::vector<int64_t> row = FirstRows(chunks);
  ThreadPool& pool = ThreadPool::Default();
  const auto n = static_cast<int64_t>(chunks.size());
  pool.ParallelFor(n, std::max<int64_t>(1, n / (2 * pool.size())), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const SeqChunk& c = chunks[static_cast<size_t>(i)];
      const int64_t at = row[static_cast<size_t>(i)] * kv_dim;
      Store(layer, c.seq, c.pos, c.count, k + at, v + at);
    }
  });
}

PagedKv PagedKvCache::View(int32_t layer, int32_t seq) const {
  PagedKv kv;
  kv.pool = pool_;
  kv.block_bytes = block_bytes_;
  kv.block_size = block_size_;
  kv.dtype = dtype_;
  kv.k_offset = PlaneOffset(layer, 0);
  kv.v_offset = PlaneOffset(layer, 1);
  kv.k_scale_offset = ScaleOffset(layer, 0);
  kv.v_scale_offset = ScaleOffset(layer, 1);
  kv.table = tables_[seq]->data();
  return kv;
}

void PagedKvCache::Attend(int32_t layer, const std::vector<SeqChunk>& chunks, const float* q,
                          float* out) {
  const PagedAttentionFn kernel = ActivePagedAttention().fn;
  const std::vector<int64_t> row = FirstRows(chunks);
  // Work items: (chunk, KV heads), each writing its own slice of out. With enough chunks for
  // every thread, an item takes all KV heads of its chunk: each block's K and V planes are then
  // read in one contiguous run (decode reads them from DRAM). Which heads share an item never
  // changes a result.
  ThreadPool& pool = ThreadPool::Default();
  const int32_t kv_heads = shape_.num_kv_heads;
  const int32_t per_item =
      static_cast<int64_t>(chunks.size()) >= 4 * static_cast<int64_t>(pool.size()) ? kv_heads : 1;
  const int32_t items_per_chunk = kv_heads / per_item;
  const int64_t qd = shape_.q_dim();
  const auto items = static_cast<int64_t>(chunks.size()) * items_per_chunk;
  pool.ParallelFor(items, 1, [&](int64_t begin, int64_t end) {
    thread_local AttentionScratch scratch;
    for (int64_t i = begin; i < end; ++i) {
      const auto c_index = static_cast<size_t>(i / items_per_chunk);
      const SeqChunk& c = chunks[c_index];
      const int64_t at = row[c_index] * qd;
      const auto g = static_cast<int32_t>(i % items_per_chunk) * per_item;
      kernel(shape_, View(layer, c.seq), c.pos, c.count, q + at, out + at, g, g + per_item,
             scratch);
    }
  });
}

void PagedKvCache::AttendChunk(PagedAttentionFn kernel, int32_t layer, int32_t seq, int32_t pos,
                               int32_t count, const float* q, float* out) {
  AttentionScratch scratch;
  kernel(shape_, View(layer, seq), pos, count, q, out, 0, shape_.num_kv_heads, scratch);
}

}  // namespace qsl
