// The servers a load test can drive: any OpenAI-compatible /v1/completions endpoint (streaming,
// so TTFT and inter-token gaps are seen), or qsl's gRPC GenerateStream. A Target is one client
// connection, used by one worker thread at a time.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "loadtest/result.h"
#include "loadtest/workload.h"

namespace qsl::loadtest {

struct TargetOptions {
  std::string url;        // http://HOST:PORT of an OpenAI-compatible server
  std::string grpc;       // HOST:PORT of qsl's gRPC API (instead of url)
  std::string model;      // sent as "model" when set
  std::string api_key;    // bearer token when set
  float temperature = 0.0f;
  std::optional<uint64_t> seed;
  bool ignore_eos = true;  // generate exactly max_tokens, so every server does the same work
  std::chrono::seconds timeout{300};
};

class Target {
 public:
  virtual ~Target() = default;
  // Sends one streaming request and measures it; `start` is when it was due.
  virtual RequestResult Run(const LoadRequest& request, Clock::time_point start) = 0;
};

using TargetFactory = std::function<std::unique_ptr<Target>()>;
absl::StatusOr<TargetFactory> MakeTargetFactory(const TargetOptions& options);

}  // namespace qsl::loadtest
