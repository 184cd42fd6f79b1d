// What the HTTP front end costs per request and per streamed token, measured against the fake
// engine (no model: every token is ready at once), so the numbers are the server's own overhead:
// JSON parsing, tokenizing the prompt, the engine-to-strand hop, SSE formatting and the socket.
#include <thread>

#include "benchmark/benchmark.h"
#include "boost/asio/executor_work_guard.hpp"
#include "nlohmann/json.hpp"
#include "server/fake_engine.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "server/test_client.h"

namespace qsl::server {
namespace {

namespace http = boost::beast::http;

// One server for the whole run, on two I/O threads as `qsl serve` defaults to.
class Bench {
 public:
  Bench()
      : engine_(FakeEngine::Options{std::chrono::milliseconds(0), 1024, 4096, -1}),
        metrics_([this] { return engine_.Stats(); }, nullptr),
        api_(engine_, ApiOptions{"tiny", "", "fp", 0}, metrics_, draining_),
        http_(io_, Options(), [this](std::shared_ptr<HttpExchange> ex) { api_.Handle(ex); }) {
    if (!http_.Start().ok()) std::abort();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~Bench() {
    http_.Shutdown();
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
  }
  uint16_t port() const { return http_.port(); }

 private:
  static HttpOptions Options() {
    HttpOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    return o;
  }
  FakeEngine engine_;
  Metrics metrics_;
  std::atomic<bool> draining_{false};
  OpenAiApi api_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  HttpServer http_;
  std::vector<std::thread> threads_;
};

Bench& Server() {
  static Bench bench;
  return bench;
}

void Completions(benchmark::State& state, bool stream) {
  const int64_t tokens = state.range(0);
  const std::string body = nlohmann::json({{"prompt", "The quick brown fox jumps over the lazy dog"},
                                           {"max_tokens", tokens}, {"stream", stream}}).dump();
  testing::TestClient client(Server().port());
  for (auto _ : state) {
    auto r = client.Fetch(http::verb::post, "/v1/completions", body);
    if (r.result_int() != 200) state.SkipWithError("request failed");
  }
  state.SetItemsProcessed(state.iterations() * tokens);  // tokens/s in the items column
  state.counters["tokens"] = static_cast<double>(tokens);
}

void BM_Completion(benchmark::State& state) { Completions(state, false); }
void BM_StreamedCompletion(benchmark::State& state) { Completions(state, true); }
BENCHMARK(BM_Completion)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_StreamedCompletion)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace qsl::server

BENCHMARK_MAIN();
