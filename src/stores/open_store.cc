// Maps a store URI onto the backend factory that opens it.
#include "idem/open_store.h"

#include <algorithm>
#include <charconv>
#include <string>

#include "idem/fault_store.h"
#include "idem/memory_store.h"
#include "idem/postgres_store.h"
#include "idem/redis_store.h"
#include "idem/rocksdb_store.h"

namespace idem {
namespace {

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// "max_records=N" (N > 0), the one parameter of memory:?...
Result<size_t> ParseMaxRecords(std::string_view query) {
  constexpr std::string_view kName = "max_records=";
  size_t value = 0;
  const std::string_view digits = query.substr(std::min(query.size(), kName.size()));
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (!StartsWith(query, kName) || digits.empty() || ec != std::errc() ||
      end != digits.data() + digits.size() || value == 0) {
    return InvalidArgument("store URI \"memory:?" + std::string(query) +
                           "\": expected memory:?max_records=N with N > 0");
  }
  return value;
}

}  // namespace

Result<std::shared_ptr<Store>> OpenStore(std::string_view uri,
                                         const StoreOpenOptions& options) {
  const std::shared_ptr<Clock> clock = options.clock ? options.clock : SystemClock();
  if (StartsWith(uri, "fault:")) {
    auto fault = ParseFaultUri(uri);
    if (!fault.ok()) return fault.status();
    if (StartsWith(fault->second, "fault:")) {
      return InvalidArgument("a fault: store URI cannot wrap another fault: URI");
    }
    auto inner = OpenStore(fault->second, options);
    if (!inner.ok()) return inner.status();
    return NewFaultInjectingStore(std::move(inner).value(), std::move(fault->first));
  }
  if (uri == "memory:" || uri == "memory" || StartsWith(uri, "memory:?")) {
    MemoryStoreOptions memory;
    memory.clock = clock;
    if (StartsWith(uri, "memory:?")) {
      auto max_records = ParseMaxRecords(uri.substr(std::string_view("memory:?").size()));
      if (!max_records.ok()) return max_records.status();
      memory.max_records = *max_records;
    }
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
    redis->io_contexts = options.io_contexts;
    return NewRedisStore(*redis);
  }
  if (StartsWith(uri, "postgresql://") || StartsWith(uri, "postgres://")) {
    // idem's own options out of the query; libpq reads the rest (TLS too).
    auto postgres = ParsePostgresUri(uri);
    if (!postgres.ok()) return postgres.status();
    postgres->clock = clock;
    postgres->auto_migrate = options.auto_migrate;
    postgres->io_contexts = options.io_contexts;
    return NewPostgresStore(*postgres);
  }
  // Each backend adds its scheme here: `if (StartsWith(uri, "x:")) ...`.
  (void)StartsWith;
  return InvalidArgument("unknown store URI \"" + std::string(uri) +
                         "\": expected memory:, rocksdb:DIR, redis://, "
                         "redis+cluster://, postgresql:// or fault:RULES|URI");
}

}  // namespace idem
