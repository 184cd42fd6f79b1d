#include "server/metrics.h"

#include <sstream>

#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace qsl::server {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

double Seconds(Metrics::Duration d) { return std::chrono::duration<double>(d).count(); }

// Bucket bounds follow vLLM's (vllm/engine/metrics.py) with finer low buckets, since a small
// model on the CPU answers in milliseconds.
const prometheus::Histogram::BucketBoundaries kRequestBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0};
const prometheus::Histogram::BucketBoundaries kTtftBuckets = {
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0};
const prometheus::Histogram::BucketBoundaries kTpotBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5};

MetricFamily Family(const char* name, const char* help, MetricType type) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

ClientMetric Value(MetricType type, double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter) m.counter.value = v;
  else m.gauge.value = v;
  return m;
}

MetricFamily Single(const char* name, const char* help, MetricType type, double v) {
  MetricFamily f = Family(name, help, type);
  f.metric.push_back(Value(type, v));
  return f;
}

}  // namespace

// Engine and card state, read when Prometheus scrapes.
class Metrics::Snapshot : public prometheus::Collectable {
 public:
  Snapshot(std::function<EngineStats()> engine, std::function<DeviceStats()> devices)
      : engine_(std::move(engine)), devices_(std::move(devices)) {}

  std::vector<MetricFamily> Collect() const override {
    const EngineStats s = engine_();
    const double kv = s.kv_blocks_total > 0
                          ? static_cast<double>(s.kv_blocks_used) / s.kv_blocks_total : 0.0;
    std::vector<MetricFamily> out = {
        Single("qsl_prompt_tokens_total", "Prompt tokens processed.", MetricType::Counter,
               s.prompt_tokens),
        Single("qsl_generation_tokens_total", "Tokens generated.", MetricType::Counter,
               s.generation_tokens),
        Single("qsl_requests_running", "Sequences in the running batch.", MetricType::Gauge,
               s.running),
        Single("qsl_requests_waiting", "Requests queued, not yet scheduled.", MetricType::Gauge,
               s.waiting),
        Single("qsl_kv_cache_usage_ratio", "Used / total KV blocks.", MetricType::Gauge, kv),
        Single("qsl_prefix_cache_queries_total", "Prompt blocks looked up in the prefix cache.",
               MetricType::Counter, s.prefix_queries),
        Single("qsl_prefix_cache_hits_total", "Prompt blocks found in the prefix cache.",
               MetricType::Counter, s.prefix_hits),
        Single("qsl_preemptions_total", "Sequences preempted (recompute).", MetricType::Counter,
               s.preemptions),
    };
    const DeviceStats d = devices_ ? devices_() : DeviceStats{};
    MetricFamily up = Family("qsl_card_up", "1 when the card is healthy, 0 when down.",
                             MetricType::Gauge);
    MetricFamily util = Family("qsl_card_utilization_ratio",
                               "MAC utilization of the card over the last scrape interval.",
                               MetricType::Gauge);
    for (const CardReading& c : d.cards) {
      up.metric.push_back(Value(MetricType::Gauge, c.up ? 1.0 : 0.0, {{"card", c.name}}));
      util.metric.push_back(Value(MetricType::Gauge, c.utilization, {{"card", c.name}}));
    }
    out.push_back(std::move(up));
    out.push_back(std::move(util));
    out.push_back(Single("qsl_card_failovers_total",
                         "Card failures whose work was re-run elsewhere.", MetricType::Counter,
                         static_cast<double>(d.failovers)));
    return out;
  }

 private:
  std::function<EngineStats()> engine_;
  std::function<DeviceStats()> devices_;
};

Metrics::Metrics(std::function<EngineStats()> engine_stats,
                 std::function<DeviceStats()> device_stats)
    : registry_(std::make_shared<prometheus::Registry>()),
      snapshot_(std::make_shared<Snapshot>(std::move(engine_stats), std::move(device_stats))) {
  requests_ = &prometheus::BuildCounter()
                   .Name("qsl_requests_total")
                   .Help("Finished requests by endpoint and status.")
                   .Register(*registry_);
  duration_ = &prometheus::BuildHistogram()
                   .Name("qsl_request_duration_seconds")
                   .Help("End-to-end request latency.")
                   .Register(*registry_);
  finished_ = &prometheus::BuildCounter()
                   .Name("qsl_request_finished_total")
                   .Help("Finished choices by finish reason.")
                   .Register(*registry_);
  ttft_ = &prometheus::BuildHistogram()
               .Name("qsl_time_to_first_token_seconds")
               .Help("Arrival to first generated token.")
               .Register(*registry_)
               .Add({}, kTtftBuckets);
  tpot_ = &prometheus::BuildHistogram()
               .Name("qsl_time_per_output_token_seconds")
               .Help("Mean gap between generated tokens of a request, after the first.")
               .Register(*registry_)
               .Add({}, kTpotBuckets);
  // Every finish reason is exported from the start, so rate() works before the first error.
  for (FinishReason r : {FinishReason::kStop, FinishReason::kLength, FinishReason::kCancelled,
                         FinishReason::kError}) {
    finished_->Add({{"finish_reason", FinishReasonName(r)}});
  }
}

Metrics::~Metrics() = default;

void Metrics::CountRequest(absl::string_view endpoint, absl::string_view status,
                           Duration latency) {
  const std::string ep(endpoint);
  requests_->Add({{"endpoint", ep}, {"status", std::string(status)}}).Increment();
  duration_->Add({{"endpoint", ep}}, kRequestBuckets).Observe(Seconds(latency));
}

void Metrics::ObserveTimeToFirstToken(Duration d) { ttft_->Observe(Seconds(d)); }
void Metrics::ObserveTimePerOutputToken(Duration d) { tpot_->Observe(Seconds(d)); }

void Metrics::CountFinished(FinishReason reason) {
  finished_->Add({{"finish_reason", FinishReasonName(reason)}}).Increment();
}

std::string Metrics::Render() const {
  std::vector<MetricFamily> families = registry_->Collect();
  std::vector<MetricFamily> engine = snapshot_->Collect();
  families.insert(families.end(), std::make_move_iterator(engine.begin()),
                  std::make_move_iterator(engine.end()));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace qsl::server
