#include "server/openai_json.h"

#include <cfloat>
#include <limits>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "nlohmann/json.hpp"
#include "server/api_error.h"

namespace qsl::server {

namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

// Reads the fields of the request object with OpenAI's types; a null field counts as absent.
class Fields {
 public:
  explicit Fields(const json& obj) : obj_(obj) {}

  const json* Get(const char* name) const {
    auto it = obj_.find(name);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }

  template <typename Int>
  absl::Status Integer(const char* name, Int* out) const {
    const json* v = Get(name);
    return v ? ToInteger(*v, name, out) : absl::OkStatus();
  }

  absl::Status Float(const char* name, float* out) const {
    const json* v = Get(name);
    if (!v) return absl::OkStatus();
    if (!v->is_number()) return BadParam(name, "must be a number");
    const double d = v->get<double>();
    if (!(d >= -FLT_MAX && d <= FLT_MAX)) return BadParam(name, "is out of range");
    *out = static_cast<float>(d);
    return absl::OkStatus();
  }

  absl::Status Bool(const char* name, bool* out) const {
    const json* v = Get(name);
    if (!v) return absl::OkStatus();
    if (!v->is_boolean()) return BadParam(name, "must be a boolean");
    *out = v->get<bool>();
    return absl::OkStatus();
  }

  absl::Status String(const char* name, std::string* out) const {
    const json* v = Get(name);
    if (!v) return absl::OkStatus();
    if (!v->is_string()) return BadParam(name, "must be a string");
    *out = v->get<std::string>();
    return absl::OkStatus();
  }

  template <typename Int>
  static absl::Status ToInteger(const json& v, absl::string_view name, Int* out) {
    if (!v.is_number_integer()) return BadParam(name, "must be an integer");
    const bool fits = v.is_number_unsigned()
                          ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<Int>::max())
                          : v.get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<Int>::min()) &&
                                v.get<int64_t>() <= static_cast<int64_t>(std::numeric_limits<Int>::max());
    if (!fits) return BadParam(name, absl::StrCat(v.dump(), " is out of range"));
    *out = v.is_number_unsigned() ? static_cast<Int>(v.get<uint64_t>())
                                  : static_cast<Int>(v.get<int64_t>());
    return absl::OkStatus();
  }

 private:
  const json& obj_;
};

constexpr const char* kPromptShape =
    "must be a string, an array of strings, an array of token ids or an array of token-id arrays";

absl::StatusOr<std::vector<int32_t>> TokenIds(const json& array) {
  std::vector<int32_t> ids;
  ids.reserve(array.size());
  for (const json& v : array) {
    if (!v.is_number_integer()) return BadParam("prompt", kPromptShape);
    int32_t id = 0;
    QSL_RETURN_IF_ERROR(Fields::ToInteger(v, "prompt", &id));
    ids.push_back(id);
  }
  return ids;
}

absl::StatusOr<std::vector<PromptInput>> ParsePrompt(const json* v) {
  if (!v) return BadParam("prompt", "is required");
  if (v->is_string()) return std::vector<PromptInput>{v->get<std::string>()};
  if (!v->is_array()) return BadParam("prompt", kPromptShape);
  if (v->empty()) return BadParam("prompt", "must not be empty");
  std::vector<PromptInput> prompts;
  const json& first = v->front();
  if (first.is_number_integer()) {
    QSL_ASSIGN_OR_RETURN(std::vector<int32_t> ids, TokenIds(*v));
    prompts.emplace_back(std::move(ids));
    return prompts;
  }
  for (const json& item : *v) {
    if (first.is_string() && item.is_string()) {
      prompts.emplace_back(item.get<std::string>());
    } else if (first.is_array() && item.is_array()) {
      QSL_ASSIGN_OR_RETURN(std::vector<int32_t> ids, TokenIds(item));
      prompts.emplace_back(std::move(ids));
    } else {
      return BadParam("prompt", kPromptShape);
    }
  }
  return prompts;
}

