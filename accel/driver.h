// The host driver of an MPE card: turns one linear layer into a command stream (PlanLinear) and
// runs it on any transport (sim, RTL under Verilator, XRT) through MpeDriver. One driver, three
// transports: the transport only moves bytes and executes commands.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "accel/command_stream.h"
#include "accel/mpe_config.h"
#include "format/weight_tiles.h"

namespace qsl {

// Knobs of the schedule. The defaults are what the driver uses; tests vary them to produce
// different (valid) command streams for the same layer.
struct PlanOptions {
  int64_t block_rows = 0;  // tokens per M-block; 0: the most the activation/accumulator slots hold
  int32_t prefetch = 0;    // weight tiles loaded ahead of the array; 0: DefaultPrefetch
  bool early_act_load = true;  // with two activation slots, load block b+1 while b computes
};

// One linear layer as the card runs it. Card memory holds the weight tiles (loaded once, at
// weight_addr), and per call a staging area: every activation block, then every accumulator
// region (block b, n-tile nt).
struct LinearPlan {
  std::vector<Command> commands;
  int64_t m = 0;
  int64_t block_rows = 0;  // rows of every block but possibly the last
  int64_t blocks = 0;
  int64_t n_tiles = 0, k_tiles = 0;
  int32_t cols = 0;
  std::vector<int64_t> act_offset;  // per block, from the start of the staging area
  std::vector<int64_t> out_offset;  // per block: its first region; region nt follows at nt * size
  int64_t staging_bytes = 0;

  int64_t rows(int64_t b) const { return b + 1 < blocks ? block_rows : m - b * block_rows; }
  int64_t out_region(int64_t b, int64_t nt) const {
    return out_offset[b] + nt * AccumulatorRegionBytes(rows(b), cols);
  }
};

// Plans y[m, n] = x[m, k] W^T for a weight whose tiles match the array (tile_k = rows, tile_n =
// cols). Errors say why a layer cannot run on this card (tile shape, K too long for a slot).
absl::StatusOr<LinearPlan> PlanLinear(const MpeConfig& config, const TiledLayout& layout,
                                      uint64_t weight_addr, uint64_t staging_addr, int64_t m,
                                      const PlanOptions& options = {});

// Half the weight slots: a LOAD_W is placed `prefetch` tiles ahead of the STREAM that needs it,
// so when the in-order dispatcher reaches it, the slot it refills (that of the tile `w_slots -
// prefetch` earlier, whose rows the array latches over `rows` cycles) is already free and the
// load queue never holds up the STREAMs behind it. Half is enough for decode on the default
// card (docs/mpe.md, "Schedule").
int32_t DefaultPrefetch(const MpeConfig& config);

// log2 of the W4 metadata rows one group covers inside a tile (LOAD_W's group_shift).
uint8_t GroupShift(const TiledLayout& layout);

// What a card's run reports back.
struct RunStats {
  int64_t cycles = 0;  // the card's cycle counter from start to done
};

// A card as the driver sees it: an address space of card memory and a command executor.
// Implementations: SimCard (accel/sim_card.h), XrtCard (accel/xrt_card.h), VerilatedCard (rtl/).
class CardTransport {
 public:
  virtual ~CardTransport() = default;
  virtual const MpeConfig& config() const = 0;
  virtual std::string Describe() const = 0;

  virtual absl::StatusOr<uint64_t> Allocate(uint64_t bytes) = 0;
  virtual absl::Status Free(uint64_t addr) = 0;
  virtual absl::Status Write(uint64_t addr, const void* src, uint64_t bytes) = 0;
  virtual absl::Status Read(uint64_t addr, void* dst, uint64_t bytes) = 0;
  // Places a weight that stays resident. Cards copy it into card memory; the simulated card,
  // whose memory is host memory anyway, maps the bytes in place.
  virtual absl::StatusOr<uint64_t> PlaceWeights(const uint8_t* bytes, uint64_t size);
  // Runs one command batch to completion. Unavailable when the card has failed.
  virtual absl::StatusOr<RunStats> Execute(std::span<const Command> commands) = 0;
};

// The driver's running account of one card (for qsl devices, metrics and the sim report).
struct CardCounters {
  int64_t batches = 0;
  int64_t commands = 0;
  int64_t cycles = 0;       // card cycles spent in batches
  int64_t useful_macs = 0;  // m * n * k of the layers run (padding excluded)
  int64_t weight_bytes = 0;  // read from card memory
  int64_t act_bytes = 0;
  int64_t out_bytes = 0;     // written to card memory
  int64_t upload_bytes = 0;  // weights placed on the card
};

// Drives one card: weights placed once, then one command batch per Matmul.
class MpeDriver {
 public:
  explicit MpeDriver(std::unique_ptr<CardTransport> transport, PlanOptions options = {});
  ~MpeDriver();

  // Places the weight of linear `id` on the card (once); the view must stay valid until Remove.
  absl::Status Add(int id, const LinearWeightsView& w);
  absl::Status Remove(int id);
  bool Has(int id) const { return linears_.count(id) != 0; }
  int64_t resident_bytes() const;

  // acc[m, n] (row stride n) = the int32 accumulators of A8 a[m, k_pad] times linear `id`.
  absl::Status Matmul(int id, const int8_t* a, int64_t m, int32_t* acc);

  const CardCounters& counters() const { return counters_; }
  CardTransport& transport() { return *transport_; }
  const CardTransport& transport() const { return *transport_; }

 private:
  struct Resident {
    TiledLayout layout;
    uint64_t addr = 0;
  };
  absl::Status EnsureStaging(int64_t bytes);

  std::unique_ptr<CardTransport> transport_;
  PlanOptions options_;
  std::map<int, Resident> linears_;
  uint64_t staging_addr_ = 0;
  int64_t staging_bytes_ = 0;
  std::vector<uint8_t> host_staging_;
  CardCounters counters_;
};

}  // namespace qsl
