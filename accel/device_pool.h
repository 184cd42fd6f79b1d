// The devices the engine runs linear layers on: the CPU kernels, or a pool of MPE cards
// (simulated, Verilated RTL or real through XRT) that holds the model's layers as a pipeline
// (contiguous layer ranges per card), keeps per-card health and accounts, and fails over: when a
// card fails, its layers move to the remaining cards and the failed batch runs again there, so
// the caller sees the same bits.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "accel/driver.h"
#include "accel/mpe_config.h"
#include "format/weight_tiles.h"

namespace qsl {

struct DevicePoolOptions {
  // cpu | sim | sim:N | xrt | xrt:I,J,... | rtl | rtl:N
  std::string spec = "sim:1";
  MpeConfig config = DefaultMpeConfig();
  // Transformer layers per card, in pipeline order; empty: as even as possible.
  std::vector<int32_t> split;
  // Fault injection for sim cards, "CARD:COMMANDS": card CARD fails once it has run COMMANDS
  // more commands. Empty: the QSL_SIM_FAULT environment variable, if set.
  std::string sim_fault;
  std::string xclbin;  // the MPE bitstream for xrt devices
  PlanOptions plan;
};

// One linear layer to place: its packed weight (which must outlive the pool) and the pipeline
// stage it belongs to: its transformer layer (Model::linears() gives the lm_head num_layers,
// which makes it the last stage).
struct LinearDesc {
  LinearWeightsView weights;
  int32_t layer = 0;
};

struct CardStatus {
  int32_t index = 0;
  std::string name;  // the transport's description
  bool up = true;
  int32_t first_layer = 0, last_layer = -1;  // layers it owns now (empty when down)
  int64_t resident_bytes = 0;
  CardCounters counters;
  double utilization = 0;  // useful MACs / (rows * cols * card cycles), over its whole life
};

// MAC utilization between two snapshots of a card's counters (the metrics exporter calls this
// once per scrape for qsl_card_utilization_ratio); 0 when the card ran nothing in between.
double Utilization(const CardCounters& now, const CardCounters& before, int64_t macs_per_cycle);

// Card kinds other than sim and xrt register a factory (rtl/ registers "rtl") with a line that
// `qsl devices` shows.
using CardFactory = std::function<absl::StatusOr<std::unique_ptr<CardTransport>>(
    const MpeConfig& config, int index)>;
void RegisterCardKind(const std::string& kind, const std::string& description,
                      CardFactory factory);
struct CardKind {
  std::string kind, description;
};
std::vector<CardKind> RegisteredCardKinds();

class DevicePool {
 public:
  // Errors: a bad spec, no such device ("no XRT device found"), a config that does not validate.
  static absl::StatusOr<std::unique_ptr<DevicePool>> Create(const DevicePoolOptions& options);
  ~DevicePool();

  // Registers every linear layer once (linear_id = index in `linears`) and places the weights
  // on the card that owns their layer.
  absl::Status LoadModel(std::span<const LinearDesc> linears);

  // y[m, n] = epilogue(A8(x) W8^T) for linear `linear_id`; x is [m, k] fp32 (row stride k),
  // y is [m, n] (row stride n). The same bits on every device.
  absl::Status Linear(int linear_id, const float* x, int64_t m, float* y);

  bool is_cpu() const { return cards_.empty(); }
  std::string Describe() const;
  std::vector<CardStatus> Cards() const;
  int64_t failovers() const;
  const MpeConfig& config() const { return options_.config; }

  // Makes sim card `card` fail once it has run `commands` more commands.
  absl::Status InjectFault(int card, int64_t commands);

 private:
  struct Card;
  explicit DevicePool(DevicePoolOptions options);
  absl::Status Place(int id);
  absl::Status Failover(int card, const absl::Status& why);
  absl::Status RunOnCard(int id, const int8_t* a, int64_t m, int32_t* acc);

  DevicePoolOptions options_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Card>> cards_;
  std::vector<LinearDesc> linears_;
  std::vector<int32_t> owner_;  // card of each linear
  int32_t layers_ = 0;
  int64_t failovers_ = 0;
  std::vector<int8_t> a8_;
  std::vector<float> a_scale_;
  std::vector<int32_t> acc_;
};

}  // namespace qsl
