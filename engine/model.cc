#include "engine/model.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "base/status.h"

namespace qsl {

const char* LinearSlotName(LinearSlot s) {
  switch (s) {
    case LinearSlot::kQ: return "self_attn.q_proj";
    case LinearSlot::kK: return "self_attn.k_proj";
    case LinearSlot::kV: return "self_attn.v_proj";
    case LinearSlot::kO: return "self_attn.o_proj";
    case LinearSlot::kGate: return "mlp.gate_proj";
    case LinearSlot::kUp: return "mlp.up_proj";
    case LinearSlot::kDown: return "mlp.down_proj";
    case LinearSlot::kLmHead: return "lm_head";
  }
  return "?";
}

Linear& LayerWeights::slot(LinearSlot s) {
  switch (s) {
    case LinearSlot::kQ: return q;
    case LinearSlot::kK: return k;
    case LinearSlot::kV: return v;
    case LinearSlot::kO: return o;
    case LinearSlot::kGate: return gate;
    case LinearSlot::kUp: return up;
    case LinearSlot::kDown: return down;
    case LinearSlot::kLmHead: break;
  }
  return down;  // unreachable for valid slots; lm_head lives on the Model
}
const Linear& LayerWeights::slot(LinearSlot s) const {
  return const_cast<LayerWeights*>(this)->slot(s);
}

Model::Model(ModelConfig config, std::unique_ptr<Tokenizer> tokenizer, std::vector<float> embed,
             std::vector<LayerWeights> layers, std::vector<float> final_norm, Linear lm_head,
             std::shared_ptr<const void> keepalive)
    : config_(std::move(config)), tokenizer_(std::move(tokenizer)), embed_(std::move(embed)),
      layers_(std::move(layers)), final_norm_(std::move(final_norm)), lm_head_(std::move(lm_head)),
      keepalive_(std::move(keepalive)) {
  AssignIds();
}

void Model::AssignIds() {
  int32_t id = 0;
  for (auto& l : layers_) {
    for (Linear* lin : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) lin->id = id++;
  }
  lm_head_.id = id;
}

std::vector<std::pair<const Linear*, int32_t>> Model::linears() const {
  std::vector<std::pair<const Linear*, int32_t>> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& l = layers_[i];
    for (const Linear* lin : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      out.emplace_back(lin, static_cast<int32_t>(i));
    }
  }
  out.emplace_back(&lm_head_, static_cast<int32_t>(layers_.size()));
  return out;
}

