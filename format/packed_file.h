// The packed model file (spec: docs/format.md): one mmap-able file holding a quantized model —
// header, config.json bytes, tokenizer.model bytes, provenance JSON, a tensor table and the
// tensors, each 64-byte aligned, linear weights in the tiled order of format/weight_tiles.h.
// PackedFileWriter streams tensors out as the quantizer produces them; PackedModel maps a file,
// validates all of it and hands out tensor views by Hugging Face name.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/mapped_file.h"
#include "format/model_config.h"
#include "format/tokenizer.h"
#include "format/weight_tiles.h"

namespace qsl {

inline constexpr char kPackedMagic[8] = {'Q', 'S', 'L', 'P', 'A', 'C', 'K', '\0'};
inline constexpr uint32_t kPackedFormatVersion = 1;
inline constexpr uint32_t kPackedEndianTag = 0x01020304;  // on disk: 04 03 02 01
inline constexpr int64_t kPackedHeaderBytes = 256;
inline constexpr int64_t kPackedAlignment = 64;
// Name suffix of a linear weight's per-channel fp32 scale: "<base>.weight_scale".
inline constexpr char kWeightScaleSuffix[] = ".weight_scale";

// Element type of a stored tensor: plain floats, or a tiled linear weight (PackW8/PackW4 bytes).
enum class PackedDType : uint8_t { kF32, kF16, kW8, kW4 };
const char* PackedDTypeName(PackedDType t);  // "F32", "F16", "W8", "W4"

struct PackedTensor {
  std::string name;
  PackedDType dtype = PackedDType::kF32;
  std::vector<int64_t> shape;     // logical; [n, k] for W8/W4
  TiledLayout layout;             // W8/W4 only
  uint64_t offset = 0;            // from the start of the file, a multiple of 64
  uint64_t size = 0;              // bytes
  uint64_t checksum = 0;          // XXH3-64 of the bytes
  const uint8_t* data = nullptr;  // into the mapping (reader only)

  int64_t numel() const;
};

// The bytes a tensor of this type and shape occupies (W8/W4: the tiled layout's bytes).
uint64_t PackedTensorBytes(PackedDType dtype, const std::vector<int64_t>& shape,
                           const TiledLayout& layout);

// Writes a packed file in one pass: Create() writes the config and tokenizer sections, Add*()
// append tensors, Finish() writes provenance, the tensor table and the header, and renames
// "<path>.partial" to `path`, so an interrupted run never leaves a file that looks complete.
class PackedFileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<PackedFileWriter>> Create(const std::string& path,
                                                                  absl::string_view config_json,
                                                                  absl::string_view tokenizer);
  PackedFileWriter(const PackedFileWriter&) = delete;
  PackedFileWriter& operator=(const PackedFileWriter&) = delete;
  ~PackedFileWriter();  // removes the partial file when Finish() did not run

  absl::Status AddF32(const std::string& name, std::vector<int64_t> shape,
                      std::span<const float> values);
  // Rounds to IEEE binary16 (round to nearest even).
  absl::Status AddF16(const std::string& name, std::vector<int64_t> shape,
                      std::span<const float> values);
  // A linear layer "<base>": "<base>.weight" (tiles), "<base>.weight_scale" (F32 [n]) and, when
  // `bias` is not empty, "<base>.bias" (F32 [n]).
  absl::Status AddLinear(const std::string& base, const PackedLinear& w,
                         std::span<const float> bias = {});
  // `provenance_json` must be a JSON object.
  absl::Status Finish(absl::string_view provenance_json);

  uint64_t bytes_written() const { return pos_; }

 private:
  PackedFileWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  absl::Status Write(const void* data, size_t size);
  absl::Status PadTo(int64_t alignment);
  absl::Status AddTensor(PackedTensor t, std::span<const uint8_t> bytes);
  std::string partial_path() const { return path_ + ".partial"; }

  std::string path_;
  int fd_ = -1;
  uint64_t pos_ = 0;
  struct Section {
    uint64_t offset = 0, size = 0, checksum = 0;
  };
  Section config_, tokenizer_, data_;
  std::vector<PackedTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  bool finished_ = false;
};

struct PackedSection {
  std::string name;  // config, tokenizer, provenance, tensor table, data
  uint64_t offset = 0, size = 0;
};

struct PackedOpenOptions {
  // Check every tensor's XXH3 checksum (reads the whole file once). Metadata sections, bounds,
  // table consistency and W4 group ranges are checked always.
  bool verify_checksums = true;
  // Mapped in place (the default) or read into huge-page memory (base/mapped_file.h says when
  // that pays: the CPU computing from the weights on every step).
  MappedFile::Backing backing = MappedFile::Backing::kMapped;
};

class PackedModel {
 public:
  // Maps and validates `path`; every error names the file and what is wrong.
  static absl::StatusOr<std::unique_ptr<PackedModel>> Open(const std::string& path,
                                                           PackedOpenOptions options = {});

  const std::string& path() const { return file_->path(); }
  uint32_t format_version() const { return version_; }
  uint64_t file_size() const { return file_->size(); }
  const ModelConfig& config() const { return config_; }
  const std::string& config_json() const { return config_json_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::string& provenance_json() const { return provenance_json_; }
  const std::vector<PackedTensor>& tensors() const { return tensors_; }
  const std::vector<PackedSection>& sections() const { return sections_; }
  // Keeps the mapping alive for views handed to longer-lived objects.
  std::shared_ptr<const MappedFile> file() const { return file_; }

  const PackedTensor* Find(const std::string& name) const;
  // An fp32 copy of an F32 or F16 tensor.
  absl::StatusOr<std::vector<float>> ReadF32(const std::string& name) const;
  // A view of an F32 tensor in place.
  absl::StatusOr<std::span<const float>> F32(const std::string& name) const;
  // The linear layer "<base>" (e.g. "model.layers.0.self_attn.q_proj"): its tiles, per-channel
  // scale and bias (nullptr when the file has none), pointing into the mapping.
  absl::StatusOr<LinearWeightsView> Linear(const std::string& base) const;

 private:
  PackedModel() = default;
  absl::Status Parse(const PackedOpenOptions& options);
  absl::Status ParseTable(absl::string_view text, uint64_t data_begin, uint64_t data_end);
  absl::Status CheckAgainstConfig() const;
  absl::Status Error(absl::string_view what) const;

  std::shared_ptr<const MappedFile> file_;
  uint32_t version_ = 0;
  std::string config_json_, provenance_json_;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<PackedTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<PackedSection> sections_;
};

}  // namespace qsl
