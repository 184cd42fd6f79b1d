// Command-stream planning for one linear layer and the per-card driver that runs it.
#include "accel/driver.h"

#include <algorithm>
#include <bit>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace qsl {
namespace {

struct TileRef {
  int64_t block, nt, kt;
};

// Execution order of the tiles: M-block major, then n-tile, then k-tile, so one accumulator
// slot collects a whole n-tile over K before it is drained.
std::vector<TileRef> TileOrder(int64_t blocks, int64_t n_tiles, int64_t k_tiles) {
  std::vector<TileRef> order;
  order.reserve(blocks * n_tiles * k_tiles);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t nt = 0; nt < n_tiles; ++nt) {
      for (int64_t kt = 0; kt < k_tiles; ++kt) order.push_back({b, nt, kt});
    }
  }
  return order;
}

absl::Status CheckFits(const MpeConfig& config, const TiledLayout& layout, int64_t m) {
  if (layout.tile_k != config.rows || layout.tile_n != config.cols) {
    return absl::FailedPreconditionError(absl::StrCat(
        "weight tiles are ", layout.tile_k, "x", layout.tile_n, " but card '", config.name,
        "' has a ", config.rows, "x", config.cols,
        " array: quantize the model with this --mpe-config so the tiles match"));
  }
  if (m <= 0 || m > (int64_t{1} << 31)) {
    return absl::InvalidArgumentError(absl::StrCat("token count ", m, " out of range"));
  }
  if (config.a_slot_rows() / layout.k_tiles() < 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "k = ", layout.k, " needs ", layout.k_pad(), " bytes per token but an activation slot of '",
        config.name, "' holds ", config.a_slot_bytes()));
  }
  return absl::OkStatus();
}

}  // namespace

int32_t DefaultPrefetch(const MpeConfig& config) {
  return std::max(1, config.w_slots() / 2);
}

uint8_t GroupShift(const TiledLayout& layout) {
  if (layout.scheme != WeightScheme::kW4) return 0;
  const int32_t rows_per_group = std::min(layout.group, layout.tile_k);
  return static_cast<uint8_t>(std::countr_zero(static_cast<uint32_t>(rows_per_group)));
}

absl::StatusOr<LinearPlan> PlanLinear(const MpeConfig& config, const TiledLayout& layout,
                                      uint64_t weight_addr, uint64_t staging_addr, int64_t m,
                                      const PlanOptions& options) {
  QSL_RETURN_IF_ERROR(CheckFits(config, layout, m));
  if (weight_addr % kBeatBytes != 0 || staging_addr % kBeatBytes != 0) {
    return absl::InvalidArgumentError("card addresses must be 64-byte aligned");
  }
  LinearPlan p;
  p.m = m;
  p.n_tiles = layout.n_tiles();
  p.k_tiles = layout.k_tiles();
  p.cols = config.cols;
  const int64_t most = std::min(config.a_slot_rows() / p.k_tiles, config.acc_tile_rows());
  p.block_rows = std::min({options.block_rows > 0 ? options.block_rows : most, most, m});
  p.blocks = (m + p.block_rows - 1) / p.block_rows;

  int64_t at = 0;
  for (int64_t b = 0; b < p.blocks; ++b) {
    p.act_offset.push_back(at);
    at += ActivationBlockBytes(p.rows(b), layout.k_pad());
  }
  for (int64_t b = 0; b < p.blocks; ++b) {
    p.out_offset.push_back(at);
    at += p.n_tiles * AccumulatorRegionBytes(p.rows(b), p.cols);
  }
  p.staging_bytes = at;

  const std::vector<TileRef> order = TileOrder(p.blocks, p.n_tiles, p.k_tiles);
  const int64_t total = static_cast<int64_t>(order.size());
  const int64_t prefetch = std::min<int64_t>(
      options.prefetch > 0 ? std::min(options.prefetch, config.w_slots()) : DefaultPrefetch(config),
      total);
  const uint32_t tile_beats = static_cast<uint32_t>(layout.tile_stride() / kBeatBytes);
  const uint8_t gshift = GroupShift(layout);
  auto load_w = [&](const TileRef& t) {
    return Command::LoadWeights(weight_addr + layout.tile_offset(t.nt, t.kt), tile_beats,
                                layout.scheme, gshift);
  };
  auto load_a = [&](int64_t b) {
    return Command::LoadActivations(
        staging_addr + p.act_offset[b],
        static_cast<uint32_t>(ActivationBlockBytes(p.rows(b), layout.k_pad()) / kBeatBytes));
  };
  const bool early = options.early_act_load && config.a_slots() > 1;

  std::vector<Command>& cmds = p.commands;
  cmds.push_back(load_a(0));
  for (int64_t j = 0; j < prefetch; ++j) cmds.push_back(load_w(order[j]));
  for (int64_t j = 0; j < total; ++j) {
    const TileRef& t = order[j];
    const uint32_t rows = static_cast<uint32_t>(p.rows(t.block));
    const bool first = t.kt == 0, last = t.kt == p.k_tiles - 1;
    const bool pop = last && t.nt == p.n_tiles - 1;
    cmds.push_back(Command::Stream(rows, static_cast<uint32_t>(t.kt * rows), first, last, pop));
    if (last) cmds.push_back(Command::Drain(staging_addr + p.out_region(t.block, t.nt), rows));
    // The next block's activations go behind the first STREAM of this block (two slots) or
    // behind the STREAM that frees the only slot.
    const bool next_block = t.block + 1 < p.blocks;
    if (next_block && (early ? (t.nt == 0 && first) : pop)) cmds.push_back(load_a(t.block + 1));
    // A weight slot frees when STREAM j has latched its tile: refill it with tile j + prefetch.
    if (j + prefetch < total) cmds.push_back(load_w(order[j + prefetch]));
  }
  return p;
}

