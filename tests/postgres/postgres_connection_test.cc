// Connections: the TLS settings of the URI reach libpq unchanged (a TLS
// server verified against its certificate; TLS required of a server without
// it is refused), a server that accepts TCP but never answers costs
// connect_timeout, not a hang, and the queue of calls waiting for a
// connection is bounded. These tests start servers of their own.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "idem/postgres_store.h"
#include "postgres/postgres_test_env.h"

namespace idem::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

std::unique_ptr<PostgresServer> StartServer(bool tls = false) {
  PostgresServerOptions options;
  options.tls = tls;
  auto server = PostgresServer::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

// Backends of this store (application_name idem) on a TLS connection.
int64_t TlsBackends(const PostgresServer& server) {
  auto count = server.Query("postgres",
                            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity "
                            "USING (pid) WHERE ssl AND application_name = 'idem'");
  EXPECT_TRUE(count.ok()) << count.status();
  return count.ok() ? std::stoll(*count) : -1;
}

TEST(PostgresConnection, TlsSettingsComeFromTheUri) {
  auto server = StartServer(/*tls=*/true);
  ASSERT_TRUE(server);
  PostgresStoreOptions options = TestStoreOptions(
      server->Uri() + "?sslmode=verify-full&sslrootcert=" + server->tls_certificate());
  options.pool_size = 2;
  auto store = NewPostgresStore(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto begun = BeginSync(**store, {"k", "fp", "owner", 10'000, 60'000});
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_EQ(begun->outcome, BeginOutcome::kAcquired);
  // Both pool connections and the listener.
  const auto deadline = SteadyClock::now() + 10s;
  while (TlsBackends(*server) < 3 && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(TlsBackends(*server), 3);

  // Roots the server's self-signed certificate does not chain to (the
  // system's, from Debian's ca-certificates).
  const std::string wrong_root = "/etc/ssl/certs/ca-certificates.crt";
  if (std::filesystem::exists(wrong_root)) {
    auto refused = NewPostgresStore(TestStoreOptions(
        server->Uri() + "?sslmode=verify-full&sslrootcert=" + wrong_root));
    EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status();
  }
}

TEST(PostgresConnection, TlsRequiredOfAServerWithoutItIsRefused) {
  const std::string uri = FreshDatabase();
  auto refused = NewPostgresStore(TestStoreOptions(uri + "?sslmode=require"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("SSL"), std::string::npos)
      << refused.status();
  EXPECT_TRUE(NewPostgresStore(TestStoreOptions(uri + "?sslmode=prefer")).ok());
}

TEST(PostgresConnection, AServerThatNeverAnswersCostsTheConnectTimeout) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  ASSERT_TRUE(server->Pause().ok());  // TCP connects; the server never speaks
  PostgresStoreOptions options = TestStoreOptions(server->Uri());
  options.connect_timeout = 500ms;
  const auto start = SteadyClock::now();
  auto store = NewPostgresStore(options);
  const auto took = SteadyClock::now() - start;
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(store.status().message().find("timed out"), std::string::npos)
      << store.status();
  EXPECT_LT(took, 5s);
  ASSERT_TRUE(server->Resume().ok());
  EXPECT_TRUE(NewPostgresStore(options).ok());
}

TEST(PostgresConnection, CallsWaitingForAConnectionAreBounded) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  PostgresStoreOptions options = TestStoreOptions(server->Uri());
  options.pool_size = 1;
  options.pipeline_depth = 1;
  options.max_queued = 4;
  auto opened = NewPostgresStore(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::shared_ptr<Store> store = *opened;
  ASSERT_TRUE(server->Pause().ok());  // nothing leaves the queue now

  constexpr int kCalls = 10;
  std::mutex mutex;
  std::condition_variable cv;
  int answered = 0;
  std::atomic<int> overloaded{0};
  for (int i = 0; i < kCalls; ++i) {
    store->Begin(
        {"k" + std::to_string(i), "fp", "owner", 10'000, 60'000},
        [&](Result<BeginResult> result) {
          if (result.status().message().find("overloaded") != std::string::npos) {
            overloaded.fetch_add(1);
          }
          std::lock_guard lock(mutex);
          ++answered;
          cv.notify_all();
        });
  }
  // One call on the wire and four queued at most: the rest are refused at
  // once (the others fail when the statement time-out passes).
  EXPECT_GE(overloaded.load(), kCalls - 1 - 4);
  {
    std::unique_lock lock(mutex);
    EXPECT_TRUE(cv.wait_for(lock, 20s, [&] { return answered == kCalls; }));
  }
  ASSERT_TRUE(server->Resume().ok());
}

}  // namespace
}  // namespace idem::testing
