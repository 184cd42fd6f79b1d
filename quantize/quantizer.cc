// The layer-by-layer quantization pipeline: calibration statistics through the fp32 layer,
// smoothing and AWQ folds, RTN or GPTQ onto the contract grid, packing, and the calibration
// activations moved on through the quantized layer (simulated integer path).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "base/half.h"
#include "base/log.h"
#include "base/status.h"
#include "engine/forward.h"
#include "format/checkpoint.h"
#include "format/packed_file.h"
#include "nlohmann/json.hpp"
#include "quantize/awq.h"
#include "quantize/gptq.h"
#include "quantize/grid.h"
#include "quantize/quantize.h"
#include "quantize/sha256.h"
#include "quantize/simulated.h"
#include "quantize/smooth.h"

#ifndef QSL_VERSION
#define QSL_VERSION "unknown"
#endif

namespace qsl {

using nlohmann::json;

const char* QuantMethodName(QuantMethod m) {
  switch (m) {
    case QuantMethod::kRtn: return "rtn";
    case QuantMethod::kAwq: return "awq";
    case QuantMethod::kGptq: return "gptq";
  }
  return "?";
}

namespace {

// The four inputs of a decoder layer's linears; the linears of one site read the same input,
// so they share statistics, smoothing scales and the GPTQ Hessian.
enum Site { kAttnIn, kAttnOut, kMlpIn, kMlpAct, kNumSites };
constexpr std::array<LinearSlot, 7> kLayerSlots = {
    LinearSlot::kQ,    LinearSlot::kK,  LinearSlot::kV,   LinearSlot::kO,
    LinearSlot::kGate, LinearSlot::kUp, LinearSlot::kDown};
Site SiteOf(LinearSlot s) {
  switch (s) {
    case LinearSlot::kQ:
    case LinearSlot::kK:
    case LinearSlot::kV: return kAttnIn;
    case LinearSlot::kO: return kAttnOut;
    case LinearSlot::kGate:
    case LinearSlot::kUp: return kMlpIn;
    default: return kMlpAct;
  }
}
constexpr const char* kSiteNames[kNumSites] = {"attn_in", "attn_out", "mlp_in", "mlp_act"};

// Calibration statistics of one site's input.
struct SiteStats {
  int64_t k = 0, rows = 0;
  std::vector<float> amax;
  std::vector<double> sum_abs, sum_sq;
  std::unique_ptr<Hessian> hessian;  // GPTQ
  std::vector<float> samples;        // AWQ: every `stride`-th row
  int64_t sample_rows = 0, stride = 1;

