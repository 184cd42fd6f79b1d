// Writing and validating the packed model file; docs/format.md is the byte-level spec.
#include "format/packed_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/half.h"
#include "base/status.h"
#include "format/checkpoint.h"
#include "format/dtype.h"
#include "nlohmann/json.hpp"

namespace qsl {

static_assert(std::endian::native == std::endian::little,
              "the packed file is little-endian and is mapped in place");

using nlohmann::json;

namespace {

// Header field offsets (docs/format.md, "Header").
constexpr int kOffMagic = 0, kOffEndian = 8, kOffVersion = 12, kOffHeaderSize = 16,
              kOffAlignment = 20, kOffFileSize = 24, kOffSections = 32, kOffChecksum = 248;
constexpr int kSectionEntryBytes = 24;  // offset, size, xxh3: u64 each
enum SectionId { kConfig, kTokenizer, kProvenance, kTable, kData, kNumSections };
constexpr const char* kSectionNames[kNumSections] = {"config", "tokenizer", "provenance",
                                                     "tensor table", "data"};
// The int32 accumulator holds k_pad products of at most 127 * 127 (docs/numeric-contract.md).
constexpr int64_t kMaxKPad = std::numeric_limits<int32_t>::max() / (kInt8Max * kInt8Max);

void PutU32(uint8_t* p, uint32_t v) {
  std::memcpy(p, &v, 4);
}
void PutU64(uint8_t* p, uint64_t v) {
  std::memcpy(p, &v, 8);
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint64_t Checksum(const void* data, size_t size) {
  return XXH3_64bits(data, size);
}

std::string HexChecksum(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::optional<PackedDType> PackedDTypeFromName(absl::string_view name) {
  for (PackedDType t : {PackedDType::kF32, PackedDType::kF16, PackedDType::kW8, PackedDType::kW4}) {
    if (name == PackedDTypeName(t)) return t;
  }
  return std::nullopt;
}

PackedTensor FloatTensor(const std::string& name, PackedDType dtype, std::vector<int64_t> shape) {
  PackedTensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  return t;
}

bool IsTiled(PackedDType t) {
  return t == PackedDType::kW8 || t == PackedDType::kW4;
}

json TableEntry(const PackedTensor& t) {
  json e = {{"name", t.name},   {"dtype", PackedDTypeName(t.dtype)},
            {"shape", t.shape}, {"offset", t.offset},
            {"size", t.size},   {"xxh3", HexChecksum(t.checksum)}};
  if (IsTiled(t.dtype)) {
    e["tile"] = {t.layout.tile_k, t.layout.tile_n};
    if (t.dtype == PackedDType::kW4) e["group"] = t.layout.group;
  }
  return e;
}

}  // namespace

const char* PackedDTypeName(PackedDType t) {
  switch (t) {
    case PackedDType::kF32: return "F32";
    case PackedDType::kF16: return "F16";
    case PackedDType::kW8: return "W8";
    case PackedDType::kW4: return "W4";
  }
  return "?";
}

int64_t PackedTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

uint64_t PackedTensorBytes(PackedDType dtype, const std::vector<int64_t>& shape,
                           const TiledLayout& layout) {
  if (IsTiled(dtype)) return static_cast<uint64_t>(layout.bytes());
  uint64_t n = dtype == PackedDType::kF32 ? 4 : 2;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Writer

absl::StatusOr<std::unique_ptr<PackedFileWriter>> PackedFileWriter::Create(
    const std::string& path, absl::string_view config_json, absl::string_view tokenizer) {
  const std::string partial = path + ".partial";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(partial, ": cannot create: ", std::strerror(errno)));
  }
  auto w = std::unique_ptr<PackedFileWriter>(new PackedFileWriter(path, fd));
  const std::array<uint8_t, kPackedHeaderBytes> zeros{};  // the header, written last
  QSL_RETURN_IF_ERROR(w->Write(zeros.data(), zeros.size()));
  w->config_ = {w->pos_, config_json.size(), Checksum(config_json.data(), config_json.size())};
  QSL_RETURN_IF_ERROR(w->Write(config_json.data(), config_json.size()));
  w->tokenizer_ = {w->pos_, tokenizer.size(), Checksum(tokenizer.data(), tokenizer.size())};
  QSL_RETURN_IF_ERROR(w->Write(tokenizer.data(), tokenizer.size()));
  QSL_RETURN_IF_ERROR(w->PadTo(kPackedAlignment));
  w->data_.offset = w->pos_;
  return w;
}

PackedFileWriter::~PackedFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) ::unlink(partial_path().c_str());
}

