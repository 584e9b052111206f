#include "stores/rocksdb/open_db.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace idem::rocksdb_store {
namespace {

namespace fs = std::filesystem;

// Hash buckets of the memtable (8 bytes each): about one per record a
// 64 MiB memtable holds.
constexpr size_t kMemtableBuckets = size_t{1} << 18;

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

rocksdb::Options DbOptions(const RocksDbStoreOptions& options,
                           const rocksdb::CompactionFilter* filter) {
  rocksdb::Options db;
  db.create_if_missing = options.create_if_missing;
  db.compaction_filter = filter;
  // Every lookup is a point read of one key, and most Begins look up a key
  // that does not exist yet: a Bloom filter answers those without I/O.
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  db.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Every read and write touches one whole key: a hash-indexed memtable
  // (the "prefix" is the whole key) finds or inserts a key without the
  // skiplist's walk of ~20 key comparisons. Measured with callgrind (Debian's
  // librocksdb): a memtable insert fell from ~19k to ~2k instructions, the
  // lookup of a missing key (every new key's Begin) from ~13k to ~1k. The
  // price: an ordered scan (a flush, Sweep's iterator) sorts the memtable
  // first, off the callers' threads.
  db.prefix_extractor.reset(rocksdb::NewNoopTransform());
  db.memtable_factory.reset(
      rocksdb::NewHashLinkListRepFactory(kMemtableBuckets, /*huge_page_tlb_size=*/0,
                                         /*bucket_entries_logging_threshold=*/4096,
                                         /*if_log_bucket_dist_when_flash=*/false));
  db.allow_concurrent_memtable_write = false;  // required by hash memtables
  // RocksDB's own LOG files: enough to diagnose, never a disk filler.
  db.keep_log_file_num = 3;
  db.max_log_file_size = size_t{8} << 20;
  return db;
}

// Maps the status of DB::Open onto the store's error vocabulary.
Status OpenError(const std::string& path, const rocksdb::Status& status) {
  const std::string name = "rocksdb:" + path;
  const std::string detail = status.ToString();
  if (status.IsIOError() && Contains(detail, "lock hold by current process")) {
    return Unavailable(name + " is in use by another store in this process (LOCK held)");
  }
  if (status.IsIOError() && Contains(detail, "While lock file")) {
    return Unavailable(name + " is in use by another process (LOCK held)");
  }
  if (status.IsCorruption()) {
    return DataLoss(name + " is corrupt: " + detail);
  }
  if (status.IsInvalidArgument() && Contains(detail, "does not exist")) {
    return NotFound(name + " holds no database (create_if_missing is off)");
  }
  return Unavailable(name + " cannot be opened: " + detail);
}

}  // namespace

void DbCloser::operator()(rocksdb::DB* db) const {
  const rocksdb::Status closed = db->Close();
  if (!closed.ok()) {
    spdlog::warn("rocksdb store: closing the database: {}", closed.ToString());
  }
  delete db;
}

Result<DbPtr> OpenDb(const RocksDbStoreOptions& options,
                     const rocksdb::CompactionFilter* filter) {
  const std::string& path = options.path;
  if (path.empty()) return InvalidArgument("rocksdb: the directory is empty");
  const std::string name = "rocksdb:" + path;

  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (error && status.type() != fs::file_type::not_found) {
    return Unavailable(name + " cannot be read: " + error.message());
  }
  if (!fs::exists(status)) {
    if (!options.create_if_missing) {
      return NotFound(name + " does not exist (create_if_missing is off)");
    }
    fs::create_directories(path, error);
    if (error) return Unavailable(name + " cannot be created: " + error.message());
  } else if (!fs::is_directory(status)) {
    return Unavailable(name + " is not a directory");
  }

  rocksdb::DB* db = nullptr;
  const rocksdb::Status opened = rocksdb::DB::Open(DbOptions(options, filter), path, &db);
  if (!opened.ok()) {
    delete db;
    return OpenError(path, opened);
  }
  return DbPtr(db);
}

}  // namespace idem::rocksdb_store