absl::Status ParseStop(const json* v, std::vector<std::string>* out) {
  if (!v) return absl::OkStatus();
  if (v->is_string()) {
    out->push_back(v->get<std::string>());
    return absl::OkStatus();
  }
  if (!v->is_array()) return BadParam("stop", "must be a string or an array of strings");
  for (const json& s : *v) {
    if (!s.is_string()) return BadParam("stop", "must be a string or an array of strings");
    out->push_back(s.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ParseLogitBias(const json* v, std::vector<std::pair<int32_t, float>>* out) {
  if (!v) return absl::OkStatus();
  if (!v->is_object()) return BadParam("logit_bias", "must be an object of token id -> bias");
  for (const auto& [key, bias] : v->items()) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(key, &id)) {
      return BadParam("logit_bias", absl::StrCat("key \"", key, "\" is not a token id"));
    }
    if (!bias.is_number()) return BadParam("logit_bias", "biases must be numbers");
    const double b = bias.get<double>();
    if (!(b >= -FLT_MAX && b <= FLT_MAX)) return BadParam("logit_bias", "bias is out of range");
    out->emplace_back(id, static_cast<float>(b));
  }
  return absl::OkStatus();
}

absl::Status ParseTokenIdList(const json* v, const char* name, std::vector<int32_t>* out) {
  if (!v) return absl::OkStatus();
  if (!v->is_array()) return BadParam(name, "must be an array of token ids");
  for (const json& id : *v) {
    int32_t x = 0;
    QSL_RETURN_IF_ERROR(Fields::ToInteger(id, name, &x));
    out->push_back(x);
  }
  return absl::OkStatus();
}

absl::Status ParseStreamOptions(const json* v, bool stream, bool* include_usage) {
  if (!v) return absl::OkStatus();
  if (!stream) return BadParam("stream_options", "only allowed when stream is true");
  if (!v->is_object()) return BadParam("stream_options", "must be an object");
  return Fields(*v).Bool("include_usage", include_usage);
}

// Fields OpenAI defines that qsl does not implement beyond their neutral value.
absl::Status CheckUnsupported(const Fields& f, int32_t n) {
  int32_t best_of = n;
  QSL_RETURN_IF_ERROR(f.Integer("best_of", &best_of));
  if (best_of != n) return BadParam("best_of", "only best_of equal to n is supported");
  std::string suffix;
  QSL_RETURN_IF_ERROR(f.String("suffix", &suffix));
  if (!suffix.empty()) return BadParam("suffix", "not supported");
  return absl::OkStatus();
}

absl::Status ParseSampling(const Fields& f, SamplingParams* p) {
  QSL_RETURN_IF_ERROR(f.Integer("max_tokens", &p->max_tokens));
  QSL_RETURN_IF_ERROR(f.Float("temperature", &p->temperature));
  QSL_RETURN_IF_ERROR(f.Float("top_p", &p->top_p));
  QSL_RETURN_IF_ERROR(f.Integer("top_k", &p->top_k));
  QSL_RETURN_IF_ERROR(f.Float("min_p", &p->min_p));
  QSL_RETURN_IF_ERROR(f.Float("presence_penalty", &p->presence_penalty));
  QSL_RETURN_IF_ERROR(f.Float("frequency_penalty", &p->frequency_penalty));
  QSL_RETURN_IF_ERROR(f.Float("repetition_penalty", &p->repetition_penalty));
  QSL_RETURN_IF_ERROR(ParseLogitBias(f.Get("logit_bias"), &p->logit_bias));
  if (const json* seed = f.Get("seed")) {
    // OpenAI takes any 64-bit integer; negative seeds are reinterpreted, not rejected.
    int64_t signed_seed = 0;
    uint64_t unsigned_seed = 0;
    if (seed->is_number_unsigned()) {
      QSL_RETURN_IF_ERROR(Fields::ToInteger(*seed, "seed", &unsigned_seed));
    } else {
      QSL_RETURN_IF_ERROR(Fields::ToInteger(*seed, "seed", &signed_seed));
      unsigned_seed = static_cast<uint64_t>(signed_seed);
    }
    p->seed = unsigned_seed;
  }
  QSL_RETURN_IF_ERROR(f.Integer("n", &p->n));
  QSL_RETURN_IF_ERROR(f.Integer("logprobs", &p->logprobs));
  QSL_RETURN_IF_ERROR(f.Bool("echo", &p->echo));
  QSL_RETURN_IF_ERROR(ParseStop(f.Get("stop"), &p->stop));
  QSL_RETURN_IF_ERROR(ParseTokenIdList(f.Get("stop_token_ids"), "stop_token_ids",
                                       &p->stop_token_ids));
  QSL_RETURN_IF_ERROR(f.Bool("ignore_eos", &p->ignore_eos));
  return CheckUnsupported(f, p->n);
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the client needs the rest.
std::string JsonErrorText(const json::exception& e) {
  absl::string_view what = e.what();
  size_t end = what.find("] ");
  return std::string(end == absl::string_view::npos ? what : what.substr(end + 2));
}

ojson LogprobsJson(const std::vector<LogprobEntry>& entries) {
  ojson tokens = ojson::array(), token_logprobs = ojson::array(), top = ojson::array(),
        offsets = ojson::array();
  for (const LogprobEntry& e : entries) {
    tokens.push_back(e.token);
    token_logprobs.push_back(e.logprob ? ojson(*e.logprob) : ojson());
    if (e.logprob) {
      ojson alternatives = ojson::object();
      for (const TopLogprob& t : e.top) alternatives[t.token] = t.logprob;
      top.push_back(std::move(alternatives));
    } else {
      top.push_back(nullptr);
    }
    offsets.push_back(e.text_offset);
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top)},
          {"text_offset", std::move(offsets)}};
}