absl::Status PackedFileWriter::Write(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ResourceExhaustedError(
          absl::StrCat(partial_path(), ": write failed: ", std::strerror(errno)));
    }
    p += n;
    size -= static_cast<size_t>(n);
    pos_ += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status PackedFileWriter::PadTo(int64_t alignment) {
  static const std::array<uint8_t, kPackedAlignment> zeros{};
  const uint64_t pad = (alignment - pos_ % alignment) % alignment;
  return Write(zeros.data(), pad);
}

absl::Status PackedFileWriter::AddTensor(PackedTensor t, std::span<const uint8_t> bytes) {
  if (finished_) return absl::FailedPreconditionError("packed file already finished");
  if (t.name.empty()) return absl::InvalidArgumentError("tensor with an empty name");
  if (index_.count(t.name)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "' added twice"));
  }
  const uint64_t want = PackedTensorBytes(t.dtype, t.shape, t.layout);
  if (bytes.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "' ",
                                                   PackedDTypeName(t.dtype), ShapeString(t.shape),
                                                   " needs ", want, " bytes, got ", bytes.size()));
  }
  QSL_RETURN_IF_ERROR(PadTo(kPackedAlignment));
  t.offset = pos_;
  t.size = bytes.size();
  t.checksum = Checksum(bytes.data(), bytes.size());
  QSL_RETURN_IF_ERROR(Write(bytes.data(), bytes.size()));
  index_[t.name] = tensors_.size();
  tensors_.push_back(std::move(t));
  return absl::OkStatus();
}

absl::Status PackedFileWriter::AddF32(const std::string& name, std::vector<int64_t> shape,
                                      std::span<const float> values) {
  return AddTensor(FloatTensor(name, PackedDType::kF32, std::move(shape)),
                   {reinterpret_cast<const uint8_t*>(values.data()), values.size_bytes()});
}

absl::Status PackedFileWriter::AddF16(const std::string& name, std::vector<int64_t> shape,
                                      std::span<const float> values) {
  std::vector<uint16_t> half(values.size());
  for (size_t i = 0; i < values.size(); ++i) half[i] = F32ToF16(values[i]);
  return AddTensor(FloatTensor(name, PackedDType::kF16, std::move(shape)),
                   {reinterpret_cast<const uint8_t*>(half.data()), half.size() * sizeof(uint16_t)});
}

absl::Status PackedFileWriter::AddLinear(const std::string& base, const PackedLinear& w,
                                         std::span<const float> bias) {
  const TiledLayout& l = w.layout;
  PackedTensor t{.name = base + ".weight",
                 .dtype = l.scheme == WeightScheme::kW4 ? PackedDType::kW4 : PackedDType::kW8,
                 .shape = {l.n, l.k},
                 .layout = l};
  if (w.scale.size() != static_cast<size_t>(l.n) ||
      (!bias.empty() && bias.size() != static_cast<size_t>(l.n))) {
    return absl::InvalidArgumentError(absl::StrCat("linear '", base, "' [", l.n, ", ", l.k,
                                                   "]: scale or bias is not of length ", l.n));
  }
  QSL_RETURN_IF_ERROR(AddTensor(std::move(t), w.tiles));
  QSL_RETURN_IF_ERROR(AddF32(base + kWeightScaleSuffix, {l.n}, w.scale));
  if (!bias.empty()) QSL_RETURN_IF_ERROR(AddF32(base + ".bias", {l.n}, bias));
  return absl::OkStatus();
}

