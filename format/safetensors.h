// Safetensors files parsed by us: an 8-byte little-endian header length, a JSON header
// (nlohmann-json) naming each tensor's dtype, shape and byte range, then the data, mmapped.
// Open() validates everything before any tensor is used.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/mapped_file.h"
#include "format/dtype.h"

namespace qsl {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // inside the mapped file
  int64_t nbytes = 0;
  std::string file;  // the file it lives in, for error messages

  int64_t numel() const;
  std::string ShapeString() const;  // "[4096, 256]"
};

class SafetensorsFile {
 public:
  // Upper bound on the JSON header, as the reference implementation enforces (100 MB).
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // Parses an in-memory image (the fuzzer and tests use this); `name` labels errors.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(
      std::shared_ptr<const MappedFile> file, const std::string& name);
  static absl::StatusOr<std::map<std::string, TensorInfo>> ParseHeader(const uint8_t* data,
                                                                       uint64_t size,
                                                                       const std::string& name);

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* Find(const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  std::map<std::string, TensorInfo> tensors_;
};

}  // namespace qsl
