// The sentencepiece module (libqsl_sentencepiece.so): the only file that includes
// sentencepiece_processor.h, built as a plugin that sp_model_loader.cc opens privately (see
// sp_model.h for why).
#include "format/sp_model.h"

#include <sentencepiece_processor.h>

namespace qsl::internal {
namespace {

class SpModelImpl final : public SpModel {
 public:
  sentencepiece::SentencePieceProcessor sp;

  std::vector<int32_t> Encode(const std::string& text) const override {
    std::vector<int> ids;
    if (!sp.Encode(text, &ids).ok()) return {};
    return {ids.begin(), ids.end()};
  }
  std::string Decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    const std::vector<int> v(ids.begin(), ids.end());
    if (!sp.Decode(v, &out).ok()) return {};
    return out;
  }
  std::string Piece(int32_t id) const override { return sp.IdToPiece(id); }
  int32_t vocab_size() const override { return sp.GetPieceSize(); }
  int32_t bos_id() const override { return sp.bos_id(); }
  int32_t eos_id() const override { return sp.eos_id(); }
  int32_t unk_id() const override { return sp.unk_id(); }
  bool IsControl(int32_t id) const override { return sp.IsControl(id); }
};

}  // namespace

}  // namespace qsl::internal

// The module's one entry point (looked up by name); the caller owns the result.
extern "C" __attribute__((visibility("default"))) qsl::internal::SpModel* qsl_sp_model_load(
    const std::string* bytes, std::string* error) {
  auto m = std::make_unique<qsl::internal::SpModelImpl>();
  const auto status = m->sp.LoadFromSerializedProto(*bytes);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return m.release();
}
