#include "conformance/store_conformance.h"
#include "idem/memory_store.h"

namespace idem::testing {
namespace {

std::shared_ptr<Store> OpenMemoryStore(size_t shards,
                                       std::shared_ptr<Clock> clock) {
  MemoryStoreOptions options;
  options.shards = shards;
  options.clock = std::move(clock);
  return NewMemoryStore(options);
}

INSTANTIATE_TEST_SUITE_P(
    Memory, StoreConformanceTest,
    ::testing::Values(
        StoreFactory{"sharded",
                     [](auto clock) { return OpenMemoryStore(64, clock); }},
        StoreFactory{"one_shard",
                     [](auto clock) { return OpenMemoryStore(1, clock); }}),
    [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace idem::testing
