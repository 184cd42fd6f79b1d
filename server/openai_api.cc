#include "server/openai_api.h"

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "server/api_error.h"
#include "server/completion_request.h"
#include "server/generation.h"
#include "server/metrics.h"
#include "server/openai_json.h"

namespace qsl::server {

namespace http = boost::beast::http;

namespace {

using Clock = std::chrono::steady_clock;

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Takes the same time wherever the strings first differ (only the length can leak).
bool SameSecret(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string SseEvent(absl::string_view json) { return absl::StrCat("data: ", json, "\n\n"); }

}  // namespace

// One HTTP request: its exchange, the route label metrics use, and when it arrived. Every answer
// goes through here so each request is counted exactly once.
class OpenAiApi::Call {
 public:
  Call(std::shared_ptr<HttpExchange> ex, Metrics& metrics)
      : ex_(std::move(ex)), metrics_(metrics), arrival_(Clock::now()) {}

  HttpExchange& exchange() { return *ex_; }
  const HttpRequest& request() const { return ex_->request(); }
  Clock::time_point arrival() const { return arrival_; }
  void set_endpoint(std::string endpoint) { endpoint_ = std::move(endpoint); }
  void set_request_id(std::string id) { request_id_ = std::move(id); }

  void Reply(HttpResponse res) {
    if (!request_id_.empty()) res.set("x-request-id", request_id_);
    Count(res.result_int());
    ex_->Respond(std::move(res));
  }
  void Reply(http::status status, std::string body, absl::string_view content_type) {
    HttpResponse res{status, 11};
    res.set(http::field::content_type, std::string(content_type));
    res.body() = std::move(body);
    Reply(std::move(res));
  }
  void Fail(const absl::Status& status) { Reply(ErrorResponse(ToApiError(status))); }

  void StartStream() {
    HttpStreamHeader h{http::status::ok, 11};
    h.set(http::field::content_type, "text/event-stream");
    h.set(http::field::cache_control, "no-cache");
    h.set("x-request-id", request_id_);
    ex_->StartStream(std::move(h));
  }
  void EndStream() {
    Count(200);
    ex_->EndStream();
  }
  // A client that left before any answer: nginx's 499, so dashboards can tell it from errors.
  void CountGone() { Count(499); }

 private:
  void Count(unsigned status) {
    if (counted_) return;
    counted_ = true;
    metrics_.CountRequest(endpoint_, std::to_string(status), Clock::now() - arrival_);
  }

