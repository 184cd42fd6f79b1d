// What one load-test request measured, and the summary of a run at one load level: throughput,
// TTFT, TPOT, inter-token latency and end-to-end latency percentiles, errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace qsl::loadtest {

using Clock = std::chrono::steady_clock;

struct RequestResult {
  Clock::time_point start;        // when the request was due (open loop) or sent (closed loop)
  Clock::time_point first_token;  // first chunk with generated text
  Clock::time_point end;
  std::vector<double> itl_s;      // gaps between successive chunks with generated text
  int64_t prompt_tokens = 0;      // from usage when the server reports it
  int64_t output_tokens = 0;      // usage.completion_tokens, else chunks with text
  std::string error;              // empty = success
  bool ok() const { return error.empty(); }
};

struct Percentiles {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
};
// Linear interpolation between closest ranks (numpy's default); zeros for no samples.
Percentiles Summarize(std::vector<double> samples);

struct LevelSummary {
  std::string mode;  // "concurrency" or "rate"
  double value = 0;  // streams, or requests per second
  int64_t requests = 0, ok = 0, errors = 0;
  std::vector<std::string> error_samples;  // up to 5 distinct messages
  double duration_s = 0;
  double request_throughput = 0;  // ok requests / s
  double output_throughput = 0;   // generated tokens / s
  double total_token_throughput = 0;
  Percentiles ttft_ms, tpot_ms, itl_ms, e2e_ms;
};

LevelSummary Summarize(const std::string& mode, double value,
                       const std::vector<RequestResult>& results);

// The table printed after each run: one row per level.
std::string Table(const std::vector<LevelSummary>& levels);
nlohmann::json ToJson(const LevelSummary& level, const std::vector<RequestResult>& results);

}  // namespace qsl::loadtest
