#include "gateway_runner.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <utility>

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

  if (!run.store) {
    StoreOpenOptions options;
    options.auto_migrate = run.config.store.auto_migrate;
    Result<std::shared_ptr<Store>> store = OpenStore(run.config.store.uri, options);
    if (!store.ok()) {
      return Fail("store.uri: cannot open \"" + run.config.store.uri +
                  "\": " + store.status().message());
    }
    run.store = std::move(store).value();
  }
  if (run.config.secrets.encryption) {
    spdlog::info("stored responses are encrypted (AES-256-GCM, active key \"{}\", {} key(s))",
                 run.config.secrets.encryption->active_id,
                 run.config.secrets.encryption->keys.size());
    run.store = NewEncryptingStore(std::move(run.store), *run.config.secrets.encryption);
  }
  // Outermost, so no store call (encryption included) outlasts it. The
  // memory store answers every call before returning, so it cannot hang and
  // the deadline's timer work (about 1,500 instructions and 4 allocations
  // per new key, docs/performance.md) would buy nothing.
  if (run.config.store.uri.rfind("memory:", 0) != 0) {
    run.store = NewDeadlineStore(std::move(run.store), run.config.store.operation_timeout);
  }

  Result<std::unique_ptr<gateway::Server>> server =
      gateway::Server::Create(std::move(run.config), std::move(run.store));
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
