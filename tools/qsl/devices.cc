// `qsl devices`: which devices exist (CPU, simulated MPE, XRT cards, Verilated builds), what a
// pool built from --devices sees (cards, health, layers, accounts), and with --report the sim
// report: a real card's projected tokens/s for any model shape, from the cycle model.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "accel/device_pool.h"
#include "accel/isa.h"
#include "accel/mpe_config.h"
#include "accel/sim_report.h"
#include "accel/xrt_card.h"
#include "base/status.h"
#include "tools/qsl/commands.h"

namespace qsl::cli {
namespace {

struct DevicesOptions {
  std::string devices;
  std::string mpe_config;
  std::string xclbin;
  bool report = false;
  std::string model_shape = "tinyllama-1.1b";
  std::string scheme = "w8";
  int32_t group = 128;
  int64_t prompt_tokens = 512;
  std::vector<int64_t> batches = {1};
  int32_t prefetch = 0;
  bool per_layer = false;
};

absl::StatusOr<MpeConfig> Config(const DevicesOptions& o) {
  if (o.mpe_config.empty()) return DefaultMpeConfig();
  return LoadMpeConfig(o.mpe_config);
}

void ListDevices(const MpeConfig& c) {
  std::printf("Devices\n");
  std::string paths;
  for (Isa isa : SupportedIsas()) absl::StrAppend(&paths, paths.empty() ? "" : ", ", IsaName(isa));
  std::printf("  cpu   the int8 kernels of the numeric contract on this host: path '%s' (QSL_ISA "
              "forces one of: %s)\n",
              IsaName(ActiveIsa()), paths.c_str());
  std::printf("  sim   simulated MPE '%s': %dx%d int8 array at %.0f MHz, %.1f GB/s card memory "
              "(sim:N for N cards)\n",
              c.name.c_str(), c.rows, c.cols, c.clock_mhz, c.mem_bandwidth_gbps());
  const XrtProbe xrt = ProbeXrtDevices();
  if (xrt.devices.empty()) {
    std::printf("  xrt   no XRT device found (%s)\n", xrt.note.c_str());
  }
  for (const XrtDeviceInfo& d : xrt.devices) {
    std::printf("  xrt:%d %s at %s\n", d.index, d.name.c_str(), d.bdf.c_str());
  }
  for (const CardKind& k : RegisteredCardKinds()) {
    std::printf("  %-5s %s\n", k.kind.c_str(), k.description.c_str());
  }
}

absl::Status ShowPool(const DevicesOptions& o, const MpeConfig& config) {
  DevicePoolOptions po;
  po.spec = o.devices;
  po.config = config;
  po.xclbin = o.xclbin;
  QSL_ASSIGN_OR_RETURN(auto pool, DevicePool::Create(po));
  std::printf("\nPool --devices %s\n", o.devices.c_str());
  if (pool->is_cpu()) {
    std::printf("  cpu: linear layers run on the host kernels\n");
    return absl::OkStatus();
  }
  std::printf("  %-4s %-4s %-10s %-12s %10s %14s %12s  %s\n", "card", "up", "layers", "resident",
              "batches", "cycles", "MAC util", "device");
  for (const CardStatus& s : pool->Cards()) {
    const std::string layers = s.last_layer >= s.first_layer
                                   ? absl::StrCat(s.first_layer, "-", s.last_layer)
                                   : "-";
    std::printf("  %-4d %-4s %-10s %9.1f MB %10ld %14ld %11.1f%%  %s\n", s.index,
                s.up ? "yes" : "DOWN", layers.c_str(), s.resident_bytes / 1e6,
                static_cast<long>(s.counters.batches), static_cast<long>(s.counters.cycles),
                100 * s.utilization, s.name.c_str());
  }
  std::printf("  failovers: %ld (no model is loaded here: `qsl serve` exports the same per card as "
              "qsl_card_up, qsl_card_utilization_ratio, qsl_card_failovers_total)\n",
              static_cast<long>(pool->failovers()));
  return absl::OkStatus();
}

absl::Status Report(const DevicesOptions& o, const MpeConfig& config) {
  QSL_ASSIGN_OR_RETURN(ModelShape shape, ParseModelShape(o.model_shape));
  ReportOptions r;
  if (o.scheme == "w8") {
    r.scheme = WeightScheme::kW8;
  } else if (o.scheme == "w4") {
    r.scheme = WeightScheme::kW4;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--scheme '", o.scheme, "': w8 or w4"));
  }
  r.group = o.group;
  r.prompt_tokens = o.prompt_tokens;
  r.decode_batches = o.batches;
  r.plan.prefetch = o.prefetch;
  std::fprintf(stderr, "qsl devices: counting every linear layer of '%s' on '%s'...\n",
               shape.name.c_str(), config.name.c_str());
  QSL_ASSIGN_OR_RETURN(SimReport report, BuildSimReport(config, shape, r));
  std::printf("%s", FormatSimReport(report, o.per_layer).c_str());
  return absl::OkStatus();
}

absl::Status Run(const DevicesOptions& o) {
  QSL_ASSIGN_OR_RETURN(MpeConfig config, Config(o));
  if (o.report) return Report(o, config);
  ListDevices(config);
  if (!o.devices.empty()) QSL_RETURN_IF_ERROR(ShowPool(o, config));
  return absl::OkStatus();
}

}  // namespace

void AddDevicesCommand(CLI::App& app) {
  auto o = std::make_shared<DevicesOptions>();
  CLI::App* cmd = app.add_subcommand(
      "devices", "List devices and the pool; --report projects a real card's tokens/s");
  cmd->add_option("--devices", o->devices, "Show the pool built from this spec: cpu, sim:N, xrt, "
                                           "xrt:I,J, rtl:N")
      ->envname("QSL_DEVICES");
  cmd->add_option("--mpe-config", o->mpe_config, "MPE config JSON (default: the built-in u280)")
      ->envname("QSL_MPE_CONFIG")
      ->check(CLI::ExistingFile);
  cmd->add_option("--xclbin", o->xclbin, "MPE bitstream for xrt devices")->envname("QSL_XCLBIN");
  cmd->add_flag("--report", o->report,
                "Print the sim report for --model-shape (cycles, MAC utilization, bytes, tok/s)");
  cmd->add_option("--model-shape", o->model_shape,
                  "tinyllama-1.1b, qsl-tiny-llama, or hidden=..,layers=..,mlp=..,heads=..,"
                  "kv-heads=..,vocab=..[,head-dim=..][,lm-head=0|1]")
      ->capture_default_str();
  cmd->add_option("--scheme", o->scheme, "w8 or w4")->capture_default_str();
  cmd->add_option("--group", o->group, "W4 group size along K")
      ->capture_default_str()
      ->check(CLI::Range(4, 4096));
  cmd->add_option("--prompt-tokens", o->prompt_tokens, "Prefill length for the report")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--batch", o->batches, "Decode batch sizes for the report, e.g. 1,8,32")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--prefetch", o->prefetch,
                  "Weight tiles the driver loads ahead (0: half the weight slots)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  cmd->add_flag("--per-layer", o->per_layer, "One row per linear layer shape in the report");
  cmd->callback([o] { ExitOnError("devices", Run(*o)); });
}

}  // namespace qsl::cli
