// The Verilator harness: clocks mpe_top, feeds commands, plays card memory, and reads the RTL's
// own cycle counter. The memory read port here is a per-cycle model written independently of
// the cycle model's closed form, so the co-simulation also checks that the two agree.
#include "rtl/verilated_card.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "accel/command_stream.h"
#include "accel/device_pool.h"
#include "base/status.h"
#include "rtl/verilated_models.h"  // generated: the Vmpe*.h headers and QSL_FOR_EACH_RTL_MODEL
#include "verilated.h"

namespace qsl::rtl {
namespace {

// The card memory's read port, cycle by cycle: requests in order, a request's beats no earlier
// than `latency` cycles after its issue, at most `beats_per_cycle` beats per cycle.
class ReadPort {
 public:
  ReadPort(int beats_per_cycle, int latency) : per_cycle_(beats_per_cycle), latency_(latency) {}

  void Request(int64_t cycle, uint64_t addr, int beats) {
    pending_.push_back({cycle + latency_, addr, beats});
  }
  // Addresses of the beats delivered in `cycle`, oldest request first.
  void Deliver(int64_t cycle, std::vector<uint64_t>& beats) {
    beats.clear();
    while (!pending_.empty() && static_cast<int>(beats.size()) < per_cycle_ &&
           pending_.front().avail <= cycle) {
      Pending& p = pending_.front();
      beats.push_back(p.addr);
      p.addr += kBeatBytes;
      if (--p.beats == 0) pending_.pop_front();
    }
  }
  bool idle() const { return pending_.empty(); }

 private:
  struct Pending {
    int64_t avail;
    uint64_t addr;
    int beats;
  };
  int per_cycle_, latency_;
  std::deque<Pending> pending_;
};

template <typename V>
class Harness : public RtlModel {
 public:
  Harness() : context_(std::make_unique<VerilatedContext>()), top_(std::make_unique<V>(context_.get())) {
    top_->rst_n = 0;
    for (int i = 0; i < 4; ++i) Tick();
    top_->rst_n = 1;
    top_->m_rd_req_tready = 1;
    top_->s_axil_bready = 1;
    top_->s_axil_rready = 1;
    Tick();
  }
  ~Harness() override { top_->final(); }

  uint32_t ReadRegister(uint32_t offset) override {
    top_->s_axil_araddr = static_cast<uint8_t>(offset);
    top_->s_axil_arvalid = 1;
    while (!Tick([&] { return top_->s_axil_arready; })) {
    }
    top_->s_axil_arvalid = 0;
    while (!top_->s_axil_rvalid) Tick();
    const uint32_t value = top_->s_axil_rdata;
    Tick();  // the read handshake (rready is held high)
    return value;
  }

