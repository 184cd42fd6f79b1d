// The OpenAI-compatible target: POST /v1/completions with stream=true over a keep-alive
// Beast connection, reading the SSE body as it arrives.
#include <limits>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/buffer_body.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "boost/beast/http/write.hpp"
#include "loadtest/sse.h"
#include "loadtest/target.h"

namespace qsl::loadtest {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

struct Endpoint {
  std::string host, port;
};

absl::StatusOr<Endpoint> ParseUrl(const std::string& url) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat("--url ", url, ": only http:// is supported"));
  }
  rest = rest.substr(0, rest.find('/'));
  const size_t colon = rest.rfind(':');
  uint32_t port = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(colon + 1), &port) ||
      port == 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--url ", url, ": expected http://HOST:PORT"));
  }
  return Endpoint{std::string(rest.substr(0, colon)), std::to_string(port)};
}

class OpenAiTarget final : public Target {
 public:
  OpenAiTarget(Endpoint endpoint, TargetOptions options)
      : endpoint_(std::move(endpoint)), options_(std::move(options)), stream_(io_) {}

  RequestResult Run(const LoadRequest& request, Clock::time_point start) override {
    RequestResult r;
    r.start = start;
    deadline_ = Clock::now() + options_.timeout;
    // A kept-alive connection the server has meanwhile closed fails before any answer; like any
    // HTTP client, reconnect and send once more (some servers, llama-server among them, close
    // after every streamed response).
    const bool reused = connected_;
    bool answered = false;
    r.error = Exchange(request, r, &answered);
    if (!r.ok() && reused && !answered) {
      Disconnect();
      r = RequestResult{};
      r.start = start;
      r.error = Exchange(request, r, &answered);
    }
    r.end = Clock::now();
    if (!r.ok()) Disconnect();
    return r;
  }

 private:
  // Runs one async operation on this thread's io_context until it completes or times out.
  template <typename Start>
  beast::error_code Await(Start start) {
    beast::error_code result;
    stream_.expires_at(deadline_);
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io_.restart();
    io_.run();
    return result;
  }

  std::string Connect() {
    if (connected_) return "";
    tcp::resolver resolver(io_);
    beast::error_code ec;
    auto addresses = resolver.resolve(endpoint_.host, endpoint_.port, ec);
    if (ec) return "resolve: " + ec.message();
    ec = Await([&](auto h) { stream_.async_connect(addresses, std::move(h)); });
    if (ec) return "connect: " + ec.message();
    stream_.socket().set_option(tcp::no_delay(true), ec);  // the request goes out at once
    connected_ = true;
    return "";
  }

  void Disconnect() {
    beast::error_code ignored;
    stream_.socket().close(ignored);
    buffer_.clear();
    connected_ = false;
  }

  std::string Body(const LoadRequest& request) const {
    nlohmann::json body = {{"prompt", request.prompt},
                           {"max_tokens", request.max_tokens},
                           {"temperature", options_.temperature},
                           {"stream", true},
                           {"stream_options", {{"include_usage", true}}}};
    if (options_.ignore_eos) body["ignore_eos"] = true;
    if (!options_.model.empty()) body["model"] = options_.model;
    if (options_.seed) body["seed"] = *options_.seed;
    return body.dump();
  }

  std::string Exchange(const LoadRequest& request, RequestResult& r, bool* answered) {
    if (std::string e = Connect(); !e.empty()) return e;
    http::request<http::string_body> req{http::verb::post, "/v1/completions", 11};
    req.set(http::field::host, endpoint_.host);
    req.set(http::field::content_type, "application/json");
    if (!options_.api_key.empty()) req.set(http::field::authorization, "Bearer " + options_.api_key);
    req.body() = Body(request);
    req.prepare_payload();
    beast::error_code ec = Await([&](auto h) { http::async_write(stream_, req, std::move(h)); });
    if (ec) return "write: " + ec.message();

    http::response_parser<http::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // a stream has no end in advance
    ec = Await([&](auto h) { http::async_read_header(stream_, buffer_, parser, std::move(h)); });
    if (ec) return "read: " + ec.message();
    *answered = true;
    const unsigned status = parser.get().result_int();
    std::string error_body;
    SseParser sse;
    Clock::time_point last;
    int64_t chunks = 0;
    bool usage_seen = false;
    char data[16384];
    while (!parser.is_done()) {
      parser.get().body().data = data;
      parser.get().body().size = sizeof(data);
      ec = Await([&](auto h) { http::async_read_some(stream_, buffer_, parser, std::move(h)); });
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return "read: " + ec.message();
      const Clock::time_point now = Clock::now();
      const absl::string_view got(data, sizeof(data) - parser.get().body().size);
      if (status != 200) {
        error_body.append(got.data(), std::min<size_t>(got.size(), 512));
        continue;
      }
      for (const std::string& event : sse.Feed(got)) {
        if (event == "[DONE]") continue;
        auto j = nlohmann::json::parse(event, nullptr, false);
        if (j.is_discarded()) return "unparsable SSE event: " + event.substr(0, 200);
        if (j.contains("error")) return "stream error: " + j["error"].dump().substr(0, 300);
        if (j.contains("usage") && j["usage"].is_object()) {
          r.output_tokens = j["usage"].value("completion_tokens", 0);
          r.prompt_tokens = j["usage"].value("prompt_tokens", 0);
          usage_seen = true;
        }
        const auto& choices = j.value("choices", nlohmann::json::array());
        if (choices.empty() || choices[0].value("text", "").empty()) continue;
        if (chunks++ == 0) {
          r.first_token = now;
        } else {
          r.itl_s.push_back(std::chrono::duration<double>(now - last).count());
        }
        last = now;
      }
    }
    if (status != 200) return absl::StrCat("HTTP ", status, ": ", error_body);
    if (!usage_seen) r.output_tokens = chunks;
    if (chunks == 0 && r.output_tokens > 0) r.first_token = Clock::now();
    if (!parser.get().keep_alive()) Disconnect();
    return "";
  }

  Endpoint endpoint_;
  TargetOptions options_;
  net::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  Clock::time_point deadline_;
  bool connected_ = false;
};

}  // namespace

absl::StatusOr<TargetFactory> MakeOpenAiTargetFactory(const TargetOptions& options) {
  auto endpoint = ParseUrl(options.url);
  if (!endpoint.ok()) return endpoint.status();
  return TargetFactory([e = *endpoint, options] { return std::make_unique<OpenAiTarget>(e, options); });
}

}  // namespace qsl::loadtest
