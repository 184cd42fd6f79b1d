#include "loadtest/sse.h"

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace qsl::loadtest {

std::vector<std::string> SseParser::Feed(absl::string_view bytes) {
  pending_.append(bytes.data(), bytes.size());
  std::vector<std::string> events;
  size_t start = 0;
  for (;;) {
    // Events end with a blank line; servers use \n\n or \r\n\r\n.
    size_t lf = pending_.find("\n\n", start);
    size_t crlf = pending_.find("\r\n\r\n", start);
    size_t end = std::min(lf, crlf);
    if (end == std::string::npos) break;
    const size_t sep = end == lf ? 2 : 4;
    absl::string_view event(pending_.data() + start, end - start);
    std::string data;
    bool has_data = false;
    for (absl::string_view line : absl::StrSplit(event, '\n')) {
      if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
      if (!absl::ConsumePrefix(&line, "data:")) continue;
      absl::ConsumePrefix(&line, " ");
      if (has_data) data += '\n';
      data.append(line.data(), line.size());
      has_data = true;
    }
    if (has_data) events.push_back(std::move(data));
    start = end + sep;
  }
  pending_.erase(0, start);
  return events;
}

}  // namespace qsl::loadtest
