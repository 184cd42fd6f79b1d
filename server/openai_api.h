// The HTTP API: routes (/v1/completions, /v1/models, /health, /ready, /metrics), bearer-token
// auth, and /v1/completions answered as a JSON object or as OpenAI's SSE stream.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "server/http_server.h"

namespace qsl {
class Engine;
}

namespace qsl::server {

class Metrics;

struct ApiOptions {
  std::string served_model_name;
  std::string api_key;             // empty: no auth
  std::string system_fingerprint;  // OpenAI's system_fingerprint
  int64_t created = 0;             // unix seconds the model was loaded
};

class OpenAiApi {
 public:
  // `draining` turns /ready and new completions into 503. All referents outlive the API.
  OpenAiApi(Engine& engine, ApiOptions options, Metrics& metrics,
            const std::atomic<bool>& draining);

  // The HttpHandler: runs on the exchange's executor.
  void Handle(std::shared_ptr<HttpExchange> exchange);

 private:
  class Call;
  void Completions(std::shared_ptr<Call> call);

  Engine& engine_;
  ApiOptions options_;
  Metrics& metrics_;
  const std::atomic<bool>& draining_;
};

}  // namespace qsl::server