absl::Status PackedFileWriter::Finish(absl::string_view provenance_json) {
  if (finished_) return absl::FailedPreconditionError("packed file already finished");
  const json prov = json::parse(provenance_json.begin(), provenance_json.end(), nullptr, false);
  if (prov.is_discarded() || !prov.is_object()) {
    return absl::InvalidArgumentError("provenance must be a JSON object");
  }
  QSL_RETURN_IF_ERROR(PadTo(kPackedAlignment));
  data_.size = pos_ - data_.offset;
  const Section provenance{pos_, provenance_json.size(),
                           Checksum(provenance_json.data(), provenance_json.size())};
  QSL_RETURN_IF_ERROR(Write(provenance_json.data(), provenance_json.size()));
  json entries = json::array();
  for (const PackedTensor& t : tensors_) entries.push_back(TableEntry(t));
  const std::string table = json{{"tensors", entries}}.dump();
  const Section table_sec{pos_, table.size(), Checksum(table.data(), table.size())};
  QSL_RETURN_IF_ERROR(Write(table.data(), table.size()));

  std::array<uint8_t, kPackedHeaderBytes> h{};
  std::memcpy(h.data() + kOffMagic, kPackedMagic, sizeof(kPackedMagic));
  PutU32(h.data() + kOffEndian, kPackedEndianTag);
  PutU32(h.data() + kOffVersion, kPackedFormatVersion);
  PutU32(h.data() + kOffHeaderSize, kPackedHeaderBytes);
  PutU32(h.data() + kOffAlignment, kPackedAlignment);
  PutU64(h.data() + kOffFileSize, pos_);
  const Section sections[kNumSections] = {
      config_, tokenizer_, provenance, table_sec, {data_.offset, data_.size, 0}};
  for (int s = 0; s < kNumSections; ++s) {
    uint8_t* e = h.data() + kOffSections + s * kSectionEntryBytes;
    PutU64(e, sections[s].offset);
    PutU64(e + 8, sections[s].size);
    PutU64(e + 16, sections[s].checksum);
  }
  PutU64(h.data() + kOffChecksum, Checksum(h.data(), kOffChecksum));
  if (::pwrite(fd_, h.data(), h.size(), 0) != static_cast<ssize_t>(h.size()) || ::fsync(fd_) != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat(partial_path(), ": writing the header failed: ", std::strerror(errno)));
  }
  ::close(fd_);
  fd_ = -1;
  if (::rename(partial_path().c_str(), path_.c_str()) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot rename ", partial_path(), " to ", path_, ": ", std::strerror(errno)));
  }
  finished_ = true;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Reader

absl::Status PackedModel::Error(absl::string_view what) const {
  return absl::InvalidArgumentError(absl::StrCat(path(), ": ", what));
}

absl::StatusOr<std::unique_ptr<PackedModel>> PackedModel::Open(const std::string& path,
                                                               PackedOpenOptions options) {
  auto m = std::unique_ptr<PackedModel>(new PackedModel());
  QSL_ASSIGN_OR_RETURN(m->file_, MappedFile::Open(path, options.backing));
  QSL_RETURN_IF_ERROR(m->Parse(options));
  return m;
}