absl::StatusOr<uint64_t> CardTransport::PlaceWeights(const uint8_t* bytes, uint64_t size) {
  QSL_ASSIGN_OR_RETURN(uint64_t addr, Allocate(size));
  QSL_RETURN_IF_ERROR(Write(addr, bytes, size));
  return addr;
}

MpeDriver::MpeDriver(std::unique_ptr<CardTransport> transport, PlanOptions options)
    : transport_(std::move(transport)), options_(options) {}

MpeDriver::~MpeDriver() {
  for (const auto& [id, r] : linears_) transport_->Free(r.addr).IgnoreError();
  if (staging_bytes_ > 0) transport_->Free(staging_addr_).IgnoreError();
}

absl::Status MpeDriver::Add(int id, const LinearWeightsView& w) {
  if (linears_.count(id) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("linear ", id, " is already on the card"));
  }
  QSL_RETURN_IF_ERROR(CheckFits(transport_->config(), w.layout, 1));
  QSL_ASSIGN_OR_RETURN(uint64_t addr, transport_->PlaceWeights(w.tiles, w.layout.bytes()));
  linears_[id] = {w.layout, addr};
  counters_.upload_bytes += w.layout.bytes();
  return absl::OkStatus();
}

absl::Status MpeDriver::Remove(int id) {
  auto it = linears_.find(id);
  if (it == linears_.end()) return absl::NotFoundError(absl::StrCat("linear ", id, " not on card"));
  QSL_RETURN_IF_ERROR(transport_->Free(it->second.addr));
  linears_.erase(it);
  return absl::OkStatus();
}

int64_t MpeDriver::resident_bytes() const {
  int64_t b = 0;
  for (const auto& [id, r] : linears_) b += r.layout.bytes();
  return b;
}

absl::Status MpeDriver::EnsureStaging(int64_t bytes) {
  if (bytes <= staging_bytes_) return absl::OkStatus();
  if (staging_bytes_ > 0) QSL_RETURN_IF_ERROR(transport_->Free(staging_addr_));
  staging_bytes_ = 0;
  QSL_ASSIGN_OR_RETURN(staging_addr_, transport_->Allocate(bytes));
  staging_bytes_ = bytes;
  return absl::OkStatus();
}

absl::Status MpeDriver::Matmul(int id, const int8_t* a, int64_t m, int32_t* acc) {
  auto it = linears_.find(id);
  if (it == linears_.end()) return absl::NotFoundError(absl::StrCat("linear ", id, " not on card"));
  const TiledLayout& l = it->second.layout;
  const MpeConfig& config = transport_->config();
  QSL_ASSIGN_OR_RETURN(LinearPlan plan,
                       PlanLinear(config, l, it->second.addr, staging_addr_, m, options_));
  if (plan.staging_bytes > staging_bytes_) {
    QSL_RETURN_IF_ERROR(EnsureStaging(plan.staging_bytes));
    QSL_ASSIGN_OR_RETURN(plan, PlanLinear(config, l, it->second.addr, staging_addr_, m, options_));
  }
  host_staging_.resize(plan.staging_bytes);
  for (int64_t b = 0; b < plan.blocks; ++b) {
    PackActivationBlock(a + b * plan.block_rows * l.k_pad(), plan.rows(b), l.k_pad(), l.tile_k,
                        host_staging_.data() + plan.act_offset[b]);
  }
  const int64_t out_start = plan.out_offset[0];
  QSL_RETURN_IF_ERROR(transport_->Write(staging_addr_, host_staging_.data(), out_start));
  QSL_ASSIGN_OR_RETURN(RunStats run, transport_->Execute(plan.commands));
  QSL_RETURN_IF_ERROR(transport_->Read(staging_addr_ + out_start, host_staging_.data() + out_start,
                                       plan.staging_bytes - out_start));
  for (int64_t b = 0; b < plan.blocks; ++b) {
    for (int64_t nt = 0; nt < plan.n_tiles; ++nt) {
      const int64_t n0 = nt * l.tile_n;
      UnpackAccumulatorRegion(host_staging_.data() + plan.out_region(b, nt), plan.rows(b),
                              l.tile_n, n0, std::min<int64_t>(l.tile_n, l.n - n0),
                              acc + b * plan.block_rows * l.n, l.n);
    }
  }
  counters_.batches += 1;
  counters_.commands += static_cast<int64_t>(plan.commands.size());
  counters_.cycles += run.cycles;
  counters_.useful_macs += m * l.n * l.k;
  for (const Command& c : plan.commands) {
    if (c.op == Opcode::kLoadWeights) counters_.weight_bytes += int64_t{c.count} * kBeatBytes;
    if (c.op == Opcode::kLoadActivations) counters_.act_bytes += int64_t{c.count} * kBeatBytes;
    if (c.op == Opcode::kDrain) counters_.out_bytes += int64_t{c.count} * l.tile_n * 4;
  }
  return absl::OkStatus();
}

}  // namespace qsl
