// A whole file, read-only in memory: mapped in place (page cache, shared with other processes,
// nothing copied), or copied once into anonymous memory on 2 MiB transparent huge pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"

namespace qsl {

class MappedFile {
 public:
  enum class Backing {
    // mmap of the file: pages come from the page cache on first touch, on 4 KiB pages (a file
    // mapping gets huge pages only where the filesystem and kernel give them).
    kMapped,
    // The file read into private anonymous memory aligned to 2 MiB and advised MADV_HUGEPAGE
    // (honoured when transparent_hugepage is "madvise" or "always"), then made read-only. A 1.1B
    // W4 model's linears stream ~700 MB per decode step: with 2 MiB pages they ran 8-15 % faster
    // on the CPU, at M = 1 and at M = 32 alike (docs/performance.md, session 8), since far
    // fewer TLB misses stall the stream. Costs the file's size in resident memory.
    kInMemory,
  };

  // Errors name the file and the OS reason.
  static absl::StatusOr<std::shared_ptr<const MappedFile>> Open(const std::string& path,
                                                                Backing backing = Backing::kMapped);

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::string& path() const { return path_; }
  Backing backing() const { return backing_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  MappedFile(std::string path, Backing backing, const uint8_t* data, size_t size, void* region,
             size_t region_size)
      : path_(std::move(path)),
        backing_(backing),
        data_(data),
        size_(size),
        region_(region),
        region_size_(region_size) {}
  std::string path_;
  Backing backing_;
  const uint8_t* data_;
  size_t size_;
  void* region_;  // what munmap releases (kInMemory: larger than the data, for the alignment)
  size_t region_size_;
};

}  // namespace qsl
