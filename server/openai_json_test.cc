// The OpenAI wire format: request type checks name the parameter, and response objects and
// stream chunks carry exactly the fields OpenAI's Completion object documents.
#include "server/openai_json.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/api_error.h"

namespace qsl::server {
namespace {

using nlohmann::json;

ApiError ErrorOf(absl::string_view body) {
  auto r = ParseCompletionRequest(body);
  EXPECT_FALSE(r.ok()) << body;
  return ToApiError(r.status());
}

TEST(ParseCompletionRequest, ReadsEveryOpenAiField) {
  auto r = ParseCompletionRequest(R"({
    "model": "m", "prompt": "hi", "max_tokens": 7, "temperature": 0, "top_p": 0.5, "n": 2,
    "stream": true, "stream_options": {"include_usage": true}, "logprobs": 3, "echo": true,
    "stop": ["a", "b"], "presence_penalty": 0.5, "frequency_penalty": -0.5,
    "logit_bias": {"42": -100, "7": 3.5}, "seed": -1, "user": "u",
    "top_k": 5, "min_p": 0.1, "repetition_penalty": 1.2, "ignore_eos": true,
    "stop_token_ids": [2], "best_of": 2, "suffix": null})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "m");
  ASSERT_EQ(r->prompts.size(), 1u);
  EXPECT_EQ(std::get<std::string>(r->prompts[0]), "hi");
  const SamplingParams& p = r->params;
  EXPECT_EQ(p.max_tokens, 7);
  EXPECT_EQ(p.temperature, 0.0f);
  EXPECT_EQ(p.top_p, 0.5f);
  EXPECT_EQ(p.n, 2);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_EQ(p.logprobs, 3);
  EXPECT_TRUE(p.echo);
  EXPECT_EQ(p.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p.presence_penalty, 0.5f);
  EXPECT_EQ(p.frequency_penalty, -0.5f);
  EXPECT_EQ(p.logit_bias, (std::vector<std::pair<int32_t, float>>{{42, -100.0f}, {7, 3.5f}}));
  EXPECT_EQ(p.seed, ~uint64_t{0});
  EXPECT_EQ(r->user, "u");
  EXPECT_EQ(p.top_k, 5);
  EXPECT_FLOAT_EQ(p.min_p, 0.1f);
  EXPECT_FLOAT_EQ(p.repetition_penalty, 1.2f);
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_EQ(p.stop_token_ids, std::vector<int32_t>{2});
}

TEST(ParseCompletionRequest, DefaultsAreOpenAis) {
  auto r = ParseCompletionRequest(R"({"prompt": "x", "max_tokens": null, "n": null})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->params.max_tokens, 16);
  EXPECT_EQ(r->params.temperature, 1.0f);
  EXPECT_EQ(r->params.n, 1);
  EXPECT_EQ(r->params.logprobs, -1);
  EXPECT_FALSE(r->stream);
  EXPECT_FALSE(r->params.seed.has_value());
}

TEST(ParseCompletionRequest, AcceptsAllFourPromptShapes) {
  auto strings = ParseCompletionRequest(R"({"prompt": ["a", "b"]})");
  ASSERT_TRUE(strings.ok());
  EXPECT_EQ(strings->prompts.size(), 2u);
  auto ids = ParseCompletionRequest(R"({"prompt": [1, 2, 3]})");
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->prompts.size(), 1u);
  EXPECT_EQ(std::get<std::vector<int32_t>>(ids->prompts[0]), (std::vector<int32_t>{1, 2, 3}));
  auto batches = ParseCompletionRequest(R"({"prompt": [[1, 2], [3]]})");
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->prompts.size(), 2u);
  EXPECT_EQ(std::get<std::vector<int32_t>>(batches->prompts[1]), std::vector<int32_t>{3});
}

TEST(ParseCompletionRequest, RejectsBadShapesNamingTheParameter) {
  struct Case {
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {R"({"prompt": 5})", "prompt"},
      {R"({"prompt": ["a", 1]})", "prompt"},
      {R"({"prompt": [[1], "a"]})", "prompt"},
      {R"({"prompt": [1.5]})", "prompt"},
      {R"({"prompt": []})", "prompt"},
      {R"({"max_tokens": 5})", "prompt"},
      {R"({"prompt": "x", "max_tokens": "5"})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 5.5})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 99999999999999999999})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 4294967296})", "max_tokens"},
      {R"({"prompt": "x", "temperature": "hot"})", "temperature"},
      {R"({"prompt": "x", "temperature": 1e300})", "temperature"},
      {R"({"prompt": "x", "stream": 1})", "stream"},
      {R"({"prompt": "x", "stream_options": {"include_usage": true}})", "stream_options"},
      {R"({"prompt": "x", "stream": true, "stream_options": 3})", "stream_options"},
      {R"({"prompt": "x", "stop": 3})", "stop"},
      {R"({"prompt": "x", "stop": ["a", 3]})", "stop"},
      {R"({"prompt": "x", "logit_bias": {"abc": 1}})", "logit_bias"},
      {R"({"prompt": "x", "logit_bias": {"1": "x"}})", "logit_bias"},
      {R"({"prompt": "x", "logit_bias": [1]})", "logit_bias"},
      {R"({"prompt": "x", "seed": 1.5})", "seed"},
      {R"({"prompt": "x", "n": 2, "best_of": 3})", "best_of"},
      {R"({"prompt": "x", "suffix": "tail"})", "suffix"},
      {R"({"prompt": "x", "model": 3})", "model"},
      {R"({"prompt": "x", "echo": "yes"})", "echo"},
      {R"({"prompt": "x", "stop_token_ids": [1, "a"]})", "stop_token_ids"},
  };
  for (const Case& c : cases) {
    ApiError e = ErrorOf(c.body);
    EXPECT_EQ(e.http_status, 400) << c.body;
    EXPECT_EQ(e.type, "invalid_request_error") << c.body;
    EXPECT_EQ(e.param, c.param) << c.body << " -> " << e.message;
  }
}

