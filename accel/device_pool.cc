// Device pool: spec parsing, pipeline placement of layers on cards, the linear op, failover.
#include "accel/device_pool.h"

#include <algorithm>
#include <cstdlib>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "accel/linear.h"
#include "accel/sim_card.h"
#include "accel/xrt_card.h"
#include "base/log.h"
#include "base/status.h"

namespace qsl {
namespace {

struct Registered {
  std::string description;
  CardFactory factory;
};

std::map<std::string, Registered>& Factories() {
  static auto* factories = new std::map<std::string, Registered>();
  return *factories;
}

struct Spec {
  std::string kind;
  std::vector<int> indices;  // the cards to open
};

absl::StatusOr<Spec> ParseSpec(const std::string& text) {
  const absl::Status bad = absl::InvalidArgumentError(absl::StrCat(
      "device spec '", text, "': expected cpu, sim:N, xrt, xrt:I,J,... or rtl:N"));
  std::pair<std::string, std::string> kv = absl::StrSplit(text, absl::MaxSplits(':', 1));
  Spec s{kv.first, {}};
  if (s.kind == "cpu") {
    if (!kv.second.empty()) return bad;
    return s;
  }
  if (s.kind == "xrt") {
    for (absl::string_view part : absl::StrSplit(kv.second, ',', absl::SkipEmpty())) {
      int i = 0;
      if (!absl::SimpleAtoi(part, &i) || i < 0) return bad;
      s.indices.push_back(i);
    }
    return s;
  }
  int n = 1;
  if (!kv.second.empty() && (!absl::SimpleAtoi(kv.second, &n) || n < 1 || n > 64)) {
    return absl::InvalidArgumentError(
        absl::StrCat("device spec '", text, "': the card count must be 1..64"));
  }
  for (int i = 0; i < n; ++i) s.indices.push_back(i);
  if (s.kind == "sim" || Factories().count(s.kind) != 0) return s;
  if (s.kind == "rtl") {
    return absl::UnimplementedError(
        "device spec 'rtl': this binary was built without the Verilated MPE (QSL_BUILD_RTL=OFF)");
  }
  return bad;
}

// "CARD:COMMANDS" -> (card, commands).
absl::StatusOr<std::pair<int, int64_t>> ParseFault(const std::string& text) {
  std::pair<std::string, std::string> kv = absl::StrSplit(text, absl::MaxSplits(':', 1));
  int card = 0;
  int64_t commands = 0;
  if (!absl::SimpleAtoi(kv.first, &card) || !absl::SimpleAtoi(kv.second, &commands) ||
      card < 0 || commands < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim fault '", text, "': expected CARD:COMMANDS, e.g. 2:5000"));
  }
  return std::make_pair(card, commands);
}

}  // namespace

struct DevicePool::Card {
  std::unique_ptr<MpeDriver> driver;
  SimCard* sim = nullptr;  // the transport when it is a simulated card (fault injection)
  bool up = true;
  int32_t first_layer = 0, last_layer = -1;
  bool Owns(int32_t layer) const { return up && layer >= first_layer && layer <= last_layer; }
};

void RegisterCardKind(const std::string& kind, const std::string& description,
                      CardFactory factory) {
  Factories()[kind] = {description, std::move(factory)};
}

std::vector<CardKind> RegisteredCardKinds() {
  std::vector<CardKind> out;
  for (const auto& [kind, r] : Factories()) out.push_back({kind, r.description});
  return out;
}

double Utilization(const CardCounters& now, const CardCounters& before, int64_t macs_per_cycle) {
  const int64_t cycles = now.cycles - before.cycles;
  if (cycles <= 0) return 0;
  return static_cast<double>(now.useful_macs - before.useful_macs) /
         (static_cast<double>(cycles) * static_cast<double>(macs_per_cycle));
}

DevicePool::DevicePool(DevicePoolOptions options) : options_(std::move(options)) {}
DevicePool::~DevicePool() = default;

absl::StatusOr<std::unique_ptr<DevicePool>> DevicePool::Create(const DevicePoolOptions& options) {
  QSL_ASSIGN_OR_RETURN(Spec spec, ParseSpec(options.spec));
  QSL_RETURN_IF_ERROR(Annotate(options.config.Validate(), "MPE config"));
  std::unique_ptr<DevicePool> pool(new DevicePool(options));
  if (spec.kind == "xrt") {
    const XrtProbe found = ProbeXrtDevices();
    if (found.devices.empty()) {
      return absl::NotFoundError(absl::StrCat("device spec '", options.spec,
                                              "': no XRT device found (", found.note,
                                              "); `qsl devices` lists what exists"));
    }
    if (spec.indices.empty()) {
      for (const XrtDeviceInfo& d : found.devices) spec.indices.push_back(d.index);
    }
  }
  for (int index : spec.indices) {
    auto card = std::make_unique<Card>();
    std::unique_ptr<CardTransport> transport;
    if (spec.kind == "sim") {
      auto sim = std::make_unique<SimCard>(options.config, index);
      card->sim = sim.get();
      transport = std::move(sim);
    } else if (spec.kind == "xrt") {
      QSL_ASSIGN_OR_RETURN(transport, OpenXrtCard(options.config, index, options.xclbin));
    } else if (spec.kind != "cpu") {
      QSL_ASSIGN_OR_RETURN(transport, Factories()[spec.kind].factory(options.config, index));
    }
    card->driver = std::make_unique<MpeDriver>(std::move(transport), options.plan);
    pool->cards_.push_back(std::move(card));
  }
  std::string fault = options.sim_fault;
  if (fault.empty() && std::getenv("QSL_SIM_FAULT") != nullptr) fault = std::getenv("QSL_SIM_FAULT");
  if (!fault.empty()) {
    QSL_ASSIGN_OR_RETURN(auto f, ParseFault(fault));
    QSL_RETURN_IF_ERROR(pool->InjectFault(f.first, f.second));
  }
  return pool;
}

absl::Status DevicePool::InjectFault(int card, int64_t commands) {
  std::lock_guard<std::mutex> lock(mu_);
  if (card < 0 || card >= static_cast<int>(cards_.size()) || cards_[card]->sim == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("fault injection: card ", card, " is not a simulated card of this pool"));
  }
  cards_[card]->sim->InjectFault(commands);
  return absl::OkStatus();
}

