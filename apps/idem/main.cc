// idem: the idempotency gateway and its admin commands.
#include <CLI/CLI.hpp>

#include "commands.h"
#include "migrate_command.h"
#include "store_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"idem: make any HTTP API safe to retry"};
  app.require_subcommand(1);
  idem::cli::AddServeCommand(app);
  idem::cli::AddCheckConfigCommand(app);
  idem::cli::AddDemoCommand(app);
  idem::cli::AddKeysCommand(app);
  idem::cli::AddGcCommand(app);
  idem::cli::AddMigrateCommand(app);
  idem::cli::AddVersionCommand(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
