// Sparse card memory: regions never move and addresses are never reused.
#include "accel/card_memory.h"

#include "absl/strings/str_cat.h"

namespace qsl {

absl::StatusOr<uint64_t> CardMemory::Reserve(uint64_t bytes) {
  if (bytes == 0) return absl::InvalidArgumentError("card memory: zero-byte allocation");
  const uint64_t rounded = (bytes + 63) / 64 * 64;
  if (used_ + static_cast<int64_t>(rounded) > capacity_) {
    return absl::ResourceExhaustedError(absl::StrCat("card memory full: ", used_, " of ",
                                                     capacity_, " bytes used, ", rounded,
                                                     " more requested"));
  }
  const uint64_t addr = next_;
  next_ += rounded + 64;  // a gap between regions, so an overrun is an error and not a neighbour
  used_ += static_cast<int64_t>(rounded);
  return addr;
}

absl::StatusOr<uint64_t> CardMemory::Allocate(uint64_t bytes) {
  auto addr = Reserve(bytes);
  if (!addr.ok()) return addr;
  Region& r = regions_[*addr];
  r.size = bytes;
  r.owned.assign(bytes, 0);
  return addr;
}

absl::StatusOr<uint64_t> CardMemory::Map(const uint8_t* bytes, uint64_t size) {
  auto addr = Reserve(size);
  if (!addr.ok()) return addr;
  Region& r = regions_[*addr];
  r.size = size;
  r.mapped = bytes;
  return addr;
}

absl::Status CardMemory::Free(uint64_t addr) {
  auto it = regions_.find(addr);
  if (it == regions_.end()) {
    return absl::NotFoundError(absl::StrCat("card memory: no region at ", addr));
  }
  used_ -= static_cast<int64_t>((it->second.size + 63) / 64 * 64);
  regions_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<const CardMemory::Region*> CardMemory::Find(uint64_t addr, uint64_t bytes,
                                                           uint64_t* offset) const {
  auto it = regions_.upper_bound(addr);
  if (it != regions_.begin()) {
    --it;
    const uint64_t off = addr - it->first;
    if (off <= it->second.size && bytes <= it->second.size - off) {
      *offset = off;
      return &it->second;
    }
  }
  return absl::OutOfRangeError(
      absl::StrCat("card memory: [", addr, ", ", addr + bytes, ") is not inside one region"));
}

absl::StatusOr<const uint8_t*> CardMemory::readable(uint64_t addr, uint64_t bytes) const {
  uint64_t off = 0;
  auto r = Find(addr, bytes, &off);
  if (!r.ok()) return r.status();
  const uint8_t* base = (*r)->mapped != nullptr ? (*r)->mapped : (*r)->owned.data();
  return base + off;
}

absl::StatusOr<uint8_t*> CardMemory::writable(uint64_t addr, uint64_t bytes) {
  uint64_t off = 0;
  auto r = Find(addr, bytes, &off);
  if (!r.ok()) return r.status();
  if ((*r)->mapped != nullptr) {
    return absl::PermissionDeniedError(absl::StrCat("card memory: ", addr, " is read-only"));
  }
  return const_cast<Region*>(*r)->owned.data() + off;
}

}  // namespace qsl
