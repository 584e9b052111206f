// Opening a store from a URI, as the configuration and the command line
// name it:
//   memory:                      in-process (tests, development)
//   rocksdb:DIR                  embedded and durable (the default)
//   redis://[user:pass@]H:P[/db] one Redis server
//   redis+cluster://H:P,H:P      a Redis Cluster
//   postgresql://...             PostgreSQL (libpq connection URI)
//   fault:RULES|URI              URI with injected faults, for tests
//                                (idem/fault_store.h)
// Thread-safe.
#pragma once

#include <boost/asio/ts/netfwd.hpp>  // boost::asio::io_context, declared
#include <memory>
#include <string_view>
#include <vector>

#include "idem/clock.h"
#include "idem/status.h"
#include "idem/store.h"

namespace idem {

struct StoreOpenOptions {
  // Clock for expiry decisions. Default: the system clock.
  std::shared_ptr<Clock> clock;
  // Create or upgrade a SQL schema when the store has one. Default: false.
  bool auto_migrate = false;
  // Event loops a store may run its connections on instead of threads of
  // its own, with the lifetime rules of RedisStoreOptions::io_contexts.
  // The Redis and PostgreSQL stores use them; the others ignore them.
  // Default: empty.
  std::vector<boost::asio::io_context*> io_contexts;
};

// kInvalidArgument for a URI that names no known backend or is malformed;
// the backend's own error (kUnavailable, ...) when it cannot be opened.
Result<std::shared_ptr<Store>> OpenStore(std::string_view uri,
                                         const StoreOpenOptions& options = {});

}  // namespace idem
