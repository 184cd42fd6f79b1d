// Internal: a thin wrapper over libsentencepiece that uses only standard types. Debian's
// sentencepiece header declares `absl::string_view` as an alias of std::string_view, which
// collides with Debian's abseil (where it is a class), so the two never meet in one file.
// Debian's libsentencepiece.so also embeds and exports its own protobuf-lite 3.14, which clashes
// with libprotobuf 3.21 (gRPC) in one process: whichever loads first breaks the other. So the
// wrapper is a module (libqsl_sentencepiece.so) opened with RTLD_LOCAL | RTLD_DEEPBIND, which
// keeps sentencepiece's protobuf symbols to itself.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qsl::internal {

class SpModel {
 public:
  // Loads a serialized ModelProto; on failure returns null and sets *error. The module is looked
  // up in $QSL_SENTENCEPIECE_MODULE, beside the running executable, in ../lib/qsl/ from it (an
  // install: /usr/local/bin/qsl and /usr/local/lib/qsl/libqsl_sentencepiece.so), then in the
  // build tree.
  static std::unique_ptr<SpModel> Load(const std::string& bytes, std::string* error);
  virtual ~SpModel() = default;

  virtual std::vector<int32_t> Encode(const std::string& text) const = 0;
  virtual std::string Decode(const std::vector<int32_t>& ids) const = 0;
  virtual std::string Piece(int32_t id) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when the model has none
  virtual int32_t eos_id() const = 0;
  virtual int32_t unk_id() const = 0;
  virtual bool IsControl(int32_t id) const = 0;
};

}  // namespace qsl::internal
