// Load shapes: closed loop (a fixed number of streams, each sending its next request when the
// last one ends) and open loop (Poisson arrivals at a fixed rate, whatever the server's pace;
// latency counts from when a request was due, so client-side queueing is not hidden).
#pragma once

#include <chrono>
#include <vector>

#include "loadtest/result.h"
#include "loadtest/target.h"
#include "loadtest/workload.h"

namespace qsl::loadtest {

struct RunLimits {
  std::chrono::seconds max_duration{600};  // stop issuing new requests after this
  size_t max_inflight = 512;               // open loop: worker threads (requests in flight)
};

std::vector<RequestResult> RunClosedLoop(const TargetFactory& make, int streams,
                                         const std::vector<LoadRequest>& requests,
                                         const RunLimits& limits);
std::vector<RequestResult> RunOpenLoop(const TargetFactory& make, double rate, uint64_t seed,
                                       const std::vector<LoadRequest>& requests,
                                       const RunLimits& limits);

}  // namespace qsl::loadtest
