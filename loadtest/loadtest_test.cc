// qsl-loadtest's parts: SSE parsing, percentiles, workloads and arrivals, and the HTTP client and
// drivers against a small in-test SSE server.
#include <cstdio>
#include <fstream>
#include <thread>

#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"
#include "format/tokenizer.h"
#include "gtest/gtest.h"
#include "loadtest/driver.h"
#include "loadtest/sse.h"
#include "loadtest/target.h"
#include "loadtest/workload.h"

namespace qsl::loadtest {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

TEST(SseParser, ReassemblesEventsSplitAnywhere) {
  const std::string body =
      "data: {\"a\":1}\n\n: comment\n\ndata: line1\ndata: line2\r\n\r\nevent: x\ndata: [DONE]\n\n";
  for (size_t step : {1u, 2u, 5u, 1000u}) {
    SseParser p;
    std::vector<std::string> events;
    for (size_t i = 0; i < body.size(); i += step) {
      for (auto& e : p.Feed(absl::string_view(body).substr(i, step))) events.push_back(e);
    }
    EXPECT_EQ(events, (std::vector<std::string>{"{\"a\":1}", "line1\nline2", "[DONE]"}))
        << "step " << step;
  }
}

TEST(Summarize, InterpolatesPercentilesLikeNumpy) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  Percentiles p = Summarize(v);
  EXPECT_DOUBLE_EQ(p.mean, 50.5);
  EXPECT_DOUBLE_EQ(p.p50, 50.5);
  EXPECT_DOUBLE_EQ(p.p90, 90.1);
  EXPECT_DOUBLE_EQ(p.p99, 99.01);
  EXPECT_DOUBLE_EQ(Summarize(std::vector<double>{}).p99, 0.0);
}

TEST(Summarize, CountsThroughputFromOkRequestsAndKeepsErrors) {
  const Clock::time_point t0 = Clock::now();
  auto at = [&](double s) {
    return t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  RequestResult ok{at(0), at(0.5), at(2.0), {0.5, 1.0}, 10, 3, ""};
  RequestResult bad{at(1), at(1), at(1.5), {}, 0, 0, "HTTP 500: boom"};
  LevelSummary s = Summarize("concurrency", 2, {ok, bad});
  EXPECT_EQ(s.ok, 1);
  EXPECT_EQ(s.errors, 1);
  EXPECT_EQ(s.error_samples, std::vector<std::string>{"HTTP 500: boom"});
  EXPECT_DOUBLE_EQ(s.duration_s, 2.0);
  EXPECT_DOUBLE_EQ(s.output_throughput, 1.5);
  EXPECT_DOUBLE_EQ(s.ttft_ms.p50, 500.0);
  EXPECT_DOUBLE_EQ(s.tpot_ms.p50, 750.0);  // (2.0 - 0.5) s over 2 gaps
  EXPECT_DOUBLE_EQ(s.e2e_ms.p50, 2000.0);
  EXPECT_NE(Table({s}).find("HTTP 500: boom"), std::string::npos);
}

TEST(LengthDist, ParsesAndSamplesWithinBounds) {
  std::mt19937_64 rng(1);
  auto fixed = LengthDist::Parse("64");
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->Sample(rng), 64);
  auto uni = LengthDist::Parse("uniform:10:20");
  ASSERT_TRUE(uni.ok());
  for (int i = 0; i < 100; ++i) {
    int32_t v = uni->Sample(rng);
    EXPECT_GE(v, 10);
    EXPECT_LE(v, 20);
  }
  auto normal = LengthDist::Parse("normal:5:50");
  ASSERT_TRUE(normal.ok());
  for (int i = 0; i < 100; ++i) EXPECT_GE(normal->Sample(rng), 1);
  for (const char* bad : {"", "0", "-3", "uniform:5", "uniform:9:3", "zipf:1:2", "x"}) {
    EXPECT_FALSE(LengthDist::Parse(bad).ok()) << bad;
  }
}

std::string TempFile(const std::string& text) {
  char name[] = "/tmp/qsl_loadtest_XXXXXX";
  int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(name) << text;
  return name;
}

TEST(BuildWorkload, ReadsLinesAndJsonl) {
  WorkloadOptions o;
  o.prompts_file = TempFile("first prompt\n\n{\"prompt\": \"second\"}\n");
  o.count = 5;
  o.output_tokens = "uniform:3:4";
  auto w = BuildWorkload(o);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->size(), 5u);
  EXPECT_EQ((*w)[0].prompt, "first prompt");
  EXPECT_EQ((*w)[1].prompt, "second");
  EXPECT_EQ((*w)[2].prompt, "first prompt");
  for (const LoadRequest& r : *w) EXPECT_TRUE(r.max_tokens == 3 || r.max_tokens == 4);
  o.prompts_file = TempFile("{\"nope\": 1}\n");
  EXPECT_FALSE(BuildWorkload(o).ok());
  o.prompts_file = "/nonexistent/prompts.txt";
  EXPECT_FALSE(BuildWorkload(o).ok());
}

