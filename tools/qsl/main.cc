// `qsl`: one binary, one subcommand per job (serve, generate, quantize, eval, inspect, devices).
#include <cstdio>
#include <string>

#include "base/log.h"
#include "tools/qsl/commands.h"

namespace qsl::cli {

void ExitOnError(std::string_view command, const absl::Status& status) {
  if (status.ok()) return;
  std::fprintf(stderr, "qsl %.*s: error: %.*s\n", static_cast<int>(command.size()), command.data(),
               static_cast<int>(status.message().size()), status.message().data());
  throw CLI::RuntimeError(1);
}

}  // namespace qsl::cli

int main(int argc, char** argv) {
  CLI::App app{"qsl: LLM inference on MPE cards (simulated by default)", "qsl"};
  app.set_version_flag("--version", "qsl 0.1.0");
  std::string log_level;
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->envname("QSL_LOG_LEVEL");
  app.require_subcommand(1, 1);
  app.fallthrough();
  app.parse_complete_callback([&] {
    qsl::cli::ExitOnError("", qsl::InitLogging(log_level));
  });

  // One line per subcommand (tools/qsl/<command>.cc).
  qsl::cli::AddGenerateCommand(app);
  qsl::cli::AddEvalCommand(app);
  qsl::cli::AddDevicesCommand(app);
  qsl::cli::AddQuantizeCommand(app);
  qsl::cli::AddInspectCommand(app);
  qsl::cli::AddServeCommand(app);

  // An unknown first word is a mistyped command, not a missing one: say so and list the commands.
  std::string names;
  bool known = false;
  for (const CLI::App* sub : app.get_subcommands({})) {
    names += " " + sub->get_name();
    known = known || (argc > 1 && sub->get_name() == argv[1]);
  }
  if (argc > 1 && argv[1][0] != '-' && !known) {
    std::fprintf(stderr, "qsl: unknown command '%s' (commands:%s; see qsl --help)\n", argv[1],
                 names.c_str());
    return 2;
  }
  CLI11_PARSE(app, argc, argv);
  return 0;
}
