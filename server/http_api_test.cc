// The HTTP front end end to end over loopback against the fake engine: OpenAI response and SSE
// shapes, every error status, auth, connection limits and timeouts, keep-alive and pipelining,
// and cancellation when a client goes away.
#include <thread>

#include "boost/asio/executor_work_guard.hpp"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/fake_engine.h"
#include "server/generation.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "server/test_client.h"

namespace qsl::server {
namespace {

using nlohmann::json;
using testing::Response;
using testing::SseData;
using testing::Eventually;
using testing::TestClient;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

class HttpApiTest : public ::testing::Test {
 protected:
  void Start(FakeEngine::Options engine_options = {}, HttpOptions http = {},
             std::string api_key = "") {
    engine_ = std::make_unique<FakeEngine>(engine_options);
    metrics_ = std::make_unique<Metrics>([this] { return engine_->Stats(); },
                                         [] { return DeviceStats{{{"sim:0", true, 0.5}}, 0}; });
    ApiOptions api{"tiny", std::move(api_key), "fp_test", 1700000000};
    api_ = std::make_unique<OpenAiApi>(*engine_, api, *metrics_, draining_);
    http.host = "127.0.0.1";
    http.port = 0;
    server_ = std::make_unique<HttpServer>(io_, http, [this](std::shared_ptr<HttpExchange> ex) {
      api_->Handle(std::move(ex));
    });
    ASSERT_TRUE(server_->Start().ok());
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
  }

  uint16_t port() const { return server_->port(); }

  Response Post(const json& body, std::vector<std::pair<std::string, std::string>> headers = {}) {
    TestClient c(port());
    return c.Fetch(http::verb::post, "/v1/completions", body.dump(), headers);
  }

  static void ExpectError(const Response& r, unsigned status, const std::string& param = "") {
    EXPECT_EQ(r.result_int(), status) << r.body();
    json j = json::parse(r.body(), nullptr, false);
    ASSERT_TRUE(j.contains("error")) << r.body();
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"]["type"].is_string());
    EXPECT_TRUE(j["error"].contains("code"));
    if (!param.empty()) {
      EXPECT_EQ(j["error"]["param"], param) << r.body();
    }
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::vector<std::thread> threads_;
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<Metrics> metrics_;
  std::atomic<bool> draining_{false};
  std::unique_ptr<OpenAiApi> api_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpApiTest, CompletionIsOpenAisObject) {
  Start();
  Response r = Post({{"model", "tiny"}, {"prompt", "Hello there"}, {"max_tokens", 5}, {"seed", 3}});
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(r[http::field::content_type], "application/json");
  json j = json::parse(r.body());
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "tiny");
  EXPECT_EQ(j["system_fingerprint"], "fp_test");
  EXPECT_EQ(std::string(r["x-request-id"]), j["id"].get<std::string>());
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["text"], engine_->ExpectedText(0, 5));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  const auto prompt_ids = engine_->tokenizer().Encode("Hello there", true);
  EXPECT_EQ(engine_->last_request().prompt, prompt_ids);
  EXPECT_EQ(engine_->last_request().params.seed, 3u);
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt_ids.size());
  EXPECT_EQ(j["usage"]["completion_tokens"], 5);
  EXPECT_EQ(j["usage"]["total_tokens"], prompt_ids.size() + 5);
}

TEST_F(HttpApiTest, BatchedPromptsAndNNumberChoicesLikeOpenAi) {
  Start();
  Response r = Post({{"prompt", {"a", "b"}}, {"max_tokens", 2}, {"n", 2}});
  ASSERT_EQ(r.result_int(), 200) << r.body();
  json j = json::parse(r.body());
  ASSERT_EQ(j["choices"].size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(j["choices"][i]["index"], i);
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);
  EXPECT_EQ(j["choices"][3]["text"], engine_->ExpectedText(1, 2));  // last prompt ("b"), choice 1
}

