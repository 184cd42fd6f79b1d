#include "base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace qsl {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

std::string OsError(const std::string& path, const char* what, int err) {
  return absl::StrCat(path, ": ", what, ": ", std::strerror(err));
}

// Reads `size` bytes of `fd` into a fresh anonymous region whose data start is 2 MiB aligned,
// advised for huge pages, then made read-only. On success *region / *region_size is the mapping
// to release.
absl::StatusOr<const uint8_t*> ReadIntoHugePages(const std::string& path, int fd, size_t size,
                                                 void** region, size_t* region_size) {
  const size_t len = (size + kHugePage - 1) / kHugePage * kHugePage;
  const size_t total = len + kHugePage;  // slack to align the start
  void* p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        OsError(path, absl::StrCat("cannot allocate ", size, " bytes to load it").c_str(), errno));
  }
  auto* data = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + kHugePage - 1) /
                                          kHugePage * kHugePage);
  // Advice only: without transparent huge pages the copy still works, on 4 KiB pages.
  ::madvise(data, len, MADV_HUGEPAGE);
  size_t done = 0;
  while (done < size) {
    const ssize_t r = ::pread(fd, data + done, std::min<size_t>(size - done, size_t{64} << 20),
                              static_cast<off_t>(done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int err = r < 0 ? errno : 0;
      ::munmap(p, total);
      return absl::DataLossError(
          err != 0 ? OsError(path, "read failed", err)
                   : absl::StrCat(path, ": ended after ", done, " of ", size,
                                  " bytes while being read (truncated meanwhile?)"));
    }
    done += static_cast<size_t>(r);
  }
  ::mprotect(data, len, PROT_READ);
  *region = p;
  *region_size = total;
  return data;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const MappedFile>> MappedFile::Open(const std::string& path,
                                                                   Backing backing) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string msg = OsError(path, "cannot open", err);
    return err == ENOENT ? absl::NotFoundError(msg) : absl::PermissionDeniedError(msg);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  const uint8_t* data = nullptr;
  void* region = nullptr;
  size_t region_size = 0;
  if (size > 0 && backing == Backing::kInMemory) {
    absl::StatusOr<const uint8_t*> d = ReadIntoHugePages(path, fd, size, &region, &region_size);
    if (!d.ok()) {
      ::close(fd);
      return d.status();
    }
    data = *d;
  } else if (size > 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return absl::InternalError(OsError(path, "mmap failed", err));
    }
    data = static_cast<const uint8_t*>(p);
    region = p;
    region_size = size;
  }
  ::close(fd);
  return std::shared_ptr<const MappedFile>(
      new MappedFile(path, backing, data, size, region, region_size));
}

MappedFile::~MappedFile() {
  if (region_ != nullptr) ::munmap(region_, region_size_);
}

}  // namespace qsl
