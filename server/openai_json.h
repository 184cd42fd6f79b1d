// The OpenAI wire format of /v1/completions and /v1/models: request JSON in (type-checked field by
// field, errors naming the parameter) and response, stream-chunk and model-list JSON out, shaped
// as OpenAI's documented Completion object.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/completion_request.h"
#include "server/generation.h"

namespace qsl::server {

// Parses a /v1/completions body. Fields OpenAI defines are type-checked (wrong type, value out of
// the field's numeric type: 400 naming the field); unknown fields are ignored, as vLLM does, so
// clients that send vendor extras keep working. Range checks happen later, in PreparePrompts.
absl::StatusOr<CompletionRequest> ParseCompletionRequest(absl::string_view body);

// What every response object and chunk of one request repeats.
struct CompletionHeader {
  std::string id;       // "cmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;
  std::string system_fingerprint;
  bool logprobs = false;  // the request asked for logprobs: every choice carries the object
};

std::string CompletionJson(const CompletionHeader& h, const std::vector<ChoiceResult>& choices,
                           const Usage& usage);
// One `text_completion` chunk carrying one choice's delta; `usage_null` adds "usage": null, as
// OpenAI does on every chunk when stream_options.include_usage is set.
std::string ChunkJson(const CompletionHeader& h, const ChoiceDelta& delta, bool usage_null);
// The last chunk with include_usage: no choices, the request's usage.
std::string UsageChunkJson(const CompletionHeader& h, const Usage& usage);

struct ModelCard {
  std::string id;
  int64_t created = 0;
  int32_t max_model_len = 0;
};
std::string ModelJson(const ModelCard& model);
std::string ModelListJson(const std::vector<ModelCard>& models);

// A fresh "cmpl-" id: 24 random alphanumerics.
std::string NewCompletionId();

}  // namespace qsl::server
