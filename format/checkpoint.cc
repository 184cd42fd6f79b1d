#include "format/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace qsl {

namespace fs = std::filesystem;
using nlohmann::json;

std::string LayerTensor(int64_t layer, const std::string& suffix) {
  return absl::StrCat("model.layers.", layer, ".", suffix);
}

std::vector<TensorSpec> LlamaTensorSpecs(const ModelConfig& c) {
  const int64_t h = c.hidden_size, i = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  std::vector<TensorSpec> specs = {{"model.embed_tokens.weight", {c.vocab_size, h}}};
  for (int64_t l = 0; l < c.num_layers; ++l) {
    auto add = [&](const std::string& suffix, std::vector<int64_t> shape) {
      specs.push_back({LayerTensor(l, suffix), std::move(shape)});
    };
    add("input_layernorm.weight", {h});
    add("self_attn.q_proj.weight", {q, h});
    add("self_attn.k_proj.weight", {kv, h});
    add("self_attn.v_proj.weight", {kv, h});
    add("self_attn.o_proj.weight", {h, q});
    if (c.attention_bias) {
      add("self_attn.q_proj.bias", {q});
      add("self_attn.k_proj.bias", {kv});
      add("self_attn.v_proj.bias", {kv});
    }
    if (c.o_bias) add("self_attn.o_proj.bias", {h});
    add("post_attention_layernorm.weight", {h});
    add("mlp.gate_proj.weight", {i, h});
    add("mlp.up_proj.weight", {i, h});
    add("mlp.down_proj.weight", {h, i});
    if (c.mlp_bias) {
      add("mlp.gate_proj.bias", {i});
      add("mlp.up_proj.bias", {i});
      add("mlp.down_proj.bias", {h});
    }
  }
  specs.push_back({"model.norm.weight", {h}});
  if (!c.tie_word_embeddings) specs.push_back({"lm_head.weight", {c.vocab_size, h}});
  return specs;
}

namespace {

absl::StatusOr<std::string> ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(p.string(), ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<HfCheckpoint>> HfCheckpoint::Open(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": not a directory (expected a Hugging Face "
                                            "checkpoint with config.json)"));
  }
  auto ck = std::unique_ptr<HfCheckpoint>(new HfCheckpoint());
  ck->dir_ = dir;
  const fs::path config_path = fs::path(dir) / "config.json";
  if (!fs::exists(config_path)) return absl::NotFoundError(absl::StrCat(dir, ": missing config.json"));
  QSL_ASSIGN_OR_RETURN(ck->config_json_, ReadText(config_path));
  QSL_ASSIGN_OR_RETURN(ck->config_, ModelConfig::FromJson(ck->config_json_, config_path.string()));

  const fs::path tok_path = fs::path(dir) / "tokenizer.model";
  if (!fs::exists(tok_path)) {
    return absl::NotFoundError(absl::StrCat(
        dir, ": missing tokenizer.model (a sentencepiece model; tokenizer.json alone is "
             "unsupported)"));
  }
  QSL_ASSIGN_OR_RETURN(ck->tokenizer_, Tokenizer::FromFile(tok_path.string()));
  if (ck->tokenizer_->vocab_size() > ck->config_.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        tok_path.string(), ": tokenizer has ", ck->tokenizer_->vocab_size(),
        " pieces but config.json vocab_size is ", ck->config_.vocab_size));
  }
  QSL_RETURN_IF_ERROR(ck->LoadWeights());
  QSL_RETURN_IF_ERROR(ck->CheckTensors());
  return ck;
}

absl::Status HfCheckpoint::LoadWeights() {
  const fs::path single = fs::path(dir_) / "model.safetensors";
  const fs::path index_path = fs::path(dir_) / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    QSL_ASSIGN_OR_RETURN(const std::string text, ReadText(index_path));
    json index;
    try {
      index = json::parse(text);
    } catch (const json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path.string(), ": invalid JSON: ", e.what()));
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path.string(), ": no \"weight_map\" object"));
    }
    std::map<std::string, size_t> file_slot;
    for (const auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(index_path.string(), ": weight_map entry '", name, "' is not a file name"));
      }
      const std::string fname = file.get<std::string>();
      if (fname.find('/') != std::string::npos || fname.find("..") != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat(index_path.string(), ": shard name '", fname, "' must be a plain file name"));
      }
      if (!file_slot.count(fname)) {
        QSL_ASSIGN_OR_RETURN(auto st, SafetensorsFile::Open((fs::path(dir_) / fname).string()));
        file_slot[fname] = files_.size();
        files_.push_back(std::move(st));
      }
      const SafetensorsFile& st = *files_[file_slot[fname]];
      const TensorInfo* t = st.Find(name);
      if (t == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(index_path.string(), ": maps '", name,
                                                       "' to ", fname, ", which does not hold it"));
      }
      index_[name] = t;
    }
  } else if (fs::exists(single)) {
    QSL_ASSIGN_OR_RETURN(auto st, SafetensorsFile::Open(single.string()));
    for (const auto& [name, t] : st->tensors()) index_[name] = &t;
    files_.push_back(std::move(st));
  } else {
    return absl::NotFoundError(
        absl::StrCat(dir_, ": missing weights (model.safetensors or model.safetensors.index.json)"));
  }
  return absl::OkStatus();
}

absl::Status HfCheckpoint::CheckTensors() const {
  for (const TensorSpec& spec : LlamaTensorSpecs(config_)) {
    const TensorInfo* t = Find(spec.name);
    if (t == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(dir_, ": missing tensor '", spec.name, "'"));
    }
    if (!IsFloat(t->dtype)) {
      return absl::InvalidArgumentError(absl::StrCat(t->file, ": tensor '", spec.name, "' has dtype ",
                                                     DTypeName(t->dtype),
                                                     "; expected F32, F16 or BF16"));
    }
    if (t->shape != spec.shape) {
      TensorInfo want;
      want.shape = spec.shape;
      return absl::InvalidArgumentError(absl::StrCat(t->file, ": tensor '", spec.name, "' has shape ",
                                                     t->ShapeString(), "; config.json implies ",
                                                     want.ShapeString()));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> HfCheckpoint::weight_files() const {
  std::vector<std::string> out;
  for (const auto& f : files_) out.push_back(f->path());
  return out;
}

const TensorInfo* HfCheckpoint::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

absl::StatusOr<std::vector<float>> HfCheckpoint::ReadF32(const std::string& name) const {
  const TensorInfo* t = Find(name);
  if (t == nullptr) return absl::NotFoundError(absl::StrCat(dir_, ": no tensor '", name, "'"));
  if (!IsFloat(t->dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat(t->file, ": tensor '", name, "' is ", DTypeName(t->dtype), ", not a float"));
  }
  std::vector<float> out(static_cast<size_t>(t->numel()));
  ConvertToF32(t->dtype, t->data, t->numel(), out.data());
  return out;
}

}  // namespace qsl
