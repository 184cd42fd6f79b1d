#include "loadtest/driver.h"

#include <atomic>
#include <optional>
#include <thread>

namespace qsl::loadtest {

namespace {

// Runs requests on `workers` threads, each with its own Target: a worker takes the next
// request, asks `start_of(i)` when it starts (sleeping until then if need be) and runs it, until
// the requests run out or `start_of` says stop. Returns the results of those that ran, in order.
template <typename StartOf>
std::vector<RequestResult> RunOnWorkers(size_t workers, const TargetFactory& make,
                                        const std::vector<LoadRequest>& requests,
                                        StartOf start_of) {
  std::vector<RequestResult> results(requests.size());
  std::vector<char> ran(requests.size(), 0);
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      std::unique_ptr<Target> target = make();
      for (size_t i; (i = next++) < requests.size();) {
        std::optional<Clock::time_point> start = start_of(i);
        if (!start) break;
        std::this_thread::sleep_until(*start);
        results[i] = target->Run(requests[i], *start);
        ran[i] = 1;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<RequestResult> finished;
  for (size_t i = 0; i < results.size(); ++i) {
    if (ran[i]) finished.push_back(std::move(results[i]));
  }
  return finished;
}

}  // namespace

std::vector<RequestResult> RunClosedLoop(const TargetFactory& make, int streams,
                                         const std::vector<LoadRequest>& requests,
                                         const RunLimits& limits) {
  const Clock::time_point stop = Clock::now() + limits.max_duration;
  return RunOnWorkers(static_cast<size_t>(std::max(1, streams)), make, requests,
                      [&](size_t) -> std::optional<Clock::time_point> {
                        const Clock::time_point now = Clock::now();
                        if (now >= stop) return std::nullopt;
                        return now;
                      });
}

std::vector<RequestResult> RunOpenLoop(const TargetFactory& make, double rate, uint64_t seed,
                                       const std::vector<LoadRequest>& requests,
                                       const RunLimits& limits) {
  const std::vector<double> offsets = PoissonArrivals(rate, requests.size(), seed);
  const Clock::time_point t0 = Clock::now();
  const Clock::time_point stop = t0 + limits.max_duration;
  // With enough workers every request starts when due; when all are busy, the wait shows up as
  // latency, as it would for a real client population.
  const size_t workers = std::min(limits.max_inflight, std::max<size_t>(1, requests.size()));
  return RunOnWorkers(workers, make, requests, [&](size_t i) -> std::optional<Clock::time_point> {
    const Clock::time_point due =
        t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(offsets[i]));
    if (due >= stop) return std::nullopt;
    return due;
  });
}

}  // namespace qsl::loadtest
