// Server: `idem serve`, the idempotency gateway, as an object.
//
// Create binds the client listener and the admin listener (so ephemeral
// ports are known before anything is served) and resolves the upstream.
// Run serves on `server.threads` io threads (0: one per core), each with
// its own io_context and upstream pool; the client listener hands accepted
// connections round-robin to them. A separate thread sweeps expired records
// out of the store every `store.sweep_interval`. SIGTERM or SIGINT (or RequestStop)
// starts the drain: no new connections, idle ones closed, requests in
// progress finished for up to `server.drain_timeout`, then the rest cut off
// with their leases released; Run then returns.
//
// Create and Run are called from one thread; RequestStop from any.
#pragma once

#include <memory>
#include <string>

#include "gateway/config.h"
#include "idem/status.h"
#include "idem/store.h"

namespace idem::gateway {

struct BoundAddresses {
  std::string listen;  // "127.0.0.1:8080", the port the kernel chose for :0
  std::string admin;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> Create(GatewayConfig config,
                                                std::shared_ptr<Store> store);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  const BoundAddresses& addresses() const;

  // Serves until the drain has finished.
  Status Run();

  // Starts the drain, as SIGTERM does.
  void RequestStop();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace idem::gateway
