// A transformer's weights in the form one run uses them: fp32 (the reference-quality path) or
// packed int8/int4 views (the integer contract). Loading validates shapes against the config.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "format/checkpoint.h"
#include "format/model_config.h"
#include "format/packed_file.h"
#include "format/tokenizer.h"
#include "format/weight_tiles.h"

namespace qsl {

// y = x W^T (+ b) with W of shape [n, k].
struct Linear {
  int64_t n = 0, k = 0;
  std::vector<float> w;     // fp32 [n, k]; empty on the integer path
  std::vector<float> bias;  // [n] or empty
  LinearWeightsView q;      // integer path: tiles, per-channel scale (and bias) in the model file
  int32_t id = -1;          // index in Model::linears(), for devices that keep weights resident

  bool quantized() const { return q.tiles != nullptr; }
};

enum class LinearSlot : int8_t { kQ, kK, kV, kO, kGate, kUp, kDown, kLmHead };
const char* LinearSlotName(LinearSlot s);  // "self_attn.q_proj", ..., "lm_head"

struct LayerWeights {
  std::vector<float> attn_norm, mlp_norm;
  Linear q, k, v, o, gate, up, down;
  Linear& slot(LinearSlot s);
  const Linear& slot(LinearSlot s) const;
};

class Model {
 public:
  // The fp32 reference model straight from a Hugging Face checkpoint.
  static absl::StatusOr<std::unique_ptr<Model>> FromCheckpoint(const HfCheckpoint& ck);
  // The integer-path model of a packed file (format/packed_file.h): linear weights are views
  // into its mapping, norms and embeddings fp32 copies.
  static absl::StatusOr<std::unique_ptr<Model>> FromPacked(std::shared_ptr<const PackedModel> file);
  // A Hugging Face checkpoint directory, or a packed model file, mapped in place or read into
  // huge-page memory (`backing`; ignored for a checkpoint, whose weights are fp32 copies).
  static absl::StatusOr<std::unique_ptr<Model>> Load(
      const std::string& path, MappedFile::Backing backing = MappedFile::Backing::kMapped);

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::vector<float>& embed() const { return embed_; }  // [vocab, hidden]
  const std::vector<LayerWeights>& layers() const { return layers_; }
  const std::vector<float>& final_norm() const { return final_norm_; }
  const Linear& lm_head() const { return lm_head_; }
  // Every linear layer in execution order (layer 0 q..down, ..., lm_head), with its layer index
  // (num_layers for lm_head): what a device pool loads and shards.
  std::vector<std::pair<const Linear*, int32_t>> linears() const;
  bool quantized() const { return lm_head_.quantized(); }
  // The KV cache dtype the packed file asks for (`qsl quantize --kv`), "fp16" otherwise.
  const std::string& kv_cache_dtype() const { return kv_cache_dtype_; }

  // For the packed-file loader and tests: assemble from parts.
  Model(ModelConfig config, std::unique_ptr<Tokenizer> tokenizer, std::vector<float> embed,
        std::vector<LayerWeights> layers, std::vector<float> final_norm, Linear lm_head,
        std::shared_ptr<const void> keepalive = nullptr);

 private:
  void AssignIds();
  ModelConfig config_;
  std::string kv_cache_dtype_ = "fp16";
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<float> embed_;
  std::vector<LayerWeights> layers_;
  std::vector<float> final_norm_;
  Linear lm_head_;
  std::shared_ptr<const void> keepalive_;  // the mapped file the views point into
};

}  // namespace qsl
