// The gRPC front end against the fake engine through the whole Server: unary and streaming
// generation, cancellation, status codes, tokenize/detokenize, health, and a graceful drain.
#include <future>
#include <thread>

#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "qsl/v1/completions.grpc.pb.h"
#include "server/fake_engine.h"
#include "server/generation.h"
#include "server/server.h"
#include "server/test_client.h"

namespace qsl::server {
namespace {

namespace v1 = qsl::v1;
using testing::Eventually;
using namespace std::chrono_literals;

class GrpcTest : public ::testing::Test {
 protected:
  void Start(FakeEngine::Options engine_options = {}, std::string api_key = "") {
    engine_ = std::make_unique<FakeEngine>(engine_options);
    ServerOptions options;
    options.http.host = "127.0.0.1";
    options.http.port = 0;
    options.grpc_host = "127.0.0.1";
    options.grpc_port = 0;
    options.api = {"tiny", std::move(api_key), "fp_test", 1700000000};
    options.drain_timeout = 5s;
    server_ = std::make_unique<Server>(*engine_, options, [] { return DeviceStats{}; });
    ASSERT_TRUE(server_->Start().ok());
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::Completions::NewStub(channel_);
  }

  void TearDown() override {
    if (server_ && !stopped_) {
      server_->RequestStop();
      server_->Wait();
    }
  }

