// The gRPC target: qsl.v1.Completions/GenerateStream over one shared channel (HTTP/2 multiplexes
// the workers' streams), with the same measurements as the HTTP target.
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "loadtest/target.h"
#include "qsl/v1/completions.grpc.pb.h"

namespace qsl::loadtest {

namespace {

class GrpcTarget final : public Target {
 public:
  GrpcTarget(std::shared_ptr<grpc::Channel> channel, TargetOptions options)
      : stub_(qsl::v1::Completions::NewStub(channel)), options_(std::move(options)) {}

  RequestResult Run(const LoadRequest& request, Clock::time_point start) override {
    qsl::v1::GenerateRequest req;
    req.set_model(options_.model);
    req.set_text(request.prompt);
    qsl::v1::SamplingParams* p = req.mutable_params();
    p->set_max_tokens(request.max_tokens);
    p->set_temperature(options_.temperature);
    p->set_ignore_eos(options_.ignore_eos);
    if (options_.seed) p->set_seed(*options_.seed);

    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + options_.timeout);
    if (!options_.api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.api_key);
    RequestResult r;
    r.start = start;
    auto reader = stub_->GenerateStream(&ctx, req);
    qsl::v1::GenerateStreamResponse msg;
    Clock::time_point last;
    int64_t chunks = 0;
    while (reader->Read(&msg)) {
      const Clock::time_point now = Clock::now();
      if (msg.has_usage()) {
        r.output_tokens = msg.usage().completion_tokens();
        r.prompt_tokens = msg.usage().prompt_tokens();
      }
      bool tokens = false;
      for (const auto& c : msg.choices()) tokens |= c.token_ids_size() > 0;
      if (!tokens) continue;
      if (chunks++ == 0) {
        r.first_token = now;
      } else {
        r.itl_s.push_back(std::chrono::duration<double>(now - last).count());
      }
      last = now;
    }
    grpc::Status s = reader->Finish();
    r.end = Clock::now();
    if (!s.ok()) r.error = absl::StrCat("gRPC ", s.error_code(), ": ", s.error_message());
    return r;
  }

 private:
  std::unique_ptr<qsl::v1::Completions::Stub> stub_;
  TargetOptions options_;
};

}  // namespace

absl::StatusOr<TargetFactory> MakeOpenAiTargetFactory(const TargetOptions& options);

absl::StatusOr<TargetFactory> MakeTargetFactory(const TargetOptions& options) {
  if (options.grpc.empty() == options.url.empty()) {
    return absl::InvalidArgumentError("give exactly one of --url and --grpc");
  }
  if (!options.url.empty()) return MakeOpenAiTargetFactory(options);
  auto channel = grpc::CreateChannel(options.grpc, grpc::InsecureChannelCredentials());
  return TargetFactory([channel, options] { return std::make_unique<GrpcTarget>(channel, options); });
}

}  // namespace qsl::loadtest
