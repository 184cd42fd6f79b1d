// `qsl quantize`: a Hugging Face checkpoint to a packed W8A8 / W4A8 model file, with a progress
// bar over layers and a summary of sizes.
#include "quantize/quantize.h"

#include <chrono>
#include <cstdio>
#include <map>

#include "absl/strings/str_format.h"
#include "base/progress.h"
#include "base/status.h"
#include "tools/qsl/commands.h"

namespace qsl::cli {
namespace {

struct QuantizeFlags {
  QuantizeOptions o;
  std::string scheme = "w8a8", method = "rtn", lm_head = "w8", embed = "f16";
  float smooth = -1.0f;
  bool group_set = false;
};

absl::Status Run(QuantizeFlags& f) {
  static const std::map<std::string, WeightScheme> kSchemes = {{"w8a8", WeightScheme::kW8},
                                                               {"w4a8", WeightScheme::kW4}};
  static const std::map<std::string, QuantMethod> kMethods = {
      {"rtn", QuantMethod::kRtn}, {"awq", QuantMethod::kAwq}, {"gptq", QuantMethod::kGptq}};
  QuantizeOptions& o = f.o;
  o.scheme = kSchemes.at(f.scheme);
  o.method = kMethods.at(f.method);
  o.lm_head = f.lm_head == "w4" ? WeightScheme::kW4 : WeightScheme::kW8;
  o.embed_f16 = f.embed == "f16";
  if (f.smooth >= 0.0f) o.smooth_alpha = f.smooth;
  if (f.group_set && o.scheme != WeightScheme::kW4 && o.lm_head != WeightScheme::kW4) {
    return absl::InvalidArgumentError("--group applies to w4a8 (or --lm-head w4) only");
  }
  if (o.act_order && o.method != QuantMethod::kGptq) {
    return absl::InvalidArgumentError("--act-order applies to --method gptq only");
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<ProgressBar> bar;
  QSL_ASSIGN_OR_RETURN(const QuantizeReport r, QuantizeModel(o, [&bar](int64_t done, int64_t total,
                                                                       const std::string& what) {
                         if (!bar) bar = std::make_unique<ProgressBar>("quantize", total, "layer");
                         bar->SetSuffix(what);
                         bar->Set(done);
                       }));
  if (bar) bar->Finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "wrote %s: %s %s%s, %.2f MiB; linear weights %.3f bits each (%lld params)%s; %.1f s\n",
      o.out.c_str(), f.scheme.c_str(), f.method.c_str(),
      o.smooth_alpha ? absl::StrFormat(" + smooth %.2f", *o.smooth_alpha).c_str() : "",
      static_cast<double>(r.file_bytes) / (1 << 20), r.bits_per_weight(),
      static_cast<long long>(r.linear_params),
      r.calib_tokens > 0
          ? absl::StrFormat("; calibrated on %lld tokens", (long long)r.calib_tokens).c_str()
          : "",
      secs);
  return absl::OkStatus();
}

}  // namespace

void AddQuantizeCommand(CLI::App& app) {
  auto f = std::make_shared<QuantizeFlags>();
  QuantizeOptions& o = f->o;
  CLI::App* cmd = app.add_subcommand(
      "quantize", "Quantize a Hugging Face checkpoint into a packed W8A8 / W4A8 model file");
  cmd->add_option("--model", o.model_dir, "Hugging Face checkpoint directory")->required();
  cmd->add_option("--out", o.out, "Packed model file to write")->required();
  cmd->add_option("--scheme", f->scheme, "w8a8 or w4a8 (activations are always int8)")
      ->check(CLI::IsMember({"w8a8", "w4a8"}));
  cmd->add_option("--group", o.group, "W4 group size along K (divides or is a multiple of 128)")
      ->check(CLI::Range(4, 1 << 16))
      ->each([f](const std::string&) { f->group_set = true; });
  cmd->add_option("--method", f->method, "rtn, awq or gptq")
      ->check(CLI::IsMember({"rtn", "awq", "gptq"}));
  cmd->add_option("--smooth", f->smooth,
                  "SmoothQuant migration strength alpha in [0, 1] (default: no smoothing)")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--calib", o.calib_file, "Calibration text (awq, gptq, --smooth)");
  cmd->add_option("--calib-tokens", o.calib_tokens, "Calibration tokens to use from --calib")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--calib-window", o.calib_window, "Tokens per calibration sequence")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--awq-samples", o.awq_samples, "Tokens per layer for the AWQ loss")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_flag("--act-order", o.act_order,
                "GPTQ: quantize columns by decreasing Hessian diagonal");
  cmd->add_option("--damp", o.damp, "GPTQ: diagonal damping as a fraction of its mean")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--kv", o.kv_cache, "KV cache the runtime should use: fp16 or int8")
      ->check(CLI::IsMember({"fp16", "int8"}));
  cmd->add_option("--lm-head", f->lm_head, "lm_head scheme: w8 (default) or w4")
      ->check(CLI::IsMember({"w8", "w4"}));
  cmd->add_option("--embed", f->embed, "Embedding storage: f16 (default) or f32")
      ->check(CLI::IsMember({"f16", "f32"}));
  cmd->callback([f] { ExitOnError("quantize", Run(*f)); });
}

}  // namespace qsl::cli
