#include "server/api_error.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace qsl::server {

namespace {

constexpr absl::string_view kCodePayload = "qsl.error_code";

// "max_tokens: must be >= 0" names max_tokens; a message without such a prefix names nothing.
std::string ParamOf(absl::string_view message) {
  size_t colon = message.find(": ");
  if (colon == absl::string_view::npos || colon == 0) return "";
  for (char c : message.substr(0, colon)) {
    bool ident = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '[' || c == ']';
    if (!ident) return "";
  }
  return std::string(message.substr(0, colon));
}

struct Mapping {
  int http_status;
  const char* type;
};

Mapping MappingFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return {400, "invalid_request_error"};
    case absl::StatusCode::kUnauthenticated:
      return {401, "invalid_request_error"};
    case absl::StatusCode::kNotFound:
      return {404, "invalid_request_error"};
    case absl::StatusCode::kResourceExhausted:
      return {429, "rate_limit_exceeded"};
    case absl::StatusCode::kUnavailable:
      return {503, "server_error"};
    default:
      return {500, "server_error"};
  }
}

}  // namespace

absl::Status BadParam(absl::string_view param, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(param, ": ", why));
}

absl::Status WithCode(absl::Status status, absl::string_view code) {
  status.SetPayload(kCodePayload, absl::Cord(code));
  return status;
}

ApiError ToApiError(const absl::Status& status) {
  Mapping m = MappingFor(status.code());
  ApiError e;
  e.http_status = m.http_status;
  e.type = m.type;
  e.message = std::string(status.message());
  if (m.http_status == 400) e.param = ParamOf(status.message());
  if (auto code = status.GetPayload(kCodePayload)) e.code = std::string(*code);
  return e;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

std::string ErrorJson(const ApiError& error) {
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); };
  nlohmann::json j = {{"error",
                       {{"message", error.message},
                        {"type", error.type},
                        {"param", or_null(error.param)},
                        {"code", or_null(error.code)}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace qsl::server
