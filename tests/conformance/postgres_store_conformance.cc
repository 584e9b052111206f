// The store conformance suite against a real PostgreSQL, started once for
// the whole test program by a gtest Environment (so the program is
// registered as one ctest test, not one server per test). Every test opens
// a fresh store on the shared database; the suite's keys never collide.
#include <memory>

#include "common/test_loops.h"
#include "conformance/store_conformance.h"
#include "idem/postgres_store.h"
#include "postgres/postgres_server.h"

namespace idem::testing {
namespace {

struct SharedServer {
  std::unique_ptr<PostgresServer> server;
  std::string uri;
  // Lent to the stores of the "lent_loops" variant; they run from before
  // the first test to after the last, so every store is closed while they
  // run.
  std::unique_ptr<TestLoops> loops;
};

SharedServer& Shared() {
  static SharedServer shared;
  return shared;
}

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE((*server)->CreateDatabase("conformance").ok());
    Shared().uri = (*server)->Uri("conformance");
    Shared().server = std::move(server).value();
    Shared().loops = std::make_unique<TestLoops>(2);
  }
  void TearDown() override {
    Shared().loops.reset();
    Shared().server.reset();
  }
};

[[maybe_unused]] ::testing::Environment* const kPostgresEnvironment =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

std::shared_ptr<Store> OpenPostgres(std::shared_ptr<Clock> clock, size_t pool_size,
                                    bool cache, size_t io_threads = 1,
                                    bool lent_loops = false) {
  if (!Shared().server) return nullptr;
  PostgresStoreOptions options;
  options.conninfo = Shared().uri;
  options.clock = std::move(clock);
  options.auto_migrate = true;
  options.pool_size = pool_size;
  options.cache_completed = cache;
  options.io_threads = io_threads;
  if (lent_loops) options.io_contexts = Shared().loops->pointers();
  auto store = NewPostgresStore(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *store : nullptr;
}

INSTANTIATE_TEST_SUITE_P(
    Postgres, StoreConformanceTest,
    ::testing::Values(StoreFactory{"pool",
                                   [](std::shared_ptr<Clock> clock) {
                                     return OpenPostgres(std::move(clock), 4, true);
                                   }},
                      StoreFactory{"one_connection_no_cache",
                                   [](std::shared_ptr<Clock> clock) {
                                     return OpenPostgres(std::move(clock), 1, false);
                                   }},
                      StoreFactory{"two_io_threads",
                                   [](std::shared_ptr<Clock> clock) {
                                     return OpenPostgres(std::move(clock), 3, true, 2);
                                   }},
                      StoreFactory{"lent_loops",
                                   [](std::shared_ptr<Clock> clock) {
                                     return OpenPostgres(std::move(clock), 3, true, 1,
                                                         /*lent_loops=*/true);
                                   }}),
    [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace idem::testing
