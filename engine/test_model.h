// Test-only models: small random Llama models built in memory (with the bundled tokenizer), and
// a plain round-to-nearest quantization of any fp32 Model into packed W8/W4 views, so engine tests
// can run the integer path without a packed model file.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/model.h"

namespace qsl::testing {

// A Llama config of the given shape; vocab is at most the bundled tokenizer's 4096.
ModelConfig TinyConfig(int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads,
                       int64_t intermediate, int64_t vocab);

// Random fp32 weights (normal, fixed seed) and the bundled model's tokenizer.
std::unique_ptr<Model> RandomModel(const ModelConfig& config, uint64_t seed);

// The bundled qsl-tiny-llama checkpoint in fp32.
std::unique_ptr<Model> BundledModel();

// Every linear (lm_head included) RTN-quantized and packed with the default tile shape: W8
// per-channel symmetric, or W4 progressive with groups of 128 and the QServe-style protective
// range (scale <= 15 so that (q4 - z) * s stays in [-127, 127]).
std::unique_ptr<Model> QuantizeRtn(const Model& model, WeightScheme scheme);

}  // namespace qsl::testing
