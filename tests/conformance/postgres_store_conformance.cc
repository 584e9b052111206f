// The store conformance suite against a real PostgreSQL, started once for
// the whole test program by a gtest Environment (so the program is
// registered as one ctest test, not one server per test). Every test opens
// a fresh store on the shared database; the suite's keys never collide.
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>
#include <vector>

#include "conformance/store_conformance.h"
#include "idem/postgres_store.h"
#include "postgres/postgres_server.h"

namespace idem::testing {
namespace {

// Two event loops, each run by one thread, lent to the stores of the
// "lent_loops" variant as `idem serve` lends its io threads. They run from
// before the first test to after the last, so every store is closed while
// they run.
class LentLoops {
 public:
  LentLoops() {
    for (auto& loop : loops_) {
      guards_.push_back(boost::asio::make_work_guard(loop));
      threads_.emplace_back([&loop] { loop.run(); });
    }
  }
  ~LentLoops() {
    guards_.clear();
    for (auto& thread : threads_) thread.join();
  }
  std::vector<boost::asio::io_context*> pointers() {
    return {&loops_[0], &loops_[1]};
  }

 private:
  std::array<boost::asio::io_context, 2> loops_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      guards_;
  std::vector<std::thread> threads_;
};

struct SharedServer {
  std::unique_ptr<PostgresServer> server;
  std::string uri;
  std::unique_ptr<LentLoops> loops;
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
    Shared().loops = std::make_unique<LentLoops>();
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
