// A small blocking HTTP/1.1 client for the server's tests (Beast over loopback), with a deadline
// on every operation so a server bug fails a test instead of hanging it, and raw-byte access for
// the malformed-input cases.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "boost/beast/http/write.hpp"

namespace qsl::server::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using Response = http::response<http::string_body>;

class TestClient {
 public:
  explicit TestClient(uint16_t port, std::chrono::milliseconds deadline = std::chrono::seconds(10))
      : stream_(io_), deadline_(deadline) {
    stream_.expires_after(deadline_);
    stream_.async_connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                          [this](beast::error_code ec) { ec_ = ec; });
    Run();
  }

  bool ok() const { return !ec_; }
  beast::error_code error() const { return ec_; }

  // Sends one request; `headers` are added as given.
  void Send(http::verb method, const std::string& target, const std::string& body = "",
            const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == http::verb::post) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    stream_.expires_after(deadline_);
    http::async_write(stream_, req, [this](beast::error_code ec, size_t) { ec_ = ec; });
    Run();
  }

  void SendRaw(const std::string& bytes) {
    stream_.expires_after(deadline_);
    net::async_write(stream_, net::buffer(bytes), [this](beast::error_code ec, size_t) { ec_ = ec; });
    Run();
  }

  // Reads one whole response (chunked bodies included); error() is set when none arrives.
  Response Receive() {
    Response res;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    stream_.expires_after(deadline_);
    http::async_read(stream_, buffer_, parser, [this](beast::error_code ec, size_t) { ec_ = ec; });
    Run();
    if (!ec_) res = parser.release();
    return res;
  }

  Response Fetch(http::verb method, const std::string& target, const std::string& body = "",
                 const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    Send(method, target, body, headers);
    return ok() ? Receive() : Response{};
  }

  // Reads until the server closes; true when it did within the deadline.
  bool ServerCloses() {
    char sink[4096];
    stream_.expires_after(deadline_);
    for (;;) {
      size_t n = 0;
      stream_.async_read_some(net::buffer(sink), [this, &n](beast::error_code ec, size_t got) {
        ec_ = ec;
        n = got;
      });
      Run();
      if (ec_) return ec_ != beast::error::timeout;
    }
  }

  // Reads whatever arrives next (at least one byte).
  std::string ReadSome() {
    char data[4096];
    size_t n = 0;
    stream_.expires_after(deadline_);
    stream_.async_read_some(net::buffer(data), [this, &n](beast::error_code ec, size_t got) {
      ec_ = ec;
      n = got;
    });
    Run();
    return std::string(data, n);
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

 private:
  void Run() {
    io_.restart();
    io_.run();
  }

  net::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::chrono::milliseconds deadline_;
  beast::error_code ec_;
};

// Polls `done` until it holds or two seconds pass.
template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 400; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

// The `data:` payloads of an SSE body, in order.
inline std::vector<std::string> SseData(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    size_t end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

}  // namespace qsl::server::testing