TEST(BuildWorkload, CutsPromptsToSampledTokenLengths) {
  const std::string tok_path = std::string(QSL_SOURCE_DIR) + "/models/qsl-tiny-llama/tokenizer.model";
  WorkloadOptions o;
  o.prompts_file = std::string(QSL_SOURCE_DIR) + "/data/dev.txt";
  o.prompt_tokens = "uniform:20:60";
  o.count = 20;
  EXPECT_FALSE(BuildWorkload(o).ok());  // no tokenizer
  o.tokenizer = tok_path;
  auto w = BuildWorkload(o);
  ASSERT_TRUE(w.ok()) << w.status();
  auto tok = Tokenizer::FromFile(tok_path);
  ASSERT_TRUE(tok.ok());
  for (const LoadRequest& r : *w) {
    // Re-tokenizing decoded text can merge pieces at the edges; lengths stay close.
    const int64_t n = static_cast<int64_t>((*tok)->Encode(r.prompt, true).size());
    EXPECT_GE(n, 20 - 4) << r.prompt;
    EXPECT_LE(n, 60 + 4) << r.prompt;
  }
}

TEST(PoissonArrivals, AreOrderedWithTheRequestedMeanGap) {
  std::vector<double> t = PoissonArrivals(4.0, 20000, 7);
  EXPECT_EQ(t.front(), 0.0);
  for (size_t i = 1; i < t.size(); ++i) ASSERT_GE(t[i], t[i - 1]);
  EXPECT_NEAR(t.back() / static_cast<double>(t.size() - 1), 0.25, 0.01);
  EXPECT_EQ(PoissonArrivals(4.0, 10, 7), PoissonArrivals(4.0, 10, 7));
}

// A tiny OpenAI-style server: answers each /v1/completions with `chunks` SSE text chunks and a
// usage chunk, or with HTTP 429 when the prompt is "busy". One thread per connection.
class SseServer {
 public:
  explicit SseServer(int chunks) : chunks_(chunks), acceptor_(io_, {net::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { Accept(); });
  }
  ~SseServer() {
    stop_ = true;
    boost::system::error_code ignored;
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
    for (auto& t : sessions_) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
  int connections() const { return connections_; }

 private:
  void Accept() {
    while (!stop_) {
      tcp::socket s(io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) break;
      connections_++;
      sessions_.emplace_back([this, s = std::move(s)]() mutable { Serve(std::move(s)); });
    }
  }

  void Serve(tcp::socket s) {
    boost::beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(s, buf, req, ec);
      if (ec) return;
      auto body = nlohmann::json::parse(req.body());
      if (body["prompt"] == "busy") {
        http::response<http::string_body> res{http::status::too_many_requests, 11};
        res.body() = R"({"error":{"message":"queue full"}})";
        res.prepare_payload();
        http::write(s, res, ec);
        continue;
      }
      http::response<http::empty_body> head{http::status::ok, 11};
      head.chunked(true);
      http::response_serializer<http::empty_body> sr(head);
      http::write_header(s, sr, ec);
      for (int i = 0; i < chunks_; ++i) {
        std::string event = "data: {\"choices\":[{\"index\":0,\"text\":\"t\"}]}\n\n";
        net::write(s, http::make_chunk(net::buffer(event)), ec);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      std::string tail =
          "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":" +
          std::to_string(chunks_) + "}}\n\ndata: [DONE]\n\n";
      net::write(s, http::make_chunk(net::buffer(tail)), ec);
      net::write(s, http::make_chunk_last(), ec);
      if (ec) return;
    }
  }

  int chunks_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
  std::vector<std::thread> sessions_;
};

TEST(OpenAiTarget, MeasuresAStreamAndReusesItsConnection) {
  SseServer server(5);
  TargetOptions o;
  o.url = server.url();
  auto make = MakeTargetFactory(o);
  ASSERT_TRUE(make.ok()) << make.status();
  std::unique_ptr<Target> target = (*make)();
  for (int i = 0; i < 2; ++i) {
    RequestResult r = target->Run({"hello", 5}, Clock::now());
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.output_tokens, 5);
    EXPECT_EQ(r.prompt_tokens, 7);
    EXPECT_EQ(r.itl_s.size(), 4u);
    EXPECT_LE(r.start, r.first_token);
    EXPECT_LE(r.first_token, r.end);
  }
  EXPECT_EQ(server.connections(), 1);
  RequestResult busy = target->Run({"busy", 5}, Clock::now());
  EXPECT_EQ(busy.error.rfind("HTTP 429: ", 0), 0u) << busy.error;
  EXPECT_NE(busy.error.find("queue full"), std::string::npos);
}

TEST(OpenAiTarget, ReportsConnectionFailures) {
  TargetOptions o;
  o.url = "http://127.0.0.1:1";
  RequestResult r = (*MakeTargetFactory(o))()->Run({"x", 1}, Clock::now());
  EXPECT_EQ(r.error.rfind("connect: ", 0), 0u) << r.error;
  o.url = "https://x:1";
  EXPECT_FALSE(MakeTargetFactory(o).ok());
  o.url = "";
  EXPECT_FALSE(MakeTargetFactory(o).ok());
}

TEST(Drivers, RunEveryRequestClosedAndOpenLoop) {
  SseServer server(3);
  TargetOptions o;
  o.url = server.url();
  auto make = MakeTargetFactory(o);
  ASSERT_TRUE(make.ok());
  std::vector<LoadRequest> reqs(9, LoadRequest{"hello", 3});
  std::vector<RequestResult> closed = RunClosedLoop(*make, 3, reqs, {});
  ASSERT_EQ(closed.size(), 9u);
  for (const RequestResult& r : closed) EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(server.connections(), 3);
  std::vector<RequestResult> open = RunOpenLoop(*make, 200.0, 1, reqs, {});
  ASSERT_EQ(open.size(), 9u);
  for (size_t i = 1; i < open.size(); ++i) EXPECT_GE(open[i].start, open[i - 1].start);
  EXPECT_EQ(Summarize("rate", 200, open).ok, 9);
}

}  // namespace
}  // namespace qsl::loadtest
