// The `idem` subcommands that run or inspect the gateway. Each registers
// itself on the top-level CLI11 app; a failing command ends the program
// with a non-zero exit code through CLI::RuntimeError.
#pragma once

namespace CLI {
class App;
}

namespace idem::cli {

void AddServeCommand(CLI::App& app);        // idem serve
void AddCheckConfigCommand(CLI::App& app);  // idem check-config FILE
void AddDemoCommand(CLI::App& app);         // idem demo
void AddVersionCommand(CLI::App& app);      // idem version

}  // namespace idem::cli
