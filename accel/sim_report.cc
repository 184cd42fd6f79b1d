// Sim report: plan and count every linear shape once, multiply by how often a forward pass runs
// it, and compare with the rooflines.
#include "accel/sim_report.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/status.h"

namespace qsl {
namespace {

absl::Status SetShapeField(ModelShape& m, absl::string_view key, int64_t v) {
  struct Key {
    const char* name;
    int64_t ModelShape::*field;
  };
  static const Key keys[] = {{"hidden", &ModelShape::hidden},    {"layers", &ModelShape::layers},
                             {"mlp", &ModelShape::intermediate}, {"heads", &ModelShape::heads},
                             {"kv-heads", &ModelShape::kv_heads}, {"vocab", &ModelShape::vocab},
                             {"head-dim", &ModelShape::head_dim}};
  if (key == "lm-head") {
    m.lm_head_on_card = v != 0;
    return absl::OkStatus();
  }
  for (const Key& k : keys) {
    if (key == k.name) {
      m.*(k.field) = v;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "model shape: unknown key '", key,
      "' (hidden, layers, mlp, heads, kv-heads, vocab, head-dim, lm-head)"));
}

absl::StatusOr<LinearReport> CountLinear(const MpeConfig& config, const LinearShape& s,
                                         int64_t tokens, const ReportOptions& o) {
  QSL_ASSIGN_OR_RETURN(
      TiledLayout layout,
      TiledLayout::Make(o.scheme, s.n, s.k, config.tile(),
                        o.scheme == WeightScheme::kW4 ? o.group : 0));
  // Any aligned addresses do: cycles do not depend on where things are.
  QSL_ASSIGN_OR_RETURN(LinearPlan plan, PlanLinear(config, layout, 1 << 20, 1ull << 36, tokens,
                                                   o.plan));
  LinearReport r;
  r.shape = s;
  QSL_ASSIGN_OR_RETURN(r.account, AccountCycles(config, plan.commands));
  r.useful_macs = tokens * s.n * s.k;
  r.weight_bytes = layout.bytes();
  return r;
}

absl::StatusOr<PhaseReport> CountPhase(const MpeConfig& config, const ModelShape& model,
                                       const std::string& name, int64_t tokens,
                                       const ReportOptions& o) {
  PhaseReport p;
  p.name = name;
  p.tokens = tokens;
  for (const LinearShape& s : LinearShapes(model)) {
    auto r = CountLinear(config, s, tokens, o);
    if (!r.ok()) return Annotate(r.status(), s.name);
    for (int64_t i = 0; i < s.count; ++i) p.total += r->account;
    p.useful_macs += r->useful_macs * s.count;
    p.weight_bytes += r->weight_bytes * s.count;
    p.linears.push_back(*std::move(r));
  }
  p.seconds = p.total.cycles / config.clock_hz();
  p.tokens_per_s = tokens / p.seconds;
  const double bytes_per_s = config.mem_bytes_per_cycle() * config.clock_hz();
  p.mem_roofline_tps = tokens * bytes_per_s / p.weight_bytes;
  p.mac_roofline_tps = tokens * config.macs_per_cycle() * config.clock_hz() / p.useful_macs;
  p.mac_utilization =
      static_cast<double>(p.useful_macs) / (static_cast<double>(config.macs_per_cycle()) *
                                            static_cast<double>(p.total.cycles));
  return p;
}

std::string Mb(int64_t bytes) { return absl::StrFormat("%.2f", bytes / 1e6); }

std::string Percent(double x) { return absl::StrFormat("%.1f%%", 100 * x); }

std::string PhaseTable(const MpeConfig& c, const PhaseReport& p, bool per_layer) {
  std::string out = absl::StrCat(
      "| linear | n x k | count | cycles | MAC util | weights MB | act / out KB | stalls w/a/acc/q |"
      " head | tail | weight-load / overlap cycles |\n",
      "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|\n");
  auto row = [&](const std::string& name, const std::string& shape, int64_t count,
                 const CycleAccount& a, int64_t macs, int64_t wbytes) {
    const double util = static_cast<double>(macs) /
                        (static_cast<double>(c.macs_per_cycle()) * static_cast<double>(a.cycles));
    absl::StrAppend(&out, "| ", name, " | ", shape, " | ", count, " | ", a.cycles, " | ",
                    Percent(util), " | ", Mb(wbytes), " | ",
                    absl::StrFormat("%.1f / %.1f", a.act_beats * kBeatBytes / 1e3,
                                    a.write_bytes / 1e3),
                    " | ", a.stall_weights, "/", a.stall_acts,
                    "/", a.stall_acc, "/", a.stall_dispatch, " | ", a.head_cycles, " | ",
                    a.tail_cycles, " | ", a.weight_load_cycles, " / ", a.overlap_cycles, " |\n");
  };
  if (per_layer) {
    for (const LinearReport& r : p.linears) {
      row(r.shape.name, absl::StrCat(r.shape.n, " x ", r.shape.k), r.shape.count, r.account,
          r.useful_macs, r.weight_bytes);
    }
  }
  int64_t count = 0;
  for (const LinearReport& r : p.linears) count += r.shape.count;
  row("**all**", "", count, p.total, p.useful_macs, p.weight_bytes);
  absl::StrAppend(&out, "\n(a layer row is one such layer; the **all** row sums every layer of "
                        "one forward pass)\n");
  return out;
}

}  // namespace

absl::StatusOr<ModelShape> ParseModelShape(absl::string_view spec) {
  if (spec == "tinyllama-1.1b") {
    return ModelShape{"tinyllama-1.1b", 2048, 22, 5632, 32, 4, 32000, 64, true};
  }
  if (spec == "qsl-tiny-llama") return ModelShape{"qsl-tiny-llama", 256, 6, 768, 4, 2, 4096, 64, true};
  ModelShape m;
  m.name = std::string(spec);
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(part, '=');
    int64_t v = 0;
    if (!absl::SimpleAtoi(kv.second, &v) || v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model shape: '", part, "' is not key=non-negative-integer"));
    }
    QSL_RETURN_IF_ERROR(SetShapeField(m, kv.first, v));
  }
  if (m.hidden <= 0 || m.layers <= 0 || m.intermediate <= 0 || m.heads <= 0 ||
      m.kv_heads <= 0 || m.vocab <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model shape '", spec,
        "': needs hidden, layers, mlp, heads, kv-heads and vocab (or a preset: tinyllama-1.1b, "
        "qsl-tiny-llama)"));
  }
  if (m.head_dim == 0 && m.hidden % m.heads != 0) {
    return absl::InvalidArgumentError("model shape: hidden is not a multiple of heads; give head-dim");
  }
  if (m.heads % m.kv_heads != 0) {
    return absl::InvalidArgumentError("model shape: heads must be a multiple of kv-heads");
  }
  return m;
}

