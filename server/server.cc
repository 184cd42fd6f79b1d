#include "server/server.h"

#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>
#include <vector>

#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/signal_set.hpp"
#include "engine/engine.h"
#include "server/grpc_service.h"
#include "spdlog/spdlog.h"

namespace qsl::server {

namespace net = boost::asio;

class Server::Impl {
 public:
  Impl(Engine& engine, ServerOptions options, std::function<DeviceStats()> devices)
      : engine_(engine),
        options_(std::move(options)),
        metrics_([&engine] { return engine.Stats(); }, std::move(devices)),
        api_(engine, options_.api, metrics_, draining_),
        http_(io_, options_.http, [this](std::shared_ptr<HttpExchange> ex) { api_.Handle(ex); }),
        grpc_service_(engine, options_.api, metrics_, draining_, io_),
        grpc_(grpc_service_),
        signals_(io_, SIGTERM, SIGINT),
        work_(net::make_work_guard(io_)) {}

  ~Impl() { StopThreads(); }

  absl::Status Start() {
    absl::Status s = http_.Start();
    if (s.ok()) s = grpc_.Start(options_.grpc_host, options_.grpc_port);
    if (!s.ok()) return s;
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      spdlog::info("received signal {}: draining", signal);
      RequestStop();
    });
    for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
    spdlog::info("serving {} on http://{}:{} and gRPC {}:{}", options_.api.served_model_name,
                 options_.http.host, http_.port(), options_.grpc_host, grpc_.port());
    return absl::OkStatus();
  }

  uint16_t http_port() const { return http_.port(); }
  int grpc_port() const { return grpc_.port(); }

  void RequestStop() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_requested_ = true;
    cv_.notify_all();
  }

  bool Wait() {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_requested_; });
    }
    // Refuse new work everywhere first, then let what is running finish.
    draining_ = true;
    grpc_.SetNotServing();
    http_.Shutdown();
    const bool drained = engine_.Drain(options_.drain_timeout.count());
    if (!drained) spdlog::warn("drain timeout: cancelled the requests still running");
    // Finished generations still have their last bytes to write.
    grpc_.Shutdown(kFlushTime);
    const auto deadline = std::chrono::steady_clock::now() + kFlushTime;
    while (http_.open_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    StopThreads();
    spdlog::info("stopped");
    return drained;
  }

 private:
  static constexpr std::chrono::milliseconds kFlushTime{2000};

  void StopThreads() {
    work_.reset();
    signals_.cancel();
    io_.stop();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  Engine& engine_;
  ServerOptions options_;
  std::atomic<bool> draining_{false};
  net::io_context io_;
  Metrics metrics_;
  OpenAiApi api_;
  HttpServer http_;
  CompletionsService grpc_service_;
  GrpcServer grpc_;
  net::signal_set signals_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_requested_ = false;
};

Server::Server(Engine& engine, ServerOptions options, std::function<DeviceStats()> devices)
    : impl_(std::make_unique<Impl>(engine, std::move(options), std::move(devices))) {}
Server::~Server() = default;
absl::Status Server::Start() { return impl_->Start(); }
uint16_t Server::http_port() const { return impl_->http_port(); }
int Server::grpc_port() const { return impl_->grpc_port(); }
bool Server::Wait() { return impl_->Wait(); }
void Server::RequestStop() { impl_->RequestStop(); }

}  // namespace qsl::server