  static v1::GenerateRequest Request(const std::string& text, int max_tokens) {
    v1::GenerateRequest r;
    r.set_text(text);
    r.mutable_params()->set_max_tokens(max_tokens);
    return r;
  }

  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Completions::Stub> stub_;
  bool stopped_ = false;
};

TEST_F(GrpcTest, UnaryGenerate) {
  Start();
  grpc::ClientContext ctx;
  v1::GenerateResponse res;
  v1::GenerateRequest req = Request("Hello", 4);
  req.mutable_params()->set_n(2);
  req.mutable_params()->set_logprobs(1);
  grpc::Status s = stub_->Generate(&ctx, req, &res);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(res.id().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(res.model(), "tiny");
  ASSERT_EQ(res.choices_size(), 2);
  EXPECT_EQ(res.choices(1).index(), 1);
  EXPECT_EQ(res.choices(1).text(), engine_->ExpectedText(1, 4));
  EXPECT_EQ(res.choices(0).token_ids_size(), 4);
  EXPECT_EQ(res.choices(0).logprobs_size(), 4);
  EXPECT_EQ(res.choices(0).finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(res.usage().completion_tokens(), 8);
  EXPECT_EQ(res.usage().prompt_tokens(),
            static_cast<int>(engine_->tokenizer().Encode("Hello", true).size()));
}

TEST_F(GrpcTest, StreamDeliversDeltasThenUsage) {
  Start();
  grpc::ClientContext ctx;
  auto reader = stub_->GenerateStream(&ctx, Request("Hi", 5));
  v1::GenerateStreamResponse msg;
  std::string text;
  v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  int completion_tokens = -1;
  while (reader->Read(&msg)) {
    for (const v1::Choice& c : msg.choices()) {
      text += c.text();
      if (c.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) finish = c.finish_reason();
    }
    if (msg.has_usage()) completion_tokens = msg.usage().completion_tokens();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(text, engine_->ExpectedText(0, 5));
  EXPECT_EQ(finish, v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(completion_tokens, 5);
}

TEST_F(GrpcTest, ClientCancellationFreesTheRequest) {
  FakeEngine::Options slow;
  slow.step = 10ms;
  slow.max_model_len = 20000;
  Start(slow);
  grpc::ClientContext ctx;
  auto reader = stub_->GenerateStream(&ctx, Request("Hi", 10000));
  v1::GenerateStreamResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  ctx.TryCancel();
  while (reader->Read(&msg)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return engine_->live_requests() == 0; }));
  EXPECT_EQ(engine_->cancelled_requests(), 1);
}

TEST_F(GrpcTest, DeadlineCancelsAUnaryCall) {
  FakeEngine::Options slow;
  slow.step = 10ms;
  slow.max_model_len = 20000;
  Start(slow);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 100ms);
  v1::GenerateResponse res;
  EXPECT_EQ(stub_->Generate(&ctx, Request("Hi", 10000), &res).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(Eventually([&] { return engine_->live_requests() == 0; }));
}

TEST_F(GrpcTest, ErrorsMapToStatusCodes) {
  FakeEngine::Options one;
  one.max_queue = 0;
  Start(one);
  auto code = [&](v1::GenerateRequest req) {
    grpc::ClientContext ctx;
    v1::GenerateResponse res;
    grpc::Status s = stub_->Generate(&ctx, req, &res);
    return std::make_pair(s.error_code(), s.error_message());
  };
  v1::GenerateRequest bad = Request("x", -1);
  auto [c1, m1] = code(bad);
  EXPECT_EQ(c1, grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(m1.rfind("max_tokens: ", 0), 0u) << m1;
  v1::GenerateRequest none;
  EXPECT_EQ(code(none).first, grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest model = Request("x", 1);
  model.set_model("other");
  EXPECT_EQ(code(model).first, grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(code(Request("x", 1)).first, grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(GrpcTest, ApiKeyIsCheckedFromMetadata) {
  Start({}, "sekret");
  grpc::ClientContext without;
  v1::ListModelsResponse res;
  EXPECT_EQ(stub_->ListModels(&without, {}, &res).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext with;
  with.AddMetadata("authorization", "Bearer sekret");
  ASSERT_TRUE(stub_->ListModels(&with, {}, &res).ok());
  EXPECT_EQ(res.models(0).id(), "tiny");
  EXPECT_EQ(res.models(0).max_model_len(), 256);
}

TEST_F(GrpcTest, TokenizeDetokenizeRoundTrip) {
  Start();
  grpc::ClientContext c1;
  v1::TokenizeRequest tr;
  tr.set_text("Hello world");
  v1::TokenizeResponse tokens;
  ASSERT_TRUE(stub_->Tokenize(&c1, tr, &tokens).ok());
  EXPECT_EQ(std::vector<int32_t>(tokens.token_ids().begin(), tokens.token_ids().end()),
            engine_->tokenizer().Encode("Hello world", true));
  EXPECT_EQ(tokens.tokens_size(), tokens.token_ids_size());
  grpc::ClientContext c2;
  v1::DetokenizeRequest dr;
  *dr.mutable_token_ids() = tokens.token_ids();
  v1::DetokenizeResponse text;
  ASSERT_TRUE(stub_->Detokenize(&c2, dr, &text).ok());
  EXPECT_EQ(text.text(), "Hello world");
  grpc::ClientContext c3;
  dr.add_token_ids(1 << 30);
  EXPECT_EQ(stub_->Detokenize(&c3, dr, &text).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// grpc.health.v1.Health/Check with hand-encoded messages: an empty HealthCheckRequest, and a
// HealthCheckResponse whose field 1 (status) is SERVING = 1, i.e. bytes 08 01.
TEST_F(GrpcTest, HealthServiceSaysServing) {
  Start();
  grpc::GenericStub generic(channel_);
  grpc::ClientContext ctx;
  grpc::ByteBuffer request, response;
  grpc::Slice empty("", 0);
  request = grpc::ByteBuffer(&empty, 1);
  std::promise<grpc::Status> done;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", {}, &request, &response,
                    [&](grpc::Status s) { done.set_value(s); });
  ASSERT_TRUE(done.get_future().get().ok());
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

TEST_F(GrpcTest, DrainFinishesInFlightWorkAndStopsAccepting) {
  FakeEngine::Options slow;
  slow.step = 10ms;
  Start(slow);
  const uint16_t http_port = server_->http_port();
  grpc::ClientContext ctx;
  auto reader = stub_->GenerateStream(&ctx, Request("Hi", 30));
  v1::GenerateStreamResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  server_->RequestStop();
  int tokens = 0;
  do {
    for (const v1::Choice& c : msg.choices()) tokens += c.token_ids_size();
  } while (reader->Read(&msg));
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(tokens, 30);
  EXPECT_TRUE(server_->Wait());
  stopped_ = true;
  testing::TestClient late(http_port, 1s);
  EXPECT_FALSE(late.ok());
}

}  // namespace
}  // namespace qsl::server
