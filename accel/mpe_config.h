// MpeConfig: the one description of an MPE card. The driver plans command streams from it, the
// cycle model counts with it, the RTL is elaborated from the same JSON file (rtl/mpe_params.cmake)
// and the quantizer reads rows/cols to choose the weight tile shape.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "format/weight_tiles.h"

namespace qsl {

// Bytes of one beat of the card memory interface (a 512-bit AXI data beat).
inline constexpr int64_t kBeatBytes = 64;

// No defaults here: the default card lives in accel/mpe/u280.json only (DefaultMpeConfig()).
struct MpeConfig {
  std::string name;
  std::string description;
  // The array: rows along K (a weight tile's tile_k), cols along N (tile_n); powers of two.
  int32_t rows = 0;
  int32_t cols = 0;
  // Operand widths. The numeric contract fixes int8 x int8 -> int32; the RTL takes them as
  // parameters, the C++ model accepts only the contract's values.
  int32_t act_bits = 0;
  int32_t weight_bits = 0;
  int32_t acc_bits = 0;
  double clock_mhz = 0;
  // Card memory: beats delivered per cycle by the read port (and accepted by the write port),
  // and the cycles from a read request to its first beat.
  int32_t mem_beats_per_cycle = 0;
  int32_t mem_latency_cycles = 0;
  int64_t mem_bytes = 0;
  // On-chip buffers. With double buffering each is split into ring slots so that loads run
  // ahead of compute; without it every ring has one slot and loads wait for the array.
  int64_t weight_buffer_bytes = 0;
  int64_t act_buffer_bytes = 0;
  int64_t acc_buffer_bytes = 0;
  bool double_buffer = false;
  // Depth of each of the three command queues (load, execute, store).
  int32_t queue_depth = 0;

  // Checks every field and every derived size; the message names the field.
  absl::Status Validate() const;

  // Derived geometry (valid after Validate()).
  TileShape tile() const { return {rows, cols}; }
  int64_t w_slot_bytes() const;  // one W8 tile record; a W4 record always fits too
  int64_t w_slot_beats() const { return w_slot_bytes() / kBeatBytes; }
  int32_t w_slots() const;
  int32_t a_slots() const { return double_buffer ? 2 : 1; }
  int64_t a_slot_bytes() const;  // multiple of 64 and of rows
  int64_t a_slot_rows() const { return a_slot_bytes() / rows; }
  // The accumulator memory is a ring of rows (one row = cols int32 for one token); a tile of m
  // rows takes m consecutive rows. Double buffered, a tile may take half the ring so the next
  // fills while the last drains; single buffered, one tile at a time may take all of it.
  int64_t acc_ring_rows() const { return acc_buffer_bytes / (int64_t{cols} * 4); }
  int64_t acc_tile_rows() const { return double_buffer ? acc_ring_rows() / 2 : acc_ring_rows(); }
  int64_t mem_bytes_per_cycle() const { return mem_beats_per_cycle * kBeatBytes; }
  double mem_bandwidth_gbps() const { return mem_bytes_per_cycle() * clock_mhz * 1e-3; }
  int64_t macs_per_cycle() const { return int64_t{rows} * cols; }
  double clock_hz() const { return clock_mhz * 1e6; }

  bool operator==(const MpeConfig&) const = default;
};

// Parses a complete config: every field is required and unknown fields are rejected, so a file
// always says everything the RTL is elaborated from. Errors name the field.
absl::StatusOr<MpeConfig> ParseMpeConfig(absl::string_view json_text);
absl::StatusOr<MpeConfig> LoadMpeConfig(const std::string& path);
std::string MpeConfigToJson(const MpeConfig& c);

// The documented default card (accel/mpe/u280.json, compiled in so no file is needed).
const MpeConfig& DefaultMpeConfig();

}  // namespace qsl
