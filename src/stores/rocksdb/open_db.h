// Opening the RocksDB database behind the store, with the tuning the
// store's access pattern wants (point reads and writes, one writer), and
// turning RocksDB's open errors into clear Status values. The DB handle is
// owned by DbPtr (RAII: Close, then delete).
#pragma once

#include <memory>

#include "idem/rocksdb_store.h"
#include "idem/status.h"

namespace rocksdb {
class CompactionFilter;
class DB;
}  // namespace rocksdb

namespace idem::rocksdb_store {

struct DbCloser {
  void operator()(rocksdb::DB* db) const;
};
using DbPtr = std::unique_ptr<rocksdb::DB, DbCloser>;

// `filter` (may be null) must outlive the returned DB.
Result<DbPtr> OpenDb(const RocksDbStoreOptions& options,
                     const rocksdb::CompactionFilter* filter);

}  // namespace idem::rocksdb_store