  std::shared_ptr<HttpExchange> ex_;
  Metrics& metrics_;
  Clock::time_point arrival_;
  std::string endpoint_ = "other";
  std::string request_id_;
  bool counted_ = false;
};

OpenAiApi::OpenAiApi(Engine& engine, ApiOptions options, Metrics& metrics,
                     const std::atomic<bool>& draining)
    : engine_(engine), options_(std::move(options)), metrics_(metrics), draining_(draining) {}

void OpenAiApi::Handle(std::shared_ptr<HttpExchange> exchange) {
  auto call = std::make_shared<Call>(std::move(exchange), metrics_);
  const HttpRequest& req = call->request();
  absl::string_view target(req.target().data(), req.target().size());
  const absl::string_view path = target.substr(0, target.find('?'));
  const http::verb method = req.method();

  struct Route {
    absl::string_view path;
    http::verb method;
    bool prefix;
  };
  static constexpr Route kRoutes[] = {
      {"/v1/completions", http::verb::post, false}, {"/v1/models/", http::verb::get, true},
      {"/v1/models", http::verb::get, false},       {"/health", http::verb::get, false},
      {"/ready", http::verb::get, false},           {"/metrics", http::verb::get, false},
  };
  const Route* route = nullptr;
  for (const Route& r : kRoutes) {
    if (r.prefix ? absl::StartsWith(path, r.path) : path == r.path) {
      route = &r;
      break;
    }
  }
  const std::string method_name(http::to_string(method));
  if (route == nullptr) {
    return call->Fail(absl::NotFoundError(
        absl::StrCat("invalid URL (", method_name, " ", path, ")")));
  }
  call->set_endpoint(std::string(route->prefix ? "/v1/models/{id}" : route->path));
  if (method != route->method) {
    ApiError e = ToApiError(absl::InvalidArgumentError(
        absl::StrCat("method ", method_name, " is not allowed on ", path)));
    e.http_status = 405;
    HttpResponse res = ErrorResponse(e);
    res.set(http::field::allow, http::to_string(route->method));
    return call->Reply(std::move(res));
  }

  if (absl::StartsWith(path, "/v1/") && !options_.api_key.empty()) {
    const auto auth = req[http::field::authorization];
    absl::string_view given(auth.data(), auth.size());
    if (!absl::ConsumePrefix(&given, "Bearer ") || !SameSecret(given, options_.api_key)) {
      HttpResponse res = ErrorResponse(ToApiError(WithCode(
          absl::UnauthenticatedError(given.empty() && auth.empty()
                                         ? "missing API key: send Authorization: Bearer <key>"
                                         : "incorrect API key provided"),
          "invalid_api_key")));
      res.set(http::field::www_authenticate, "Bearer");
      return call->Reply(std::move(res));
    }
  }

  if (path == "/v1/completions") return Completions(call);
  if (path == "/health") return call->Reply(http::status::ok, "{\"status\":\"ok\"}", "application/json");
  if (path == "/ready") {
    if (draining_) return call->Fail(WithCode(absl::UnavailableError("draining"), "draining"));
    return call->Reply(http::status::ok, "{\"status\":\"ready\"}", "application/json");
  }
  if (path == "/metrics") {
    return call->Reply(http::status::ok, metrics_.Render(), "text/plain; version=0.0.4");
  }
  const ModelCard card{options_.served_model_name, options_.created,
                       engine_.max_model_len()};
  if (path == "/v1/models") return call->Reply(http::status::ok, ModelListJson({card}), "application/json");
  const std::string id(path.substr(route->path.size()));
  if (id != options_.served_model_name) {
    return call->Fail(ModelNotFound(id, options_.served_model_name));
  }
  call->Reply(http::status::ok, ModelJson(card), "application/json");
}

namespace {

// What a /v1/completions request keeps while it generates.
struct CompletionState {
  CompletionHeader header;
  bool stream = false;
  bool include_usage = false;
  std::vector<ChoiceResult> choices;  // non-streaming: the answer being assembled
};

absl::StatusOr<std::vector<PreparedPrompt>> ParseAndPrepare(const HttpRequest& req,
                                                            const Engine& engine,
                                                            const std::string& served,
                                                            CompletionRequest* out) {
  auto parsed = ParseCompletionRequest(req.body());
  if (!parsed.ok()) return parsed.status();
  *out = std::move(*parsed);
  absl::Status model = CheckModel(out->model, served);
  if (!model.ok()) return model;
  return PreparePrompts(*out, engine);
}

}  // namespace

void OpenAiApi::Completions(std::shared_ptr<Call> call) {
  if (draining_) {
    return call->Fail(WithCode(absl::UnavailableError("the server is shutting down"), "draining"));
  }
  CompletionRequest request;
  auto prompts = ParseAndPrepare(call->request(), engine_, options_.served_model_name, &request);
  if (!prompts.ok()) return call->Fail(prompts.status());

  auto state = std::make_shared<CompletionState>();
  state->header = {NewCompletionId(), UnixSeconds(), options_.served_model_name,
                   options_.system_fingerprint, request.params.logprobs >= 0};
  state->stream = request.stream;
  state->include_usage = request.include_usage;
  state->choices.resize(prompts->size() * request.params.n);
  for (size_t i = 0; i < state->choices.size(); ++i) state->choices[i].index = static_cast<int32_t>(i);
  call->set_request_id(state->header.id);

  Generation::Sink sink;
  sink.on_delta = [call, state](ChoiceDelta delta) {
    if (!state->stream) return state->choices[delta.index].Append(std::move(delta));
    call->exchange().Write(SseEvent(ChunkJson(state->header, delta, state->include_usage)));
  };
  sink.on_done = [call, state](const Usage& usage, const absl::Status& status) {
    if (call->exchange().client_gone()) return call->CountGone();
    if (!state->stream) {
      if (!status.ok()) return call->Fail(status);
      return call->Reply(http::status::ok, CompletionJson(state->header, state->choices, usage),
                         "application/json");
    }
    // Headers are out: an error can only be reported in the stream, as vLLM does.
    if (!status.ok()) call->exchange().Write(SseEvent(ErrorJson(ToApiError(status))));
    if (state->include_usage) call->exchange().Write(SseEvent(UsageChunkJson(state->header, usage)));
    call->exchange().Write("data: [DONE]\n\n");
    call->EndStream();
  };

  auto generation = Generation::Start(engine_, std::move(*prompts), request.params,
                                      call->exchange().executor(), std::move(sink), &metrics_,
                                      call->arrival());
  if (!generation.ok()) return call->Fail(generation.status());
  std::weak_ptr<Generation> weak = *generation;
  call->exchange().OnClientGone([weak] {
    if (auto g = weak.lock()) g->Cancel();
  });
  if (request.stream) call->StartStream();
}

}  // namespace qsl::server
