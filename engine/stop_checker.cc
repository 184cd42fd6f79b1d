#include "engine/stop_checker.h"

#include <algorithm>

namespace qsl {

StopChecker::StopChecker(const Tokenizer& tok, const std::vector<int32_t>& prompt,
                         std::vector<std::string> stop)
    : decoder_(tok, prompt), stop_(std::move(stop)) {}

StopChecker::Release StopChecker::Add(int32_t id) {
  ends_.push_back(-1);
  return Take(decoder_.Add(id), /*final=*/false);
}

StopChecker::Release StopChecker::Finish() { return Take(decoder_.Flush(), /*final=*/true); }

StopChecker::Release StopChecker::Take(const std::string& delta, bool final) {
  const size_t old = held_.size();
  held_ += delta;
  // Tokens that had no text of their own (part of a UTF-8 character) end where this text ends.
  for (int64_t& e : ends_) {
    if (e < 0 && (!delta.empty() || final)) e = static_cast<int64_t>(held_.size());
  }
  // A match must end in the new text; it may start up to len - 1 bytes before it.
  size_t match = std::string::npos;
  for (const std::string& s : stop_) {
    const size_t from = old >= s.size() - 1 ? old - (s.size() - 1) : 0;
    match = std::min(match, held_.find(s, from));
  }
  if (match != std::string::npos) {
    Release r = ReleaseUpTo(match);
    r.stopped = true;
    held_.clear();
    ends_.clear();
    return r;
  }
  return ReleaseUpTo(final ? held_.size() : held_.size() - PossibleStopPrefix());
}

size_t StopChecker::PossibleStopPrefix() const {
  size_t best = 0;
  for (const std::string& s : stop_) {
    for (size_t k = std::min(s.size() - 1, held_.size()); k > best; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        best = k;
        break;
      }
    }
  }
  return best;
}

StopChecker::Release StopChecker::ReleaseUpTo(size_t bytes) {
  Release r;
  const auto limit = static_cast<int64_t>(bytes);
  while (r.tokens < static_cast<int32_t>(ends_.size()) && ends_[r.tokens] >= 0 &&
         ends_[r.tokens] <= limit) {
    ++r.tokens;
  }
  ends_.erase(ends_.begin(), ends_.begin() + r.tokens);
  for (int64_t& e : ends_) {
    if (e >= 0) e -= limit;
  }
  r.text = held_.substr(0, bytes);
  held_.erase(0, bytes);
  return r;
}

}  // namespace qsl