  void Init(int64_t k_in, bool gptq, int64_t sample_stride) {
    k = k_in;
    amax.assign(static_cast<size_t>(k), 0.0f);
    sum_abs.assign(static_cast<size_t>(k), 0.0);
    sum_sq.assign(static_cast<size_t>(k), 0.0);
    if (gptq) hessian = std::make_unique<Hessian>(k);
    stride = sample_stride;
  }
  void Add(const float* x, int64_t m) {
    for (int64_t t = 0; t < m; ++t) {
      const float* row = x + t * k;
      for (int64_t j = 0; j < k; ++j) {
        amax[j] = std::fmax(amax[j], std::fabs(row[j]));
        sum_abs[j] += std::fabs(row[j]);
        sum_sq[j] += static_cast<double>(row[j]) * row[j];
      }
      if (stride > 0 && (rows + t) % stride == 0) {
        samples.insert(samples.end(), row, row + k);
        ++sample_rows;
      }
    }
    if (hessian) hessian->Add({x, static_cast<size_t>(m * k)}, m);
    rows += m;
  }
  std::vector<float> Mean(const std::vector<double>& sum) const {
    std::vector<float> out(sum.size());
    for (size_t j = 0; j < sum.size(); ++j) out[j] = static_cast<float>(sum[j] / rows);
    return out;
  }
  // The site's input is now x / s.
  void Fold(std::span<const float> s) {
    std::vector<float> inv(s.size());
    for (size_t j = 0; j < s.size(); ++j) {
      inv[j] = 1.0f / s[j];
      amax[j] *= inv[j];
      sum_abs[j] *= inv[j];
      sum_sq[j] *= static_cast<double>(inv[j]) * inv[j];
    }
    for (size_t i = 0; i < samples.size(); ++i) samples[i] *= inv[i % static_cast<size_t>(k)];
    if (hessian) hessian->ScaleChannels(inv);
  }
};

// The calibration sequences (BOS + window tokens each) and their hidden states, which move
// through the model one layer at a time.
struct Calibration {
  std::vector<std::vector<int32_t>> windows;
  std::vector<float> hidden;  // all windows' rows, [tokens, hidden]
  int64_t tokens = 0;
};

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Drops the pages of a tensor just read from the mapped checkpoint: they are file-backed and
// re-readable, and keeping them would grow resident memory to the whole checkpoint.
void ReleasePages(const TensorInfo* t) {
  if (t == nullptr || t->nbytes == 0) return;
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t->data) / page * page;
  const uintptr_t end = reinterpret_cast<uintptr_t>(t->data) + static_cast<uintptr_t>(t->nbytes);
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

absl::StatusOr<std::vector<float>> ReadReleased(const HfCheckpoint& ck, const std::string& name) {
  auto v = ck.ReadF32(name);
  ReleasePages(ck.Find(name));
  return v;
}

absl::StatusOr<LayerWeights> ReadLayer(const HfCheckpoint& ck, int64_t l) {
  LayerWeights w;
  QSL_ASSIGN_OR_RETURN(w.attn_norm, ReadReleased(ck, LayerTensor(l, "input_layernorm.weight")));
  QSL_ASSIGN_OR_RETURN(w.mlp_norm,
                       ReadReleased(ck, LayerTensor(l, "post_attention_layernorm.weight")));
  for (LinearSlot s : kLayerSlots) {
    const std::string base = LayerTensor(l, LinearSlotName(s));
    Linear& lin = w.slot(s);
    const TensorInfo* t = ck.Find(base + ".weight");
    lin.n = t->shape[0];
    lin.k = t->shape[1];
    QSL_ASSIGN_OR_RETURN(lin.w, ReadReleased(ck, base + ".weight"));
    if (ck.Find(base + ".bias") != nullptr) {
      QSL_ASSIGN_OR_RETURN(lin.bias, ReadReleased(ck, base + ".bias"));
    }
  }
  return w;
}

class Quantizer {
 public:
  Quantizer(const QuantizeOptions& o, const HfCheckpoint& ck) : o_(o), ck_(ck), c_(ck.config()) {}

  absl::StatusOr<QuantizeReport> Run(
      const std::function<void(int64_t, int64_t, const std::string&)>& progress);

 private:
  absl::Status PrepareCalibration(const std::vector<float>& embed);
  absl::Status CollectStats(int64_t l, const LayerWeights& w);
  void Fold(LayerWeights& w, Site site, std::span<const float> s);
  absl::Status SmoothAndSearch(int64_t l, LayerWeights& w);
  absl::StatusOr<LayerWeights> QuantizeLayer(int64_t l, const LayerWeights& w);
  absl::Status WriteLinear(const std::string& base, const QuantizedWeight& q,
                           std::span<const float> bias, int64_t n, int64_t k);
  absl::Status Propagate(int64_t l, const LayerWeights& quantized);
  WeightFormat Format(WeightScheme scheme) const {
    return {scheme, scheme == WeightScheme::kW4 ? o_.group : 0};
  }
  std::vector<AwqWeight> Consumers(const LayerWeights& w, Site site) const;
  // The W4 grid fit's weighing of a site's errors: the output error over the calibration
  // inputs, group by group (the criterion of AWQ's clipping search).
  ErrorMetric Metric(Site site) const {
    if (o_.scheme != WeightScheme::kW4) return {};
    return ErrorMetric::GroupBlocks(stats_[site].hessian->Full(), stats_[site].k, o_.group);
  }
  ChannelTie TieOf(Site site) const {
    return site == kAttnOut ? ChannelTie::Gqa(c_.num_heads, c_.num_kv_heads, c_.head_dim)
                            : ChannelTie{};
  }
  absl::StatusOr<std::string> Provenance() const;

