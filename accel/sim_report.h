// The sim report: what a real MPE card would do with a model, from shapes alone. Every linear
// layer is planned by the driver and counted by the cycle model (no weights are needed: cycles
// depend only on shapes and the schedule); decode and prefill are projected beside the
// bandwidth and compute rooflines. `qsl devices --report` prints it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "accel/cycle_model.h"
#include "accel/driver.h"
#include "accel/mpe_config.h"

namespace qsl {

// The shapes of a Llama-family decoder that decide the card's work.
struct ModelShape {
  std::string name;
  int64_t hidden = 0, layers = 0, intermediate = 0, heads = 0, kv_heads = 0, vocab = 0;
  int64_t head_dim = 0;  // 0: hidden / heads
  bool lm_head_on_card = true;
  int64_t dim_per_head() const { return head_dim > 0 ? head_dim : hidden / heads; }
};

// "tinyllama-1.1b" (hidden 2048, 22 layers, MLP 5632, 32 heads, 4 KV heads, vocab 32000),
// "qsl-tiny-llama" (the bundled model), or key=value pairs separated by commas:
// hidden, layers, mlp, heads, kv-heads, vocab, head-dim, lm-head (1 or 0).
absl::StatusOr<ModelShape> ParseModelShape(absl::string_view spec);

struct LinearShape {
  std::string name;  // q_proj, ..., lm_head
  int64_t n = 0, k = 0;
  int64_t count = 0;  // how many such layers one forward pass runs
};
std::vector<LinearShape> LinearShapes(const ModelShape& m);

struct ReportOptions {
  WeightScheme scheme = WeightScheme::kW8;
  int32_t group = 128;
  int64_t prompt_tokens = 512;
  std::vector<int64_t> decode_batches = {1};
  PlanOptions plan;
};

struct LinearReport {
  LinearShape shape;
  CycleAccount account;  // of one such layer
  int64_t useful_macs = 0;
  int64_t weight_bytes = 0;  // the packed tiles of one such layer
};

struct PhaseReport {
  std::string name;  // "decode" or "prefill"
  int64_t tokens = 0;  // rows per linear: the batch (decode) or the prompt (prefill)
  std::vector<LinearReport> linears;
  CycleAccount total;  // all layers of one forward pass
  int64_t useful_macs = 0;
  int64_t weight_bytes = 0;
  double seconds = 0;            // card time of one forward pass
  double tokens_per_s = 0;       // tokens / seconds
  double mem_roofline_tps = 0;   // weight bytes at full bandwidth
  double mac_roofline_tps = 0;   // useful MACs at one MAC per PE per cycle
  double mac_utilization = 0;    // useful MACs / (rows * cols * cycles)
};

struct SimReport {
  MpeConfig config;
  ModelShape model;
  ReportOptions options;
  std::vector<PhaseReport> decode;  // one per batch size
  PhaseReport prefill;
};

absl::StatusOr<SimReport> BuildSimReport(const MpeConfig& config, const ModelShape& model,
                                         const ReportOptions& options);
// Markdown tables; per-layer rows for every phase when `per_layer`.
std::string FormatSimReport(const SimReport& report, bool per_layer);

}  // namespace qsl
