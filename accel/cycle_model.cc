// The cycle account: one forward pass, every time computed from earlier commands only. The RTL
// implements the same rules register by register; rtl/cosim_test.cc checks they agree exactly.
#include "accel/cycle_model.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace qsl {
namespace {

enum Queue { kLoadQueue = 0, kExecQueue = 1, kStoreQueue = 2 };

Queue QueueOf(Opcode op) {
  switch (op) {
    case Opcode::kLoadWeights:
    case Opcode::kLoadActivations: return kLoadQueue;
    case Opcode::kStream: return kExecQueue;
    case Opcode::kDrain: return kStoreQueue;
  }
  return kLoadQueue;
}

using Interval = std::pair<int64_t, int64_t>;  // [first, last] cycles

// Length of the union of sorted-by-start intervals, and of its intersection with `other`
// (disjoint, sorted).
std::pair<int64_t, int64_t> UnionAndOverlap(const std::vector<Interval>& spans,
                                            const std::vector<Interval>& other) {
  std::vector<Interval> merged;
  for (const Interval& s : spans) {
    if (!merged.empty() && s.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, s.second);
    } else {
      merged.push_back(s);
    }
  }
  int64_t total = 0, overlap = 0;
  size_t j = 0;
  for (const Interval& m : merged) {
    total += m.second - m.first + 1;
    while (j < other.size() && other[j].second < m.first) ++j;
    for (size_t k = j; k < other.size() && other[k].first <= m.second; ++k) {
      overlap += std::min(m.second, other[k].second) - std::max(m.first, other[k].first) + 1;
    }
  }
  return {total, overlap};
}

class Account {
 public:
  explicit Account(const MpeConfig& c) : c_(c) {}

  absl::Status Step(const Command& cmd, CommandTiming& t) {
    t.dispatch = Dispatch(QueueOf(cmd.op));
    switch (cmd.op) {
      case Opcode::kLoadWeights: return LoadWeights(cmd, t);
      case Opcode::kLoadActivations: return LoadActivations(cmd, t);
      case Opcode::kStream: return Stream(cmd, t);
      case Opcode::kDrain: return Drain(cmd, t);
    }
    return absl::InvalidArgumentError("unknown opcode");
  }

  absl::StatusOr<CycleAccount> Finish() {
    if (w_free_.size() != w_ready_.size()) {
      return Fail("end", absl::StrCat(w_ready_.size() - w_free_.size(),
                                      " loaded weight tiles are never streamed"));
    }
    if (a_free_.size() != a_ready_.size()) {
      return Fail("end", "an activation slot is never popped (no STREAM with pop_act)");
    }
    if (acc_open_ || acc_free_.size() != acc_ready_.size()) {
      return Fail("end", "an accumulator tile is never completed and drained");
    }
    end_ = std::max(end_, next_dispatch_);
    a_.cycles = end_ + 1;
    if (a_.streams > 0) a_.tail_cycles = a_.cycles - exec_free_;
    else a_.head_cycles = a_.cycles;
    std::tie(a_.weight_load_cycles, a_.overlap_cycles) = UnionAndOverlap(w_spans_, s_spans_);
    return a_;
  }

  absl::Status Fail(absl::string_view where, absl::string_view why) const {
    return absl::InvalidArgumentError(absl::StrCat("command ", index_, " (", where, "): ", why));
  }
  void set_index(int64_t i) { index_ = i; }

 private:
  // Cycle the command enters its queue: one per cycle, in order, when the queue has room (the
  // entry `queue_depth` places earlier has left it).
  int64_t Dispatch(Queue q) {
    int64_t d = next_dispatch_;
    std::vector<int64_t>& pops = pops_[q];
    if (static_cast<int64_t>(pops.size()) >= c_.queue_depth) {
      d = std::max(d, pops[pops.size() - c_.queue_depth] + 1);
    }
    next_dispatch_ = d + 1;
    return d;
  }