TEST_F(HttpApiTest, TokenIdPromptsAreUsedAsGiven) {
  Start();
  Response r = Post({{"prompt", {{1, 500, 600}, {1, 700}}}, {"max_tokens", 1}});
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(engine_->last_request().prompt, (std::vector<int32_t>{1, 700}));
  EXPECT_EQ(json::parse(r.body())["usage"]["prompt_tokens"], 5);
}

TEST_F(HttpApiTest, StreamIsSseChunksEndingInDone) {
  Start();
  Response r = Post({{"prompt", "Hi"}, {"max_tokens", 4}, {"stream", true},
                     {"stream_options", {{"include_usage", true}}}});
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_EQ(r[http::field::content_type], "text/event-stream");
  std::vector<std::string> events = SseData(r.body());
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  std::string id;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    json chunk = json::parse(events[i]);
    EXPECT_EQ(chunk["object"], "text_completion");
    EXPECT_TRUE(chunk["usage"].is_null());
    if (id.empty()) id = chunk["id"];
    EXPECT_EQ(chunk["id"], id);
    text += chunk["choices"][0]["text"].get<std::string>();
  }
  json last = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["completion_tokens"], 4);
  EXPECT_EQ(text, engine_->ExpectedText(0, 4));
  json final_choice = json::parse(events[events.size() - 3])["choices"][0];
  EXPECT_EQ(final_choice["finish_reason"], "length");
}

