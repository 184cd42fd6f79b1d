#include "loadtest/result.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_format.h"

namespace qsl::loadtest {

namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

nlohmann::json PercentilesJson(const Percentiles& p) {
  return {{"mean", p.mean}, {"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}};
}

}  // namespace

Percentiles Summarize(std::vector<double> samples) {
  Percentiles p;
  if (samples.empty()) return p;
  std::sort(samples.begin(), samples.end());
  double sum = 0;
  for (double s : samples) sum += s;
  p.mean = sum / static_cast<double>(samples.size());
  p.p50 = Quantile(samples, 0.50);
  p.p90 = Quantile(samples, 0.90);
  p.p99 = Quantile(samples, 0.99);
  return p;
}

LevelSummary Summarize(const std::string& mode, double value,
                       const std::vector<RequestResult>& results) {
  LevelSummary s;
  s.mode = mode;
  s.value = value;
  s.requests = static_cast<int64_t>(results.size());
  if (results.empty()) return s;
  std::vector<double> ttft, tpot, itl, e2e;
  std::set<std::string> errors;
  Clock::time_point first = results.front().start, last = results.front().end;
  int64_t out_tokens = 0, all_tokens = 0;
  for (const RequestResult& r : results) {
    first = std::min(first, r.start);
    last = std::max(last, r.end);
    if (!r.ok()) {
      s.errors++;
      if (errors.size() < 5) errors.insert(r.error);
      continue;
    }
    s.ok++;
    out_tokens += r.output_tokens;
    all_tokens += r.output_tokens + r.prompt_tokens;
    e2e.push_back(Seconds(r.end - r.start) * 1e3);
    if (r.output_tokens > 0) ttft.push_back(Seconds(r.first_token - r.start) * 1e3);
    if (r.output_tokens > 1) {
      tpot.push_back(Seconds(r.end - r.first_token) * 1e3 / static_cast<double>(r.output_tokens - 1));
    }
    for (double g : r.itl_s) itl.push_back(g * 1e3);
  }
  s.error_samples.assign(errors.begin(), errors.end());
  s.duration_s = Seconds(last - first);
  if (s.duration_s > 0) {
    s.request_throughput = static_cast<double>(s.ok) / s.duration_s;
    s.output_throughput = static_cast<double>(out_tokens) / s.duration_s;
    s.total_token_throughput = static_cast<double>(all_tokens) / s.duration_s;
  }
  s.ttft_ms = Summarize(std::move(ttft));
  s.tpot_ms = Summarize(std::move(tpot));
  s.itl_ms = Summarize(std::move(itl));
  s.e2e_ms = Summarize(std::move(e2e));
  return s;
}

std::string Table(const std::vector<LevelSummary>& levels) {
  std::string out = absl::StrFormat(
      "%-12s %6s %5s %4s %7s %8s %9s | %-22s | %-22s | %-22s | %-15s\n", "mode", "load", "ok",
      "err", "time_s", "req/s", "out_tok/s", "TTFT ms p50/p90/p99", "TPOT ms p50/p90/p99",
      "ITL ms p50/p90/p99", "E2E ms p50/p99");
  auto triple = [](const Percentiles& p) {
    return absl::StrFormat("%6.1f/%6.1f/%6.1f", p.p50, p.p90, p.p99);
  };
  for (const LevelSummary& l : levels) {
    out += absl::StrFormat("%-12s %6g %5d %4d %7.2f %8.2f %9.1f | %-22s | %-22s | %-22s | %7.0f/%7.0f\n",
                           l.mode, l.value, l.ok, l.errors, l.duration_s, l.request_throughput,
                           l.output_throughput, triple(l.ttft_ms), triple(l.tpot_ms),
                           triple(l.itl_ms), l.e2e_ms.p50, l.e2e_ms.p99);
    for (const std::string& e : l.error_samples) out += "    error: " + e + "\n";
  }
  return out;
}

nlohmann::json ToJson(const LevelSummary& l, const std::vector<RequestResult>& results) {
  nlohmann::json records = nlohmann::json::array();
  const Clock::time_point t0 = results.empty() ? Clock::time_point() : results.front().start;
  for (const RequestResult& r : results) {
    nlohmann::json rec = {{"start_s", Seconds(r.start - t0)},
                          {"e2e_ms", Seconds(r.end - r.start) * 1e3},
                          {"prompt_tokens", r.prompt_tokens},
                          {"output_tokens", r.output_tokens}};
    if (r.ok() && r.output_tokens > 0) rec["ttft_ms"] = Seconds(r.first_token - r.start) * 1e3;
    if (!r.ok()) rec["error"] = r.error;
    records.push_back(std::move(rec));
  }
  return {{"mode", l.mode},
          {"value", l.value},
          {"requests", l.requests},
          {"ok", l.ok},
          {"errors", l.errors},
          {"error_samples", l.error_samples},
          {"duration_s", l.duration_s},
          {"request_throughput", l.request_throughput},
          {"output_throughput", l.output_throughput},
          {"total_token_throughput", l.total_token_throughput},
          {"ttft_ms", PercentilesJson(l.ttft_ms)},
          {"tpot_ms", PercentilesJson(l.tpot_ms)},
          {"itl_ms", PercentilesJson(l.itl_ms)},
          {"e2e_ms", PercentilesJson(l.e2e_ms)},
          {"records", std::move(records)}};
}

}  // namespace qsl::loadtest
