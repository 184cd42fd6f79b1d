// The sentencepiece tokenizer (libsentencepiece), with transformers' LlamaTokenizer conventions:
// Encode adds BOS when asked; Decode drops control tokens. StreamDecoder turns a growing list of
// ids into text deltas that never split a UTF-8 character.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qsl {

namespace internal {
class SpModel;
}

class Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // `bytes` is a serialized sentencepiece ModelProto (tokenizer.model); `source` labels errors.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromBytes(std::string bytes,
                                                              const std::string& source);
  ~Tokenizer();

  std::vector<int32_t> Encode(const std::string& text, bool add_bos) const;
  std::string Decode(const std::vector<int32_t>& ids) const;
  std::string Piece(int32_t id) const;

  int32_t vocab_size() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  const std::string& bytes() const { return bytes_; }  // the serialized model, for packed files

 private:
  Tokenizer(std::unique_ptr<internal::SpModel> sp, std::string bytes);
  std::unique_ptr<internal::SpModel> sp_;
  std::string bytes_;
};

// Incremental detokenization. A token's text depends on its neighbours (sentencepiece drops the
// leading-space marker of a sequence's first piece; byte-fallback pieces form one UTF-8 character
// together), so each step decodes a window starting at the previous step's tokens and emits only
// the new suffix, holding back text that ends in an incomplete UTF-8 sequence.
class StreamDecoder {
 public:
  // `context` are the ids before the first generated one (the prompt's tail suffices).
  StreamDecoder(const Tokenizer& tok, const std::vector<int32_t>& context);

  // Adds one id; returns the text it completes (possibly empty).
  std::string Add(int32_t id);
  // Text still held back (an incomplete UTF-8 tail), released at the end of a sequence.
  // Output is always valid UTF-8: sentencepiece renders stray bytes as U+FFFD.
  std::string Flush();

 private:
  std::string DecodeFrom(size_t begin, size_t end) const;
  const Tokenizer& tok_;
  std::vector<int32_t> ids_;
  size_t prefix_ = 0;  // start of the decode window
  size_t read_ = 0;    // the text of ids before this has been emitted
};

}  // namespace qsl