  const QuantizeOptions& o_;
  const HfCheckpoint& ck_;
  const ModelConfig& c_;
  std::unique_ptr<PackedFileWriter> writer_;
  QuantizeReport report_;
  Calibration calib_;
  std::array<SiteStats, kNumSites> stats_;
  std::unique_ptr<Model> skeleton_;  // config and RoPE for Transformer::Block; no weights
  std::string calib_sha256_;
  json layer_log_ = json::array();
};

absl::Status Quantizer::PrepareCalibration(const std::vector<float>& embed) {
  QSL_ASSIGN_OR_RETURN(const std::string text, ReadText(o_.calib_file));
  QSL_ASSIGN_OR_RETURN(calib_sha256_, Sha256File(o_.calib_file));
  std::vector<int32_t> ids = ck_.tokenizer().Encode(text, false);
  if (ids.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(o_.calib_file, ": no tokens to calibrate on"));
  }
  if (static_cast<int64_t>(ids.size()) > o_.calib_tokens) ids.resize(o_.calib_tokens);
  const int64_t h = c_.hidden_size;
  for (size_t b = 0; b < ids.size(); b += static_cast<size_t>(o_.calib_window)) {
    std::vector<int32_t> win = {c_.bos_token_id};
    win.insert(win.end(), ids.begin() + static_cast<std::ptrdiff_t>(b),
               ids.begin() + static_cast<std::ptrdiff_t>(
                                 std::min(ids.size(), b + static_cast<size_t>(o_.calib_window))));
    calib_.tokens += static_cast<int64_t>(win.size());
    calib_.windows.push_back(std::move(win));
  }
  calib_.hidden.resize(static_cast<size_t>(calib_.tokens * h));
  float* row = calib_.hidden.data();
  for (const auto& win : calib_.windows) {
    for (int32_t id : win) {
      std::copy_n(embed.data() + static_cast<int64_t>(id) * h, h, row);
      row += h;
    }
  }
  report_.calib_tokens = calib_.tokens;
  skeleton_ = std::make_unique<Model>(c_, nullptr, std::vector<float>{},
                                      std::vector<LayerWeights>{}, std::vector<float>{}, Linear{});
  spdlog::info("quantize: calibrating on {} tokens ({} windows) of {}", calib_.tokens,
               calib_.windows.size(), o_.calib_file);
  return absl::OkStatus();
}

// Runs the calibration windows through `layer` with `backend`; `observe` sees every linear's
// input. `hidden` is updated in place when `advance`, else left as it was.
absl::Status RunWindows(const Model& skeleton, Calibration& calib, int64_t l, const LayerWeights& w,
                        LinearBackend& backend, bool advance, LinearObserver observe) {
  Transformer tf(skeleton, backend);
  tf.set_observer(std::move(observe));
  const int64_t h = skeleton.config().hidden_size;
  int32_t longest = 0;
  for (const auto& win : calib.windows)
    longest = std::max(longest, static_cast<int32_t>(win.size()));
  ContiguousKvCache cache(skeleton.config(), 1, longest);
  std::vector<float> scratch;
  float* row = calib.hidden.data();
  for (const auto& win : calib.windows) {
    const auto n = static_cast<int32_t>(win.size());
    ForwardBatch batch{win, {{0, 0, n, false}}};
    float* hidden = row;
    if (!advance) {
      scratch.assign(row, row + static_cast<int64_t>(n) * h);
      hidden = scratch.data();
    }
    QSL_RETURN_IF_ERROR(tf.Block(static_cast<int32_t>(l), w, batch, hidden, cache));
    row += static_cast<int64_t>(n) * h;
  }
  return absl::OkStatus();
}

absl::Status Quantizer::CollectStats(int64_t l, const LayerWeights& w) {
  const bool gptq = o_.method != QuantMethod::kRtn;  // AWQ fits W4 groups with it too
  const int64_t stride =
      o_.method == QuantMethod::kAwq ? std::max<int64_t>(1, calib_.tokens / o_.awq_samples) : 0;
  for (int s = 0; s < kNumSites; ++s) stats_[s] = SiteStats();
  stats_[kAttnIn].Init(c_.hidden_size, gptq, stride);
  stats_[kAttnOut].Init(c_.q_dim(), gptq, stride);
  stats_[kMlpIn].Init(c_.hidden_size, gptq, stride);
  stats_[kMlpAct].Init(c_.intermediate_size, gptq, stride);
  CpuLinearBackend fp32;
  return RunWindows(*skeleton_, calib_, l, w, fp32, /*advance=*/false,
                    [this](int32_t, LinearSlot slot, const float* x, int64_t m, int64_t) {
                      // q/k/v (and gate/up) see one input: count it once.
                      if (slot == LinearSlot::kQ || slot == LinearSlot::kO ||
                          slot == LinearSlot::kGate || slot == LinearSlot::kDown) {
                        stats_[SiteOf(slot)].Add(x, m);
                      }
                    });
}

std::vector<AwqWeight> Quantizer::Consumers(const LayerWeights& w, Site site) const {
  std::vector<AwqWeight> out;
  for (LinearSlot s : kLayerSlots) {
    if (SiteOf(s) == site) out.push_back({w.slot(s).w, w.slot(s).n});
  }
  return out;
}

// Divides the site's input by s where it is produced and multiplies its consumers' columns.
void Quantizer::Fold(LayerWeights& w, Site site, std::span<const float> s) {
  switch (site) {
    case kAttnIn: DivideChannels(w.attn_norm, s); break;
    case kMlpIn: DivideChannels(w.mlp_norm, s); break;
    case kAttnOut: {
      const std::vector<float> per_row = TieOf(site).Reduce(s, /*max=*/true);
      DivideRows(w.v.w, w.v.k, per_row);
      if (!w.v.bias.empty()) DivideChannels(w.v.bias, per_row);
      break;
    }
    case kMlpAct:
      DivideRows(w.up.w, w.up.k, s);
      if (!w.up.bias.empty()) DivideChannels(w.up.bias, s);
      break;
    default: break;
  }
  for (LinearSlot slot : kLayerSlots) {
    if (SiteOf(slot) == site) ScaleColumns(w.slot(slot).w, w.slot(slot).k, s);
  }
  stats_[site].Fold(s);
}

absl::Status Quantizer::SmoothAndSearch(int64_t l, LayerWeights& w) {
  json log = {{"layer", l}};
  for (int site = 0; site < kNumSites; ++site) {
    const Site st = static_cast<Site>(site);
    if (o_.smooth_alpha) {
      std::vector<float> wmax(static_cast<size_t>(stats_[site].k), 0.0f);
      for (const AwqWeight& cw : Consumers(w, st)) ColumnAbsMax(cw.w, stats_[site].k, wmax);
      Fold(w, st, SmoothScales(stats_[site].amax, wmax, *o_.smooth_alpha, TieOf(st)));
    }
    if (o_.method == QuantMethod::kAwq) {
      const SiteStats& ss = stats_[site];
      const std::vector<float> mean_abs = ss.Mean(ss.sum_abs);
      AwqProblem p{ss.samples, ss.sample_rows, ss.k, mean_abs, getenv("XSH") ? Metric(st) : Metric(st).Diagonal(), Consumers(w, st),
                   TieOf(st)};
      const AwqResult r = AwqSearch(p, Format(o_.scheme));
      log[kSiteNames[site]] = {{"awq_alpha", r.alpha}, {"loss", r.loss}, {"rtn_loss", r.base_loss}};
      if (!getenv("XNOSCALE")) Fold(w, st, r.scales);
    }
  }
  if (o_.method == QuantMethod::kAwq) {
    spdlog::debug("quantize: layer {} awq {}", l, log.dump());
    layer_log_.push_back(std::move(log));
  }
  return absl::OkStatus();
}

absl::Status Quantizer::WriteLinear(const std::string& base, const QuantizedWeight& q,
                                    std::span<const float> bias, int64_t n, int64_t k) {
  QSL_ASSIGN_OR_RETURN(PackedLinear packed, Pack(q, o_.tile));
  QSL_RETURN_IF_ERROR(Annotate(writer_->AddLinear(base, packed, bias), base));
  report_.linear_params += n * k;
  report_.linear_bytes +=
      static_cast<int64_t>(packed.tiles.size() + 4 * packed.scale.size() + 4 * bias.size());
  return absl::OkStatus();
}

absl::StatusOr<LayerWeights> Quantizer::QuantizeLayer(int64_t l, const LayerWeights& w) {
  std::array<std::optional<GptqSolver>, kNumSites> solvers;
  if (o_.method == QuantMethod::kGptq) {
    for (int site = 0; site < kNumSites; ++site) {
      const GptqOptions go{Format(o_.scheme), o_.damp, o_.act_order};
      auto solver = GptqSolver::Make(*stats_[site].hessian, go);
      if (!solver.ok()) {
        return Annotate(solver.status(), absl::StrCat("layer ", l, " ", kSiteNames[site]));
      }
      solvers[site].emplace(std::move(*solver));
    }
  }
  LayerWeights q;
  q.attn_norm = w.attn_norm;
  q.mlp_norm = w.mlp_norm;
  QSL_RETURN_IF_ERROR(
      writer_->AddF32(LayerTensor(l, "input_layernorm.weight"), {c_.hidden_size}, w.attn_norm));
  QSL_RETURN_IF_ERROR(writer_->AddF32(LayerTensor(l, "post_attention_layernorm.weight"),
                                      {c_.hidden_size}, w.mlp_norm));
  for (LinearSlot s : kLayerSlots) {
    const Linear& lin = w.slot(s);
    const Site site = SiteOf(s);
    QuantizedWeight qw;
    switch (o_.method) {
      case QuantMethod::kGptq: qw = solvers[site]->Quantize(lin.w, lin.n); break;
      case QuantMethod::kAwq:
        qw = Rtn(lin.w, lin.n, lin.k, Format(o_.scheme), Metric(site));
        break;
      case QuantMethod::kRtn: qw = Rtn(lin.w, lin.n, lin.k, Format(o_.scheme)); break;
    }
    QSL_RETURN_IF_ERROR(WriteLinear(LayerTensor(l, LinearSlotName(s)), qw, lin.bias, lin.n, lin.k));
    Linear& out = q.slot(s);
    out.n = lin.n;
    out.k = lin.k;
    out.bias = lin.bias;
    if (o_.calibrated()) out.w = Dequantize(qw);
  }
  return q;
}

absl::StatusOr<std::string> Quantizer::Provenance() const {
  json files = json::array();
  std::vector<std::string> paths = {ck_.dir() + "/config.json", ck_.dir() + "/tokenizer.model"};
  for (const std::string& f : ck_.weight_files()) paths.push_back(f);
  for (const std::string& p : paths) {
    QSL_ASSIGN_OR_RETURN(const std::string sha, Sha256File(p));
    files.push_back({{"name", p.substr(p.find_last_of('/') + 1)}, {"sha256", sha}});
  }
  json prov = {
      {"qsl_version", QSL_VERSION},
      {"source", {{"dir", ck_.dir()}, {"architecture", c_.architecture}, {"files", files}}},
      {"scheme", o_.scheme == WeightScheme::kW4 ? "w4a8" : "w8a8"},
      {"method", QuantMethodName(o_.method)},
      {"group", o_.scheme == WeightScheme::kW4 ? json(o_.group) : json(nullptr)},
      {"smooth_alpha", o_.smooth_alpha ? json(*o_.smooth_alpha) : json(nullptr)},
      {"lm_head", WeightSchemeName(o_.lm_head)},
      {"embed", o_.embed_f16 ? "F16" : "F32"},
      {"kv_cache", o_.kv_cache},
      {"tile", {{"k", o_.tile.tile_k}, {"n", o_.tile.tile_n}}},
  };
  if (o_.method == QuantMethod::kGptq)
    prov["gptq"] = {{"damp", o_.damp}, {"act_order", o_.act_order}};
  if (o_.calibrated()) {
    prov["calibration"] = {{"file", o_.calib_file},
                           {"sha256", calib_sha256_},
                           {"tokens", report_.calib_tokens},
                           {"window", o_.calib_window}};
  }
  if (!layer_log_.empty()) prov["layers"] = layer_log_;
  return prov.dump(2);
}

absl::Status Quantizer::Propagate(int64_t l, const LayerWeights& quantized) {
  SimulatedInt8Backend sim;
  return RunWindows(*skeleton_, calib_, l, quantized, sim, /*advance=*/true, nullptr);
}

absl::StatusOr<QuantizeReport> Quantizer::Run(
    const std::function<void(int64_t, int64_t, const std::string&)>& progress) {
  QSL_ASSIGN_OR_RETURN(
      writer_, PackedFileWriter::Create(o_.out, ck_.config_json(), ck_.tokenizer().bytes()));
  const int64_t total = c_.num_layers + 1;
  {
    QSL_ASSIGN_OR_RETURN(std::vector<float> embed, ReadReleased(ck_, "model.embed_tokens.weight"));
    const std::vector<int64_t> shape = {c_.vocab_size, c_.hidden_size};
    if (o_.embed_f16) {
      QSL_RETURN_IF_ERROR(writer_->AddF16("model.embed_tokens.weight", shape, embed));
      for (float& v : embed) v = F16ToF32(F32ToF16(v));  // calibrate on what the file holds
    } else {
      QSL_RETURN_IF_ERROR(writer_->AddF32("model.embed_tokens.weight", shape, embed));
    }
    if (o_.calibrated()) QSL_RETURN_IF_ERROR(PrepareCalibration(embed));
  }
  for (int64_t l = 0; l < c_.num_layers; ++l) {
    QSL_ASSIGN_OR_RETURN(LayerWeights w, ReadLayer(ck_, l));
    if (o_.calibrated()) {
      QSL_RETURN_IF_ERROR(CollectStats(l, w));
      QSL_RETURN_IF_ERROR(SmoothAndSearch(l, w));
    }
    QSL_ASSIGN_OR_RETURN(LayerWeights q, QuantizeLayer(l, w));
    if (o_.calibrated()) QSL_RETURN_IF_ERROR(Propagate(l, q));
    if (progress) progress(l + 1, total, absl::StrCat("layer ", l));
  }
  calib_ = Calibration();
  stats_ = {};
  QSL_ASSIGN_OR_RETURN(std::vector<float> norm, ReadReleased(ck_, "model.norm.weight"));
  QSL_RETURN_IF_ERROR(writer_->AddF32("model.norm.weight", {c_.hidden_size}, norm));
  QSL_ASSIGN_OR_RETURN(
      std::vector<float> head,
      ReadReleased(ck_, c_.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"));
  QSL_RETURN_IF_ERROR(WriteLinear("lm_head",
                                  Rtn(head, c_.vocab_size, c_.hidden_size, Format(o_.lm_head)), {},
                                  c_.vocab_size, c_.hidden_size));
  if (progress) progress(total, total, "lm_head");
  QSL_ASSIGN_OR_RETURN(const std::string prov, Provenance());
  QSL_RETURN_IF_ERROR(writer_->Finish(prov));
  report_.file_bytes = static_cast<int64_t>(writer_->bytes_written());
  return report_;
}

absl::Status CheckOptions(const QuantizeOptions& o, const ModelConfig& c) {
  if (o.scheme == WeightScheme::kW4 || o.lm_head == WeightScheme::kW4) {
    QSL_RETURN_IF_ERROR(TiledLayout::Make(WeightScheme::kW4, 1, 1, o.tile, o.group).status());
  }
  if (o.smooth_alpha && !(*o.smooth_alpha >= 0.0f && *o.smooth_alpha <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--smooth ", *o.smooth_alpha, ": the migration strength is in [0, 1]"));
  }
  if (o.kv_cache != "fp16" && o.kv_cache != "int8") {
    return absl::InvalidArgumentError(absl::StrCat("--kv ", o.kv_cache, ": fp16 or int8"));
  }
  if (o.calibrated()) {
    if (o.calib_file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          o.method == QuantMethod::kRtn ? "SmoothQuant" : QuantMethodName(o.method),
          " needs calibration text: pass --calib FILE (the project bundles data/calib.txt)"));
    }
    if (o.calib_tokens < 1 || o.calib_window < 1 || o.awq_samples < 1) {
      return absl::InvalidArgumentError("calibration token counts must be positive");
    }
    if (o.calib_window + 1 > c.max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat("calibration window ", o.calib_window,
                                                     " + BOS exceeds the model's ",
                                                     c.max_position_embeddings, " positions"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<QuantizeReport> QuantizeModel(
    const QuantizeOptions& options,
    const std::function<void(int64_t, int64_t, const std::string&)>& progress) {
  QSL_ASSIGN_OR_RETURN(auto ck, HfCheckpoint::Open(options.model_dir));
  QSL_RETURN_IF_ERROR(CheckOptions(options, ck->config()));
  Quantizer q(options, *ck);
  return q.Run(progress);
}

}  // namespace qsl