TEST_F(HttpApiTest, EchoWithLogprobsPrependsThePromptAndItsTokens) {
  Start();
  Response r = Post({{"prompt", "Hello"}, {"max_tokens", 2}, {"echo", true}, {"logprobs", 2}});
  ASSERT_EQ(r.result_int(), 200) << r.body();
  json choice = json::parse(r.body())["choices"][0];
  EXPECT_EQ(choice["text"], "Hello" + engine_->ExpectedText(0, 2));
  const size_t prompt_len = engine_->tokenizer().Encode("Hello", true).size();
  json lp = choice["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), prompt_len + 2);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_EQ(lp["token_logprobs"][prompt_len], -0.5);
  // Two alternatives plus the sampled token, as OpenAI documents.
  EXPECT_EQ(lp["top_logprobs"][prompt_len].size(), 3u);
  EXPECT_EQ(lp["text_offset"][0], 0);
}

TEST_F(HttpApiTest, BadRequestsGetOpenAiErrorsNamingTheParameter) {
  Start();
  ExpectError(Post({{"prompt", "x"}, {"max_tokens", -1}}), 400, "max_tokens");
  ExpectError(Post({{"prompt", "x"}, {"temperature", 9}}), 400, "temperature");
  ExpectError(Post({{"prompt", "x"}, {"logprobs", 6}}), 400, "logprobs");
  ExpectError(Post({{"prompt", "x"}, {"stop", {"a", "b", "c", "d", "e"}}}), 400, "stop");
  ExpectError(Post({{"prompt", {1, 999999}}}), 400, "prompt");
  ExpectError(Post({{"prompt", "x"}, {"logit_bias", {{"999999", 1}}}}), 400, "logit_bias");
  ExpectError(Post({{"prompt", "x"}, {"max_tokens", 100000}}), 400, "max_tokens");
  ExpectError(Post({{"prompt", "x"}, {"model", "gpt-4"}}), 404);
  TestClient c(port());
  ExpectError(c.Fetch(http::verb::post, "/v1/completions", "{not json"), 400);
  EXPECT_EQ(engine_->submitted_requests(), 0);
}

TEST_F(HttpApiTest, RoutesAndMethods) {
  Start();
  TestClient c(port());
  ExpectError(c.Fetch(http::verb::get, "/v1/chat/nope"), 404);
  Response wrong = c.Fetch(http::verb::get, "/v1/completions");
  ExpectError(wrong, 405);
  EXPECT_EQ(wrong[http::field::allow], "POST");
  EXPECT_EQ(c.Fetch(http::verb::get, "/health").result_int(), 200);
  EXPECT_EQ(c.Fetch(http::verb::get, "/ready").result_int(), 200);
  json models = json::parse(c.Fetch(http::verb::get, "/v1/models").body());
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(models["data"][0]["max_model_len"], 256);
  EXPECT_EQ(c.Fetch(http::verb::get, "/v1/models/tiny").result_int(), 200);
  ExpectError(c.Fetch(http::verb::get, "/v1/models/other"), 404);
  EXPECT_EQ(c.Fetch(http::verb::get, "/health?probe=1").result_int(), 200);
}

TEST_F(HttpApiTest, ApiKeyGuardsTheApiButNotProbesOrMetrics) {
  Start({}, {}, "sekret");
  ExpectError(Post({{"prompt", "x"}, {"max_tokens", 1}}), 401);
  Response wrong = Post({{"prompt", "x"}, {"max_tokens", 1}}, {{"Authorization", "Bearer nope"}});
  ExpectError(wrong, 401);
  EXPECT_EQ(json::parse(wrong.body())["error"]["code"], "invalid_api_key");
  EXPECT_EQ(Post({{"prompt", "x"}, {"max_tokens", 1}}, {{"Authorization", "Bearer sekret"}})
                .result_int(),
            200);
  TestClient c(port());
  ExpectError(c.Fetch(http::verb::get, "/v1/models"), 401);
  EXPECT_EQ(c.Fetch(http::verb::get, "/health").result_int(), 200);
  EXPECT_EQ(c.Fetch(http::verb::get, "/metrics").result_int(), 200);
}

TEST_F(HttpApiTest, FullQueueIs429AndDrainingIs503) {
  FakeEngine::Options slow;
  slow.step = 20ms;
  slow.max_queue = 1;
  Start(slow);
  TestClient holder(port());
  holder.Send(http::verb::post, "/v1/completions",
              json({{"prompt", "x"}, {"max_tokens", 50}, {"stream", true}}).dump());
  ASSERT_TRUE(Eventually([&] { return engine_->live_requests() == 1; }));
  ExpectError(Post({{"prompt", "y"}, {"max_tokens", 1}}), 429);
  draining_ = true;
  ExpectError(Post({{"prompt", "y"}, {"max_tokens", 1}}), 503);
  TestClient c(port());
  ExpectError(c.Fetch(http::verb::get, "/ready"), 503);
}

TEST_F(HttpApiTest, BodyAndHeaderLimits) {
  HttpOptions limits;
  limits.max_body_bytes = 1000;
  limits.max_header_bytes = 2000;
  Start({}, limits);
  ExpectError(Post({{"prompt", std::string(2000, 'a')}}), 413);
  // A chunked body has no Content-Length: the limit applies while reading.
  TestClient chunked(port());
  chunked.SendRaw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  std::string("7d0\r\n") + std::string(2000, 'a') + "\r\n0\r\n\r\n");
  ExpectError(chunked.Receive(), 413);
  TestClient header(port());
  ExpectError(header.Fetch(http::verb::get, "/health", "", {{"X-Big", std::string(3000, 'h')}}),
              431);
  // And the server still serves.
  EXPECT_EQ(Post({{"prompt", "ok"}, {"max_tokens", 1}}).result_int(), 200);
}

TEST_F(HttpApiTest, KeepAlivePipeliningAndExpectContinue) {
  Start();
  TestClient c(port());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.Fetch(http::verb::post, "/v1/completions",
                      json({{"prompt", "x"}, {"max_tokens", 1}}).dump())
                  .result_int(),
              200);
  }
  const std::string body = json({{"prompt", "x"}, {"max_tokens", 1}}).dump();
  const std::string one = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  c.SendRaw(one + one);
  EXPECT_EQ(c.Receive().result_int(), 200);
  EXPECT_EQ(c.Receive().result_int(), 200);

  TestClient expect(port());
  expect.SendRaw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                 "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  EXPECT_NE(expect.ReadSome().find("100 Continue"), std::string::npos);
  expect.SendRaw(body);
  EXPECT_EQ(expect.Receive().result_int(), 200);
}

