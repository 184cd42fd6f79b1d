// qsl_server's public face: the HTTP and gRPC front ends and metrics over one Engine, with
// graceful shutdown (SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/openai_api.h"

namespace qsl::server {

struct ServerOptions {
  HttpOptions http;
  std::string grpc_host = "0.0.0.0";
  uint16_t grpc_port = 50051;  // 0 = any free port
  ApiOptions api;
  int io_threads = 2;  // HTTP connections and generation callbacks
  // In-flight requests get this long to finish after SIGTERM; what is left is cancelled.
  std::chrono::milliseconds drain_timeout{30'000};
};

class Server {
 public:
  // `devices` reports the cards for /metrics; `engine` outlives the server.
  Server(Engine& engine, ServerOptions options, std::function<DeviceStats()> devices);
  ~Server();

  // Binds both ports and starts serving; SIGTERM and SIGINT then begin a drain.
  absl::Status Start();
  uint16_t http_port() const;
  int grpc_port() const;

  // Blocks until a signal or RequestStop(), drains, and stops. Returns false when in-flight
  // requests had to be cancelled at the drain timeout.
  bool Wait();
  void RequestStop();  // thread-safe; what SIGTERM does

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsl::server
