// Detokenization of one choice with stop strings: text is released only when it can no longer
// be the start of a stop string, so a stop string that spans several tokens is never leaked.
// Tokens are released with the text they complete; the caller keeps their payloads (ids,
// logprobs) in a queue and pops as many as each step releases.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/tokenizer.h"

namespace qsl {

class StopChecker {
 public:
  StopChecker(const Tokenizer& tok, const std::vector<int32_t>& prompt,
              std::vector<std::string> stop);

  struct Release {
    int32_t tokens = 0;    // the oldest held tokens now released
    std::string text;      // their text (whole UTF-8, no part of a stop string)
    bool stopped = false;  // a stop string matched: the still-held tokens are dropped
  };

  // Adds a generated token.
  Release Add(int32_t id);
  // The choice ends without a stop string (length, EOS, stop token): releases everything held,
  // unless the decoder's last text completes a stop string after all.
  Release Finish();

  int32_t held_tokens() const { return static_cast<int32_t>(ends_.size()); }

 private:
  // Appends newly decoded text, then matches stop strings and decides what to release.
  Release Take(const std::string& delta, bool final);
  // Length of the longest suffix of held_ that is a proper prefix of a stop string.
  size_t PossibleStopPrefix() const;
  Release ReleaseUpTo(size_t bytes);

  StreamDecoder decoder_;
  std::vector<std::string> stop_;
  std::string held_;           // decoded text not yet released
  std::vector<int64_t> ends_;  // per held token: end of its text in held_, -1 while it has none
};

}  // namespace qsl