  absl::StatusOr<int64_t> Run(std::span<const Command> commands, const MpeConfig& config,
                              CardMemory& memory, int64_t cycle_limit) override {
    const int mem_latency = config.mem_latency_cycles;
    WriteRegister(mpe_regs::kNumCommands, static_cast<uint32_t>(commands.size()));
    // The start write: the run begins in the cycle after the write is accepted (the write
    // response completes during the run, bready being high).
    top_->s_axil_awaddr = mpe_regs::kCtrl;
    top_->s_axil_wdata = 1;
    top_->s_axil_awvalid = 1;
    top_->s_axil_wvalid = 1;
    while (!Tick([&] { return top_->s_axil_awready; })) {
    }
    top_->s_axil_awvalid = 0;
    top_->s_axil_wvalid = 0;

    const std::vector<uint8_t> encoded = EncodeCommands(commands);
    ReadPort port(config.mem_beats_per_cycle, mem_latency);
    std::map<int64_t, int> acks;  // cycle -> acknowledges due
    std::vector<uint64_t> beats;
    std::vector<uint8_t> row(sizeof(uint32_t) * config.cols);  // the accumulator row written
    size_t next = 0;
    for (int64_t now = 0; !top_->irq; ++now) {
      if (now > cycle_limit) {
        return absl::DeadlineExceededError(absl::StrCat("the RTL did not finish within ",
                                                        cycle_limit, " cycles"));
      }
      top_->s_cmd_tvalid = next < commands.size();
      if (next < commands.size()) {
        std::memcpy(top_->s_cmd_tdata.data(), &encoded[next * kCommandBytes], kCommandBytes);
      }
      port.Deliver(now, beats);
      for (size_t l = 0; l < beats.size(); ++l) {
        QSL_ASSIGN_OR_RETURN(const uint8_t* src, memory.readable(beats[l], kBeatBytes));
        std::memcpy(top_->s_rd_tdata.data() + l * 16, src, kBeatBytes);
      }
      top_->s_rd_tvalid = static_cast<std::remove_reference_t<decltype(top_->s_rd_tvalid)>>(
          (uint64_t{1} << beats.size()) - 1);
      auto due = acks.find(now);
      top_->s_wr_ack = due != acks.end();
      if (due != acks.end()) acks.erase(due);

      top_->clk = 0;
      top_->eval();
      const bool cmd_fire = top_->s_cmd_tvalid && top_->s_cmd_tready;
      const bool read_request = top_->m_rd_req_tvalid;
      const uint64_t read_addr = top_->m_rd_req_addr;
      const int read_beats = top_->m_rd_req_beats;
      const bool write = top_->m_wr_tvalid;
      const uint64_t write_addr = top_->m_wr_addr;
      if (write) std::memcpy(row.data(), top_->m_wr_tdata.data(), row.size());
      top_->clk = 1;
      top_->eval();

      if (trace_) {
        if (cmd_fire) std::fprintf(stderr, "rtl %6ld: dispatch %zu\n", static_cast<long>(now), next);
        if (read_request) {
          std::fprintf(stderr, "rtl %6ld: read %lu x%d\n", static_cast<long>(now),
                       static_cast<unsigned long>(read_addr), read_beats);
        }
        if (write) std::fprintf(stderr, "rtl %6ld: write %lu\n", static_cast<long>(now),
                                static_cast<unsigned long>(write_addr));
      }
      if (cmd_fire) ++next;
      if (read_request) port.Request(now, read_addr, read_beats);
      if (write) {
        QSL_ASSIGN_OR_RETURN(uint8_t * dst, memory.writable(write_addr, row.size()));
        std::memcpy(dst, row.data(), row.size());
        acks[now + mem_latency] += 1;
      }
    }
    const uint32_t status = ReadRegister(mpe_regs::kStatus);
    if (status != kMpeOk) {
      return absl::InternalError(absl::StrCat("the RTL stopped with status ", status, " (",
                                              MpeStatusName(status), ") after ", next,
                                              " commands"));
    }
    if (next != commands.size() || !port.idle() || !acks.empty()) {
      return absl::InternalError(absl::StrCat("the RTL stopped with ", commands.size() - next,
                                              " commands not taken or memory traffic pending"));
    }
    const uint64_t cycles = (uint64_t{ReadRegister(mpe_regs::kCyclesHi)} << 32) |
                            ReadRegister(mpe_regs::kCyclesLo);
    return static_cast<int64_t>(cycles);
  }

 private:
  // One clock cycle; `sample` (if any) is evaluated on the settled inputs before the edge.
  bool Tick(const std::function<bool()>& sample = nullptr) {
    top_->clk = 0;
    top_->eval();
    const bool seen = sample ? sample() : false;
    top_->clk = 1;
    top_->eval();
    return seen;
  }

  void WriteRegister(uint32_t offset, uint32_t value) {
    top_->s_axil_awaddr = static_cast<uint8_t>(offset);
    top_->s_axil_wdata = value;
    top_->s_axil_awvalid = 1;
    top_->s_axil_wvalid = 1;
    while (!Tick([&] { return top_->s_axil_awready; })) {
    }
    top_->s_axil_awvalid = 0;
    top_->s_axil_wvalid = 0;
    while (!Tick([&] { return top_->s_axil_bvalid; })) {
    }
  }

