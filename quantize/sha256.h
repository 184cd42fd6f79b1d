// SHA-256 of files for the packed file's provenance (OpenSSL EVP), read in chunks through the
// page cache so hashing a large checkpoint adds nothing to the process's resident memory.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace qsl {

// Lower-case hex digest of the file at `path`.
absl::StatusOr<std::string> Sha256File(const std::string& path);

}  // namespace qsl
