// StopChecker with the bundled tokenizer: stop strings found across token boundaries and inside
// multi-byte characters, never leaked, and tokens released with their text.
#include "engine/stop_checker.h"

#include "gtest/gtest.h"

namespace qsl {
namespace {

const std::string kModel = std::string(QSL_SOURCE_DIR) + "/models/qsl-tiny-llama";

const Tokenizer& Tok() {
  static const auto* tok = [] {
    auto t = Tokenizer::FromFile(kModel + "/tokenizer.model");
    EXPECT_TRUE(t.ok()) << t.status();
    return t->release();
  }();
  return *tok;
}

bool ValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t j = 1; j < n; ++j) {
      if ((static_cast<unsigned char>(s[i + j]) >> 6) != 2) return false;
    }
    i += n;
  }
  return true;
}

struct Outcome {
  std::string text;
  int32_t tokens = 0;
  bool stopped = false;
};

// Feeds `ids` one at a time (then Finish unless stopped), checking every release on the way.
Outcome Feed(const std::vector<int32_t>& prompt, const std::vector<int32_t>& ids,
            std::vector<std::string> stop) {
  StopChecker sc(Tok(), prompt, std::move(stop));
  Outcome o;
  const auto take = [&](const StopChecker::Release& r) {
    EXPECT_TRUE(ValidUtf8(r.text)) << r.text;
    o.text += r.text;
    o.tokens += r.tokens;
    o.stopped = r.stopped;
  };
  for (int32_t id : ids) {
    take(sc.Add(id));
    if (o.stopped) return o;
  }
  take(sc.Finish());
  return o;
}

const std::vector<int32_t> kPrompt = Tok().Encode("The :mod:`json` module", true);
const std::string kText =
    " provides a way to serialize objects.\n\n.. function:: dumps(obj, *, skipkeys=False)\n";

TEST(StopChecker, WithoutStopsReleasesEverythingInOrder) {
  const auto ids = Tok().Encode(kText, false);
  const Outcome o = Feed(kPrompt, ids, {});
  EXPECT_FALSE(o.stopped);
  EXPECT_EQ(o.tokens, static_cast<int32_t>(ids.size()));
  StreamDecoder d(Tok(), kPrompt);
  std::string want;
  for (int32_t id : ids) want += d.Add(id);
  EXPECT_EQ(o.text, want + d.Flush());
}

// Every substring of the text, as a stop string, cuts the output exactly before its first
// occurrence: whether it lies inside a token or spans several.
TEST(StopChecker, AnySubstringStopsExactlyBeforeItsFirstOccurrence) {
  const auto ids = Tok().Encode(kText, false);
  const std::string full = Feed(kPrompt, ids, {}).text;
  int spanning = 0;
  for (size_t len : {1, 2, 5, 11}) {
    for (size_t start = 0; start + len <= full.size(); start += 3) {
      const std::string stop = full.substr(start, len);
      const Outcome o = Feed(kPrompt, ids, {"@@never@@", stop});
      ASSERT_TRUE(o.stopped) << "'" << stop << "'";
      ASSERT_EQ(o.text, full.substr(0, full.find(stop))) << "'" << stop << "'";
      ASSERT_LT(o.tokens, static_cast<int32_t>(ids.size()));
      spanning += len >= 5;
    }
  }
  EXPECT_GT(spanning, 20);
}

TEST(StopChecker, HoldsBackAPossibleStopPrefixUntilItIsRuledOut) {
  const auto ids = Tok().Encode(" dumps(obj)", false);
  StopChecker sc(Tok(), kPrompt, {"obj)!"});
  std::string released;
  for (int32_t id : ids) released += sc.Add(id).text;
  // "obj)" could still become "obj)!": held.
  EXPECT_EQ(released.find("obj"), std::string::npos) << released;
  EXPECT_GT(sc.held_tokens(), 0);
  const StopChecker::Release r = sc.Finish();
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(released + r.text, Feed(kPrompt, ids, {}).text);
  EXPECT_EQ(sc.held_tokens(), 0);
}

TEST(StopChecker, MultiByteCharactersAreNeverSplitAndCanStop) {
  const std::string text = " naïve café — 日本語のテキスト ✓ done";
  const auto ids = Tok().Encode(text, false);
  ASSERT_GT(ids.size(), text.size() / 3);  // byte-fallback pieces are in play
  const std::string full = Feed(kPrompt, ids, {}).text;
  ASSERT_NE(full.find("日本語"), std::string::npos) << full;
  for (const std::string stop : {"本", "語の", "é —", "✓"}) {
    const Outcome o = Feed(kPrompt, ids, {stop});
    EXPECT_TRUE(o.stopped) << stop;
    EXPECT_EQ(o.text, full.substr(0, full.find(stop))) << stop;
  }
}

TEST(StopChecker, EarliestOfSeveralStopsWins) {
  const auto ids = Tok().Encode(kText, false);
  const std::string full = Feed(kPrompt, ids, {}).text;
  const Outcome o = Feed(kPrompt, ids, {"function", "serialize", "way"});
  EXPECT_TRUE(o.stopped);
  EXPECT_EQ(o.text, full.substr(0, full.find("way")));
}

}  // namespace
}  // namespace qsl
