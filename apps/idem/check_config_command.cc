// idem check-config FILE: validates a configuration file and prints the
// effective configuration, defaults filled in.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "gateway/config.h"

namespace idem::cli {

void AddCheckConfigCommand(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  CLI::App* check = app.add_subcommand(
      "check-config",
      "Validate a configuration file and print the effective configuration");
  check->add_option("file", *file, "TOML configuration file")->required();
  check->callback([file] {
    Result<gateway::GatewayConfig> config = gateway::LoadConfigFile(*file);
    if (!config.ok()) {
      std::cerr << "idem: " << config.status().message() << "\n";
      throw CLI::RuntimeError(1);
    }
    std::cout << gateway::RenderConfig(*config);
  });
}

}  // namespace idem::cli
