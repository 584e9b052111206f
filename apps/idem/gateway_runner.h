// Running the gateway until it has drained: what `idem serve` and
// `idem demo` share.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "gateway/config.h"
#include "gateway/server.h"
#include "idem/store.h"

namespace idem::cli {

struct GatewayRun {
  gateway::GatewayConfig config;
  // Opened from config.store.uri when null.
  std::shared_ptr<Store> store;
  // When set, written once both listeners are bound: "listen=HOST:PORT" and
  // "admin=HOST:PORT" lines, to FILE.tmp first and then renamed to FILE.
  std::string port_file;
  // Called once serving starts (after the port file).
  std::function<void(const gateway::BoundAddresses&)> on_ready;
};

// Sets up logging, opens the store, binds, serves until SIGTERM/SIGINT and
// the drain end. Returns the exit code: 0 after a drain, 1 when the gateway
// could not start (the reason is printed on stderr).
int RunGateway(GatewayRun run);

}  // namespace idem::cli
