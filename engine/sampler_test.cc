// The sampler, one parameter at a time, on hand-made logits.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "gtest/gtest.h"

namespace qsl {
namespace {

constexpr int32_t kVocab = 8;

SamplingParams Greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

int32_t SampleOnce(const std::vector<float>& logits, const SamplingParams& p,
                   const TokenHistory& h = {}, uint64_t seed = 7) {
  Sampler s(static_cast<int32_t>(logits.size()));
  std::mt19937_64 rng = ChoiceRng(seed, 0);
  return s.Sample(logits.data(), p, h, rng).id;
}

// Sample frequencies over many draws of one generator.
std::map<int32_t, int> Histogram(const std::vector<float>& logits, const SamplingParams& p,
                                 int draws) {
  Sampler s(static_cast<int32_t>(logits.size()));
  std::mt19937_64 rng = ChoiceRng(11, 0);
  std::map<int32_t, int> h;
  for (int i = 0; i < draws; ++i) ++h[s.Sample(logits.data(), p, {}, rng).id];
  return h;
}

const std::vector<float> kLogits = {1.0f, 3.0f, 2.5f, -1.0f, 0.0f, 2.9f, -4.0f, 0.5f};

TEST(Sampler, GreedyTakesTheArgmaxAndTheLowerIdOnTies) {
  EXPECT_EQ(SampleOnce(kLogits, Greedy()), 1);
  EXPECT_EQ(SampleOnce({0.0f, 2.0f, 2.0f}, Greedy()), 1);
}

// Vocabularies past the vector width, the maximum in every lane position and in the tail, ties
// across lanes, NaNs: greedy picks the first largest value, as std::max_element does.
TEST(Sampler, GreedyOnALargeVocabularyMatchesMaxElement) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-10.0f, 10.0f);
  for (int32_t n : {15, 16, 17, 33, 1000, 32000}) {
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<float> logits(static_cast<size_t>(n));
      for (float& x : logits) x = u(rng);
      const auto at = [&] { return static_cast<size_t>(rng() % static_cast<uint32_t>(n)); };
      logits[at()] = 11.0f;
      if (trial % 2 == 0) logits[at()] = 11.0f;  // a tie, anywhere
      if (trial % 3 == 0) logits[at()] = std::nanf("");
      // std::max_element, except that a NaN in front does not win either.
      const auto want = std::max_element(logits.begin(), logits.end(), [](float a, float b) {
                          return std::isnan(a) || a < b;
                        }) - logits.begin();
      EXPECT_EQ(SampleOnce(logits, Greedy()), want) << "n=" << n << " trial " << trial;
    }
  }
}

TEST(Sampler, LogitBiasMovesTheChoice) {
  SamplingParams p = Greedy();
  p.logit_bias = {{6, 10.0f}};
  EXPECT_EQ(SampleOnce(kLogits, p), 6);
  p.logit_bias = {{1, -100.0f}};
  EXPECT_EQ(SampleOnce(kLogits, p), 5);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingParams p = Greedy();
  p.repetition_penalty = 1.5f;
  // Token 1 (3.0) seen in the prompt: 3.0 / 1.5 = 2.0 < 2.9 (token 5).
  EXPECT_EQ(SampleOnce(kLogits, p, TokenHistory::ForPrompt({1})), 5);
  // Negative logits get more negative: with every token but 3 at -inf-ish, 3 stays the best
  // unpenalized; penalized it falls below token 4's -1.2.
  const std::vector<float> neg = {-9, -9, -9, -1.0f, -1.2f, -9, -9, -9};
  EXPECT_EQ(SampleOnce(neg, p), 3);
  EXPECT_EQ(SampleOnce(neg, p, TokenHistory::ForPrompt({3})), 4);
  // Generated tokens count too, and a token in both prompt and output is penalized once.
  TokenHistory h = TokenHistory::ForPrompt({1});
  h.Add(1);
  h.Add(1);
  p.repetition_penalty = 1.02f;  // 3.0 / 1.02 = 2.94 > 2.9; twice would be 2.88
  EXPECT_EQ(SampleOnce(kLogits, p, h), 1);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesCountGeneratedTokens) {
  TokenHistory h;
  h.Add(1);
  h.Add(1);
  SamplingParams p = Greedy();
  p.presence_penalty = 0.2f;  // 3.0 - 0.2 = 2.8 < 2.9
  EXPECT_EQ(SampleOnce(kLogits, p, h), 5);
  p.presence_penalty = 0.0f;
  p.frequency_penalty = 0.04f;  // 3.0 - 2 * 0.04 = 2.92 > 2.9
  EXPECT_EQ(SampleOnce(kLogits, p, h), 1);
  p.frequency_penalty = 0.06f;  // 2.88 < 2.9
  EXPECT_EQ(SampleOnce(kLogits, p, h), 5);
  // The prompt does not count for these two.
  p.frequency_penalty = 2.0f;
  EXPECT_EQ(SampleOnce(kLogits, p, TokenHistory::ForPrompt({1})), 1);
}

