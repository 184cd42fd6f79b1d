#include "server/grpc_service.h"

#include <chrono>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "boost/asio/strand.hpp"
#include "engine/engine.h"
#include "format/tokenizer.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"
#include "server/api_error.h"
#include "server/completion_request.h"
#include "server/generation.h"
#include "server/metrics.h"
#include "server/openai_json.h"

namespace qsl::server {

namespace v1 = qsl::v1;
using Clock = std::chrono::steady_clock;

namespace {

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<CompletionRequest> FromProto(const v1::GenerateRequest& r) {
  CompletionRequest c;
  c.model = r.model();
  c.user = r.user();
  switch (r.prompt_case()) {
    case v1::GenerateRequest::kText:
      c.prompts.emplace_back(r.text());
      break;
    case v1::GenerateRequest::kTokenIds:
      c.prompts.emplace_back(std::vector<int32_t>(r.token_ids().ids().begin(),
                                                  r.token_ids().ids().end()));
      break;
    case v1::GenerateRequest::PROMPT_NOT_SET:
      return BadParam("prompt", "is required (text or token_ids)");
  }
  const v1::SamplingParams& p = r.params();
  SamplingParams& s = c.params;
  if (p.has_max_tokens()) s.max_tokens = p.max_tokens();
  if (p.has_temperature()) s.temperature = p.temperature();
  if (p.has_top_p()) s.top_p = p.top_p();
  if (p.has_top_k()) s.top_k = p.top_k();
  if (p.has_min_p()) s.min_p = p.min_p();
  if (p.has_presence_penalty()) s.presence_penalty = p.presence_penalty();
  if (p.has_frequency_penalty()) s.frequency_penalty = p.frequency_penalty();
  if (p.has_repetition_penalty()) s.repetition_penalty = p.repetition_penalty();
  for (const auto& [id, bias] : p.logit_bias()) s.logit_bias.emplace_back(id, bias);
  if (p.has_seed()) s.seed = p.seed();
  if (p.has_n()) s.n = p.n();
  if (p.has_logprobs()) s.logprobs = p.logprobs();
  s.echo = p.echo();
  s.stop.assign(p.stop().begin(), p.stop().end());
  s.stop_token_ids.assign(p.stop_token_ids().begin(), p.stop_token_ids().end());
  s.ignore_eos = p.ignore_eos();
  return c;
}

v1::FinishReason ToProto(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return v1::FINISH_REASON_STOP;
    case FinishReason::kLength: return v1::FINISH_REASON_LENGTH;
    case FinishReason::kCancelled: return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kError: return v1::FINISH_REASON_ERROR;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

void FillChoice(int32_t index, const std::string& text, const std::vector<int32_t>& ids,
                const std::vector<LogprobEntry>& logprobs, std::optional<FinishReason> finish,
                v1::Choice* out) {
  out->set_index(index);
  out->set_text(text);
  out->mutable_token_ids()->Add(ids.begin(), ids.end());
  for (const LogprobEntry& e : logprobs) {
    v1::TokenLogprob* t = out->add_logprobs();
    t->set_token_id(e.token_id);
    t->set_token(e.token);
    if (e.logprob) t->set_logprob(*e.logprob);
    for (const TopLogprob& top : e.top) {
      v1::TopLogprob* p = t->add_top_logprobs();
      p->set_token_id(top.token_id);
      p->set_token(top.token);
      p->set_logprob(top.logprob);
    }
  }
  if (finish) out->set_finish_reason(ToProto(*finish));
}

void FillUsage(const Usage& u, v1::Usage* out) {
  out->set_prompt_tokens(u.prompt_tokens);
  out->set_completion_tokens(u.completion_tokens);
  out->set_total_tokens(u.total());
}

std::string CodeName(const grpc::Status& s) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code()));
}

}  // namespace

CompletionsService::CompletionsService(Engine& engine, ApiOptions options, Metrics& metrics,
                                       const std::atomic<bool>& draining,
                                       boost::asio::io_context& io)
    : engine_(engine), options_(std::move(options)), metrics_(metrics), draining_(draining),
      io_(io) {}

absl::Status CompletionsService::Admit(grpc::CallbackServerContext* context,
                                       const std::string& model) const {
  if (!options_.api_key.empty()) {
    const auto& md = context->client_metadata();
    auto it = md.find("authorization");
    const std::string expected = "Bearer " + options_.api_key;
    if (it == md.end() || std::string(it->second.data(), it->second.size()) != expected) {
      return absl::UnauthenticatedError("missing or incorrect API key (metadata authorization: Bearer <key>)");
    }
  }
  if (draining_) return absl::UnavailableError("the server is shutting down");
  return CheckModel(model, options_.served_model_name);
}

grpc::ServerUnaryReactor* CompletionsService::FinishUnary(grpc::CallbackServerContext* context,
                                                          const char* endpoint,
                                                          const absl::Status& status) {
  grpc::Status s = ToGrpcStatus(status);
  metrics_.CountRequest(endpoint, CodeName(s), Clock::duration::zero());  // answered at once
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(s);
  return reactor;
}