absl::Status PackedModel::Parse(const PackedOpenOptions& options) {
  const uint8_t* d = file_->data();
  const uint64_t size = file_->size();
  if (size < sizeof(kPackedMagic) || std::memcmp(d, kPackedMagic, sizeof(kPackedMagic)) != 0) {
    return Error("not a qsl packed model file (the first 8 bytes are not \"QSLPACK\\0\")");
  }
  if (size < static_cast<uint64_t>(kPackedHeaderBytes)) {
    return Error(absl::StrCat("truncated: ", size, " bytes, less than the ", kPackedHeaderBytes,
                              "-byte header"));
  }
  const uint32_t endian = GetU32(d + kOffEndian);
  if (endian != kPackedEndianTag) {
    return Error(endian == __builtin_bswap32(kPackedEndianTag)
                     ? "written big-endian; packed files are little-endian"
                     : "corrupt header: bad endianness tag");
  }
  version_ = GetU32(d + kOffVersion);
  if (version_ != kPackedFormatVersion) {
    return Error(absl::StrCat("format version ", version_,
                              " is not supported (this qsl reads "
                              "version ",
                              kPackedFormatVersion, ")"));
  }
  if (GetU64(d + kOffChecksum) != Checksum(d, kOffChecksum)) {
    return Error("header checksum mismatch: the header is corrupt");
  }
  if (GetU32(d + kOffHeaderSize) != kPackedHeaderBytes ||
      GetU32(d + kOffAlignment) != kPackedAlignment) {
    return Error("header size or alignment differs from format version 1");
  }
  const uint64_t declared = GetU64(d + kOffFileSize);
  if (declared != size) {
    return Error(declared > size
                     ? absl::StrCat("truncated: the header declares ", declared,
                                    " bytes but the file has ", size)
                     : absl::StrCat("the file has ", size - declared, " bytes beyond the ",
                                    declared, " the header declares"));
  }
  struct Range {
    uint64_t offset, size;
    int id;
  };
  std::vector<Range> ranges;
  std::string_view text[kNumSections];
  for (int s = 0; s < kNumSections; ++s) {
    const uint8_t* e = d + kOffSections + s * kSectionEntryBytes;
    const uint64_t off = GetU64(e), len = GetU64(e + 8), sum = GetU64(e + 16);
    if (off < static_cast<uint64_t>(kPackedHeaderBytes) || off > size || len > size - off) {
      return Error(absl::StrCat("the ", kSectionNames[s], " section [", off, ", +", len,
                                ") lies outside the file"));
    }
    text[s] = {reinterpret_cast<const char*>(d + off), len};
    if (s != kData && Checksum(d + off, len) != sum) {
      return Error(absl::StrCat("checksum mismatch in the ", kSectionNames[s],
                                " section: the file is corrupt"));
    }
    ranges.push_back({off, len, s});
    sections_.push_back({kSectionNames[s], off, len});
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.offset < b.offset; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i - 1].offset + ranges[i - 1].size > ranges[i].offset) {
      return Error(absl::StrCat("the ", kSectionNames[ranges[i - 1].id], " and ",
                                kSectionNames[ranges[i].id], " sections overlap"));
    }
  }
  const uint64_t data_begin =
      static_cast<uint64_t>(text[kData].data() - reinterpret_cast<const char*>(d));
  if (data_begin % kPackedAlignment != 0) return Error("the data section is not 64-byte aligned");

  config_json_.assign(text[kConfig]);
  QSL_ASSIGN_OR_RETURN(
      config_, ModelConfig::FromJson(config_json_, absl::StrCat(path(), " (config section)")));
  QSL_ASSIGN_OR_RETURN(tokenizer_,
                       Tokenizer::FromBytes(std::string(text[kTokenizer]),
                                            absl::StrCat(path(), " (tokenizer section)")));
  provenance_json_.assign(text[kProvenance]);
  const json prov = json::parse(provenance_json_, nullptr, false);
  if (prov.is_discarded() || !prov.is_object()) {
    return Error("the provenance section is not a JSON object");
  }
  QSL_RETURN_IF_ERROR(ParseTable(absl::string_view(text[kTable].data(), text[kTable].size()),
                                 data_begin, data_begin + text[kData].size()));
  for (PackedTensor& t : tensors_) {
    if (options.verify_checksums && Checksum(t.data, t.size) != t.checksum) {
      return absl::DataLossError(absl::StrCat(
          path(), ": tensor '", t.name, "': checksum mismatch (table ", HexChecksum(t.checksum),
          ", data ", HexChecksum(Checksum(t.data, t.size)), "): the file is corrupt"));
    }
    if (t.dtype == PackedDType::kW4) {
      QSL_RETURN_IF_ERROR(Annotate(ValidateW4Groups({t.layout, t.data, nullptr, nullptr}),
                                   absl::StrCat(path(), ": tensor '", t.name, "'")));
    }
  }
  return CheckAgainstConfig();
}