namespace {

absl::StatusOr<Linear> LoadLinear(const HfCheckpoint& ck, const std::string& weight,
                                  const std::string& bias) {
  Linear lin;
  const TensorInfo* t = ck.Find(weight);
  if (t == nullptr) return absl::NotFoundError(absl::StrCat(ck.dir(), ": missing tensor '", weight, "'"));
  lin.n = t->shape[0];
  lin.k = t->shape[1];
  QSL_ASSIGN_OR_RETURN(lin.w, ck.ReadF32(weight));
  if (!bias.empty() && ck.Find(bias) != nullptr) {
    QSL_ASSIGN_OR_RETURN(lin.bias, ck.ReadF32(bias));
  }
  return lin;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> Model::FromCheckpoint(const HfCheckpoint& ck) {
  const ModelConfig& c = ck.config();
  QSL_ASSIGN_OR_RETURN(std::vector<float> embed, ck.ReadF32("model.embed_tokens.weight"));
  std::vector<LayerWeights> layers(static_cast<size_t>(c.num_layers));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    LayerWeights& l = layers[i];
    QSL_ASSIGN_OR_RETURN(l.attn_norm, ck.ReadF32(LayerTensor(i, "input_layernorm.weight")));
    QSL_ASSIGN_OR_RETURN(l.mlp_norm, ck.ReadF32(LayerTensor(i, "post_attention_layernorm.weight")));
    for (LinearSlot s : {LinearSlot::kQ, LinearSlot::kK, LinearSlot::kV, LinearSlot::kO,
                         LinearSlot::kGate, LinearSlot::kUp, LinearSlot::kDown}) {
      const std::string base = LayerTensor(i, LinearSlotName(s));
      QSL_ASSIGN_OR_RETURN(l.slot(s), LoadLinear(ck, base + ".weight", base + ".bias"));
    }
  }
  QSL_ASSIGN_OR_RETURN(std::vector<float> final_norm, ck.ReadF32("model.norm.weight"));
  Linear lm_head;
  if (c.tie_word_embeddings) {
    lm_head.n = c.vocab_size;
    lm_head.k = c.hidden_size;
    lm_head.w = embed;
  } else {
    QSL_ASSIGN_OR_RETURN(lm_head, LoadLinear(ck, "lm_head.weight", ""));
  }
  QSL_ASSIGN_OR_RETURN(auto tok, Tokenizer::FromBytes(ck.tokenizer().bytes(), ck.dir()));
  return std::make_unique<Model>(c, std::move(tok), std::move(embed), std::move(layers),
                                 std::move(final_norm), std::move(lm_head));
}

absl::StatusOr<std::unique_ptr<Model>> Model::FromPacked(
    std::shared_ptr<const PackedModel> file) {
  const ModelConfig& c = file->config();
  auto linear = [&](const std::string& base) -> absl::StatusOr<Linear> {
    Linear lin;
    QSL_ASSIGN_OR_RETURN(lin.q, file->Linear(base));
    lin.n = lin.q.layout.n;
    lin.k = lin.q.layout.k;
    return lin;
  };
  QSL_ASSIGN_OR_RETURN(std::vector<float> embed, file->ReadF32("model.embed_tokens.weight"));
  std::vector<LayerWeights> layers(static_cast<size_t>(c.num_layers));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    LayerWeights& l = layers[i];
    QSL_ASSIGN_OR_RETURN(l.attn_norm, file->ReadF32(LayerTensor(i, "input_layernorm.weight")));
    QSL_ASSIGN_OR_RETURN(l.mlp_norm,
                         file->ReadF32(LayerTensor(i, "post_attention_layernorm.weight")));
    for (LinearSlot s : {LinearSlot::kQ, LinearSlot::kK, LinearSlot::kV, LinearSlot::kO,
                         LinearSlot::kGate, LinearSlot::kUp, LinearSlot::kDown}) {
      QSL_ASSIGN_OR_RETURN(l.slot(s), linear(LayerTensor(i, LinearSlotName(s))));
    }
  }
  QSL_ASSIGN_OR_RETURN(std::vector<float> final_norm, file->ReadF32("model.norm.weight"));
  QSL_ASSIGN_OR_RETURN(Linear lm_head, linear("lm_head"));
  QSL_ASSIGN_OR_RETURN(auto tok, Tokenizer::FromBytes(file->tokenizer().bytes(), file->path()));
  auto model = std::make_unique<Model>(c, std::move(tok), std::move(embed), std::move(layers),
                                       std::move(final_norm), std::move(lm_head), file);
  // The writer validated the provenance as a JSON object; a missing or odd entry means fp16.
  const auto prov = nlohmann::json::parse(file->provenance_json(), nullptr, false);
  if (prov.is_object() && prov.contains("kv_cache") && prov["kv_cache"].is_string()) {
    model->kv_cache_dtype_ = prov["kv_cache"].get<std::string>();
  }
  return model;
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& path,
                                                  MappedFile::Backing backing) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(
        path, ": no such file or directory (expected a packed model file or a Hugging Face "
              "checkpoint directory)"));
  }
  if (std::filesystem::is_directory(path, ec)) {
    QSL_ASSIGN_OR_RETURN(auto ck, HfCheckpoint::Open(path));
    return FromCheckpoint(*ck);
  }
  QSL_ASSIGN_OR_RETURN(std::shared_ptr<const PackedModel> file,
                       PackedModel::Open(path, {.backing = backing}));
  return FromPacked(std::move(file));
}

}  // namespace qsl