  std::unique_ptr<VerilatedContext> context_;
  std::unique_ptr<V> top_;
  // QSL_RTL_TRACE=1 prints every dispatch, read request and write with its cycle (for comparing
  // a run with the cycle model's CommandTiming when the two disagree).
  const bool trace_ = std::getenv("QSL_RTL_TRACE") != nullptr;
};

using ModelFactory = std::function<std::unique_ptr<RtlModel>()>;

const std::map<std::string, ModelFactory>& Models() {
  static const auto* models = new std::map<std::string, ModelFactory>{
#define QSL_RTL_MODEL_ENTRY(name) {#name, [] { return std::make_unique<Harness<V##name>>(); }},
      QSL_FOR_EACH_RTL_MODEL(QSL_RTL_MODEL_ENTRY)
#undef QSL_RTL_MODEL_ENTRY
  };
  return *models;
}

// The identity registers against the config (every field the RTL is elaborated from).
absl::Status CheckIdentity(RtlModel& m, const MpeConfig& c) {
  struct Expect {
    uint32_t reg;
    int64_t want;
    const char* what;
  };
  const Expect expect[] = {
      {mpe_regs::kMagic, mpe_regs::kMagicValue, "magic"},
      {mpe_regs::kRows, c.rows, "rows"},
      {mpe_regs::kCols, c.cols, "cols"},
      {mpe_regs::kWeightSlots, c.w_slots(), "weight slots"},
      {mpe_regs::kActSlotBytes, c.a_slot_bytes(), "activation slot bytes"},
      {mpe_regs::kAccRingRows, c.acc_ring_rows(), "accumulator rows"},
      {mpe_regs::kMemBeats, c.mem_beats_per_cycle, "memory beats per cycle"},
      {mpe_regs::kQueueDepth, c.queue_depth, "queue depth"},
      {mpe_regs::kOperandBits, c.act_bits | (c.weight_bits << 8) | (c.acc_bits << 16),
       "operand bits"},
      {mpe_regs::kDoubleBuffer, c.double_buffer ? 1 : 0, "double buffering"},
  };
  for (const Expect& e : expect) {
    const uint32_t got = m.ReadRegister(e.reg);
    if (got != static_cast<uint32_t>(e.want)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the Verilated MPE '", c.name, "' has ", e.what, " ", got, " but the MpeConfig says ",
          e.want, ": rebuild after editing rtl/configs/", c.name, ".json"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> RtlModelNames() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : Models()) names.push_back(name);
  return names;
}

VerilatedCard::VerilatedCard(MpeConfig config, int index, std::unique_ptr<RtlModel> model)
    : config_(std::move(config)),
      index_(index),
      model_(std::move(model)),
      memory_(config_.mem_bytes) {}

absl::StatusOr<std::unique_ptr<VerilatedCard>> VerilatedCard::Open(const MpeConfig& config,
                                                                   int index) {
  QSL_RETURN_IF_ERROR(config.Validate());
  auto it = Models().find(config.name);
  if (it == Models().end()) {
    return absl::NotFoundError(absl::StrCat(
        "no Verilated MPE build for config '", config.name, "' (built: ",
        absl::StrJoin(RtlModelNames(), ", "),
        "); pass --mpe-config rtl/configs/<name>.json and a model quantized with it"));
  }
  std::unique_ptr<RtlModel> model = it->second();
  QSL_RETURN_IF_ERROR(CheckIdentity(*model, config));
  return std::unique_ptr<VerilatedCard>(new VerilatedCard(config, index, std::move(model)));
}

std::string VerilatedCard::Describe() const {
  return absl::StrCat("rtl:", index_, " (Verilated ", config_.name, ", ", config_.rows, "x",
                      config_.cols, ")");
}

absl::Status VerilatedCard::Write(uint64_t addr, const void* src, uint64_t bytes) {
  QSL_ASSIGN_OR_RETURN(uint8_t * dst, memory_.writable(addr, bytes));
  std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status VerilatedCard::Read(uint64_t addr, void* dst, uint64_t bytes) {
  QSL_ASSIGN_OR_RETURN(const uint8_t* src, memory_.readable(addr, bytes));
  std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::StatusOr<RunStats> VerilatedCard::Execute(std::span<const Command> commands) {
  const std::string name = absl::StrCat("rtl:", index_);
  auto account = AccountCycles(config_, commands);
  if (!account.ok()) return Annotate(account.status(), name);
  last_account_ = *account;
  auto cycles = model_->Run(commands, config_, memory_, 4 * account->cycles + 1000);
  if (!cycles.ok()) return Annotate(cycles.status(), name);
  return RunStats{*cycles};
}

absl::StatusOr<RunStats> VerilatedCard::ExecuteUnchecked(std::span<const Command> commands) {
  QSL_ASSIGN_OR_RETURN(int64_t cycles, model_->Run(commands, config_, memory_, 100000));
  return RunStats{cycles};
}

void RegisterRtlCards() {
  RegisterCardKind(
      "rtl",
      absl::StrCat("the RTL under Verilator, builds ", absl::StrJoin(RtlModelNames(), ", "),
                   " (rtl:N with --mpe-config rtl/configs/<build>.json)"),
      [](const MpeConfig& config, int index) -> absl::StatusOr<std::unique_ptr<CardTransport>> {
        auto card = VerilatedCard::Open(config, index);
        if (!card.ok()) return card.status();
        return std::unique_ptr<CardTransport>(std::move(*card));
      });
}

namespace {
// Binaries that link this library whole (tools/qsl) offer `rtl:N` without further set-up.
const bool kRegistered = (RegisterRtlCards(), true);
}  // namespace

}  // namespace qsl::rtl
