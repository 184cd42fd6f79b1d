// A Hugging Face checkpoint directory of the Llama family: config.json, safetensors weights (one
// file or sharded with model.safetensors.index.json) and a sentencepiece tokenizer.model.
// Open() validates the whole directory (every expected tensor present with the right dtype and
// shape) before anything is used; tensors are read from the mmapped files on demand, so a
// quantizer can stream a large model layer by layer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "format/model_config.h"
#include "format/safetensors.h"
#include "format/tokenizer.h"

namespace qsl {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

// Hugging Face name of a per-layer tensor: LayerTensor(3, "mlp.up_proj.weight").
std::string LayerTensor(int64_t layer, const std::string& suffix);

// Every tensor a Llama-family model of this config needs, with its shape (lm_head omitted when
// embeddings are tied; biases included when the config has them).
std::vector<TensorSpec> LlamaTensorSpecs(const ModelConfig& config);

class HfCheckpoint {
 public:
  static absl::StatusOr<std::unique_ptr<HfCheckpoint>> Open(const std::string& dir);

  const ModelConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }
  const std::string& config_json() const { return config_json_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  // The safetensors files, in the order their tensors were indexed (for provenance hashing).
  std::vector<std::string> weight_files() const;

  const TensorInfo* Find(const std::string& name) const;
  // An fp32 copy of a float tensor (F32, F16 or BF16 on disk).
  absl::StatusOr<std::vector<float>> ReadF32(const std::string& name) const;

 private:
  HfCheckpoint() = default;
  absl::Status LoadWeights();
  absl::Status CheckTensors() const;

  std::string dir_;
  std::string config_json_;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> index_;
};

}  // namespace qsl
