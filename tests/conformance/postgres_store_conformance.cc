// The store conformance suite against a real PostgreSQL, started once for
// the whole test program by a gtest Environment (so the program is
// registered as one ctest test, not one server per test). Every test opens
// a fresh store on the shared database; the suite's keys never collide.
#include "conformance/store_conformance.h"
#include "idem/postgres_store.h"
#include "postgres/postgres_server.h"

namespace idem::testing {
namespace {

struct SharedServer {
  std::unique_ptr<PostgresServer> server;
  std::string uri;
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
  }
  void TearDown() override { Shared().server.reset(); }
};

[[maybe_unused]] ::testing::Environment* const kPostgresEnvironment =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

std::shared_ptr<Store> OpenPostgres(std::shared_ptr<Clock> clock, size_t pool_size,
                                    bool cache, size_t io_threads = 1) {
  if (!Shared().server) return nullptr;
  PostgresStoreOptions options;
  options.conninfo = Shared().uri;
  options.clock = std::move(clock);
  options.auto_migrate = true;
  options.pool_size = pool_size;
  options.cache_completed = cache;
  options.io_threads = io_threads;
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
                                   }}),
    [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace idem::testing
