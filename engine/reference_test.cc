// The fp32 reference forward against transformers: for every reference prompt of the bundled
// model and of the Qwen2 and Llama-3 test checkpoints, the top-10 next tokens (order, logits) and
// the greedy continuation. (dev.txt perplexity: tests/cli/cli_test.cc runs `qsl eval`.)
#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "engine/forward.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace qsl {
namespace {

const std::string kSrc = QSL_SOURCE_DIR;

struct Loaded {
  std::unique_ptr<HfCheckpoint> ck;
  std::unique_ptr<Model> model;
  CpuLinearBackend backend;
  std::unique_ptr<Transformer> tf;
};

std::unique_ptr<Loaded> Load(const std::string& dir) {
  auto l = std::make_unique<Loaded>();
  auto ck = HfCheckpoint::Open(dir);
  EXPECT_TRUE(ck.ok()) << ck.status();
  if (!ck.ok()) return nullptr;
  l->ck = std::move(*ck);
  auto m = Model::FromCheckpoint(*l->ck);
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return nullptr;
  l->model = std::move(*m);
  l->tf = std::make_unique<Transformer>(*l->model, l->backend);
  return l;
}

std::vector<float> LastLogits(Loaded& l, KvCache& cache, const std::vector<int32_t>& tokens,
                              int32_t pos) {
  ForwardBatch b;
  b.tokens = tokens;
  b.chunks.push_back({0, pos, static_cast<int32_t>(tokens.size()), false});
  std::vector<float> logits;
  EXPECT_TRUE(l.tf->Forward(b, cache, logits).ok());
  return logits;
}

int32_t Argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

void CheckCase(Loaded& l, const nlohmann::json& c, const char* greedy_key, double* max_dev) {
  const auto prompt = c["prompt_ids"].get<std::vector<int32_t>>();
  const auto want_ids = c["top10_ids"].get<std::vector<int32_t>>();
  const auto want_logits = c["top10_logits"].get<std::vector<float>>();
  const auto greedy = c[greedy_key].get<std::vector<int32_t>>();
  ContiguousKvCache cache(l.model->config(), 1, static_cast<int32_t>(prompt.size() + greedy.size()));
  std::vector<float> logits = LastLogits(l, cache, prompt, 0);

  // Top-10 ids in order; neighbours whose reference logits are within 1e-4 may swap.
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 10, order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  for (size_t i = 0; i < 10; ++i) {
    if (order[i] != want_ids[i]) {
      const bool tie = (i + 1 < 10 && order[i] == want_ids[i + 1] &&
                        std::abs(want_logits[i] - want_logits[i + 1]) < 1e-4) ||
                       (i > 0 && order[i] == want_ids[i - 1] &&
                        std::abs(want_logits[i] - want_logits[i - 1]) < 1e-4);
      EXPECT_TRUE(tie) << "rank " << i << ": got " << order[i] << ", want " << want_ids[i];
    }
    const double dev = std::abs(static_cast<double>(logits[want_ids[i]]) - want_logits[i]);
    *max_dev = std::max(*max_dev, dev);
    EXPECT_LE(dev, 2e-3) << "token " << want_ids[i];
  }

  // Greedy continuation, one token at a time through the KV cache.
  std::vector<int32_t> got;
  int32_t pos = static_cast<int32_t>(prompt.size());
  int32_t next = Argmax(logits);
  for (size_t i = 0; i < greedy.size(); ++i) {
    got.push_back(next);
    if (i + 1 == greedy.size()) break;
    next = Argmax(LastLogits(l, cache, {next}, pos++));
  }
  EXPECT_EQ(got, greedy);
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(Reference, BundledLlamaMatchesTransformers) {
  auto l = Load(kSrc + "/models/qsl-tiny-llama");
  ASSERT_NE(l, nullptr);
  double max_dev = 0;
  const nlohmann::json ref = ReadJson(kSrc + "/models/qsl-tiny-llama/reference_dev.json");
  ASSERT_GE(ref["cases"].size(), 3u);
  for (const auto& c : ref["cases"]) CheckCase(*l, c, "greedy_64_ids", &max_dev);
  RecordProperty("max_logit_deviation", std::to_string(max_dev));
  std::printf("max |logit - transformers| over top-10: %.2e\n", max_dev);
}

TEST(Reference, Qwen2MatchesTransformers) {
  auto l = Load(kSrc + "/tests/models/qwen2-tiny-random");
  ASSERT_NE(l, nullptr);
  double max_dev = 0;
  const nlohmann::json ref = ReadJson(kSrc + "/tests/models/qwen2-tiny-random/reference.json");
  ASSERT_GE(ref["cases"].size(), 3u);
  for (const auto& c : ref["cases"]) CheckCase(*l, c, "greedy_32_ids", &max_dev);
  std::printf("max |logit - transformers| over top-10: %.2e\n", max_dev);
}

TEST(Reference, Llama3RopeScalingMatchesTransformers) {
  auto l = Load(kSrc + "/tests/models/llama3-tiny-random");
  ASSERT_NE(l, nullptr);
  double max_dev = 0;
  const nlohmann::json ref = ReadJson(kSrc + "/tests/models/llama3-tiny-random/reference.json");
  ASSERT_GE(ref["cases"].size(), 3u);
  for (const auto& c : ref["cases"]) CheckCase(*l, c, "greedy_32_ids", &max_dev);
  std::printf("max |logit - transformers| over top-10: %.2e\n", max_dev);
}

// Chunked prefill (the prompt fed in pieces through the cache) gives the same next-token logits
// as one pass, up to fp32 rounding.
TEST(Reference, ChunkedPrefillAgrees) {
  auto l = Load(kSrc + "/models/qsl-tiny-llama");
  ASSERT_NE(l, nullptr);
  const auto prompt = l->model->tokenizer().Encode("The :mod:`json` module provides a way", true);
  ContiguousKvCache one(l->model->config(), 1, 64), two(l->model->config(), 1, 64);
  const auto a = LastLogits(*l, one, prompt, 0);
  const size_t half = prompt.size() / 2;
  LastLogits(*l, two, std::vector<int32_t>(prompt.begin(), prompt.begin() + half), 0);
  const auto b = LastLogits(*l, two, std::vector<int32_t>(prompt.begin() + half, prompt.end()),
                            static_cast<int32_t>(half));
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-3) << i;
}

}  // namespace
}  // namespace qsl
