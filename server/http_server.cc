#include "server/http_server.h"

#include <atomic>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/chunk_encode.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/serializer.hpp"
#include "boost/beast/http/write.hpp"
#include "server/api_error.h"
#include "spdlog/spdlog.h"

namespace qsl::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr const char* kServerName = "qsl/0.1.0";
// How much a waiting read takes at once: the first bytes of a request, or (while a request is
// handled) pipelined bytes or the EOF of a client that went away.
constexpr size_t kReadChunk = 4096;
// After an error answer with an unread body, keep reading (and dropping) for a moment before
// closing: closing with unread data makes the kernel send RST, which can destroy the answer
// before the client reads it.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr size_t kLingerBytes = 16 << 20;

ApiError ProtocolError(int status, std::string message, std::string code = "") {
  ApiError e;
  e.http_status = status;
  e.type = "invalid_request_error";
  e.message = std::move(message);
  e.code = std::move(code);
  return e;
}

}  // namespace

HttpResponse ErrorResponse(const ApiError& error) {
  HttpResponse res{static_cast<http::status>(error.http_status), 11};
  res.set(http::field::content_type, "application/json");
  res.body() = ErrorJson(error);
  return res;
}

class Connection;

// Shared by the listener and every connection, so connections can outlive the HttpServer object
// by the few handlers still queued at shutdown.
struct ServerState {
  HttpOptions options;
  HttpHandler handler;
  std::atomic<bool> shutting_down{false};
  std::atomic<size_t> open{0};
  std::mutex mu;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::shared_ptr<ServerState> state)
      : stream_(std::move(socket)), state_(std::move(state)) {}

  ~Connection() {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->connections.erase(this);
    state_->open--;
  }

  void Start(bool over_capacity) {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->connections[this] = weak_from_this();
    }
    if (over_capacity) {
      keep_alive_ = false;
      SendError(ProtocolError(503, "too many open connections; retry later", "server_busy"));
      return;
    }
    WaitForRequest();
  }

  // On the strand: close if idle, else close after the answer in progress.
  void Shutdown() {
    if (phase_ == Phase::kIdle) Close();
  }

  net::any_io_executor executor() { return stream_.get_executor(); }

  // --- the exchange interface, checked against the exchange sequence number ---
  const HttpRequest& request() const { return request_; }
  bool Current(uint64_t seq) const { return seq == seq_ && phase_ == Phase::kHandling; }
  bool client_gone() const { return gone_; }

  void Respond(HttpResponse res) {
    phase_ = Phase::kWriting;
    PrepareHeader(res);
    res.prepare_payload();
    if (gone_) return Close();
    auto msg = std::make_shared<HttpResponse>(std::move(res));
    stream_.expires_after(state_->options.write_timeout);
    http::async_write(stream_, *msg,
                      [self = shared_from_this(), msg](beast::error_code ec, size_t) {
                        self->OnResponseWritten(ec);
                      });
  }

  void StartStream(HttpStreamHeader header) {
    streaming_ = true;
    chunked_ = request_.version() >= 11;
    PrepareHeader(header);
    if (chunked_) {
      header.chunked(true);
    } else {
      keep_alive_ = false;  // HTTP/1.0: the body ends when the connection does
      header.keep_alive(false);
    }
    if (gone_) return;
    header_msg_ = std::make_shared<HttpStreamHeader>(std::move(header));
    header_sr_ = std::make_shared<http::response_serializer<http::empty_body>>(*header_msg_);
    writing_ = true;
    stream_.expires_after(state_->options.write_timeout);
    http::async_write_header(stream_, *header_sr_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               self->OnStreamWritten(ec);
                             });
  }

  void Write(std::string data) {
    if (!streaming_ || end_requested_ || gone_) return;
    pending_ += data;
    if (!writing_) FlushStream();
  }

  void EndStream() {
    if (!streaming_ || end_requested_) return;
    end_requested_ = true;
    if (gone_) return Close();
    if (!writing_) FlushStream();
  }

  void OnClientGone(std::function<void()> f) { on_gone_ = std::move(f); }

  uint64_t seq() const { return seq_; }

 private:
  enum class Phase { kIdle, kReading, kHandling, kWriting, kClosed };

  // --- reading a request ---

  void WaitForRequest() {
    phase_ = Phase::kIdle;
    if (state_->shutting_down) return Close();
    if (buffer_.size() > 0) return ReadHeader();
    stream_.expires_after(state_->options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->Close();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    phase_ = Phase::kReading;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(state_->options.max_header_bytes));
    parser_->body_limit(state_->options.max_body_bytes);
    stream_.expires_after(state_->options.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              self->OnHeader(ec);
                            });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    keep_alive_ = parser_->get().keep_alive();
    const auto length = parser_->content_length();
    if (length && *length > state_->options.max_body_bytes) return RejectTooLarge();
    if (parser_->get()[http::field::expect] == "100-continue") {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      stream_.expires_after(state_->options.write_timeout);
      http::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code ec, size_t) {
        if (ec) return self->Close();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    stream_.expires_after(state_->options.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->Dispatch();
                     });
  }

  void OnReadError(beast::error_code ec) {
    keep_alive_ = false;
    if (ec == http::error::body_limit) return RejectTooLarge();
    if (ec == http::error::header_limit) {
      return SendError(ProtocolError(431, absl::StrCat("request header exceeds ",
                                                       state_->options.max_header_bytes,
                                                       " bytes"), "header_too_large"));
    }
    // The client went away or was too slow: nobody is left to answer.
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || phase_ == Phase::kClosed) {
      return Close();
    }
    SendError(ProtocolError(400, absl::StrCat("malformed HTTP request: ", ec.message())));
  }

  void RejectTooLarge() {
    keep_alive_ = false;
    SendError(ProtocolError(413, absl::StrCat("request body exceeds ",
                                              state_->options.max_body_bytes, " bytes"),
                            "request_too_large"));
  }

  void SendError(const ApiError& error) {
    request_ = {};
    request_.version(11);
    phase_ = Phase::kHandling;
    Respond(ErrorResponse(error));
  }

  // --- handling ---

  void Dispatch();

  void StartWatch() {
    // Pipelined bytes are already here: the client is alive and its next request waits.
    if (buffer_.size() > 0) return;
    watching_ = true;
    stream_.expires_never();
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->OnWatch(ec, n);
                            });
  }

  void OnWatch(beast::error_code ec, size_t n) {
    watching_ = false;
    if (!ec) buffer_.commit(n);
    if (phase_ == Phase::kClosed) return;
    if (answered_) return Next();
    if (ec && ec != net::error::operation_aborted) {
      gone_ = true;
      if (on_gone_) std::exchange(on_gone_, nullptr)();
      // A stream still being written, or a write in flight, will close the connection when it
      // ends; with nothing in flight nobody else will.
      if (!writing_ && phase_ != Phase::kWriting) Close();
    }
  }

  // --- writing ---

  void PrepareHeader(auto& header) {
    header.version(request_.version() == 10 ? 10 : 11);
    header.set(http::field::server, kServerName);
    if (state_->shutting_down) keep_alive_ = false;
    header.keep_alive(keep_alive_);
  }

  void FlushStream() {
    if (pending_.empty()) {
      if (end_requested_) WriteLastChunk();
      return;
    }
    writing_ = true;
    auto data = std::make_shared<std::string>(std::move(pending_));
    pending_.clear();
    stream_.expires_after(state_->options.write_timeout);
    auto done = [self = shared_from_this(), data](beast::error_code ec, size_t) {
      self->OnStreamWritten(ec);
    };
    if (chunked_) {
      net::async_write(stream_, http::make_chunk(net::buffer(*data)), std::move(done));
    } else {
      net::async_write(stream_, net::buffer(*data), std::move(done));
    }
  }

  void WriteLastChunk() {
    if (!chunked_) return OnResponseWritten({});
    writing_ = true;
    stream_.expires_after(state_->options.write_timeout);
    net::async_write(stream_, http::make_chunk_last(),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->writing_ = false;
                       self->OnResponseWritten(ec);
                     });
  }

  void OnStreamWritten(beast::error_code ec) {
    writing_ = false;
    if (ec) {
      gone_ = true;
      if (on_gone_) std::exchange(on_gone_, nullptr)();
      if (end_requested_) Close();
      return;
    }
    FlushStream();
  }

  void OnResponseWritten(beast::error_code ec) {
    answered_ = true;
    if (ec || !keep_alive_ || gone_) return LingerClose();
    if (watching_) {
      stream_.socket().cancel();  // OnWatch sees the answer is complete and moves on
      return;
    }
    Next();
  }

  void Next() {
    ++seq_;
    request_ = {};
    on_gone_ = nullptr;
    gone_ = streaming_ = chunked_ = writing_ = end_requested_ = answered_ = false;
    header_msg_.reset();
    header_sr_.reset();
    WaitForRequest();
  }

  // --- closing ---

  void LingerClose() {
    if (phase_ == Phase::kClosed) return;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (watching_ || gone_) return Close();
    phase_ = Phase::kClosed;
    stream_.expires_after(kLingerTime);
    Drain(0);
  }

  void Drain(size_t drained) {
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this(), drained](beast::error_code ec, size_t n) {
                              if (ec || drained + n > kLingerBytes) {
                                beast::error_code ignored;
                                self->stream_.socket().close(ignored);
                                return;
                              }
                              self->Drain(drained + n);
                            });
  }

  void Close() {
    if (phase_ == Phase::kClosed && !stream_.socket().is_open()) return;
    phase_ = Phase::kClosed;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<ServerState> state_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpRequest request_;
  Phase phase_ = Phase::kIdle;
  uint64_t seq_ = 0;
  bool keep_alive_ = true;
  bool watching_ = false;
  bool gone_ = false;
  bool answered_ = false;
  std::function<void()> on_gone_;

  // Streaming state.
  bool streaming_ = false, chunked_ = false, writing_ = false, end_requested_ = false;
  std::string pending_;
  std::shared_ptr<HttpStreamHeader> header_msg_;
  std::shared_ptr<http::response_serializer<http::empty_body>> header_sr_;
};

