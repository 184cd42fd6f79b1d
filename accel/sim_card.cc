// The simulated card: protocol and cycles from the cycle model, results from the CPU kernel run
// tile by tile exactly as the STREAM commands say.
#include "accel/sim_card.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "accel/linear.h"
#include "base/status.h"

namespace qsl {
namespace {

struct LoadedTile {
  const uint8_t* record = nullptr;
  WeightScheme scheme = WeightScheme::kW8;
  int group_shift = 0;
};

// One tile record seen as a whole (one-tile) linear weight, so the CPU kernel can run it.
LinearWeightsView TileView(const MpeConfig& c, const LoadedTile& t) {
  LinearWeightsView v;
  v.layout.scheme = t.scheme;
  v.layout.n = c.cols;
  v.layout.k = c.rows;
  v.layout.tile_k = c.rows;
  v.layout.tile_n = c.cols;
  v.layout.group = t.scheme == WeightScheme::kW4 ? (1 << t.group_shift) : 0;
  v.tiles = t.record;
  return v;
}

}  // namespace

SimCard::SimCard(MpeConfig config, int index)
    : config_(std::move(config)),
      index_(index),
      memory_(config_.mem_bytes),
      acc_ring_(config_.acc_ring_rows() * config_.cols, 0) {}

std::string SimCard::Describe() const {
  return absl::StrCat("sim:", index_, " (", config_.name, ", ", config_.rows, "x", config_.cols,
                      " @ ", config_.clock_mhz, " MHz, ", config_.mem_bandwidth_gbps(), " GB/s)");
}

absl::Status SimCard::Write(uint64_t addr, const void* src, uint64_t bytes) {
  QSL_ASSIGN_OR_RETURN(uint8_t * dst, memory_.writable(addr, bytes));
  std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status SimCard::Read(uint64_t addr, void* dst, uint64_t bytes) {
  QSL_ASSIGN_OR_RETURN(const uint8_t* src, memory_.readable(addr, bytes));
  std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::StatusOr<RunStats> SimCard::Execute(std::span<const Command> commands) {
  const std::string name = absl::StrCat("sim:", index_);
  if (failed_) return absl::UnavailableError(absl::StrCat(name, " is down"));
  auto account = AccountCycles(config_, commands);
  if (!account.ok()) return Annotate(account.status(), name);
  const int64_t n = static_cast<int64_t>(commands.size());
  if (fail_after_ >= 0 && commands_run_ + n > fail_after_) {
    failed_ = true;
    return absl::UnavailableError(absl::StrCat(name, ": injected fault after ",
                                               fail_after_, " commands"));
  }
  QSL_RETURN_IF_ERROR(Annotate(Run(commands), name));
  commands_run_ += n;
  last_ = *account;
  account_ += *account;
  return RunStats{account->cycles};
}

absl::Status SimCard::Run(std::span<const Command> commands) {
  const MpeConfig& c = config_;
  std::vector<LoadedTile> tiles;
  std::vector<const uint8_t*> blocks;
  size_t next_tile = 0, head_block = 0;
  // Accumulator ring: the open tile starts at row `tile_base`, the next drain at `drain_base`.
  const int64_t ring = c.acc_ring_rows();
  int64_t next_base = 0, tile_base = 0, drain_base = 0;
  std::vector<int64_t> tile_rows;  // of every tile not yet drained, oldest first
  size_t drained = 0;
  std::vector<int32_t> product(c.acc_tile_rows() * c.cols);
  for (const Command& cmd : commands) {
    const uint64_t bytes = uint64_t{cmd.count} * kBeatBytes;
    switch (cmd.op) {
      case Opcode::kLoadWeights: {
        QSL_ASSIGN_OR_RETURN(const uint8_t* p, memory_.readable(cmd.addr, bytes));
        tiles.push_back({p, cmd.scheme, cmd.group_shift});
        break;
      }
      case Opcode::kLoadActivations: {
        QSL_ASSIGN_OR_RETURN(const uint8_t* p, memory_.readable(cmd.addr, bytes));
        blocks.push_back(p);
        break;
      }
      case Opcode::kStream: {
        const auto* a = reinterpret_cast<const int8_t*>(blocks[head_block]) +
                        int64_t{cmd.act_row} * c.rows;
        MatmulInt8(TileView(c, tiles[next_tile++]), a, cmd.count, product.data(), c.cols);
        if (cmd.acc_first) {
          tile_base = next_base;
          next_base = (next_base + cmd.count) % ring;
          tile_rows.push_back(cmd.count);
        }
        for (int64_t t = 0; t < cmd.count; ++t) {
          int32_t* row = &acc_ring_[((tile_base + t) % ring) * c.cols];
          for (int64_t n = 0; n < c.cols; ++n) {
            // Wrapping int32 addition, as the accumulators of the array do.
            const uint32_t base = cmd.acc_first ? 0u : static_cast<uint32_t>(row[n]);
            row[n] = static_cast<int32_t>(base + static_cast<uint32_t>(product[t * c.cols + n]));
          }
        }
        if (cmd.pop_act) ++head_block;
        break;
      }
      case Opcode::kDrain: {
        const uint64_t row_bytes = static_cast<uint64_t>(c.cols) * 4;
        QSL_ASSIGN_OR_RETURN(uint8_t * dst, memory_.writable(cmd.addr, cmd.count * row_bytes));
        for (int64_t t = 0; t < cmd.count; ++t) {
          std::memcpy(dst + t * row_bytes, &acc_ring_[((drain_base + t) % ring) * c.cols],
                      row_bytes);
        }
        drain_base = (drain_base + tile_rows[drained++]) % ring;
        break;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace qsl
