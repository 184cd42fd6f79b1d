// `qsl serve`: load a model onto the devices and serve it over the OpenAI-compatible HTTP API and
// the qsl.v1 gRPC API until SIGTERM (then drain and exit 0).
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "engine/engine.h"
#include "server/server.h"
#include "spdlog/spdlog.h"
#include "tools/qsl/commands.h"

namespace qsl::cli {
namespace {

struct ServeOptions {
  EngineOptions engine;
  server::ServerOptions server;
  std::string served_model_name;
  double read_timeout_s = 30, idle_timeout_s = 60, write_timeout_s = 30, drain_timeout_s = 30;
  bool no_chunked_prefill = false, no_prefix_caching = false;
};

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// The model's name as clients see it: the file or directory name without extension.
std::string DefaultModelName(const std::string& path) {
  std::string name = path;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  name = name.substr(name.rfind('/') + 1);
  const size_t dot = name.rfind('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

// Card readings for /metrics: utilization over the time since the previous scrape, from the
// cards' cumulative counters. Null on the CPU (no card series are exported then).
std::function<server::DeviceStats()> CardReadings(const Engine& engine) {
  if (engine.Devices().cards.empty()) return nullptr;
  struct Previous {
    std::mutex mu;
    std::vector<CardCounters> counters;
  };
  auto previous = std::make_shared<Previous>();
  return [&engine, previous] {
    const DeviceReport report = engine.Devices();
    server::DeviceStats stats;
    stats.failovers = report.failovers;
    std::lock_guard<std::mutex> lock(previous->mu);
    previous->counters.resize(report.cards.size());
    for (size_t i = 0; i < report.cards.size(); ++i) {
      const CardStatus& c = report.cards[i];
      // The label is the card's short name ("sim:0"), without the description after it.
      stats.cards.push_back({c.name.substr(0, c.name.find(' ')), c.up,
                             Utilization(c.counters, previous->counters[i], report.macs_per_cycle)});
      previous->counters[i] = c.counters;
    }
    return stats;
  };
}

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::Status Run(ServeOptions o) {
  server::ServerOptions& s = o.server;
  o.engine.chunked_prefill = !o.no_chunked_prefill;
  o.engine.prefix_caching = !o.no_prefix_caching;
  s.api.served_model_name =
      o.served_model_name.empty() ? DefaultModelName(o.engine.model) : o.served_model_name;
  s.http.read_timeout = Millis(o.read_timeout_s);
  s.http.idle_timeout = Millis(o.idle_timeout_s);
  s.http.write_timeout = Millis(o.write_timeout_s);
  s.drain_timeout = Millis(o.drain_timeout_s);
  s.grpc_host = s.http.host;
  // Outputs depend only on the model and qsl's integer contract, not on the devices or batch:
  // the fingerprint names exactly that.
  s.api.system_fingerprint = absl::StrFormat(
      "fp_%010x", std::hash<std::string>{}("qsl 0.1.0|" + s.api.served_model_name) & 0xffffffffffULL);

  spdlog::info("loading {} on {}", o.engine.model, o.engine.devices);
  const auto t0 = std::chrono::steady_clock::now();
  auto engine = CreateEngine(o.engine);
  if (!engine.ok()) return engine.status();
  spdlog::info("loaded in {:.1f} s on {}; max_model_len {}",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
               (*engine)->Devices().description, (*engine)->max_model_len());
  s.api.created = UnixSeconds();

  server::Server srv(**engine, s, CardReadings(**engine));
  absl::Status started = srv.Start();
  if (!started.ok()) return started;
  // One machine-readable line, so scripts and tests started with --port 0 find the ports.
  std::printf("qsl serve: listening http=%s:%u grpc=%s:%d model=%s\n", s.http.host.c_str(),
              srv.http_port(), s.grpc_host.c_str(), srv.grpc_port(),
              s.api.served_model_name.c_str());
  std::fflush(stdout);
  if (!srv.Wait()) spdlog::warn("some requests were cancelled at the drain timeout");
  return absl::OkStatus();
}

}  // namespace

void AddServeCommand(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve a model over the OpenAI-compatible HTTP API and gRPC (SIGTERM drains)");
  // Every flag can also come from the environment as QSL_<FLAG> (docs/metrics.md).
  auto opt = [&](const std::string& name, auto& value, const std::string& help) {
    std::string env = "QSL_" + name.substr(2);
    for (char& c : env) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
    return cmd->add_option(name, value, help)->envname(env);
  };
  opt("--model", o->engine.model, "packed model file or Hugging Face checkpoint directory")
      ->required();
  opt("--devices", o->engine.devices, "cpu, sim:N or xrt:I,J,...")->capture_default_str();
  opt("--mpe-config", o->engine.mpe_config, "MpeConfig JSON for sim/xrt cards");
  opt("--kv-cache-mb", o->engine.kv_cache_mb, "KV cache budget, MiB")->capture_default_str();
  opt("--max-num-seqs", o->engine.max_num_seqs, "running sequences at most")
      ->capture_default_str();
  opt("--max-queue", o->engine.max_queue, "waiting requests at most (429 beyond)")
      ->capture_default_str();
  opt("--max-num-batched-tokens", o->engine.max_num_batched_tokens, "tokens per forward step")
      ->capture_default_str();
  opt("--max-model-len", o->engine.max_model_len, "prompt + max_tokens limit (0: the model's)")
      ->capture_default_str();
  opt("--kv-cache-dtype", o->engine.kv_dtype,
      "fp16, int8 or fp32 (default: what the packed file asks for, else fp16)");
  opt("--block-size", o->engine.block_size, "tokens per KV block")->capture_default_str();
  cmd->add_flag("--no-chunked-prefill", o->no_chunked_prefill, "prefill each prompt in one step")
      ->envname("QSL_NO_CHUNKED_PREFILL");
  cmd->add_flag("--no-prefix-caching", o->no_prefix_caching, "do not reuse cached prompt blocks")
      ->envname("QSL_NO_PREFIX_CACHING");
  cmd->add_flag("--mmap", o->engine.mmap_weights,
                "map the packed file in place instead of reading it into huge-page memory (less "
                "memory, shared page cache; slower CPU linears)")
      ->envname("QSL_MMAP");
  opt("--served-model-name", o->served_model_name, "model name clients use (default: file name)");
  opt("--host", o->server.http.host, "address to listen on")->capture_default_str();
  opt("--port", o->server.http.port, "HTTP port (0 = any free port)")->capture_default_str();
  opt("--grpc-port", o->server.grpc_port, "gRPC port (0 = any free port)")->capture_default_str();
  opt("--api-key", o->server.api.api_key, "require Authorization: Bearer KEY on /v1/*");
  opt("--max-body-bytes", o->server.http.max_body_bytes, "largest request body (413 beyond)")
      ->capture_default_str();
  opt("--max-connections", o->server.http.max_connections, "open HTTP connections at most")
      ->capture_default_str();
  opt("--read-timeout", o->read_timeout_s, "seconds a request's header, then its body, may take")
      ->capture_default_str();
  opt("--idle-timeout", o->idle_timeout_s, "seconds a keep-alive connection may sit idle")
      ->capture_default_str();
  opt("--write-timeout", o->write_timeout_s, "seconds a client may stall a write")
      ->capture_default_str();
  opt("--drain-timeout", o->drain_timeout_s, "seconds in-flight requests get after SIGTERM")
      ->capture_default_str();
  opt("--io-threads", o->server.io_threads, "threads for connections and streaming")
      ->capture_default_str();
  cmd->callback([o] { ExitOnError("serve", Run(*o)); });
}

}  // namespace qsl::cli