TEST_F(HttpApiTest, SlowAndIdleClientsAreCutOff) {
  HttpOptions quick;
  quick.read_timeout = 200ms;
  quick.idle_timeout = 300ms;
  Start({}, quick);
  TestClient slowloris(port());
  slowloris.SendRaw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-A: ");
  TestClient idle(port());
  TestClient half_body(port());
  half_body.SendRaw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{");
  EXPECT_TRUE(slowloris.ServerCloses());
  EXPECT_TRUE(idle.ServerCloses());
  EXPECT_TRUE(half_body.ServerCloses());
  EXPECT_EQ(Post({{"prompt", "x"}, {"max_tokens", 1}}).result_int(), 200);
}

TEST_F(HttpApiTest, ConnectionCapAnswers503) {
  HttpOptions capped;
  capped.max_connections = 2;
  Start({}, capped);
  TestClient a(port()), b(port());
  ASSERT_EQ(a.Fetch(http::verb::get, "/health").result_int(), 200);
  ASSERT_EQ(b.Fetch(http::verb::get, "/health").result_int(), 200);
  TestClient c(port());
  ExpectError(c.Receive(), 503);
  a.Close();
  EXPECT_TRUE(Eventually([&] { return server_->open_connections() <= 1; }));
  TestClient d(port());
  EXPECT_EQ(d.Fetch(http::verb::get, "/health").result_int(), 200);
}

TEST_F(HttpApiTest, DisconnectMidStreamCancelsTheRequest) {
  FakeEngine::Options slow;
  slow.step = 10ms;
  slow.max_model_len = 20000;
  Start(slow);
  TestClient c(port());
  c.Send(http::verb::post, "/v1/completions",
         json({{"prompt", "x"}, {"max_tokens", 10000}, {"stream", true}}).dump());
  const std::string head = c.ReadSome();
  EXPECT_NE(head.find("200 OK"), std::string::npos) << head << " / " << c.error().message();
  c.Close();
  EXPECT_TRUE(Eventually([&] { return engine_->live_requests() == 0; }));
  EXPECT_EQ(engine_->cancelled_requests(), 1);
}

TEST_F(HttpApiTest, DisconnectBeforeTheAnswerCancelsTheRequest) {
  FakeEngine::Options slow;
  slow.step = 10ms;
  slow.max_model_len = 20000;
  Start(slow);
  TestClient c(port());
  c.Send(http::verb::post, "/v1/completions", json({{"prompt", "x"}, {"max_tokens", 10000}}).dump());
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_TRUE(Eventually([&] { return engine_->live_requests() == 1; }))
      << engine_->submitted_requests();
  c.Close();
  EXPECT_TRUE(Eventually([&] { return engine_->live_requests() == 0; }));
  EXPECT_EQ(engine_->cancelled_requests(), 1);
  TestClient m(port());
  EXPECT_NE(m.Fetch(http::verb::get, "/metrics").body().find(
                "qsl_requests_total{endpoint=\"/v1/completions\",status=\"499\"} 1"),
            std::string::npos);
}

TEST_F(HttpApiTest, MetricsCountRequestsAndTokens) {
  Start();
  ASSERT_EQ(Post({{"prompt", "x"}, {"max_tokens", 3}}).result_int(), 200);
  ExpectError(Post({{"prompt", "x"}, {"max_tokens", -3}}), 400);
  TestClient c(port());
  Response r = c.Fetch(http::verb::get, "/metrics");
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_EQ(r[http::field::content_type], "text/plain; version=0.0.4");
  const std::string& m = r.body();
  EXPECT_NE(m.find("qsl_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 1"),
            std::string::npos) << m;
  EXPECT_NE(m.find("qsl_requests_total{endpoint=\"/v1/completions\",status=\"400\"} 1"),
            std::string::npos);
  EXPECT_NE(m.find("qsl_generation_tokens_total 3"), std::string::npos);
  EXPECT_NE(m.find("qsl_request_finished_total{finish_reason=\"length\"} 1"), std::string::npos);
  EXPECT_NE(m.find("qsl_time_to_first_token_seconds_count 1"), std::string::npos);
  EXPECT_NE(m.find("qsl_time_per_output_token_seconds_count 1"), std::string::npos);
  EXPECT_NE(m.find("qsl_card_up{card=\"sim:0\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace qsl::server