ojson ChoiceJson(int32_t index, const std::string& text, const std::vector<LogprobEntry>& logprobs,
                 std::optional<FinishReason> finish, bool with_logprobs) {
  return {{"index", index},
          {"text", text},
          {"logprobs", with_logprobs ? LogprobsJson(logprobs) : ojson()},
          {"finish_reason", finish ? ojson(FinishReasonName(*finish)) : ojson()}};
}

ojson HeaderJson(const CompletionHeader& h) {
  return {{"id", h.id},
          {"object", "text_completion"},
          {"created", h.created},
          {"model", h.model},
          {"system_fingerprint", h.system_fingerprint}};
}

ojson UsageJson(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.total()}};
}

// Model output can hold invalid UTF-8 only through an engine bug; replace rather than throw.
std::string Dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

}  // namespace

absl::StatusOr<CompletionRequest> ParseCompletionRequest(absl::string_view body) {
  json doc;
  try {
    doc = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON body: ", JsonErrorText(e)));
  }
  if (!doc.is_object()) return absl::InvalidArgumentError("the request body must be a JSON object");
  Fields f(doc);
  CompletionRequest r;
  QSL_RETURN_IF_ERROR(f.String("model", &r.model));
  QSL_ASSIGN_OR_RETURN(r.prompts, ParsePrompt(f.Get("prompt")));
  QSL_RETURN_IF_ERROR(ParseSampling(f, &r.params));
  QSL_RETURN_IF_ERROR(f.Bool("stream", &r.stream));
  QSL_RETURN_IF_ERROR(ParseStreamOptions(f.Get("stream_options"), r.stream, &r.include_usage));
  QSL_RETURN_IF_ERROR(f.String("user", &r.user));
  return r;
}

std::string CompletionJson(const CompletionHeader& h, const std::vector<ChoiceResult>& choices,
                           const Usage& usage) {
  ojson j = HeaderJson(h);
  ojson list = ojson::array();
  for (const ChoiceResult& c : choices) {
    list.push_back(ChoiceJson(c.index, c.text, c.logprobs, c.finish, h.logprobs));
  }
  j["choices"] = std::move(list);
  j["usage"] = UsageJson(usage);
  return Dump(j);
}

std::string ChunkJson(const CompletionHeader& h, const ChoiceDelta& d, bool usage_null) {
  ojson j = HeaderJson(h);
  j["choices"] = ojson::array({ChoiceJson(d.index, d.text, d.logprobs, d.finish, h.logprobs)});
  if (usage_null) j["usage"] = nullptr;
  return Dump(j);
}

std::string UsageChunkJson(const CompletionHeader& h, const Usage& usage) {
  ojson j = HeaderJson(h);
  j["choices"] = ojson::array();
  j["usage"] = UsageJson(usage);
  return Dump(j);
}

namespace {
ojson ModelObject(const ModelCard& m) {
  return {{"id", m.id},
          {"object", "model"},
          {"created", m.created},
          {"owned_by", "qsl"},
          {"max_model_len", m.max_model_len}};
}
}  // namespace

std::string ModelJson(const ModelCard& model) { return Dump(ModelObject(model)); }

std::string ModelListJson(const std::vector<ModelCard>& models) {
  ojson data = ojson::array();
  for (const ModelCard& m : models) data.push_back(ModelObject(m));
  return Dump({{"object", "list"}, {"data", std::move(data)}});
}

std::string NewCompletionId() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  std::string id = "cmpl-";
  for (int i = 0; i < 24; ++i) id += kAlphabet[pick(rng)];
  return id;
}

}  // namespace qsl::server