namespace {

// The table entry fields with their JSON types checked; `where` labels errors.
absl::StatusOr<PackedTensor> ParseEntry(const json& e, const std::string& where) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
  };
  if (!e.is_object()) return bad("not a JSON object");
  for (const char* key : {"name", "dtype", "xxh3"}) {
    if (!e.contains(key) || !e[key].is_string())
      return bad(absl::StrCat("no string \"", key, "\""));
  }
  for (const char* key : {"offset", "size"}) {
    if (!e.contains(key) || !e[key].is_number_unsigned()) {
      return bad(absl::StrCat("no non-negative integer \"", key, "\""));
    }
  }
  PackedTensor t;
  t.name = e["name"].get<std::string>();
  if (t.name.empty()) return bad("empty name");
  const auto dtype = PackedDTypeFromName(e["dtype"].get<std::string>());
  if (!dtype) return bad(absl::StrCat("unknown dtype ", e["dtype"].dump(), " (F32, F16, W8, W4)"));
  t.dtype = *dtype;
  if (!e.contains("shape") || !e["shape"].is_array() || e["shape"].empty() ||
      e["shape"].size() > 2 || (IsTiled(t.dtype) && e["shape"].size() != 2)) {
    return bad("shape must be [n] or [n, k] ([n, k] for W8 and W4)");
  }
  for (const json& dim : e["shape"]) {
    if (!dim.is_number_unsigned() || dim.get<uint64_t>() == 0 || dim.get<uint64_t>() > (1u << 30)) {
      return bad(absl::StrCat("shape ", e["shape"].dump(), " must hold integers in [1, 2^30]"));
    }
    t.shape.push_back(dim.get<int64_t>());
  }
  t.offset = e["offset"].get<uint64_t>();
  t.size = e["size"].get<uint64_t>();
  const std::string hex = e["xxh3"].get<std::string>();
  if (hex.size() != 16 ||
      std::from_chars(hex.data(), hex.data() + hex.size(), t.checksum, 16).ptr !=
          hex.data() + hex.size()) {
    return bad("xxh3 must be 16 hex digits");
  }
  if (IsTiled(t.dtype)) {
    const json tile = e.value("tile", json());
    if (!tile.is_array() || tile.size() != 2 || !tile[0].is_number_unsigned() ||
        !tile[1].is_number_unsigned() || tile[0].get<uint64_t>() > 65536 ||
        tile[1].get<uint64_t>() > 65536) {
      return bad("W8/W4 tensors need \"tile\": [tile_k, tile_n]");
    }
    int32_t group = 0;
    if (t.dtype == PackedDType::kW4) {
      const json g = e.value("group", json());
      if (!g.is_number_unsigned() || g.get<uint64_t>() > 65536) {
        return bad("W4 tensors need an integer \"group\"");
      }
      group = g.get<int32_t>();
    }
    auto layout = TiledLayout::Make(
        t.dtype == PackedDType::kW4 ? WeightScheme::kW4 : WeightScheme::kW8, t.shape[0], t.shape[1],
        {tile[0].get<int32_t>(), tile[1].get<int32_t>()}, group);
    if (!layout.ok()) return bad(layout.status().message());
    if (layout->k_pad() > kMaxKPad) {
      return bad(absl::StrCat("k = ", t.shape[1],
                              " exceeds the int32 accumulator's limit (k_pad <= ", kMaxKPad, ")"));
    }
    t.layout = *layout;
  }
  const uint64_t want = PackedTensorBytes(t.dtype, t.shape, t.layout);
  if (t.size != want) {
    return bad(absl::StrCat(PackedDTypeName(t.dtype), " ", ShapeString(t.shape), " needs ", want,
                            " bytes, the table says ", t.size));
  }
  if (t.offset % kPackedAlignment != 0) {
    return bad(absl::StrCat("offset ", t.offset, " is not 64-byte aligned"));
  }
  return t;
}

}  // namespace

