// Errors as clients see them: an absl::Status from the request path mapped onto OpenAI's error
// object with its HTTP status, and onto a gRPC status code, from one table.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace qsl::server {

struct ApiError {
  int http_status = 500;
  std::string type;     // OpenAI's error.type
  std::string message;
  std::string param;    // empty = null
  std::string code;     // empty = null
};

// InvalidArgument -> 400 (param from "param: why"), Unauthenticated -> 401, NotFound -> 404,
// ResourceExhausted -> 429, Unavailable -> 503, anything else -> 500. A code set with WithCode
// becomes error.code.
ApiError ToApiError(const absl::Status& status);
grpc::Status ToGrpcStatus(const absl::Status& status);

// {"error":{"message":...,"type":...,"param":...,"code":...}}
std::string ErrorJson(const ApiError& error);

// InvalidArgument "<param>: <why>", the shape SamplingParams::Validate uses.
absl::Status BadParam(absl::string_view param, absl::string_view why);
// Attaches OpenAI's machine-readable error.code ("model_not_found", "invalid_api_key", ...).
absl::Status WithCode(absl::Status status, absl::string_view code);

}  // namespace qsl::server
