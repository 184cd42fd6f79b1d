// Incremental Server-Sent Events parsing for the load generator: bytes arrive in arbitrary
// pieces; complete events come out as their `data:` payloads.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace qsl::loadtest {

class SseParser {
 public:
  // Appends `bytes`; returns the data of every event they complete (multi-line data joined
  // with '\n', as the SSE spec says). Comments and other fields are skipped.
  std::vector<std::string> Feed(absl::string_view bytes);

 private:
  std::string pending_;
};

}  // namespace qsl::loadtest
