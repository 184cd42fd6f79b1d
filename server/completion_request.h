// A completion request as the server understands it, whichever protocol it came in on (OpenAI
// JSON or gRPC), and its preparation against the served model: prompts tokenized and every
// parameter checked before anything reaches the engine.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/sampling_params.h"

namespace qsl {
class Engine;
}

namespace qsl::server {

// Text is tokenized with BOS; token ids are used as given.
using PromptInput = std::variant<std::string, std::vector<int32_t>>;

struct CompletionRequest {
  std::string model;  // empty = the served model
  std::vector<PromptInput> prompts;
  SamplingParams params;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string user;
};

struct PreparedPrompt {
  std::vector<int32_t> ids;
  std::string text;  // what echo prepends: the prompt string, or the ids decoded
};

// Most prompts one request may carry (OpenAI batches prompts in one call; each becomes a
// separate engine request).
inline constexpr size_t kMaxPrompts = 64;

// Tokenizes and checks `request` against `engine`'s model: the parameters (SamplingParams'
// ranges), token ids inside the vocabulary, non-empty prompts and prompt + max_tokens within the
// context. Errors are InvalidArgument naming the parameter.
absl::StatusOr<std::vector<PreparedPrompt>> PreparePrompts(const CompletionRequest& request,
                                                           const Engine& engine);

// NotFound ("model_not_found") unless `requested` is empty or the served model's name.
absl::Status CheckModel(const std::string& requested, const std::string& served);
absl::Status ModelNotFound(const std::string& requested, const std::string& served);

}  // namespace qsl::server