absl::Status DevicePool::LoadModel(std::span<const LinearDesc> linears) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!linears_.empty()) return absl::FailedPreconditionError("a model is already loaded");
  linears_.assign(linears.begin(), linears.end());
  if (cards_.empty()) return absl::OkStatus();
  for (const LinearDesc& l : linears_) {
    if (l.layer < 0) return absl::InvalidArgumentError("linear layer index is negative");
    layers_ = std::max(layers_, l.layer + 1);
  }
  const int32_t n = static_cast<int32_t>(cards_.size());
  std::vector<int32_t> split = options_.split;
  if (split.empty()) {
    for (int32_t c = 0; c < n; ++c) split.push_back((c + 1) * layers_ / n - c * layers_ / n);
  }
  int32_t total = 0;
  bool negative = false;
  for (int32_t s : split) {
    total += s;
    negative |= s < 0;
  }
  if (static_cast<int32_t>(split.size()) != n || negative || total != layers_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layer split ", absl::StrJoin(split, ","), ": needs ", n,
        " non-negative counts, one per card, adding up to the model's ", layers_, " layers"));
  }
  int32_t first = 0;
  for (int32_t c = 0; c < n; ++c) {
    cards_[c]->first_layer = first;
    cards_[c]->last_layer = first + split[c] - 1;
    first += split[c];
  }
  owner_.assign(linears_.size(), -1);
  for (int id = 0; id < static_cast<int>(linears_.size()); ++id) QSL_RETURN_IF_ERROR(Place(id));
  return absl::OkStatus();
}

absl::Status DevicePool::Place(int id) {
  const int32_t layer = linears_[id].layer;
  for (int c = 0; c < static_cast<int>(cards_.size()); ++c) {
    if (!cards_[c]->Owns(layer)) continue;
    owner_[id] = c;
    return Annotate(cards_[c]->driver->Add(id, linears_[id].weights),
                    absl::StrCat("placing linear ", id, " on ",
                                 cards_[c]->driver->transport().Describe()));
  }
  return absl::UnavailableError(absl::StrCat("no card is up to hold layer ", layer));
}

