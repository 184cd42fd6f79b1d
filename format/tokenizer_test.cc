// The tokenizer against transformers' ids, and streaming detokenization against whole decodes.
#include "format/tokenizer.h"

#include <fstream>
#include <random>
#include <sstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace qsl {
namespace {

const std::string kModel = std::string(QSL_SOURCE_DIR) + "/models/qsl-tiny-llama";

nlohmann::json Reference() {
  std::ifstream in(kModel + "/reference_dev.json");
  return nlohmann::json::parse(in);
}

std::unique_ptr<Tokenizer> Load() {
  auto t = Tokenizer::FromFile(kModel + "/tokenizer.model");
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(*t);
}

TEST(Tokenizer, MatchesTransformersPromptIds) {
  auto tok = Load();
  const auto ref = Reference();
  ASSERT_GE(ref["cases"].size(), 5u);
  for (const auto& c : ref["cases"]) {
    const auto want = c["prompt_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->Encode(c["text"].get<std::string>(), /*add_bos=*/true), want)
        << c["text"].get<std::string>();
  }
}

TEST(Tokenizer, DecodeRoundTripsAndDropsBos) {
  auto tok = Load();
  const std::string text = "def fibonacci(n):\n    return n";
  EXPECT_EQ(tok->Decode(tok->Encode(text, true)), text);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
}

// Streaming must emit exactly the text a whole decode gives, in pieces.
std::string Stream(const Tokenizer& tok, const std::vector<int32_t>& context,
                   const std::vector<int32_t>& ids, std::vector<std::string>* pieces = nullptr) {
  StreamDecoder d(tok, context);
  std::string out;
  for (int32_t id : ids) {
    std::string piece = d.Add(id);
    if (pieces) pieces->push_back(piece);
    out += piece;
  }
  return out + d.Flush();
}

TEST(Tokenizer, StreamingEqualsWholeDecodeOnGreedyContinuations) {
  auto tok = Load();
  const auto ref = Reference();
  ASSERT_GE(ref["cases"].size(), 5u);
  for (const auto& c : ref["cases"]) {
    const auto prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    const auto gen = c["greedy_64_ids"].get<std::vector<int32_t>>();
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), gen.begin(), gen.end());
    const std::string full = tok->Decode(all);
    const std::string head = tok->Decode(prompt);
    ASSERT_EQ(full.compare(0, head.size(), head), 0);
    EXPECT_EQ(Stream(*tok, prompt, gen), full.substr(head.size()));
  }
}

TEST(Tokenizer, StreamingNeverSplitsUtf8) {
  auto tok = Load();
  const std::string text = "naïve café — 日本語のテキスト 🙂 done";
  const auto ids = tok->Encode(text, false);
  std::vector<std::string> pieces;
  EXPECT_EQ(Stream(*tok, {tok->bos_id()}, ids, &pieces), text);
  for (const std::string& p : pieces) {
    // Every emitted piece is valid UTF-8 on its own.
    size_t i = 0;
    while (i < p.size()) {
      const auto c = static_cast<unsigned char>(p[i]);
      const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
      ASSERT_LE(i + len, p.size()) << "split character in piece '" << p << "'";
      for (size_t j = 1; j < len; ++j) {
        ASSERT_EQ(static_cast<unsigned char>(p[i + j]) >> 6, 2) << p;
      }
      i += len;
    }
  }
}

TEST(Tokenizer, StreamingRandomIdsEqualsWholeDecode) {
  auto tok = Load();
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> id(3, tok->vocab_size() - 1);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<int32_t> ids(40);
    for (auto& v : ids) v = id(rng);
    const std::vector<int32_t> context = {1, 461, 1236};
    std::vector<int32_t> all = {1, 461, 1236};
    for (int32_t v : ids) all.push_back(v);
    const std::string full = tok->Decode(all);
    const std::string head = tok->Decode(context);
    EXPECT_EQ(Stream(*tok, context, ids), full.substr(head.size())) << "trial " << trial;
  }
}

TEST(Tokenizer, RejectsGarbage) {
  EXPECT_FALSE(Tokenizer::FromBytes("garbage", "x").ok());
  EXPECT_FALSE(Tokenizer::FromBytes("", "x").ok());
  EXPECT_FALSE(Tokenizer::FromFile("/nonexistent/tokenizer.model").ok());
}

}  // namespace
}  // namespace qsl