TEST(Sampler, TemperatureFollowsTheSoftmax) {
  SamplingParams p;
  p.temperature = 1.0f;
  const int draws = 20000;
  const auto h = Histogram(kLogits, p, draws);
  double z = 0;
  for (float l : kLogits) z += std::exp(l);
  for (int32_t i = 0; i < kVocab; ++i) {
    const double want = std::exp(kLogits[i]) / z;
    const double got = h.count(i) ? h.at(i) / static_cast<double>(draws) : 0.0;
    EXPECT_NEAR(got, want, 0.015) << "token " << i;
  }
  // A low temperature concentrates on the argmax.
  p.temperature = 0.05f;
  EXPECT_GT(Histogram(kLogits, p, 1000)[1], 850);
}

TEST(Sampler, TopKKeepsTheKBest) {
  SamplingParams p;
  p.top_k = 2;
  p.temperature = 2.0f;
  const auto h = Histogram(kLogits, p, 2000);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_GT(h.at(1), 0);
  EXPECT_GT(h.at(5), 0);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  // Probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.75 keeps the first two (0.5 < 0.75 <= 0.8).
  const std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  SamplingParams p;
  p.top_p = 0.75f;
  const auto h = Histogram(l, p, 4000);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_NEAR(h.at(0) / 4000.0, 0.5 / 0.8, 0.03);
  p.top_p = 0.4f;
  EXPECT_EQ(Histogram(l, p, 200).size(), 1u);
}

TEST(Sampler, TopPOnALargeVocabularyGrowsThePartialSort) {
  // 5000 equally likely tokens: top_p 0.5 needs 2500 of them, past the first partial sort.
  std::vector<float> l(5000, 0.0f);
  SamplingParams p;
  p.top_p = 0.5f;
  const auto h = Histogram(l, p, 400);
  for (const auto& [id, n] : h) EXPECT_LT(id, 2500);  // equal probabilities: lower ids first
  EXPECT_GT(h.size(), 300u);
}

TEST(Sampler, MinPDropsTokensFarBelowTheBest) {
  SamplingParams p;
  p.min_p = 0.5f;  // keeps tokens with p >= 0.5 * p(best): logits within ln 2 of 3.0
  const auto h = Histogram(kLogits, p, 2000);
  EXPECT_EQ(h.size(), 3u);  // 3.0, 2.9, 2.5
  EXPECT_EQ(h.count(0), 0u);
}

TEST(Sampler, SeedsReproduceAndChoicesDiffer) {
  SamplingParams p;
  std::vector<int32_t> a, b, c;
  Sampler s(kVocab);
  std::mt19937_64 ra = ChoiceRng(42, 0), rb = ChoiceRng(42, 0), rc = ChoiceRng(42, 1);
  for (int i = 0; i < 64; ++i) {
    a.push_back(s.Sample(kLogits.data(), p, {}, ra).id);
    b.push_back(s.Sample(kLogits.data(), p, {}, rb).id);
    c.push_back(s.Sample(kLogits.data(), p, {}, rc).id);
  }
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Sampler, LogprobsAreTheRawLogSoftmaxWithTopAlternatives) {
  SamplingParams p = Greedy();
  p.logprobs = 3;
  p.logit_bias = {{6, 50.0f}};  // changes the choice, not the reported distribution
  Sampler s(kVocab);
  std::mt19937_64 rng = ChoiceRng(1, 0);
  const SampledToken t = s.Sample(kLogits.data(), p, {}, rng);
  double z = 0;
  for (float l : kLogits) z += std::exp(static_cast<double>(l));
  EXPECT_EQ(t.id, 6);
  EXPECT_NEAR(t.logprob, -4.0 - std::log(z), 1e-6);
  ASSERT_EQ(t.top.size(), 3u);
  EXPECT_EQ(t.top[0].id, 1);
  EXPECT_EQ(t.top[1].id, 5);
  EXPECT_EQ(t.top[2].id, 2);
  EXPECT_NEAR(t.top[0].logprob, 3.0 - std::log(z), 1e-6);
  p.logprobs = -1;
  EXPECT_TRUE(s.Sample(kLogits.data(), p, {}, rng).top.empty());
}

}  // namespace
}  // namespace qsl
