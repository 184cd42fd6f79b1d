// Logger set-up: one stderr sink, a short pattern, level from flag or environment.
#include "base/log.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_color_sinks.h"

namespace qsl {

absl::Status InitLogging(std::string_view level) {
  std::string lv(level);
  if (lv.empty()) {
    const char* env = std::getenv("QSL_LOG_LEVEL");
    lv = env != nullptr ? env : "info";
  }
  const spdlog::level::level_enum parsed = spdlog::level::from_str(lv);
  if (parsed == spdlog::level::off && lv != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown log level '", lv, "' (trace, debug, info, warn, error, off)"));
  }
  static bool installed = false;
  if (!installed) {
    auto logger = spdlog::stderr_color_mt("qsl");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %v");
    spdlog::set_default_logger(logger);
    installed = true;
  }
  spdlog::set_level(parsed);
  return absl::OkStatus();
}

}  // namespace qsl
