// The quantizer: a Hugging Face checkpoint in, a packed W8/W4 model file out (format/
// packed_file.h). Streams layer by layer: calibration activations pass through each layer's
// fp32 weights (statistics), the layer is smoothed and quantized, and the activations move on
// through the quantized layer, so peak memory is a few layers plus the calibration activations.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "format/weight_tiles.h"

namespace qsl {

enum class QuantMethod { kRtn, kAwq, kGptq };
const char* QuantMethodName(QuantMethod m);  // "rtn", "awq", "gptq"

struct QuantizeOptions {
  std::string model_dir;                    // Hugging Face checkpoint
  std::string out;                          // packed file to write
  WeightScheme scheme = WeightScheme::kW8;  // w8a8 or w4a8 (activations are always int8)
  int32_t group = 128;                      // W4 group along K
  QuantMethod method = QuantMethod::kRtn;
  std::optional<float> smooth_alpha;         // SmoothQuant migration strength, when smoothing
  bool act_order = false;                    // GPTQ
  float damp = 0.01f;                        // GPTQ
  std::string calib_file;                    // calibration text (AWQ, GPTQ, SmoothQuant)
  int64_t calib_tokens = 65536;              // tokens used from it (it is cut into windows)
  int32_t calib_window = 512;                // tokens per calibration sequence (after BOS)
  int64_t awq_samples = 4096;                // tokens per layer on which AWQ evaluates its loss
  std::string kv_cache = "fp16";             // recorded for the runtime: fp16 or int8
  WeightScheme lm_head = WeightScheme::kW8;  // lm_head's scheme (W4 uses `group`)
  bool embed_f16 = true;                     // embedding stored F16 (else F32)
  TileShape tile;

  bool calibrated() const { return method != QuantMethod::kRtn || smooth_alpha.has_value(); }
};

struct QuantizeReport {
  int64_t linear_params = 0;  // weights of every quantized linear, lm_head included
  int64_t linear_bytes = 0;   // their tiles, scales and biases in the file
  int64_t file_bytes = 0;
  int64_t calib_tokens = 0;  // tokens actually used (BOS included)
  double bits_per_weight() const {
    return linear_params == 0
               ? 0.0
               : 8.0 * static_cast<double>(linear_bytes) / static_cast<double>(linear_params);
  }
};

// `progress(done, total, what)` is called as layers complete.
absl::StatusOr<QuantizeReport> QuantizeModel(
    const QuantizeOptions& options,
    const std::function<void(int64_t, int64_t, const std::string&)>& progress = nullptr);

}  // namespace qsl