  // The read port: in order, `mem_beats_per_cycle` beats per cycle, a request's first beat no
  // earlier than `mem_latency_cycles` after its issue. Returns the cycle of its last beat.
  int64_t Read(int64_t issue, int64_t beats, int64_t* first) {
    const int64_t avail = issue + c_.mem_latency_cycles;
    if (avail > port_cycle_) {
      port_cycle_ = avail;
      port_used_ = 0;
    }
    *first = port_cycle_;
    const int64_t total = port_used_ + beats;
    const int64_t last = port_cycle_ + (total - 1) / c_.mem_beats_per_cycle;
    port_cycle_ += total / c_.mem_beats_per_cycle;
    port_used_ = total % c_.mem_beats_per_cycle;
    end_ = std::max(end_, last + 1);
    return last;
  }

  // Issue of a load: in order, one per cycle, once its ring has a free slot (`space`).
  int64_t IssueLoad(int64_t dispatch, int64_t space) {
    const int64_t p = std::max({dispatch + 1, last_load_ + 1, space});
    last_load_ = p;
    pops_[kLoadQueue].push_back(p);
    return p;
  }

  absl::Status LoadWeights(const Command& cmd, CommandTiming& t) {
    const int64_t beats = cmd.count;
    if (cmd.scheme == WeightScheme::kW4 &&
        (cmd.group_shift < 2 || (1 << cmd.group_shift) > c_.rows)) {
      return Fail("LOAD_W", absl::StrCat("group_shift ", cmd.group_shift, " outside [2, log2 ",
                                         c_.rows, "]"));
    }
    const int64_t need = (WeightRecordBytes(c_, cmd.scheme, cmd.group_shift) + 63) / 64;
    if (beats < need || beats > c_.w_slot_beats()) {
      return Fail("LOAD_W", absl::StrCat(beats, " beats; a ", WeightSchemeName(cmd.scheme),
                                         " tile record needs ", need, " and a slot holds ",
                                         c_.w_slot_beats()));
    }
    const int64_t j = static_cast<int64_t>(w_ready_.size());
    int64_t space = 0;
    if (j >= c_.w_slots()) {
      if (j - c_.w_slots() >= static_cast<int64_t>(w_free_.size())) {
        return Fail("LOAD_W", absl::StrCat("deadlock: all ", c_.w_slots(),
                                           " weight slots are full and the STREAM that frees "
                                           "one comes later in the stream"));
      }
      space = w_free_[j - c_.w_slots()];
    }
    t.issue = IssueLoad(t.dispatch, space);
    int64_t first = 0;
    const int64_t last = Read(t.issue, beats, &first);
    w_spans_.push_back({first, last});
    w_ready_.push_back(last + 1);
    t.done = last + 1;
    a_.weight_beats += beats;
    return absl::OkStatus();
  }

  absl::Status LoadActivations(const Command& cmd, CommandTiming& t) {
    const int64_t beats = cmd.count;
    if (beats > c_.a_slot_bytes() / kBeatBytes) {
      return Fail("LOAD_A", absl::StrCat(beats, " beats exceed an activation slot of ",
                                         c_.a_slot_bytes() / kBeatBytes));
    }
    const int64_t a = static_cast<int64_t>(a_ready_.size());
    int64_t space = 0;
    if (a >= c_.a_slots()) {
      if (a - c_.a_slots() >= static_cast<int64_t>(a_free_.size())) {
        return Fail("LOAD_A", "deadlock: every activation slot is in use and the STREAM that "
                              "pops one comes later in the stream");
      }
      space = a_free_[a - c_.a_slots()];
    }
    t.issue = IssueLoad(t.dispatch, space);
    int64_t first = 0;
    const int64_t last = Read(t.issue, beats, &first);
    a_ready_.push_back(last + 1);
    a_beats_.push_back(beats);
    t.done = last + 1;
    a_.act_beats += beats;
    return absl::OkStatus();
  }

