#include "format/tokenizer.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "format/sp_model.h"

namespace qsl {

Tokenizer::Tokenizer(std::unique_ptr<internal::SpModel> sp, std::string bytes)
    : sp_(std::move(sp)), bytes_(std::move(bytes)) {}
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open tokenizer"));
  std::stringstream ss;
  ss << in.rdbuf();
  return FromBytes(ss.str(), path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromBytes(std::string bytes,
                                                                const std::string& source) {
  if (bytes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": empty tokenizer model"));
  }
  std::string error;
  auto sp = internal::SpModel::Load(bytes, &error);
  if (sp == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not a sentencepiece model: ", error));
  }
  if (sp->vocab_size() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": sentencepiece model has no pieces"));
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(sp), std::move(bytes)));
}

std::vector<int32_t> Tokenizer::Encode(const std::string& text, bool add_bos) const {
  std::vector<int32_t> ids;
  if (add_bos && sp_->bos_id() >= 0) ids.push_back(sp_->bos_id());
  if (text.empty()) return ids;
  const std::vector<int32_t> body = sp_->Encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::vector<int32_t> valid;
  valid.reserve(ids.size());
  for (int32_t id : ids) {
    if (id >= 0 && id < sp_->vocab_size()) valid.push_back(id);
  }
  return sp_->Decode(valid);
}

std::string Tokenizer::Piece(int32_t id) const {
  return id >= 0 && id < sp_->vocab_size() ? sp_->Piece(id) : std::string();
}
int32_t Tokenizer::vocab_size() const { return sp_->vocab_size(); }
int32_t Tokenizer::bos_id() const { return sp_->bos_id(); }
int32_t Tokenizer::eos_id() const { return sp_->eos_id(); }

namespace {
// sentencepiece renders an incomplete byte-fallback sequence as U+FFFD at the end.
bool EndsWithReplacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}
// Prompt tokens kept as context for the first generated token's text.
constexpr size_t kContextTokens = 5;
// A UTF-8 character spans at most 4 byte-fallback tokens; hold no longer than that.
constexpr size_t kMaxHeld = 4;
}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tok, const std::vector<int32_t>& context)
    : tok_(tok) {
  const size_t keep = std::min(context.size(), kContextTokens);
  ids_.assign(context.end() - static_cast<std::ptrdiff_t>(keep), context.end());
  read_ = ids_.size();
}

std::string StreamDecoder::DecodeFrom(size_t begin, size_t end) const {
  return tok_.Decode(std::vector<int32_t>(ids_.begin() + static_cast<std::ptrdiff_t>(begin),
                                          ids_.begin() + static_cast<std::ptrdiff_t>(end)));
}

std::string StreamDecoder::Add(int32_t id) {
  ids_.push_back(id);
  const std::string prev = DecodeFrom(prefix_, read_);
  const std::string text = DecodeFrom(prefix_, ids_.size());
  const bool incomplete = EndsWithReplacement(text) && ids_.size() - read_ < kMaxHeld;
  if (text.size() <= prev.size() || incomplete) return {};
  // The window start is fixed, so the decoded window only grows at its end.
  std::string delta = text.substr(prev.size());
  prefix_ = read_;
  read_ = ids_.size();
  return delta;
}

std::string StreamDecoder::Flush() {
  const std::string prev = DecodeFrom(prefix_, read_);
  const std::string text = DecodeFrom(prefix_, ids_.size());
  prefix_ = read_;
  read_ = ids_.size();
  return text.size() > prev.size() ? text.substr(prev.size()) : std::string();
}

}  // namespace qsl
