// The one process-wide logger (spdlog, to stderr). Use spdlog::info/warn/error/debug directly.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "spdlog/spdlog.h"

namespace qsl {

// Installs the stderr logger; `level` is one of trace, debug, info, warn, error, off.
// QSL_LOG_LEVEL in the environment overrides the default when `level` is empty.
absl::Status InitLogging(std::string_view level = "");

}  // namespace qsl
