// PostgreSQL going away under a live store: calls fail with kUnavailable
// within the time-out (never hang), the store recovers by itself when the
// server is back, and completed results survive a crash of the server.
// These tests stop and restart servers of their own.
#include <gtest/gtest.h>

#include <thread>

#include "idem/postgres_store.h"
#include "postgres/postgres_test_env.h"

namespace idem::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

StoredResponse Response(const std::string& body) {
  StoredResponse response;
  response.status = 201;
  response.headers = {{"Content-Type", "text/plain"}};
  response.body = body;
  return response;
}

// Polls `store` until Ping succeeds; false after `timeout`.
bool WaitUntilAnswering(Store& store, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (PingSync(store).ok()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

class PostgresFailureTest : public ::testing::Test {
 protected:
  void StartServer(bool fsync = false) {
    PostgresServerOptions options;
    options.fsync = fsync;
    auto server = PostgresServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    ASSERT_TRUE(server_->CreateDatabase("failure").ok());
    auto store = NewPostgresStore(TestStoreOptions(server_->Uri("failure")));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *store;
  }

  std::unique_ptr<PostgresServer> server_;
  std::shared_ptr<Store> store_;
};

TEST_F(PostgresFailureTest, RestartedServerIsUnavailableWhileDownThenRecovers) {
  StartServer();
  ASSERT_EQ(BeginSync(*store_, {"before", "fp", "a", 10'000, 60'000})->outcome,
            BeginOutcome::kAcquired);
  ASSERT_TRUE(CompleteSync(*store_, {"before", "a", Response("first"), 60'000}).ok());

  ASSERT_TRUE(server_->Stop().ok());
  // Every kind of call fails fast and cleanly while the server is gone.
  for (int i = 0; i < 5; ++i) {
    const auto start = SteadyClock::now();
    auto begun =
        BeginSync(*store_, {"during-" + std::to_string(i), "fp", "a", 10'000, 60'000});
    EXPECT_EQ(begun.status().code(), StatusCode::kUnavailable) << begun.status();
    EXPECT_EQ(PingSync(*store_).code(), StatusCode::kUnavailable);
    EXPECT_EQ(GetSync(*store_, "before").status().code(), StatusCode::kUnavailable);
    EXPECT_LT(SteadyClock::now() - start, 3s);  // statement_timeout is 2 s
    std::this_thread::sleep_for(50ms);
  }

  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(WaitUntilAnswering(*store_, 10s));
  auto replay = BeginSync(*store_, {"before", "fp", "b", 10'000, 60'000});
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->outcome, BeginOutcome::kCompleted);
  EXPECT_EQ(replay->record->response.body, "first");
  auto fresh = BeginSync(*store_, {"after", "fp", "b", 10'000, 60'000});
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->outcome, BeginOutcome::kAcquired);
  EXPECT_GT(GetPostgresStoreStats(*store_)->reconnects, 0u);
}

TEST_F(PostgresFailureTest, UnansweringServerTimesOutInsteadOfHanging) {
  StartServer();
  ASSERT_TRUE(PingSync(*store_).ok());
  ASSERT_TRUE(server_->Pause().ok());
  const auto start = SteadyClock::now();
  std::vector<std::thread> callers;
  std::atomic<int> unavailable{0};
  for (int i = 0; i < 8; ++i) {
    callers.emplace_back([&, i] {
      auto r =
          BeginSync(*store_, {"paused-" + std::to_string(i), "fp", "a", 10'000, 60'000});
      if (r.status().code() == StatusCode::kUnavailable) unavailable.fetch_add(1);
    });
  }
  for (auto& t : callers) t.join();
  const auto took = SteadyClock::now() - start;
  EXPECT_EQ(unavailable.load(), 8);
  EXPECT_LT(took, 5s);  // statement_timeout (2 s) plus the deadline tick
  ASSERT_TRUE(server_->Resume().ok());
  ASSERT_TRUE(WaitUntilAnswering(*store_, 15s));
  auto r = BeginSync(*store_, {"resumed", "fp", "a", 10'000, 60'000});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, BeginOutcome::kAcquired);
}

TEST_F(PostgresFailureTest, CompletedResultsSurviveAServerCrash) {
  StartServer(/*fsync=*/true);
  for (int i = 0; i < 20; ++i) {
    const std::string key = "durable-" + std::to_string(i);
    ASSERT_EQ(BeginSync(*store_, {key, "fp", "a", 10'000, 600'000})->outcome,
              BeginOutcome::kAcquired);
    ASSERT_TRUE(CompleteSync(*store_, {key, "a", Response(key), 600'000}).ok());
  }
  ASSERT_TRUE(server_->Crash().ok());  // SIGKILL: no shutdown checkpoint
  EXPECT_EQ(PingSync(*store_).code(), StatusCode::kUnavailable);
  ASSERT_TRUE(server_->Restart().ok());  // crash recovery replays the WAL
  ASSERT_TRUE(WaitUntilAnswering(*store_, 15s));
  // A second store never saw these keys: no cache can answer for the first.
  auto other = NewPostgresStore(TestStoreOptions(server_->Uri("failure")));
  ASSERT_TRUE(other.ok()) << other.status();
  for (int i = 0; i < 20; ++i) {
    const std::string key = "durable-" + std::to_string(i);
    auto replay = BeginSync(**other, {key, "fp", "b", 10'000, 600'000});
    ASSERT_TRUE(replay.ok()) << replay.status();
    EXPECT_EQ(replay->outcome, BeginOutcome::kCompleted) << key;
    EXPECT_EQ(replay->record->response.body, key);
  }
}

TEST_F(PostgresFailureTest, WaitersLearnOfAnOutage) {
  StartServer();
  ASSERT_EQ(BeginSync(*store_, {"waited", "fp", "a", 10'000, 60'000})->outcome,
            BeginOutcome::kAcquired);
  Status waited;
  std::thread waiter(
      [&] { waited = WaitForCompletionSync(*store_, "waited", 30s).status(); });
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(server_->Stop().ok());
  waiter.join();  // ended by the fallback poll failing, or its own deadline
  EXPECT_NE(waited.code(), StatusCode::kOk);
}

TEST_F(PostgresFailureTest, ClosingTheStoreWithCallsInFlightAnswersThemAll) {
  StartServer();
  std::atomic<int> answered{0};
  auto store = store_;
  for (int i = 0; i < 200; ++i) {
    store->Begin({"closing-" + std::to_string(i), "fp", "a", 10'000, 60'000},
                 [&answered](Result<BeginResult>) { answered.fetch_add(1); });
  }
  store_.reset();
  store.reset();  // destroys the store with calls still queued or in flight
  EXPECT_EQ(answered.load(), 200);
}

}  // namespace
}  // namespace idem::testing
