// The MPE's exact cycle account: a forward pass over a command stream that computes, for every
// command, the cycle it is dispatched, issued and done, from the same rules the RTL implements
// (docs/mpe.md, "Cycle model", gives them as formulas). It also checks the stream's protocol,
// so a stream that would deadlock or read stale buffers is rejected before it runs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "accel/command_stream.h"
#include "accel/mpe_config.h"

namespace qsl {

// Where the cycles of one command batch went. cycles = head + stream_rows + the four stalls +
// tail: the execute unit either issues a row into the array or waits for one reason.
struct CycleAccount {
  int64_t cycles = 0;  // the card's counter from start to done
  int64_t commands = 0;
  int64_t streams = 0;
  int64_t stream_rows = 0;  // cycles the array took a new row ("compute")
  int64_t array_macs = 0;   // stream_rows * rows * cols (padding included)
  int64_t head_cycles = 0;  // before the first row: first loads and their latency
  int64_t tail_cycles = 0;  // after the last row: array pipeline, drain, write acknowledges
  int64_t stall_weights = 0;   // waiting for the next weight tile
  int64_t stall_acts = 0;      // waiting for an activation block
  int64_t stall_acc = 0;       // waiting for accumulator rows to be drained
  int64_t stall_dispatch = 0;  // waiting for the STREAM to be dispatched
  int64_t weight_beats = 0, act_beats = 0;
  int64_t write_bytes = 0;
  int64_t weight_load_cycles = 0;  // cycles the read port delivered weight beats
  int64_t overlap_cycles = 0;      // of those, cycles the array took a row at the same time

  CycleAccount& operator+=(const CycleAccount& o);
};

// Per-command times, for debugging and the co-simulation report.
struct CommandTiming {
  int64_t dispatch = 0;  // cycle it entered its queue
  int64_t issue = 0;     // cycle it left the queue (read request, first row, first drain row)
  int64_t done = 0;      // first cycle its effect is complete
};

absl::StatusOr<CycleAccount> AccountCycles(const MpeConfig& config,
                                           std::span<const Command> commands,
                                           std::vector<CommandTiming>* trace = nullptr);

// Bytes a tile record must have for LOAD_W (the card reads this much of the slot).
int64_t WeightRecordBytes(const MpeConfig& config, WeightScheme scheme, int group_shift);

}  // namespace qsl
