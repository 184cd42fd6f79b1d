// The simulated MPE card, the default device: it executes a command stream exactly (each STREAM
// is the CPU kernel on one tile, the contract being exact) and keeps the cycle account of a real
// card from the cycle model. A fault-injection hook makes it fail after N commands, for failover.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "accel/card_memory.h"
#include "accel/cycle_model.h"
#include "accel/driver.h"

namespace qsl {

class SimCard : public CardTransport {
 public:
  SimCard(MpeConfig config, int index);

  const MpeConfig& config() const override { return config_; }
  std::string Describe() const override;
  absl::StatusOr<uint64_t> Allocate(uint64_t bytes) override { return memory_.Allocate(bytes); }
  absl::Status Free(uint64_t addr) override { return memory_.Free(addr); }
  absl::Status Write(uint64_t addr, const void* src, uint64_t bytes) override;
  absl::Status Read(uint64_t addr, void* dst, uint64_t bytes) override;
  absl::StatusOr<uint64_t> PlaceWeights(const uint8_t* bytes, uint64_t size) override {
    return memory_.Map(bytes, size);
  }
  absl::StatusOr<RunStats> Execute(std::span<const Command> commands) override;

  // The card fails (and stays down) when a batch would take it past `commands` more commands.
  void InjectFault(int64_t commands) { fail_after_ = commands_run_ + commands; }
  bool failed() const { return failed_; }
  const CycleAccount& account() const { return account_; }  // every batch so far
  const CycleAccount& last_account() const { return last_; }

 private:
  absl::Status Run(std::span<const Command> commands);

  MpeConfig config_;
  int index_;
  CardMemory memory_;
  int64_t commands_run_ = 0;
  int64_t fail_after_ = -1;
  bool failed_ = false;
  CycleAccount account_, last_;
  std::vector<int32_t> acc_ring_;  // acc_ring_rows x cols
};

}  // namespace qsl
