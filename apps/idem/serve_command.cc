// idem serve [--config FILE] [--listen A:P] [--admin-listen A:P]
//            [--upstream URL] [--store URI] [--log-level L] [--port-file FILE]
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "gateway/config.h"
#include "gateway_runner.h"

namespace idem::cli {
namespace {

struct ServeArgs {
  std::string config_file;
  std::string listen, admin_listen, upstream, store, log_level;
  std::string port_file;
  // Set when the flag was given, so an explicit value always wins.
  CLI::Option* listen_flag = nullptr;
  CLI::Option* admin_listen_flag = nullptr;
  CLI::Option* upstream_flag = nullptr;
  CLI::Option* store_flag = nullptr;
  CLI::Option* log_level_flag = nullptr;
};

int Serve(const ServeArgs& args) {
  Result<gateway::GatewayConfig> config = args.config_file.empty()
                                              ? gateway::GatewayConfig{}
                                              : gateway::LoadConfigFile(args.config_file);
  if (!config.ok()) {
    std::cerr << "idem: " << config.status().message() << "\n";
    return 1;
  }
  gateway::ConfigOverrides overrides;
  if (args.listen_flag->count() > 0) overrides.listen = args.listen;
  if (args.admin_listen_flag->count() > 0) overrides.admin_listen = args.admin_listen;
  if (args.upstream_flag->count() > 0) overrides.upstream = args.upstream;
  if (args.store_flag->count() > 0) overrides.store = args.store;
  if (args.log_level_flag->count() > 0) overrides.log_level = args.log_level;
  Result<gateway::GatewayConfig> effective =
      gateway::ApplyOverrides(std::move(config).value(), overrides);
  if (!effective.ok()) {
    std::cerr << "idem: " << effective.status().message() << "\n";
    return 1;
  }
  GatewayRun run;
  run.config = std::move(effective).value();
  run.port_file = args.port_file;
  return RunGateway(std::move(run));
}

}  // namespace

void AddServeCommand(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* serve = app.add_subcommand(
      "serve", "Run the idempotency gateway in front of an HTTP service");
  serve->add_option("--config", args->config_file, "TOML configuration file");
  args->listen_flag = serve->add_option("--listen", args->listen,
                                        "client listener HOST:PORT (port 0: any)");
  args->admin_listen_flag = serve->add_option("--admin-listen", args->admin_listen,
                                              "admin listener HOST:PORT (port 0: any)");
  args->upstream_flag =
      serve->add_option("--upstream", args->upstream, "upstream URL, http://HOST:PORT");
  args->store_flag =
      serve->add_option("--store", args->store,
                        "store URI: memory:, rocksdb:DIR, redis://..., postgresql://...");
  args->log_level_flag = serve->add_option("--log-level", args->log_level,
                                           "trace, debug, info, warn, error or off");
  serve->add_option("--port-file", args->port_file,
                    "once both listeners are bound, write their addresses here "
                    "(listen=HOST:PORT and admin=HOST:PORT lines)");
  serve->callback([args] {
    const int code = Serve(*args);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace idem::cli
