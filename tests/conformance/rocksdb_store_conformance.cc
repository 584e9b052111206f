#include <gtest/gtest.h>

#include <memory>
#include <utility>

#include "conformance/store_conformance.h"
#include "idem/rocksdb_store.h"
#include "rocksdb/temp_dir.h"

namespace idem::testing {
namespace {

// A store on a fresh directory; the directory goes when the store does.
std::shared_ptr<Store> OpenRocksDbStore(std::shared_ptr<Clock> clock,
                                        RocksDbStoreOptions options) {
  auto dir = std::make_shared<TempDir>();
  options.path = dir->path();
  options.clock = std::move(clock);
  auto opened = NewRocksDbStore(options);
  if (!opened.ok()) {
    ADD_FAILURE() << "rocksdb:" << options.path << ": " << opened.status();
    return nullptr;
  }
  std::shared_ptr<Store> store = std::move(opened).value();
  Store* raw = store.get();
  return std::shared_ptr<Store>(raw, [store, dir](Store*) mutable {
    store.reset();  // closes the database first
    dir.reset();
  });
}

RocksDbStoreOptions Defaults() { return {}; }

RocksDbStoreOptions CallbacksOnCommitThread() {
  RocksDbStoreOptions options;
  options.callback_threads = 0;
  return options;
}

// Every write its own batch, every key on one lock, and a record cache so
// small that it evicts all the time.
RocksDbStoreOptions TinyBatchesOneStripe() {
  RocksDbStoreOptions options;
  options.max_batch_size = 1;
  options.lock_stripes = 1;
  options.callback_threads = 4;
  options.record_cache_bytes = 4096;
  return options;
}

// Every read from RocksDB, every lease and result synced.
RocksDbStoreOptions NoCacheAllSynced() {
  RocksDbStoreOptions options;
  options.record_cache_bytes = 0;
  options.sync_leases = true;
  return options;
}

INSTANTIATE_TEST_SUITE_P(
    RocksDb, StoreConformanceTest,
    ::testing::Values(
        StoreFactory{"defaults",
                     [](auto clock) { return OpenRocksDbStore(clock, Defaults()); }},
        StoreFactory{"callbacks_on_commit_thread",
                     [](auto clock) {
                       return OpenRocksDbStore(clock, CallbacksOnCommitThread());
                     }},
        StoreFactory{
            "tiny_batches_one_stripe",
            [](auto clock) { return OpenRocksDbStore(clock, TinyBatchesOneStripe()); }},
        StoreFactory{
            "no_cache_all_synced",
            [](auto clock) { return OpenRocksDbStore(clock, NoCacheAllSynced()); }}),
    [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace idem::testing
