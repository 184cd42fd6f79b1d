#include "server/completion_request.h"

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "engine/engine.h"
#include "format/model_config.h"
#include "format/tokenizer.h"
#include "server/api_error.h"

namespace qsl::server {

namespace {

absl::StatusOr<PreparedPrompt> Prepare(const PromptInput& input, const Engine& engine,
                                       int32_t vocab_size) {
  const Tokenizer& tok = engine.tokenizer();
  PreparedPrompt p;
  if (const auto* text = std::get_if<std::string>(&input)) {
    p.ids = tok.Encode(*text, /*add_bos=*/true);
    p.text = *text;
  } else {
    p.ids = std::get<std::vector<int32_t>>(input);
    for (int32_t id : p.ids) {
      if (id < 0 || id >= vocab_size) {
        return BadParam("prompt", absl::StrCat("token id ", id, " is outside the vocabulary (",
                                               vocab_size, ")"));
      }
    }
    p.text = tok.Decode(p.ids);
  }
  if (p.ids.empty()) return BadParam("prompt", "must not be empty");
  return p;
}

}  // namespace

absl::StatusOr<std::vector<PreparedPrompt>> PreparePrompts(const CompletionRequest& request,
                                                           const Engine& engine) {
  const int32_t vocab_size = static_cast<int32_t>(engine.config().vocab_size);
  QSL_RETURN_IF_ERROR(request.params.Validate(vocab_size));
  if (request.prompts.empty()) return BadParam("prompt", "must not be empty");
  if (request.prompts.size() > kMaxPrompts) {
    return BadParam("prompt", absl::StrCat("at most ", kMaxPrompts, " prompts per request"));
  }
  std::vector<PreparedPrompt> prepared;
  prepared.reserve(request.prompts.size());
  const int64_t max_len = engine.max_model_len();
  for (const PromptInput& input : request.prompts) {
    QSL_ASSIGN_OR_RETURN(PreparedPrompt p, Prepare(input, engine, vocab_size));
    const int64_t wanted = static_cast<int64_t>(p.ids.size()) + request.params.max_tokens;
    if (wanted > max_len) {
      return WithCode(
          BadParam("max_tokens",
                   absl::StrCat("this model's maximum context length is ", max_len,
                                " tokens, but ", wanted, " were requested (", p.ids.size(),
                                " in the prompt, ", request.params.max_tokens,
                                " for the completion); shorten the prompt or max_tokens")),
          "context_length_exceeded");
    }
    prepared.push_back(std::move(p));
  }
  return prepared;
}

absl::Status CheckModel(const std::string& requested, const std::string& served) {
  if (requested.empty() || requested == served) return absl::OkStatus();
  return ModelNotFound(requested, served);
}

absl::Status ModelNotFound(const std::string& requested, const std::string& served) {
  return WithCode(absl::NotFoundError(absl::StrCat("the model `", requested,
                                                   "` does not exist; this server serves `",
                                                   served, "`")),
                  "model_not_found");
}

}  // namespace qsl::server