TEST(ParseCompletionRequest, RejectsMalformedJsonWithoutParam) {
  for (const char* body : {"{", "not json", "{\"prompt\": \"\xff\"}", "[1, 2]", "\"x\"",
                           "{\"prompt\": \"x\", \"max_tokens\": 1e400}"}) {
    ApiError e = ErrorOf(body);
    EXPECT_EQ(e.http_status, 400) << body;
    EXPECT_EQ(e.param, "") << body;
    EXPECT_FALSE(e.message.empty());
  }
}

TEST(ParseCompletionRequest, SurvivesDeepNesting) {
  std::string deep(200000, '[');
  ApiError e = ErrorOf("{\"prompt\": " + deep);
  EXPECT_EQ(e.http_status, 400);
  ApiError nested = ErrorOf("{\"prompt\": " + deep + std::string(200000, ']') + "}");
  EXPECT_EQ(nested.param, "prompt");
}

TEST(ParseCompletionRequest, IgnoresUnknownFields) {
  auto r = ParseCompletionRequest(R"({"prompt": "x", "frobnicate": {"a": [1]}, "tools": null})");
  EXPECT_TRUE(r.ok()) << r.status();
}

CompletionHeader Header(bool logprobs) {
  return {"cmpl-abc", 1700000000, "tiny", "fp_qsl", logprobs};
}

TEST(CompletionJson, HasOpenAisFieldsAndNoOthers) {
  ChoiceResult c;
  c.index = 0;
  c.text = "hello";
  c.finish = FinishReason::kLength;
  json j = json::parse(CompletionJson(Header(false), {c}, Usage{3, 5}));
  std::set<std::string> keys;
  for (auto& [k, v] : j.items()) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"id", "object", "created", "model", "system_fingerprint",
                                         "choices", "usage"}));
  EXPECT_EQ(j["id"], "cmpl-abc");
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "tiny");
  ASSERT_EQ(j["choices"].size(), 1u);
  const json& choice = j["choices"][0];
  EXPECT_EQ(choice.size(), 4u);
  EXPECT_EQ(choice["text"], "hello");
  EXPECT_EQ(choice["index"], 0);
  EXPECT_TRUE(choice["logprobs"].is_null());
  EXPECT_EQ(choice["finish_reason"], "length");
  EXPECT_EQ(j["usage"], json({{"prompt_tokens", 3}, {"completion_tokens", 5}, {"total_tokens", 8}}));
}

TEST(CompletionJson, LogprobsObjectIsTheLegacyCompletionsShape) {
  ChoiceResult c;
  c.text = "ab";
  c.logprobs.push_back({1, "<s>", std::nullopt, {}, 0});
  c.logprobs.push_back({5, "ab", -0.25f, {{5, "ab", -0.25f}, {6, "cd", -2.0f}}, 3});
  json lp = json::parse(CompletionJson(Header(true), {c}, Usage{}))["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], json({"<s>", "ab"}));
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_EQ(lp["token_logprobs"][1], -0.25);
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  EXPECT_EQ(lp["top_logprobs"][1], json({{"ab", -0.25}, {"cd", -2.0}}));
  EXPECT_EQ(lp["text_offset"], json({0, 3}));
}

TEST(ChunkJson, CarriesOneChoiceDeltaAndUsageNullWhenAsked) {
  ChoiceDelta d;
  d.index = 3;
  d.text = "x";
  json plain = json::parse(ChunkJson(Header(false), d, false));
  EXPECT_EQ(plain["object"], "text_completion");
  EXPECT_FALSE(plain.contains("usage"));
  EXPECT_EQ(plain["choices"][0]["index"], 3);
  EXPECT_TRUE(plain["choices"][0]["finish_reason"].is_null());
  json with_usage = json::parse(ChunkJson(Header(false), d, true));
  EXPECT_TRUE(with_usage.contains("usage"));
  EXPECT_TRUE(with_usage["usage"].is_null());
  json last = json::parse(UsageChunkJson(Header(false), Usage{2, 4}));
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["total_tokens"], 6);
}

TEST(ErrorJson, IsOpenAisErrorObject) {
  json j = json::parse(ErrorJson(ToApiError(BadParam("max_tokens", "must be >= 0"))));
  EXPECT_EQ(j, json::parse(R"({"error": {"message": "max_tokens: must be >= 0",
      "type": "invalid_request_error", "param": "max_tokens", "code": null}})"));
  ApiError auth = ToApiError(WithCode(absl::UnauthenticatedError("no"), "invalid_api_key"));
  EXPECT_EQ(auth.http_status, 401);
  EXPECT_EQ(auth.code, "invalid_api_key");
  EXPECT_EQ(ToApiError(absl::ResourceExhaustedError("full")).http_status, 429);
  EXPECT_EQ(ToApiError(absl::UnavailableError("draining")).http_status, 503);
  EXPECT_EQ(ToApiError(absl::NotFoundError("x")).http_status, 404);
  EXPECT_EQ(ToApiError(absl::InternalError("x")).http_status, 500);
}

TEST(ModelListJson, IsOpenAisListObject) {
  json j = json::parse(ModelListJson({{"tiny", 5, 1024}}));
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "tiny");
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_EQ(j["data"][0]["owned_by"], "qsl");
}

TEST(NewCompletionId, IsPrefixedAndUnique) {
  std::string a = NewCompletionId(), b = NewCompletionId();
  EXPECT_EQ(a.rfind("cmpl-", 0), 0u);
  EXPECT_EQ(a.size(), 29u);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace qsl::server
