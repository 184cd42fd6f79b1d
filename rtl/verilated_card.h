// The RTL as a card: a Verilated build of rtl/mpe_top.sv driven cycle by cycle, with this
// harness playing the card memory (a read port of mem_beats_per_cycle beats per cycle after
// mem_latency_cycles, a write port with acknowledges after the same latency). It is a
// CardTransport like the simulated card, so the driver, the pool (`rtl:N` devices) and the
// co-simulation tests run the same command streams on it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "accel/card_memory.h"
#include "accel/cycle_model.h"
#include "accel/driver.h"

namespace qsl::rtl {

// One Verilated build of the MPE (one per config in rtl/configs/).
class RtlModel {
 public:
  virtual ~RtlModel() = default;
  // Runs `commands` to completion against `memory`; returns the RTL's cycle counter.
  // The memory timing comes from `config` (mem_beats_per_cycle, mem_latency_cycles).
  virtual absl::StatusOr<int64_t> Run(std::span<const Command> commands, const MpeConfig& config,
                                      CardMemory& memory, int64_t cycle_limit) = 0;
  virtual uint32_t ReadRegister(uint32_t offset) = 0;
};

// The names of the Verilated builds in this binary (their MpeConfig names).
std::vector<std::string> RtlModelNames();

class VerilatedCard : public CardTransport {
 public:
  // Opens the build named config.name and checks its identity registers against `config`
  // (every field the RTL is elaborated from); mem_latency_cycles is free to vary.
  static absl::StatusOr<std::unique_ptr<VerilatedCard>> Open(const MpeConfig& config, int index);

  const MpeConfig& config() const override { return config_; }
  std::string Describe() const override;
  absl::StatusOr<uint64_t> Allocate(uint64_t bytes) override { return memory_.Allocate(bytes); }
  absl::Status Free(uint64_t addr) override { return memory_.Free(addr); }
  absl::Status Write(uint64_t addr, const void* src, uint64_t bytes) override;
  absl::Status Read(uint64_t addr, void* dst, uint64_t bytes) override;
  // Validates the stream with the cycle model first (the RTL trusts its host), then runs it.
  absl::StatusOr<RunStats> Execute(std::span<const Command> commands) override;

  // Runs commands the cycle model would reject (tests of the RTL's own command checks).
  absl::StatusOr<RunStats> ExecuteUnchecked(std::span<const Command> commands);

  // The cycle model's account of the last batch, for comparison with RunStats::cycles.
  const CycleAccount& last_model_account() const { return last_account_; }
  uint32_t ReadRegister(uint32_t offset) { return model_->ReadRegister(offset); }

 private:
  VerilatedCard(MpeConfig config, int index, std::unique_ptr<RtlModel> model);

  MpeConfig config_;
  int index_;
  std::unique_ptr<RtlModel> model_;
  CardMemory memory_;
  CycleAccount last_account_;
};

// Registers the `rtl` device kind with the pool (linked into binaries that offer `rtl:N`).
void RegisterRtlCards();

}  // namespace qsl::rtl