// The handler's view of one request: forwards to the connection while that request is current.
class Exchange : public HttpExchange {
 public:
  explicit Exchange(std::shared_ptr<Connection> c) : conn_(std::move(c)), seq_(conn_->seq()) {}

  const HttpRequest& request() const override { return conn_->request(); }
  net::any_io_executor executor() const override { return conn_->executor(); }
  void Respond(HttpResponse response) override {
    if (conn_->Current(seq_)) conn_->Respond(std::move(response));
  }
  void StartStream(HttpStreamHeader header) override {
    if (conn_->Current(seq_)) conn_->StartStream(std::move(header));
  }
  void Write(std::string data) override {
    if (conn_->Current(seq_)) conn_->Write(std::move(data));
  }
  void EndStream() override {
    if (conn_->Current(seq_)) conn_->EndStream();
  }
  void OnClientGone(std::function<void()> f) override {
    if (conn_->Current(seq_)) conn_->OnClientGone(std::move(f));
  }
  bool client_gone() const override { return !conn_->Current(seq_) || conn_->client_gone(); }

 private:
  std::shared_ptr<Connection> conn_;
  uint64_t seq_;
};

void Connection::Dispatch() {
  request_ = parser_->release();
  parser_.reset();
  keep_alive_ = request_.keep_alive();
  phase_ = Phase::kHandling;
  StartWatch();
  state_->handler(std::make_shared<Exchange>(shared_from_this()));
}

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(net::io_context& io, HttpOptions options, HttpHandler handler)
      : io_(io), acceptor_(net::make_strand(io)), retry_(acceptor_.get_executor()),
        state_(std::make_shared<ServerState>()) {
    state_->options = std::move(options);
    state_->handler = std::move(handler);
  }

  absl::Status Start() {
    beast::error_code ec;
    const auto address = net::ip::make_address(state_->options.host, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("--host ", state_->options.host,
                                                           ": not an IP address"));
    tcp::endpoint endpoint(address, state_->options.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", state_->options.host, ":",
                                                 state_->options.port, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    return absl::OkStatus();
  }

  void Shutdown() {
    state_->shutting_down = true;
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
      self->retry_.cancel();
    });
    std::vector<std::shared_ptr<Connection>> live;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      for (auto& [ptr, weak] : state_->connections) {
        if (auto c = weak.lock()) live.push_back(std::move(c));
      }
    }
    for (auto& c : live) net::post(c->executor(), [c] { c->Shutdown(); });
  }

  uint16_t port() const { return port_; }
  size_t open() const { return state_->open; }

 private:
  void Accept() {
    acceptor_.async_accept(net::make_strand(io_), [self = shared_from_this()](
                                                      beast::error_code ec, tcp::socket socket) {
      self->OnAccept(ec, std::move(socket));
    });
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (state_->shutting_down || ec == net::error::operation_aborted) return;
    if (ec) {
      // Out of file descriptors and the like: back off instead of spinning.
      spdlog::warn("http: accept failed: {}", ec.message());
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([self = shared_from_this()](beast::error_code e) {
        if (!e) self->Accept();
      });
      return;
    }
    // SSE sends small writes back to back; with Nagle's algorithm each waits for the previous
    // one's ACK, which the client delays by up to 40 ms.
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const bool over = ++state_->open > state_->options.max_connections;
    auto c = std::make_shared<Connection>(std::move(socket), state_);
    net::post(c->executor(), [c, over] { c->Start(over); });
    Accept();
  }

  net::io_context& io_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  std::shared_ptr<ServerState> state_;
  uint16_t port_ = 0;
};

HttpServer::HttpServer(net::io_context& io, HttpOptions options, HttpHandler handler)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handler))) {}
HttpServer::~HttpServer() = default;
absl::Status HttpServer::Start() { return impl_->Start(); }
uint16_t HttpServer::port() const { return impl_->port(); }
void HttpServer::Shutdown() { impl_->Shutdown(); }
size_t HttpServer::open_connections() const { return impl_->open(); }

}  // namespace qsl::server
