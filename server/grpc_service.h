// The qsl.v1.Completions gRPC service (callback API): the same preparation, generation and
// errors as the HTTP API, with the server's health service and reflection beside it.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "boost/asio/io_context.hpp"
#include "qsl/v1/completions.grpc.pb.h"
#include "server/generation.h"
#include "server/openai_api.h"

namespace grpc {
class Server;
}

namespace qsl::server {

class Metrics;
struct CallCore;

class CompletionsService final : public qsl::v1::Completions::CallbackService {
 public:
  // Generation callbacks run on strands of `io`. All referents outlive the service.
  CompletionsService(Engine& engine, ApiOptions options, Metrics& metrics,
                     const std::atomic<bool>& draining, boost::asio::io_context& io);

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const qsl::v1::GenerateRequest* request,
                                     qsl::v1::GenerateResponse* response) override;
  grpc::ServerWriteReactor<qsl::v1::GenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* context, const qsl::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const qsl::v1::TokenizeRequest* request,
                                     qsl::v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const qsl::v1::DetokenizeRequest* request,
                                       qsl::v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const qsl::v1::ListModelsRequest* request,
                                       qsl::v1::ListModelsResponse* response) override;

 private:
  class UnaryCall;
  class StreamCall;
  friend class UnaryCall;
  friend class StreamCall;

  // Parses, prepares and submits `request` for a call on its strand.
  absl::Status StartGeneration(const qsl::v1::GenerateRequest& request, CallCore& core,
                               Generation::Sink sink);
  absl::Status Admit(grpc::CallbackServerContext* context, const std::string& model) const;
  // Answers a call that completes at once (tokenize, list models) and counts it.
  grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                        const char* endpoint, const absl::Status& status);

  Engine& engine_;
  ApiOptions options_;
  Metrics& metrics_;
  const std::atomic<bool>& draining_;
  boost::asio::io_context& io_;
};

// A grpc::Server with one service, grpc.health.v1.Health and server reflection.
class GrpcServer {
 public:
  explicit GrpcServer(grpc::Service& service);
  ~GrpcServer();
  // `port` 0 picks a free one (see port()).
  absl::Status Start(const std::string& host, uint16_t port);
  int port() const { return port_; }
  // Health answers NOT_SERVING from now on (drain); the server itself keeps running.
  void SetNotServing();
  // Stops; calls still running after `deadline` are cancelled.
  void Shutdown(std::chrono::milliseconds deadline);

 private:
  grpc::Service& service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace qsl::server
