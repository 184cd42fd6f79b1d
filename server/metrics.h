// The Prometheus metrics of docs/metrics.md (vLLM-style names, qsl_ prefix), through
// prometheus-cpp. Request-path metrics are recorded as they happen; engine and card state is read
// at scrape time, so the cumulative counters are the engine's own and never drift.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/engine.h"

namespace prometheus {
class Registry;
class Counter;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace qsl::server {

struct CardReading {
  std::string name;          // the `card` label: "sim:0", "xrt:1", "cpu"
  bool up = true;
  double utilization = 0.0;  // MAC utilization since the previous scrape, 0..1
};

struct DeviceStats {
  std::vector<CardReading> cards;
  int64_t failovers = 0;  // cumulative
};

class Metrics {
 public:
  using Duration = std::chrono::steady_clock::duration;

  // `engine_stats` and `device_stats` are called on every scrape, from the scraping thread;
  // without `device_stats` (the CPU backend) no card series are exported.
  Metrics(std::function<EngineStats()> engine_stats, std::function<DeviceStats()> device_stats);
  ~Metrics();

  // `endpoint` is a route ("/v1/completions") or a gRPC method ("grpc.Generate"); `status` the
  // HTTP status code or gRPC code name.
  void CountRequest(absl::string_view endpoint, absl::string_view status, Duration latency);
  void ObserveTimeToFirstToken(Duration d);
  void ObserveTimePerOutputToken(Duration d);
  void CountFinished(FinishReason reason);

  // Everything in the Prometheus text exposition format (version 0.0.4).
  std::string Render() const;

 private:
  class Snapshot;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<Snapshot> snapshot_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* duration_;
  prometheus::Family<prometheus::Counter>* finished_;
  prometheus::Histogram* ttft_;
  prometheus::Histogram* tpot_;
};

}  // namespace qsl::server