// The state a generating call shares with its Generation's sink and posted work; everything in
// it is touched on `strand` only. The reactor is used only until its Finish, after which gRPC
// deletes it: every posted task checks `finished` before touching the reactor.
struct CallCore {
  CallCore(boost::asio::io_context& io, Metrics& metrics, const char* endpoint)
      : strand(boost::asio::make_strand(io)), metrics(metrics), endpoint(endpoint) {}

  // From gRPC's OnCancel (any thread).
  void Cancel(std::shared_ptr<CallCore> self) {
    boost::asio::post(strand, [self] {
      self->cancelled = true;
      if (auto g = self->generation.lock()) g->Cancel();
    });
  }
  // The status to finish with once the generation is done.
  grpc::Status FinalStatus(const absl::Status& status) const {
    return cancelled ? grpc::Status::CANCELLED : ToGrpcStatus(status);
  }
  template <typename Reactor>
  void Finish(Reactor* reactor, const grpc::Status& s) {
    if (finished) return;
    finished = true;
    metrics.CountRequest(endpoint, CodeName(s), Clock::now() - arrival);
    reactor->Finish(s);
  }

  boost::asio::strand<boost::asio::io_context::executor_type> strand;
  Metrics& metrics;
  const char* endpoint;
  Clock::time_point arrival = Clock::now();
  std::weak_ptr<Generation> generation;
  bool cancelled = false;
  bool finished = false;
  CompletionHeader header;
  std::vector<ChoiceResult> results;
};

class CompletionsService::UnaryCall : public grpc::ServerUnaryReactor {
 public:
  UnaryCall(CompletionsService& service, grpc::CallbackServerContext* context,
            const v1::GenerateRequest* request, v1::GenerateResponse* response)
      : core_(std::make_shared<CallCore>(service.io_, service.metrics_, "grpc.Generate")) {
    absl::Status admitted = service.Admit(context, request->model());
    boost::asio::post(core_->strand, [this, &service, admitted, request, response,
                                      core = core_] {
      absl::Status s = admitted;
      if (s.ok() && core->cancelled) s = absl::CancelledError("cancelled before it started");
      if (s.ok()) s = service.StartGeneration(*request, *core, Sink(response));
      if (!s.ok()) core->Finish(this, ToGrpcStatus(s));
    });
  }

  void OnCancel() override { core_->Cancel(core_); }
  void OnDone() override { delete this; }

 private:
  Generation::Sink Sink(v1::GenerateResponse* response) {
    Generation::Sink sink;
    CallCore* core = core_.get();  // the sink lives in the Generation, which the core outlives
    sink.on_delta = [core](ChoiceDelta d) { core->results[d.index].Append(std::move(d)); };
    sink.on_done = [this, core, response](const Usage& usage, const absl::Status& status) {
      response->set_id(core->header.id);
      response->set_model(core->header.model);
      response->set_created(core->header.created);
      for (const ChoiceResult& c : core->results) {
        FillChoice(c.index, c.text, c.token_ids, c.logprobs, c.finish, response->add_choices());
      }
      FillUsage(usage, response->mutable_usage());
      core->Finish(this, core->FinalStatus(status));
    };
    return sink;
  }

  std::shared_ptr<CallCore> core_;
};

class CompletionsService::StreamCall
    : public grpc::ServerWriteReactor<v1::GenerateStreamResponse> {
 public:
  StreamCall(CompletionsService& service, grpc::CallbackServerContext* context,
             const v1::GenerateRequest* request)
      : core_(std::make_shared<CallCore>(service.io_, service.metrics_, "grpc.GenerateStream")) {
    absl::Status admitted = service.Admit(context, request->model());
    boost::asio::post(core_->strand, [this, &service, admitted, request, core = core_] {
      absl::Status s = admitted;
      if (s.ok() && core->cancelled) s = absl::CancelledError("cancelled before it started");
      if (s.ok()) s = service.StartGeneration(*request, *core, Sink());
      if (!s.ok()) core->Finish(this, ToGrpcStatus(s));
    });
  }

  void OnCancel() override { core_->Cancel(core_); }
  void OnWriteDone(bool ok) override {
    boost::asio::post(core_->strand, [this, ok, core = core_] {
      if (core->finished) return;
      writing_ = false;
      queue_.pop_front();
      if (!ok) {
        // The client is gone: stop writing; the cancelled generation finishes the call.
        queue_.clear();
        core->Cancel(core);
      }
      Pump();
    });
  }
  void OnDone() override { delete this; }

 private:
  Generation::Sink Sink() {
    Generation::Sink sink;
    sink.on_delta = [this](ChoiceDelta d) {
      v1::GenerateStreamResponse* m = Queue();
      FillChoice(d.index, d.text, d.token_ids, d.logprobs, d.finish, m->add_choices());
      Pump();
    };
    sink.on_done = [this](const Usage& usage, const absl::Status& status) {
      FillUsage(usage, Queue()->mutable_usage());
      final_ = core_->FinalStatus(status);
      Pump();
    };
    return sink;
  }

  // The message the next delta goes into: merged into the last queued one unless that one is on
  // the wire, so a slow reader gets fewer, larger messages.
  v1::GenerateStreamResponse* Queue() {
    if (queue_.empty() || (writing_ && queue_.size() == 1)) {
      queue_.emplace_back();
      queue_.back().set_id(core_->header.id);
      queue_.back().set_model(core_->header.model);
      queue_.back().set_created(core_->header.created);
    }
    return &queue_.back();
  }

  // On the strand: write the next message, or finish once the generation is done and drained.
  void Pump() {
    if (core_->finished || writing_) return;
    if (!queue_.empty() && !core_->cancelled) {
      writing_ = true;
      StartWrite(&queue_.front());
      return;
    }
    if (final_) core_->Finish(this, *final_);
  }

  std::shared_ptr<CallCore> core_;
  std::deque<v1::GenerateStreamResponse> queue_;
  bool writing_ = false;
  std::optional<grpc::Status> final_;
};

