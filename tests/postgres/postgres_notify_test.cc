// LISTEN/NOTIFY across store instances (as two gateways on one database):
// waiters on one store are woken by a completion, release or delete on
// another long before the fallback poll, and a delete on one drops the
// completed record the other has cached.
#include <gtest/gtest.h>

#include <thread>

#include "idem/postgres_store.h"
#include "postgres/postgres_test_env.h"

namespace idem::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

class PostgresNotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uri_ = FreshDatabase();
    PostgresStoreOptions options = TestStoreOptions(uri_);
    options.wait_poll_interval = 60s;  // only NOTIFY can wake a waiter in time
    auto a = NewPostgresStore(options);
    auto b = NewPostgresStore(options);
    ASSERT_TRUE(a.ok() && b.ok());
    a_ = *a;
    b_ = *b;
  }

  // Starts a wait on `store` in a thread; returns once it is registered
  // (the record is in flight, so the wait blocks).
  std::thread Wait(Store& store, const std::string& key, Result<RecordPtr>* out) {
    return std::thread(
        [&store, key, out] { *out = WaitForCompletionSync(store, key, 20s); });
  }

  std::string uri_;
  std::shared_ptr<Store> a_, b_;
};

StoredResponse Response() {
  StoredResponse response;
  response.status = 200;
  response.headers = {{"X-Id", "7"}};
  response.body = "done";
  return response;
}

TEST_F(PostgresNotifyTest, CompletionOnOneStoreWakesWaitersOnAnother) {
  ASSERT_EQ(BeginSync(*a_, {"k", "fp", "owner", 10'000, 60'000})->outcome,
            BeginOutcome::kAcquired);
  std::vector<Result<RecordPtr>> results(3, NotFound("not yet"));
  std::vector<std::thread> waiters;
  for (auto& result : results) waiters.push_back(Wait(*b_, "k", &result));
  std::this_thread::sleep_for(200ms);  // let them register
  const auto completed_at = SteadyClock::now();
  ASSERT_TRUE(CompleteSync(*a_, {"k", "owner", Response(), 60'000}).ok());
  for (auto& t : waiters) t.join();
  EXPECT_LT(SteadyClock::now() - completed_at, 5s);
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ((*result)->response, Response());
  }
  EXPECT_GT(GetPostgresStoreStats(*b_)->notifications, 0u);
}

TEST_F(PostgresNotifyTest, ReleaseOnOneStoreEndsWaitsOnAnother) {
  ASSERT_EQ(BeginSync(*a_, {"k", "fp", "owner", 10'000, 60'000})->outcome,
            BeginOutcome::kAcquired);
  Result<RecordPtr> result = DeadlineExceeded("not yet");
  std::thread waiter = Wait(*b_, "k", &result);
  std::this_thread::sleep_for(200ms);
  const auto released_at = SteadyClock::now();
  ASSERT_TRUE(ReleaseSync(*a_, "k", "owner").ok());
  waiter.join();
  EXPECT_LT(SteadyClock::now() - released_at, 5s);
  EXPECT_EQ(result.status().code(), StatusCode::kNotFound);
}

TEST_F(PostgresNotifyTest, DeleteOnOneStoreDropsTheOthersCachedRecord) {
  ASSERT_EQ(BeginSync(*a_, {"k", "fp", "owner", 10'000, 60'000})->outcome,
            BeginOutcome::kAcquired);
  ASSERT_TRUE(CompleteSync(*a_, {"k", "owner", Response(), 60'000}).ok());
  // b reads it once (and caches it), then replays from its cache.
  ASSERT_EQ(BeginSync(*b_, {"k", "fp", "b1", 10'000, 60'000})->outcome,
            BeginOutcome::kCompleted);
  ASSERT_EQ(BeginSync(*b_, {"k", "fp", "b2", 10'000, 60'000})->outcome,
            BeginOutcome::kCompleted);
  EXPECT_GE(GetPostgresStoreStats(*b_)->cache_hits, 1u);

  ASSERT_TRUE(DeleteSync(*a_, "k").ok());
  const auto deadline = SteadyClock::now() + 5s;
  BeginOutcome outcome = BeginOutcome::kCompleted;
  while (outcome == BeginOutcome::kCompleted && SteadyClock::now() < deadline) {
    auto r = BeginSync(*b_, {"k", "fp", "b3", 10'000, 60'000});
    ASSERT_TRUE(r.ok()) << r.status();
    outcome = r->outcome;
    if (outcome == BeginOutcome::kCompleted) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(outcome, BeginOutcome::kAcquired);
}

TEST_F(PostgresNotifyTest, OnlyWatchedFlightsNotify) {
  for (int i = 0; i < 20; ++i) {
    const std::string key = "quiet-" + std::to_string(i);
    ASSERT_EQ(BeginSync(*a_, {key, "fp", "owner", 10'000, 60'000})->outcome,
              BeginOutcome::kAcquired);
    if (i % 2 == 0) {
      ASSERT_TRUE(CompleteSync(*a_, {key, "owner", Response(), 60'000}).ok());
    } else {
      ASSERT_TRUE(ReleaseSync(*a_, key, "owner").ok());
    }
  }
  // A watched one, as a marker: once b hears it, it has heard everything
  // sent before it.
  ASSERT_EQ(BeginSync(*a_, {"marker", "fp", "owner", 10'000, 60'000})->outcome,
            BeginOutcome::kAcquired);
  Result<RecordPtr> result = DeadlineExceeded("not yet");
  std::thread waiter = Wait(*b_, "marker", &result);
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(CompleteSync(*a_, {"marker", "owner", Response(), 60'000}).ok());
  waiter.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(GetPostgresStoreStats(*b_)->notifications, 1u);
}

TEST_F(PostgresNotifyTest, ThePollCatchesWhatNotifyCannot) {
  // An abandoned lease expiring is no event at all: only the poll sees it.
  PostgresStoreOptions options = TestStoreOptions(uri_);
  options.wait_poll_interval = 50ms;
  auto clock = std::make_shared<ManualClock>();
  options.clock = clock;
  auto polled = NewPostgresStore(options);
  ASSERT_TRUE(polled.ok());
  ASSERT_EQ(BeginSync(**polled, {"k", "fp", "owner", 1'000, 1'000})->outcome,
            BeginOutcome::kAcquired);
  Result<RecordPtr> result = DeadlineExceeded("not yet");
  std::thread waiter = Wait(**polled, "k", &result);
  std::this_thread::sleep_for(100ms);
  clock->AdvanceMs(1'000);
  waiter.join();
  EXPECT_EQ(result.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace idem::testing