  // Checks the accumulator protocol of a STREAM and returns the first cycle it may start
  // because of the accumulator ring: a new tile needs its rows free, i.e. every older tile that
  // cannot share the ring with it drained (single buffered: every older tile).
  absl::StatusOr<int64_t> AccumulatorSpace(const Command& cmd) {
    if (cmd.count > c_.acc_tile_rows()) {
      return Fail("STREAM", absl::StrCat(cmd.count, " rows exceed the ", c_.acc_tile_rows(),
                                         " rows an accumulator tile may take"));
    }
    if (!cmd.acc_first) {
      if (!acc_open_) return Fail("STREAM", "adds to an accumulator tile no STREAM opened");
      if (cmd.count != acc_tile_rows_.back()) {
        return Fail("STREAM", absl::StrCat(cmd.count, " rows but its accumulator tile has ",
                                           acc_tile_rows_.back()));
      }
      return 0;
    }
    if (acc_open_) return Fail("STREAM", "acc_first while an accumulator tile is still open");
    acc_open_ = true;
    acc_tile_rows_.push_back(cmd.count);
    acc_prefix_.push_back(acc_prefix_.back() + cmd.count);
    const int64_t u = static_cast<int64_t>(acc_tile_rows_.size()) - 1;
    while (acc_prefix_[u + 1] - acc_prefix_[acc_oldest_] > c_.acc_ring_rows() ||
           (!c_.double_buffer && acc_oldest_ < u)) {
      ++acc_oldest_;
    }
    if (acc_oldest_ == 0) return 0;
    if (acc_oldest_ - 1 >= static_cast<int64_t>(acc_free_.size())) {
      return Fail("STREAM", "deadlock: the accumulator ring waits for a DRAIN that comes later "
                            "in the stream");
    }
    return acc_free_[acc_oldest_ - 1];
  }

  absl::Status Stream(const Command& cmd, CommandTiming& t) {
    const int64_t j = static_cast<int64_t>(w_free_.size());
    const int64_t head = static_cast<int64_t>(a_free_.size());
    if (j >= static_cast<int64_t>(w_ready_.size())) {
      return Fail("STREAM", "no LOAD_W before it provides its weight tile");
    }
    if (head >= static_cast<int64_t>(a_ready_.size())) {
      return Fail("STREAM", "no LOAD_A before it provides its activation slot");
    }
    const int64_t rows = cmd.count;
    if ((int64_t{cmd.act_row} + rows) * c_.rows > a_beats_[head] * kBeatBytes) {
      return Fail("STREAM", absl::StrCat("rows [", cmd.act_row, ", ", cmd.act_row + rows,
                                         ") lie beyond what its LOAD_A loaded"));
    }
    QSL_ASSIGN_OR_RETURN(const int64_t acc_space, AccumulatorSpace(cmd));
    const std::array<int64_t, 4> ready = {w_ready_[j], a_ready_[head], acc_space, t.dispatch + 1};
    t.issue = std::max(exec_free_, *std::max_element(ready.begin(), ready.end()));
    if (a_.streams == 0) {
      a_.head_cycles = t.issue;
    } else if (t.issue > exec_free_) {
      const int64_t cause = std::max_element(ready.begin(), ready.end()) - ready.begin();
      int64_t* stall[] = {&a_.stall_weights, &a_.stall_acts, &a_.stall_acc, &a_.stall_dispatch};
      *stall[cause] += t.issue - exec_free_;
    }
    pops_[kExecQueue].push_back(t.issue);
    exec_free_ = t.issue + rows;
    s_spans_.push_back({t.issue, t.issue + rows - 1});
    // Row r of the array latches the tile at t.issue + r: the slot is free after the last row.
    w_free_.push_back(t.issue + c_.rows);
    if (cmd.pop_act) a_free_.push_back(t.issue + rows);
    // Row i reaches the accumulators at t.issue + i + rows + 1.
    t.done = t.issue + rows + c_.rows + 1;
    if (cmd.acc_last) {
      acc_ready_.push_back(t.done);
      acc_open_ = false;
    }
    end_ = std::max(end_, t.done);
    a_.streams += 1;
    a_.stream_rows += rows;
    a_.array_macs += rows * c_.macs_per_cycle();
    return absl::OkStatus();
  }