absl::Status CompletionsService::StartGeneration(const v1::GenerateRequest& request,
                                                 CallCore& core, Generation::Sink sink) {
  auto parsed = FromProto(request);
  if (!parsed.ok()) return parsed.status();
  auto prompts = PreparePrompts(*parsed, engine_);
  if (!prompts.ok()) return prompts.status();
  core.header = {NewCompletionId(), UnixSeconds(), options_.served_model_name,
                 options_.system_fingerprint, parsed->params.logprobs >= 0};
  core.results.resize(prompts->size() * parsed->params.n);
  for (size_t i = 0; i < core.results.size(); ++i) core.results[i].index = static_cast<int32_t>(i);
  auto g = Generation::Start(engine_, std::move(*prompts), parsed->params, core.strand,
                             std::move(sink), &metrics_, core.arrival);
  if (!g.ok()) return g.status();
  core.generation = *g;
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* CompletionsService::Generate(grpc::CallbackServerContext* context,
                                                       const v1::GenerateRequest* request,
                                                       v1::GenerateResponse* response) {
  return new UnaryCall(*this, context, request, response);
}

grpc::ServerWriteReactor<v1::GenerateStreamResponse>* CompletionsService::GenerateStream(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  return new StreamCall(*this, context, request);
}

grpc::ServerUnaryReactor* CompletionsService::Tokenize(grpc::CallbackServerContext* context,
                                                       const v1::TokenizeRequest* request,
                                                       v1::TokenizeResponse* response) {
  absl::Status s = Admit(context, request->model());
  if (s.ok()) {
    const Tokenizer& tok = engine_.tokenizer();
    const bool bos = !request->has_add_bos() || request->add_bos();
    for (int32_t id : tok.Encode(request->text(), bos)) {
      response->add_token_ids(id);
      response->add_tokens(TokenText(tok, id));
    }
    response->set_max_model_len(engine_.max_model_len());
  }
  return FinishUnary(context, "grpc.Tokenize", s);
}

grpc::ServerUnaryReactor* CompletionsService::Detokenize(grpc::CallbackServerContext* context,
                                                         const v1::DetokenizeRequest* request,
                                                         v1::DetokenizeResponse* response) {
  absl::Status s = Admit(context, request->model());
  const int32_t vocab = engine_.tokenizer().vocab_size();
  for (int32_t id : request->token_ids()) {
    if (s.ok() && (id < 0 || id >= vocab)) {
      s = BadParam("token_ids", absl::StrCat("token id ", id, " is outside the vocabulary (",
                                             vocab, ")"));
    }
  }
  if (s.ok()) {
    response->set_text(engine_.tokenizer().Decode(
        std::vector<int32_t>(request->token_ids().begin(), request->token_ids().end())));
  }
  return FinishUnary(context, "grpc.Detokenize", s);
}

grpc::ServerUnaryReactor* CompletionsService::ListModels(grpc::CallbackServerContext* context,
                                                         const v1::ListModelsRequest*,
                                                         v1::ListModelsResponse* response) {
  absl::Status s = Admit(context, "");
  if (s.ok()) {
    v1::Model* m = response->add_models();
    m->set_id(options_.served_model_name);
    m->set_created(options_.created);
    m->set_owned_by("qsl");
    m->set_max_model_len(engine_.max_model_len());
  }
  return FinishUnary(context, "grpc.ListModels", s);
}

GrpcServer::GrpcServer(grpc::Service& service) : service_(service) {}

GrpcServer::~GrpcServer() {
  if (server_) Shutdown(std::chrono::milliseconds(0));
}

absl::Status GrpcServer::Start(const std::string& host, uint16_t port) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = host.find(':') != std::string::npos
                                  ? absl::StrCat("[", host, "]:", port)
                                  : absl::StrCat(host, ":", port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", address));
  }
  return absl::OkStatus();
}

void GrpcServer::SetNotServing() {
  if (server_) server_->GetHealthCheckService()->SetServingStatus(false);
}

void GrpcServer::Shutdown(std::chrono::milliseconds deadline) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + deadline);
  server_->Wait();
  server_.reset();
}

}  // namespace qsl::server