// Hands the failed card's layers to its nearest up neighbours (first half to the previous
// stage, second half to the next), so every card still owns one contiguous range, and places
// their weights there.
absl::Status DevicePool::Failover(int card, const absl::Status& why) {
  Card& failed = *cards_[card];
  failed.up = false;
  ++failovers_;
  spdlog::warn("{} failed ({}); moving layers {}..{} to the remaining cards",
               failed.driver->transport().Describe(), std::string(why.message()), failed.first_layer,
               failed.last_layer);
  int prev = card - 1, next = card + 1;
  while (prev >= 0 && !cards_[prev]->up) --prev;
  while (next < static_cast<int>(cards_.size()) && !cards_[next]->up) ++next;
  const bool has_prev = prev >= 0, has_next = next < static_cast<int>(cards_.size());
  if (!has_prev && !has_next) {
    return absl::UnavailableError(absl::StrCat("every card is down (last: ", why.message(), ")"));
  }
  const int32_t f = failed.first_layer, l = failed.last_layer;
  const int32_t mid = has_prev && has_next ? f + (l - f + 1) / 2 : (has_prev ? l + 1 : f);
  if (has_prev && mid > f) cards_[prev]->last_layer = mid - 1;
  if (has_next && mid <= l) cards_[next]->first_layer = mid;
  failed.last_layer = failed.first_layer - 1;
  for (int id = 0; id < static_cast<int>(linears_.size()); ++id) {
    if (owner_[id] == card) QSL_RETURN_IF_ERROR(Place(id));
  }
  return absl::OkStatus();
}

absl::Status DevicePool::RunOnCard(int id, const int8_t* a, int64_t m, int32_t* acc) {
  while (true) {
    const int card = owner_[id];
    const absl::Status st = cards_[card]->driver->Matmul(id, a, m, acc);
    if (st.code() != absl::StatusCode::kUnavailable) return st;
    // The batch did not complete: move the card's layers and run it again elsewhere.
    QSL_RETURN_IF_ERROR(Failover(card, st));
  }
}

absl::Status DevicePool::Linear(int linear_id, const float* x, int64_t m, float* y) {
  std::lock_guard<std::mutex> lock(mu_);
  if (linear_id < 0 || linear_id >= static_cast<int>(linears_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("unknown linear id ", linear_id));
  }
  if (m <= 0) return absl::InvalidArgumentError(absl::StrCat("token count ", m));
  const LinearWeightsView& w = linears_[linear_id].weights;
  const int64_t k = w.layout.k, k_pad = w.layout.k_pad(), n = w.layout.n;
  a8_.resize(m * k_pad);
  a_scale_.resize(m);
  QuantizeActivations(x, m, k, k, k_pad, a8_.data(), a_scale_.data());
  if (cards_.empty()) {
    LinearInt8(w, a8_.data(), a_scale_.data(), m, y, n);
    return absl::OkStatus();
  }
  acc_.resize(m * n);
  QSL_RETURN_IF_ERROR(RunOnCard(linear_id, a8_.data(), m, acc_.data()));
  Epilogue(w, acc_.data(), n, a_scale_.data(), m, y, n);
  return absl::OkStatus();
}

std::string DevicePool::Describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (cards_.empty()) return "cpu";
  std::vector<std::string> names;
  for (const auto& c : cards_) names.push_back(c->driver->transport().Describe());
  return absl::StrJoin(names, "; ");
}

std::vector<CardStatus> DevicePool::Cards() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<CardStatus> out;
  for (int i = 0; i < static_cast<int>(cards_.size()); ++i) {
    const Card& c = *cards_[i];
    CardStatus s;
    s.index = i;
    s.name = c.driver->transport().Describe();
    s.up = c.up;
    s.first_layer = c.first_layer;
    s.last_layer = c.last_layer;
    s.resident_bytes = c.up ? c.driver->resident_bytes() : 0;
    s.counters = c.driver->counters();
    s.utilization = Utilization(s.counters, {}, options_.config.macs_per_cycle());
    out.push_back(std::move(s));
  }
  return out;
}

int64_t DevicePool::failovers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failovers_;
}

}  // namespace qsl
