// The MPE's host interface: the 16-byte command encoding that the driver writes and the simulated
// card, the RTL (rtl/mpe_defs.svh) and a real card through XRT all execute, plus the layouts of
// activation blocks and accumulator regions in card memory. docs/mpe.md gives the same tables.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "format/weight_tiles.h"

namespace qsl {

// Opcodes. Each command goes to one of three queues: LOAD_W and LOAD_A to the load unit (reads
// card memory into on-chip rings), STREAM to the execute unit (the array), DRAIN to the store
// unit (accumulators back to card memory).
enum class Opcode : uint8_t {
  kLoadWeights = 1,      // LOAD_W: one tile record into the next weight slot
  kLoadActivations = 2,  // LOAD_A: an activation block into the next activation slot
  kStream = 3,           // STREAM: rows of the head activation slot through the next weight tile
  kDrain = 4,            // DRAIN: the oldest complete accumulator slot to card memory
};
const char* OpcodeName(Opcode op);

inline constexpr int kCommandBytes = 16;

// The AXI-Lite control registers of the MPE (rtl/mpe_defs.svh has the same offsets). The layout
// follows Vitis' ap_ctrl_hs convention so XRT can start the kernel: arguments from 0x10.
namespace mpe_regs {
inline constexpr uint32_t kCtrl = 0x00;         // W bit0: start; R bit0 running, bit1 done, bit2 idle
inline constexpr uint32_t kNumCommands = 0x10;  // commands the next run accepts
inline constexpr uint32_t kStatus = 0x14;       // MpeStatus of the last run
inline constexpr uint32_t kCyclesLo = 0x18;     // cycles of the last run, start to done
inline constexpr uint32_t kCyclesHi = 0x1c;
inline constexpr uint32_t kCommandsDone = 0x20;
// Read-only identity, so a host can check that the bitstream matches its MpeConfig.
inline constexpr uint32_t kMagic = 0x30;  // 0x3145504d, "MPE1"
inline constexpr uint32_t kRows = 0x34, kCols = 0x38, kWeightSlots = 0x3c, kActSlotBytes = 0x40,
                          kAccRingRows = 0x44, kMemBeats = 0x48, kQueueDepth = 0x4c,
                          kOperandBits = 0x50,  // act | weight << 8 | acc << 16
                          kDoubleBuffer = 0x54;
inline constexpr uint32_t kMagicValue = 0x3145504d;
}  // namespace mpe_regs

// Status codes the card reports in mpe_regs::kStatus.
enum MpeStatus : uint32_t { kMpeOk = 0, kMpeBadCommand = 1 };
const char* MpeStatusName(uint32_t status);

// One decoded command. Fields a given opcode does not use are zero (the encoding rejects
// anything else so that a corrupt stream is caught, not executed).
//
// Word 0 (little-endian uint64):
//   [3:0]   opcode            [7:4]  reserved (0)
//   [8]     LOAD_W: scheme (0 = w8, 1 = w4);  STREAM: acc_first
//   [9]     STREAM: acc_last  [10]   STREAM: pop_act   [11] reserved (0)
//   [15:12] LOAD_W: group_shift = log2(W4 metadata rows of a group inside the tile)
//   [31:16] count: LOAD_W/LOAD_A beats of 64 B; STREAM/DRAIN rows (tokens)
//   [63:32] STREAM: act_row, the first row of the activation slot to stream
// Word 1: LOAD_W/LOAD_A/DRAIN: byte address in card memory, 64-byte aligned; STREAM: 0.
struct Command {
  Opcode op = Opcode::kStream;
  WeightScheme scheme = WeightScheme::kW8;
  uint8_t group_shift = 0;
  bool acc_first = false;  // start a new accumulator slot (overwrite instead of add)
  bool acc_last = false;   // this STREAM completes the accumulator slot (a DRAIN may follow)
  bool pop_act = false;    // last STREAM reading the head activation slot: free it
  uint32_t count = 0;
  uint32_t act_row = 0;
  uint64_t addr = 0;

  static Command LoadWeights(uint64_t addr, uint32_t beats, WeightScheme scheme,
                             uint8_t group_shift);
  static Command LoadActivations(uint64_t addr, uint32_t beats);
  static Command Stream(uint32_t rows, uint32_t act_row, bool acc_first, bool acc_last,
                        bool pop_act);
  static Command Drain(uint64_t addr, uint32_t rows);
  bool operator==(const Command&) const = default;
};

std::string ToString(const Command& c);

void EncodeCommand(const Command& c, uint8_t out[kCommandBytes]);
// Rejects unknown opcodes, reserved bits and fields the opcode does not use; names the byte.
absl::StatusOr<Command> DecodeCommand(const uint8_t in[kCommandBytes]);
std::vector<uint8_t> EncodeCommands(std::span<const Command> commands);
absl::StatusOr<std::vector<Command>> DecodeCommands(std::span<const uint8_t> bytes);

// Card-memory layout of an activation block: `rows` token rows of int8 A8 (stride k_pad, as
// QuantizeActivations writes them) stored k-tile major, [k_pad / tile_k][rows][tile_k], so every
// STREAM reads `rows` consecutive tile_k-byte rows; the block is zero-padded to whole beats.
int64_t ActivationBlockBytes(int64_t rows, int64_t k_pad);
void PackActivationBlock(const int8_t* a, int64_t rows, int64_t k_pad, int32_t tile_k,
                         uint8_t* out);

// Card-memory layout of one drained accumulator slot: `rows` rows of `cols` little-endian int32,
// padded to whole beats. Unpacking copies its first n_cols columns into columns [n0, n0 + n_cols)
// of acc (row stride ldacc).
int64_t AccumulatorRegionBytes(int64_t rows, int32_t cols);
void UnpackAccumulatorRegion(const uint8_t* region, int64_t rows, int32_t cols, int64_t n0,
                             int64_t n_cols, int32_t* acc, int64_t ldacc);

}  // namespace qsl
