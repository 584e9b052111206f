// Maps a store URI onto the backend factory that opens it.
#include "idem/open_store.h"

#include <string>

#include "idem/memory_store.h"
#include "idem/postgres_store.h"
#include "idem/redis_store.h"
#include "idem/rocksdb_store.h"

namespace idem {
namespace {

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

Result<std::shared_ptr<Store>> OpenStore(std::string_view uri,
                                         const StoreOpenOptions& options) {
  const std::shared_ptr<Clock> clock = options.clock ? options.clock : SystemClock();
  if (uri == "memory:" || uri == "memory") {
    MemoryStoreOptions memory;
    memory.clock = clock;
    return NewMemoryStore(memory);
  }
  if (StartsWith(uri, "rocksdb:")) {
    RocksDbStoreOptions rocksdb;
    rocksdb.path = std::string(uri.substr(std::string_view("rocksdb:").size()));
    rocksdb.clock = clock;
    if (rocksdb.path.empty()) {
      return InvalidArgument("store URI \"rocksdb:\" names no directory: "
                             "expected rocksdb:DIR");
    }
    return NewRocksDbStore(rocksdb);
  }
  if (StartsWith(uri, "redis://") || StartsWith(uri, "redis+cluster://")) {
    auto redis = ParseRedisUri(uri);
    if (!redis.ok()) return redis.status();
    redis->clock = clock;
    return NewRedisStore(*redis);
  }
  if (StartsWith(uri, "postgresql://") || StartsWith(uri, "postgres://")) {
    PostgresStoreOptions postgres;
    postgres.conninfo = std::string(uri);  // libpq reads the URI, TLS settings included
    postgres.clock = clock;
    postgres.auto_migrate = options.auto_migrate;
    return NewPostgresStore(postgres);
  }
  // Each backend adds its scheme here: `if (StartsWith(uri, "x:")) ...`.
  (void)StartsWith;
  return InvalidArgument("unknown store URI \"" + std::string(uri) +
                         "\": expected memory:, rocksdb:DIR, redis://, "
                         "redis+cluster:// or postgresql://");
}

}  // namespace idem
