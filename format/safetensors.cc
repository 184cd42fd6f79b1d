// Safetensors parsing with full validation: header bounds, JSON, dtypes, shapes, byte ranges
// (inside the data region, matching the shape, not overlapping).
#include "format/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace qsl {

using nlohmann::json;

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorInfo::ShapeString() const { return absl::StrCat("[", absl::StrJoin(shape, ", "), "]"); }

namespace {

absl::Status Bad(const std::string& file, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": ", what));
}

absl::StatusOr<TensorInfo> ParseEntry(const std::string& file, const std::string& name,
                                      const json& e, const uint8_t* data, uint64_t data_size) {
  const std::string where = absl::StrCat("tensor '", name, "'");
  if (!e.is_object()) return Bad(file, where + " is not a JSON object");
  if (!e.contains("dtype") || !e["dtype"].is_string()) return Bad(file, where + " has no dtype");
  const auto dtype = DTypeFromName(e["dtype"].get<std::string>());
  if (!dtype) return Bad(file, absl::StrCat(where, " has unknown dtype ", e["dtype"].dump()));
  if (!e.contains("shape") || !e["shape"].is_array()) return Bad(file, where + " has no shape");
  TensorInfo t;
  t.name = name;
  t.dtype = *dtype;
  t.file = file;
  int64_t numel = 1;
  for (const json& d : e["shape"]) {
    if (!d.is_number_unsigned()) {
      return Bad(file, absl::StrCat(where, " shape ", e["shape"].dump(),
                                    " must hold non-negative integers"));
    }
    const uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        (dim != 0 && static_cast<uint64_t>(numel) > static_cast<uint64_t>(
                                                        std::numeric_limits<int64_t>::max()) / dim)) {
      return Bad(file, absl::StrCat(where, " shape ", e["shape"].dump(), " overflows"));
    }
    numel *= static_cast<int64_t>(dim);
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  const json& off = e.contains("data_offsets") ? e["data_offsets"] : json();
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned()) {
    return Bad(file, where + " needs data_offsets [begin, end] of non-negative integers");
  }
  const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
  if (begin > end || end > data_size) {
    return Bad(file, absl::StrCat(where, " data_offsets [", begin, ", ", end,
                                  "] fall outside the data region of ", data_size, " bytes"));
  }
  const uint64_t elem = static_cast<uint64_t>(DTypeSize(t.dtype));
  if (static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / elem ||
      static_cast<uint64_t>(numel) * elem != end - begin) {
    return Bad(file, absl::StrCat(where, " ", DTypeName(t.dtype), " ", t.ShapeString(), " needs ",
                                  static_cast<uint64_t>(numel) * elem, " bytes but data_offsets span ",
                                  end - begin));
  }
  t.data = data + begin;
  t.nbytes = static_cast<int64_t>(end - begin);
  return t;
}

}  // namespace

absl::StatusOr<std::map<std::string, TensorInfo>> SafetensorsFile::ParseHeader(
    const uint8_t* data, uint64_t size, const std::string& file) {
  if (size < 8) return Bad(file, absl::StrCat("file of ", size, " bytes is too short for a safetensors header"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n > kMaxHeaderBytes) {
    return Bad(file, absl::StrCat("header length ", n, " exceeds the ", kMaxHeaderBytes, "-byte limit"));
  }
  if (n > size - 8) {
    return Bad(file, absl::StrCat("header length ", n, " is longer than the file (", size,
                                  " bytes): truncated or not a safetensors file"));
  }
  const char* text = reinterpret_cast<const char*>(data + 8);
  json header;
  try {
    header = json::parse(text, text + n);
  } catch (const json::exception& e) {
    return Bad(file, absl::StrCat("header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) return Bad(file, "header is not a JSON object");

  const uint8_t* payload = data + 8 + n;
  const uint64_t payload_size = size - 8 - n;
  std::map<std::string, TensorInfo> tensors;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return Bad(file, "__metadata__ must be an object");
      continue;
    }
    auto t = ParseEntry(file, name, entry, payload, payload_size);
    if (!t.ok()) return t.status();
    tensors.emplace(name, std::move(*t));
  }
  // No two tensors may share bytes.
  std::vector<const TensorInfo*> order;
  for (const auto& [name, t] : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->data < b->data; });
  for (size_t i = 1; i < order.size(); ++i) {
    const TensorInfo& prev = *order[i - 1];
    if (prev.data + prev.nbytes > order[i]->data && order[i]->nbytes > 0) {
      return Bad(file, absl::StrCat("tensors '", prev.name, "' and '", order[i]->name,
                                    "' overlap in the data region"));
    }
  }
  return tensors;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Parse(
    std::shared_ptr<const MappedFile> file, const std::string& name) {
  auto tensors = ParseHeader(file->data(), file->size(), name);
  if (!tensors.ok()) return tensors.status();
  auto st = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  st->path_ = name;
  st->file_ = std::move(file);
  st->tensors_ = std::move(*tensors);
  return st;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  auto file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  return Parse(std::move(*file), path);
}

const TensorInfo* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace qsl
