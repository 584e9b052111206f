// The library scenarios on the stores that need no server.
#include <gtest/gtest.h>

#include "idem/memory_store.h"
#include "idem/open_store.h"
#include "lib/store_scenarios.h"
#include "lib/subprocess.h"

namespace idem {
namespace {

TEST(LibraryOnStoresTest, Memory) { libtest::AllLibraryScenarios(NewMemoryStore()); }

TEST(LibraryOnStoresTest, RocksDb) {
  libtest::TempDir dir;
  auto store = OpenStore("rocksdb:" + dir.File("store"));
  ASSERT_TRUE(store.ok()) << store.status();
  libtest::AllLibraryScenarios(*store);
}

}  // namespace
}  // namespace idem