  absl::Status Drain(const Command& cmd, CommandTiming& t) {
    const int64_t u = static_cast<int64_t>(acc_free_.size());
    if (u >= static_cast<int64_t>(acc_ready_.size())) {
      return Fail("DRAIN", "no completed accumulator tile (STREAM with acc_last) before it");
    }
    if (cmd.count != acc_tile_rows_[u]) {
      return Fail("DRAIN", absl::StrCat(cmd.count, " rows but the tile has ", acc_tile_rows_[u]));
    }
    const int64_t rows = cmd.count;
    t.issue = std::max({t.dispatch + 1, store_free_, acc_ready_[u]});
    pops_[kStoreQueue].push_back(t.issue);
    store_free_ = t.issue + rows;
    acc_free_.push_back(store_free_);
    // Row i is read at issue + i, written at issue + i + 1, acknowledged mem_latency later.
    t.done = t.issue + rows + c_.mem_latency_cycles + 1;
    end_ = std::max(end_, t.done);
    a_.write_bytes += rows * c_.cols * 4;
    return absl::OkStatus();
  }

  const MpeConfig& c_;
  CycleAccount a_;
  int64_t index_ = 0;
  std::array<std::vector<int64_t>, 3> pops_;
  int64_t next_dispatch_ = 0, last_load_ = -1;
  int64_t port_cycle_ = 0, port_used_ = 0;
  std::vector<int64_t> w_ready_, w_free_;            // per tile: data ready, slot free
  std::vector<int64_t> a_ready_, a_beats_, a_free_;  // per activation block
  std::vector<int64_t> acc_ready_, acc_tile_rows_, acc_free_;  // per accumulator tile
  std::vector<int64_t> acc_prefix_ = {0};  // rows of the tiles before each tile
  int64_t acc_oldest_ = 0;  // oldest tile the newest may share the ring with
  bool acc_open_ = false;
  int64_t exec_free_ = 0, store_free_ = 0, end_ = 0;
  std::vector<Interval> w_spans_, s_spans_;
};

}  // namespace

CycleAccount& CycleAccount::operator+=(const CycleAccount& o) {
  cycles += o.cycles;
  commands += o.commands;
  streams += o.streams;
  stream_rows += o.stream_rows;
  array_macs += o.array_macs;
  head_cycles += o.head_cycles;
  tail_cycles += o.tail_cycles;
  stall_weights += o.stall_weights;
  stall_acts += o.stall_acts;
  stall_acc += o.stall_acc;
  stall_dispatch += o.stall_dispatch;
  weight_beats += o.weight_beats;
  act_beats += o.act_beats;
  write_bytes += o.write_bytes;
  weight_load_cycles += o.weight_load_cycles;
  overlap_cycles += o.overlap_cycles;
  return *this;
}

int64_t WeightRecordBytes(const MpeConfig& config, WeightScheme scheme, int group_shift) {
  const int64_t elems = int64_t{config.rows} * config.cols;
  if (scheme == WeightScheme::kW8) return elems;
  const int64_t groups = config.rows >> group_shift;
  return elems / 2 + groups * config.cols * 3 / 2;
}

absl::StatusOr<CycleAccount> AccountCycles(const MpeConfig& config,
                                           std::span<const Command> commands,
                                           std::vector<CommandTiming>* trace) {
  Account account(config);
  std::vector<CommandTiming> local;
  std::vector<CommandTiming>& times = trace != nullptr ? *trace : local;
  times.assign(commands.size(), {});
  for (size_t i = 0; i < commands.size(); ++i) {
    account.set_index(static_cast<int64_t>(i));
    QSL_RETURN_IF_ERROR(account.Step(commands[i], times[i]));
  }
  account.set_index(static_cast<int64_t>(commands.size()));
  QSL_ASSIGN_OR_RETURN(CycleAccount a, account.Finish());
  a.commands = static_cast<int64_t>(commands.size());
  return a;
}

}  // namespace qsl
