// HTTP/1.1 on Boost.Beast: the listener and its connections, with the limits that keep a bad
// client from hurting others (body and header size, read/idle/write deadlines, a connection cap)
// and disconnect detection while a request is being handled. What a request means is the
// handler's business (openai_api.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "boost/asio/any_io_executor.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/beast/http/empty_body.hpp"
#include "boost/beast/http/message.hpp"
#include "boost/beast/http/string_body.hpp"

namespace qsl::server {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;
using HttpStreamHeader = boost::beast::http::response<boost::beast::http::empty_body>;

struct HttpOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8000;  // 0 = any free port (see HttpServer::port())
  size_t max_body_bytes = 1 << 20;     // 413 above
  size_t max_header_bytes = 16 << 10;  // 431 above
  // A request's header, and then its body, must each arrive within read_timeout (a slowloris
  // client is cut off); a keep-alive connection may wait idle_timeout for its next request.
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds write_timeout{30'000};  // a client that stops reading is dropped
  size_t max_connections = 1024;                    // 503 and close above
};

// One request on a connection and the means to answer it. Call every method on executor()
// (the connection's strand). Answer with exactly one Respond, or with StartStream, any number of
// Write and one EndStream; calls after the answer is complete are ignored.
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  virtual const HttpRequest& request() const = 0;
  virtual boost::asio::any_io_executor executor() const = 0;
  virtual void Respond(HttpResponse response) = 0;
  // Sends the header (chunked on HTTP/1.1), then each Write as it comes.
  virtual void StartStream(HttpStreamHeader header) = 0;
  virtual void Write(std::string data) = 0;
  virtual void EndStream() = 0;
  // `f` runs on executor() if the client disconnects before the answer is complete.
  virtual void OnClientGone(std::function<void()> f) = 0;
  virtual bool client_gone() const = 0;
};

using HttpHandler = std::function<void(std::shared_ptr<HttpExchange>)>;

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpOptions options, HttpHandler handler);
  ~HttpServer();

  // Binds and starts accepting (runs on `io`'s threads).
  absl::Status Start();
  uint16_t port() const;  // the bound port, once started
  // Stops accepting; idle keep-alive connections are closed and busy ones close after their
  // current answer. Thread-safe.
  void Shutdown();
  size_t open_connections() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

// A response with an OpenAI-shaped error body, `status` taken from the error.
struct ApiError;
HttpResponse ErrorResponse(const ApiError& error);

}  // namespace qsl::server
