// Server: `idem serve`, the idempotency gateway, as an object.
//
// Create sets up `server.threads` io threads (0: one per core), each with
// its own io_context and upstream pool, opens the store (which may run on
// those io_contexts), binds the client listener and the admin listener (so
// ephemeral ports are known before anything is served) and resolves the
// upstream. Run serves on the io threads; the client listener hands
// accepted connections round-robin to them. A separate thread sweeps expired records
// out of the store every `store.sweep_interval`. SIGTERM or SIGINT (or RequestStop)
// starts the drain: no new connections, idle ones closed, requests in
// progress finished for up to `server.drain_timeout`, then the rest cut off
// with their leases released; the sweeper stops, then the io threads, and
// Run returns.
//
// Create and Run are called from one thread; RequestStop from any.
#pragma once

#include <boost/asio/ts/netfwd.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config.h"
#include "idem/status.h"
#include "idem/store.h"

namespace idem::gateway {

struct BoundAddresses {
  std::string listen;  // "127.0.0.1:8080", the port the kernel chose for :0
  std::string admin;
};

// Opens the store, given the io_contexts of the server's io threads (one
// each), which the store may run its connections on (the Redis store does).
// The server stops them before it drops the store, and the store must not
// outlive the server.
using StoreFactory = std::function<Result<std::shared_ptr<Store>>(
    const std::vector<boost::asio::io_context*>& loops)>;

class Server {
 public:
  static Result<std::unique_ptr<Server>> Create(GatewayConfig config,
                                                const StoreFactory& open_store);
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
