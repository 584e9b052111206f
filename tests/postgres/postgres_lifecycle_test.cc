// Opening and closing stores: the last reference may be dropped inside one
// of the store's own callbacks (on its io thread, or on a loop the caller
// lent it), and closed stores leave no server connection behind.
#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <thread>

#include "common/test_loops.h"
#include "idem/postgres_store.h"
#include "postgres/postgres_test_env.h"

namespace idem::testing {
namespace {

using namespace std::chrono_literals;

int64_t ConnectionsTo(const std::string& uri, const std::string& database) {
  auto count = RunSql(uri, "SELECT count(*) FROM pg_stat_activity WHERE datname = '" +
                               database + "' AND pid <> pg_backend_pid()");
  EXPECT_TRUE(count.ok()) << count.status();
  return count.ok() ? std::stoll(*count) : -1;
}

// The server sees a closed connection a moment after the client closes it.
bool WaitUntilCount(const std::string& uri, const std::string& database, int64_t want) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ConnectionsTo(uri, database) == want) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// Options are checked before anything is opened, so no server is needed.
TEST(PostgresLifecycle, BadOptionsAreRefusedBeforeConnecting) {
  const auto refused = [](const std::function<void(PostgresStoreOptions&)>& change) {
    PostgresStoreOptions options;
    options.conninfo = "host=127.0.0.1 port=1";  // never reached
    change(options);
    return NewPostgresStore(options).status().code() == StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(refused([](auto& o) { o.pool_size = 0; }));
  EXPECT_TRUE(refused([](auto& o) { o.pipeline_depth = 0; }));
  EXPECT_TRUE(refused([](auto& o) { o.io_threads = 0; }));
  EXPECT_TRUE(refused([](auto& o) { o.io_contexts = {nullptr}; }));
  EXPECT_TRUE(refused([](auto& o) { o.statement_timeout = 0ms; }));
  EXPECT_TRUE(refused([](auto& o) { o.sweep_batch = 0; }));
}

TEST(PostgresLifecycle, DroppingTheLastReferenceInsideACallbackIsSafe) {
  const std::string uri = FreshDatabase();
  for (int i = 0; i < 5; ++i) {
    auto opened = NewPostgresStore(TestStoreOptions(uri));
    ASSERT_TRUE(opened.ok()) << opened.status();
    std::shared_ptr<Store> store = *opened;
    Store* raw = store.get();
    std::promise<Status> pinged;
    // The callback owns the only reference and drops it while it runs.
    raw->Ping([owned = std::move(store), &pinged](Status status) mutable {
      owned.reset();
      pinged.set_value(std::move(status));
    });
    auto future = pinged.get_future();
    ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(future.get().ok());
  }
}

// On lent loops the store cannot close on the loop that drops it (a loop
// cannot wait for itself): a helper thread closes it. `idem serve` never
// does this; a program that lends its loops may.
TEST(PostgresLifecycle, DroppingTheLastReferenceOnALentLoopClosesTheStore) {
  const std::string uri = FreshDatabase();
  const std::string database = uri.substr(uri.rfind('/') + 1);
  auto loops = std::make_unique<TestLoops>(2);
  // Held by the store until it is closed and freed: when the helper thread
  // is done, this is the last reference.
  auto clock = std::make_shared<ManualClock>(SystemClock()->NowMs());
  PostgresStoreOptions options = TestStoreOptions(uri, clock);
  options.pool_size = 2;
  options.io_contexts = loops->pointers();
  auto opened = NewPostgresStore(options);
  options.clock.reset();
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::shared_ptr<Store> store = std::move(opened).value();
  ASSERT_TRUE(BeginSync(*store, {"lent", "fp", "o", 1'000, 1'000}).ok());
  // Two pool connections and the listener.
  ASSERT_TRUE(WaitUntilCount(uri, database, 3)) << ConnectionsTo(uri, database);

  const std::optional<bool> on_a_lent_loop = DropInsideACallback(std::move(store), *loops);
  ASSERT_TRUE(on_a_lent_loop.has_value()) << "the callback did not run";
  EXPECT_TRUE(*on_a_lent_loop) << "the callback did not run on a lent loop";

  EXPECT_TRUE(WaitUntilCount(uri, database, 0)) << ConnectionsTo(uri, database);
  if (!WaitUntilSoleOwner(clock)) {
    // The helper may still use the loops: leave them running.
    (void)loops.release();
    FAIL() << "the store was not freed within 10 s";
  }
  // The loops were not stopped or blocked by the closing.
  EXPECT_TRUE(loops->RunOn(0, [] {}));
  EXPECT_TRUE(loops->RunOn(1, [] {}));
}

TEST(PostgresLifecycle, ClosedStoresLeaveNoConnectionsBehind) {
  const std::string uri = FreshDatabase();
  const std::string database = uri.substr(uri.rfind('/') + 1);
  {
    PostgresStoreOptions options = TestStoreOptions(uri);
    options.pool_size = 3;
    auto store = NewPostgresStore(options);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(PingSync(**store).ok());
    // Three pool connections and the listener.
    EXPECT_TRUE(WaitUntilCount(uri, database, 4));
  }
  for (int i = 0; i < 10; ++i) {
    auto store = NewPostgresStore(TestStoreOptions(uri));
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(
        BeginSync(**store, {"k" + std::to_string(i), "fp", "o", 1'000, 1'000}).ok());
  }
  EXPECT_TRUE(WaitUntilCount(uri, database, 0)) << ConnectionsTo(uri, database);
}

}  // namespace
}  // namespace idem::testing
