// The `qsl` subcommands. Each Add*Command registers its options on `app` and a callback that
// runs it; a failing run throws CLI::RuntimeError(exit_code) after printing its error.
#pragma once

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace qsl::cli {

// Prints `status` as "qsl <command>: error: ..." and throws CLI::RuntimeError(1) when not ok.
void ExitOnError(std::string_view command, const absl::Status& status);

// One declaration per subcommand, defined in tools/qsl/<command>.cc.
void AddGenerateCommand(CLI::App& app);
void AddEvalCommand(CLI::App& app);
void AddDevicesCommand(CLI::App& app);
void AddQuantizeCommand(CLI::App& app);
void AddInspectCommand(CLI::App& app);
void AddServeCommand(CLI::App& app);

}  // namespace qsl::cli