absl::Status PackedModel::ParseTable(absl::string_view text, uint64_t data_begin,
                                     uint64_t data_end) {
  const json table = json::parse(text.begin(), text.end(), nullptr, false);
  if (table.is_discarded() || !table.is_object() || !table.contains("tensors") ||
      !table["tensors"].is_array()) {
    return Error("the tensor table is not a JSON object with a \"tensors\" array");
  }
  for (size_t i = 0; i < table["tensors"].size(); ++i) {
    const json& e = table["tensors"][i];
    const std::string where =
        absl::StrCat(path(), ": tensor table entry ", i,
                     e.is_object() && e.contains("name") && e["name"].is_string()
                         ? absl::StrCat(" ('", e["name"].get<std::string>(), "')")
                         : "");
    QSL_ASSIGN_OR_RETURN(PackedTensor t, ParseEntry(e, where));
    if (t.offset < data_begin || t.offset > data_end || t.size > data_end - t.offset) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": bytes [", t.offset, ", +", t.size,
                                                     ") lie outside the data section"));
    }
    if (index_.count(t.name)) return Error(absl::StrCat("tensor '", t.name, "' appears twice"));
    t.data = file_->data() + t.offset;
    index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  std::vector<const PackedTensor*> by_offset;
  for (const PackedTensor& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const PackedTensor* a, const PackedTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i - 1]->offset + by_offset[i - 1]->size > by_offset[i]->offset) {
      return Error(absl::StrCat("tensors '", by_offset[i - 1]->name, "' and '", by_offset[i]->name,
                                "' overlap"));
    }
  }
  return absl::OkStatus();
}

absl::Status PackedModel::CheckAgainstConfig() const {
  if (tokenizer_->vocab_size() > config_.vocab_size) {
    return Error(absl::StrCat("the tokenizer has ", tokenizer_->vocab_size(),
                              " pieces but config vocab_size is ", config_.vocab_size));
  }
  std::vector<TensorSpec> specs = LlamaTensorSpecs(config_);
  // A packed file always carries its own quantized lm_head, tied embeddings or not.
  if (config_.tie_word_embeddings) {
    specs.push_back({"lm_head.weight", {config_.vocab_size, config_.hidden_size}});
  }
  std::unordered_set<std::string> expected;
  // `name` must exist with `shape` and one of `dtypes`.
  auto expect = [&](const std::string& name, const std::vector<int64_t>& shape,
                    std::initializer_list<PackedDType> dtypes) -> absl::Status {
    const PackedTensor* t = Find(name);
    if (t == nullptr) {
      return Error(absl::StrCat("missing tensor '", name, "' that the config implies"));
    }
    if (t->shape != shape) {
      return Error(absl::StrCat("tensor '", name, "' has shape ", ShapeString(t->shape),
                                " but the config implies ", ShapeString(shape),
                                ": tensors and config come from different models"));
    }
    if (std::find(dtypes.begin(), dtypes.end(), t->dtype) == dtypes.end()) {
      std::vector<std::string> names;
      for (PackedDType d : dtypes) names.push_back(PackedDTypeName(d));
      return Error(absl::StrCat("tensor '", name, "' is ", PackedDTypeName(t->dtype), "; expected ",
                                absl::StrJoin(names, " or ")));
    }
    expected.insert(name);
    return absl::OkStatus();
  };
  constexpr absl::string_view kWeight = ".weight";
  for (const TensorSpec& spec : specs) {
    const absl::string_view name = spec.name;
    if (spec.shape.size() == 2 && spec.name != "model.embed_tokens.weight") {
      QSL_RETURN_IF_ERROR(expect(spec.name, spec.shape, {PackedDType::kW8, PackedDType::kW4}));
      const std::string base(name.substr(0, name.size() - kWeight.size()));
      QSL_RETURN_IF_ERROR(expect(base + kWeightScaleSuffix, {spec.shape[0]}, {PackedDType::kF32}));
    } else if (absl::EndsWith(name, ".bias")) {
      QSL_RETURN_IF_ERROR(expect(spec.name, spec.shape, {PackedDType::kF32}));
    } else {
      QSL_RETURN_IF_ERROR(expect(spec.name, spec.shape, {PackedDType::kF32, PackedDType::kF16}));
    }
  }
  for (const PackedTensor& t : tensors_) {
    if (!expected.count(t.name)) {
      return Error(absl::StrCat("unexpected tensor '", t.name, "' for a ", config_.architecture,
                                " with this config"));
    }
  }
  return absl::OkStatus();
}

