// idem version
#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.h"

namespace idem::cli {

void AddVersionCommand(CLI::App& app) {
  CLI::App* version = app.add_subcommand("version", "Print the version");
  version->callback([] { std::cout << "idem " << IDEM_VERSION << "\n"; });
}

}  // namespace idem::cli
