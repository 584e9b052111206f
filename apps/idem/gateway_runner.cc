#include "gateway_runner.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <utility>
#include <vector>

#include "gateway/logging.h"
#include "idem/deadline_store.h"
#include "idem/encrypting_store.h"
#include "idem/open_store.h"

namespace idem::cli {
namespace {

int Fail(const std::string& message) {
  std::cerr << "idem: " << message << "\n";
  return 1;
}

// Atomic for readers polling the file: they see nothing or both lines.
Status WritePortFile(const std::string& path, const gateway::BoundAddresses& addresses) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << "listen=" << addresses.listen << "\n"
        << "admin=" << addresses.admin << "\n";
    out.close();
    if (!out) return Unavailable("cannot write the port file " + temporary);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return Unavailable("cannot rename " + temporary + " to " + path);
  }
  return Status::Ok();
}

bool UsesTenants(const gateway::GatewayConfig& config) {
  if (!config.idempotency.tenant_headers.empty()) return true;
  for (const gateway::RouteConfig& route : config.routes) {
    if (!route.idempotency.tenant_headers.empty()) return true;
  }
  return false;
}

// The store to serve from: `given`, or the one config.uri names, opened on
// the gateway's io threads (`loops`) when it can use them; then wrapped as
// the configuration says.
Result<std::shared_ptr<Store>> OpenGatewayStore(
    std::shared_ptr<Store> given, const gateway::StoreConfig& config,
    const std::optional<EncryptionKeys>& encryption,
    const std::vector<boost::asio::io_context*>& loops) {
  std::shared_ptr<Store> store = std::move(given);
  if (!store) {
    StoreOpenOptions options;
    options.auto_migrate = config.auto_migrate;
    options.io_contexts = loops;
    Result<std::shared_ptr<Store>> opened = OpenStore(config.uri, options);
    if (!opened.ok()) {
      return Status(opened.status().code(), "store.uri: cannot open \"" + config.uri +
                                                "\": " + opened.status().message());
    }
    store = std::move(opened).value();
  }
  if (encryption) {
    spdlog::info("stored responses are encrypted (AES-256-GCM, active key \"{}\", {} key(s))",
                 encryption->active_id, encryption->keys.size());
    store = NewEncryptingStore(std::move(store), *encryption);
  }
  // Outermost, so no store call (encryption included) outlasts it. The
  // memory store answers every call before returning, so it cannot hang and
  // the deadline's timer work (about 1,500 instructions and 4 allocations
  // per new key, docs/performance.md) would buy nothing.
  if (config.uri.rfind("memory:", 0) != 0) {
    store = NewDeadlineStore(std::move(store), config.operation_timeout);
  }
  return store;
}

}  // namespace

int RunGateway(GatewayRun run) {
  Status logging = gateway::SetUpLogging(run.config.server.log_level);
  if (!logging.ok()) return Fail("server.log_level: " + logging.message());
  Status secrets = gateway::LoadSecrets(run.config);
  if (!secrets.ok()) return Fail(secrets.message());
  if (run.config.secrets.tenant_secret.empty() && UsesTenants(run.config)) {
    spdlog::warn(
        "tenant ids are unkeyed SHA-256 hashes of the credential headers; set "
        "server.tenant_secret_file (or _env) so that stored keys cannot be matched "
        "against guessed credentials");
  }
  if (run.config.store.uri.rfind("fault:", 0) == 0) {
    spdlog::warn("!!! store.uri is a fault: store: operations FAIL ON PURPOSE. This is a "
                 "testing tool; never use it in production. !!!");
  }

  auto open_store = [given = std::move(run.store), config = run.config.store,
                     encryption = run.config.secrets.encryption](
                        const std::vector<boost::asio::io_context*>& loops) mutable {
    return OpenGatewayStore(std::move(given), config, encryption, loops);
  };
  Result<std::unique_ptr<gateway::Server>> server =
      gateway::Server::Create(std::move(run.config), open_store);
  if (!server.ok()) return Fail(server.status().message());
  if (!run.port_file.empty()) {
    Status written = WritePortFile(run.port_file, (*server)->addresses());
    if (!written.ok()) return Fail(written.message());
  }
  if (run.on_ready) run.on_ready((*server)->addresses());

  const Status served = (*server)->Run();
  server->reset();
  spdlog::shutdown();
  if (!served.ok()) return Fail(served.message());
  return 0;
}

}  // namespace idem::cli
