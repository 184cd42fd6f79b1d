// Card memory as the simulated card and the Verilated card's harness hold it: a sparse 64-bit
// address space of 64-byte aligned regions, owned or mapped in place (read-only), with the
// card's capacity enforced.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "absl/status/statusor.h"

namespace qsl {

class CardMemory {
 public:
  explicit CardMemory(int64_t capacity) : capacity_(capacity) {}

  absl::StatusOr<uint64_t> Allocate(uint64_t bytes);
  // Maps host bytes in place, read-only (they must outlive the mapping).
  absl::StatusOr<uint64_t> Map(const uint8_t* bytes, uint64_t size);
  absl::Status Free(uint64_t addr);

  // [addr, addr + bytes) must lie inside one region; writable() also refuses mapped regions.
  absl::StatusOr<const uint8_t*> readable(uint64_t addr, uint64_t bytes) const;
  absl::StatusOr<uint8_t*> writable(uint64_t addr, uint64_t bytes);

  int64_t used() const { return used_; }
  int64_t capacity() const { return capacity_; }

 private:
  struct Region {
    uint64_t size = 0;
    std::vector<uint8_t> owned;
    const uint8_t* mapped = nullptr;
  };
  absl::StatusOr<uint64_t> Reserve(uint64_t bytes);
  absl::StatusOr<const Region*> Find(uint64_t addr, uint64_t bytes, uint64_t* offset) const;

  int64_t capacity_;
  int64_t used_ = 0;
  uint64_t next_ = 1 << 12;  // address 0 stays unmapped so a zero address is always an error
  std::map<uint64_t, Region> regions_;
};

}  // namespace qsl