std::vector<LinearShape> LinearShapes(const ModelShape& m) {
  const int64_t q = m.heads * m.dim_per_head(), kv = m.kv_heads * m.dim_per_head();
  std::vector<LinearShape> out = {
      {"q_proj", q, m.hidden, m.layers},         {"k_proj", kv, m.hidden, m.layers},
      {"v_proj", kv, m.hidden, m.layers},        {"o_proj", m.hidden, q, m.layers},
      {"gate_proj", m.intermediate, m.hidden, m.layers},
      {"up_proj", m.intermediate, m.hidden, m.layers},
      {"down_proj", m.hidden, m.intermediate, m.layers}};
  if (m.lm_head_on_card) out.push_back({"lm_head", m.vocab, m.hidden, 1});
  return out;
}

absl::StatusOr<SimReport> BuildSimReport(const MpeConfig& config, const ModelShape& model,
                                         const ReportOptions& options) {
  QSL_RETURN_IF_ERROR(config.Validate());
  if (options.prompt_tokens <= 0) {
    return absl::InvalidArgumentError("prompt tokens must be positive");
  }
  SimReport r{config, model, options, {}, {}};
  for (int64_t batch : options.decode_batches) {
    if (batch <= 0) return absl::InvalidArgumentError("decode batch sizes must be positive");
    QSL_ASSIGN_OR_RETURN(PhaseReport p, CountPhase(config, model, "decode", batch, options));
    r.decode.push_back(std::move(p));
  }
  QSL_ASSIGN_OR_RETURN(r.prefill,
                       CountPhase(config, model, "prefill", options.prompt_tokens, options));
  return r;
}

std::string FormatSimReport(const SimReport& r, bool per_layer) {
  const MpeConfig& c = r.config;
  const ModelShape& m = r.model;
  std::string out = absl::StrFormat(
      "MPE '%s': %dx%d int8 array at %.0f MHz = %.2f TMAC/s; memory %.1f GB/s (%d beats/cycle), "
      "read latency %d cycles; weight buffer %d tiles\n",
      c.name, c.rows, c.cols, c.clock_mhz, c.macs_per_cycle() * c.clock_hz() * 1e-12,
      c.mem_bandwidth_gbps(), c.mem_beats_per_cycle, c.mem_latency_cycles, c.w_slots());
  absl::StrAppendFormat(
      &out,
      "model '%s': hidden %d, %d layers, MLP %d, %d heads / %d KV heads, vocab %d; weights %s%s, "
      "lm_head %s\n"
      "Card time only: attention, norms, RoPE, sampling and the fp32 epilogue run on the host "
      "(docs/mpe.md, \"What runs where\").\n",
      m.name, m.hidden, m.layers, m.intermediate, m.heads, m.kv_heads, m.vocab,
      WeightSchemeName(r.options.scheme),
      r.options.scheme == WeightScheme::kW4 ? absl::StrCat(" (group ", r.options.group, ")") : "",
      m.lm_head_on_card ? "on the card" : "on the host");
  for (const PhaseReport& p : r.decode) {
    absl::StrAppendFormat(&out, "\n### decode, batch %d (one step)\n\n%s\n", p.tokens,
                          PhaseTable(c, p, per_layer));
    const bool memory_bound = p.mem_roofline_tps <= p.mac_roofline_tps;
    const double roofline = std::min(p.mem_roofline_tps, p.mac_roofline_tps);
    absl::StrAppendFormat(
        &out,
        "projected %.1f tok/s (%.3f ms per step); roofline %.1f tok/s, %s-bound (bandwidth: %.1f "
        "MB of weights per step at %.1f GB/s = %.1f tok/s; compute: %.1f tok/s): **%.1f%% of "
        "roofline**; MAC utilization %s\n",
        p.tokens_per_s, p.seconds * 1e3, roofline, memory_bound ? "bandwidth" : "compute",
        p.weight_bytes / 1e6, c.mem_bandwidth_gbps(), p.mem_roofline_tps, p.mac_roofline_tps,
        100 * p.tokens_per_s / roofline, Percent(p.mac_utilization));
  }
  const PhaseReport& p = r.prefill;
  absl::StrAppendFormat(&out, "\n### prefill, %d-token prompt\n\n%s\n", p.tokens,
                        PhaseTable(c, p, per_layer));
  absl::StrAppendFormat(
      &out,
      "projected %.1f tok/s (%.2f ms per prompt); compute roofline %.1f tok/s: **MAC "
      "utilization %s**\n",
      p.tokens_per_s, p.seconds * 1e3, p.mac_roofline_tps, Percent(p.mac_utilization));
  return out;
}

}  // namespace qsl