const PackedTensor* PackedModel::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<std::vector<float>> PackedModel::ReadF32(const std::string& name) const {
  const PackedTensor* t = Find(name);
  if (t == nullptr) return absl::NotFoundError(absl::StrCat(path(), ": no tensor '", name, "'"));
  if (IsTiled(t->dtype)) {
    return Error(absl::StrCat("tensor '", name, "' is a tiled ", PackedDTypeName(t->dtype),
                              " weight, not a float tensor"));
  }
  std::vector<float> out(static_cast<size_t>(t->numel()));
  ConvertToF32(t->dtype == PackedDType::kF32 ? DType::kF32 : DType::kF16, t->data, t->numel(),
               out.data());
  return out;
}

absl::StatusOr<std::span<const float>> PackedModel::F32(const std::string& name) const {
  const PackedTensor* t = Find(name);
  if (t == nullptr) return absl::NotFoundError(absl::StrCat(path(), ": no tensor '", name, "'"));
  if (t->dtype != PackedDType::kF32) {
    return Error(absl::StrCat("tensor '", name, "' is ", PackedDTypeName(t->dtype), ", not F32"));
  }
  return std::span<const float>(reinterpret_cast<const float*>(t->data),
                                static_cast<size_t>(t->numel()));
}

absl::StatusOr<LinearWeightsView> PackedModel::Linear(const std::string& base) const {
  const PackedTensor* w = Find(base + ".weight");
  if (w == nullptr || !IsTiled(w->dtype)) {
    return absl::NotFoundError(absl::StrCat(path(), ": no W8/W4 tensor '", base, ".weight'"));
  }
  QSL_ASSIGN_OR_RETURN(std::span<const float> scale, F32(base + kWeightScaleSuffix));
  if (scale.size() != static_cast<size_t>(w->layout.n)) {
    return Error(absl::StrCat("'", base, kWeightScaleSuffix, "' has ", scale.size(),
                              " values; the weight has ", w->layout.n, " channels"));
  }
  LinearWeightsView v{w->layout, w->data, scale.data(), nullptr};
  if (Find(base + ".bias") != nullptr) {
    QSL_ASSIGN_OR_RETURN(std::span<const float> bias, F32(base + ".bias"));
    if (bias.size() != static_cast<size_t>(w->layout.n)) {
      return Error(absl::StrCat("'", base, ".bias' has ", bias.size(), " values; the weight has ",
                                w->layout.n, " channels"));
    }
    v.bias = bias.data();
  }
  return v;
}

}  // namespace qsl
