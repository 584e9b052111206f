// WaitForCompletion across store instances (as across gateways): a waiter
// on store B is woken by pub/sub when store A completes or releases; a
// completion that is never published is still seen by the fallback poll.
#include <gtest/gtest.h>

#include <future>

#include "idem/engine.h"
#include "redis/redis_test_util.h"

namespace idem::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;

class RedisPubSubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    a_ = MustOpen(FastOptions(*server_));
    // B would only notice by polling after a minute: whatever wakes it
    // sooner is the notification.
    RedisStoreOptions b = FastOptions(*server_);
    b.wait_poll_interval = 60s;
    b_ = MustOpen(b);
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
    ASSERT_TRUE(WaitUntil([&] { return PingSync(*a_).ok() && PingSync(*b_).ok(); }));
  }

  // Starts a wait on `store` and returns its future result.
  std::future<Result<RecordPtr>> StartWait(Store& store, const std::string& key,
                                           std::chrono::milliseconds timeout) {
    auto promise = std::make_shared<std::promise<Result<RecordPtr>>>();
    auto future = promise->get_future();
    store.WaitForCompletion(key, timeout, [promise](Result<RecordPtr> r) {
      promise->set_value(std::move(r));
    });
    return future;
  }

  // Until B's subscriber is connected a completion could only be seen by
  // polling; wait until a probe wait is woken by a notification.
  void WaitForSubscriber() {
    ASSERT_TRUE(WaitUntil([&] {
      const std::string probe = "probe " + NewOwnerToken();
      if (!BeginSync(*a_, NewBegin(probe, "p")).ok()) return false;
      auto waited = StartWait(*b_, probe, 500ms);
      std::this_thread::sleep_for(50ms);
      (void)CompleteSync(*a_, {probe, "p", Response("probe"), 60'000});
      return waited.get().ok();
    }));
  }

  std::unique_ptr<RedisServer> server_;
  std::shared_ptr<Store> a_;
  std::shared_ptr<Store> b_;
};

TEST_F(RedisPubSubTest, WaiterOnAnotherStoreIsWokenByCompletion) {
  WaitForSubscriber();
  const std::string key = "pubsub complete " + NewOwnerToken();
  ASSERT_EQ(BeginSync(*a_, NewBegin(key, "a"))->outcome, BeginOutcome::kAcquired);
  auto first = StartWait(*b_, key, 30s);
  auto second = StartWait(*b_, key, 30s);
  std::this_thread::sleep_for(100ms);  // both are registered and watching
  const auto completed_at = SteadyClock::now();
  ASSERT_TRUE(CompleteSync(*a_, {key, "a", Response("first result"), 60'000}).ok());
  for (auto* waited : {&first, &second}) {
    ASSERT_EQ(waited->wait_for(5s), std::future_status::ready);
    auto r = waited->get();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)->response.body, "first result");
  }
  EXPECT_LT(SteadyClock::now() - completed_at, 2s);
}

TEST_F(RedisPubSubTest, WaiterOnAnotherStoreLearnsOfARelease) {
  WaitForSubscriber();
  const std::string key = "pubsub release " + NewOwnerToken();
  ASSERT_EQ(BeginSync(*a_, NewBegin(key, "a"))->outcome, BeginOutcome::kAcquired);
  auto waited = StartWait(*b_, key, 30s);
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(ReleaseSync(*a_, key, "a").ok());
  ASSERT_EQ(waited.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(waited.get().status().code(), StatusCode::kNotFound);
}

TEST_F(RedisPubSubTest, DeleteWakesWaiters) {
  WaitForSubscriber();
  const std::string key = "pubsub delete " + NewOwnerToken();
  ASSERT_EQ(BeginSync(*a_, NewBegin(key, "a"))->outcome, BeginOutcome::kAcquired);
  auto waited = StartWait(*b_, key, 30s);
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(DeleteSync(*a_, key).ok());
  ASSERT_EQ(waited.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(waited.get().status().code(), StatusCode::kNotFound);
}

TEST_F(RedisPubSubTest, UnpublishedCompletionIsFoundByTheFallbackPoll) {
  RedisStoreOptions polling = FastOptions(*server_);
  polling.wait_poll_interval = 100ms;
  auto c = MustOpen(polling);
  const std::string key = "pubsub lost " + NewOwnerToken();
  ASSERT_EQ(BeginSync(*a_, NewBegin(key, "a"))->outcome, BeginOutcome::kAcquired);
  auto waited = StartWait(*c, key, 30s);
  std::this_thread::sleep_for(100ms);
  // Complete behind the scripts' back (the lease becomes a completed hash
  // at once): nothing is published.
  auto replaced = server_->Command(
      {"EVAL",
       "redis.call('DEL', KEYS[1]) "
       "return redis.call('HSET', KEYS[1], 'v', '1', 'st', '2', 'fp', 'fp', 'ow', 'a', "
       "'ex', '99999999999999', 'sc', '200', 'bd', 'quiet')",
       "1", "idem:" + key});
  ASSERT_TRUE(replaced.ok());
  ASSERT_EQ(replaced->type, RedisReply::Type::kInteger) << replaced->str;
  ASSERT_EQ(waited.wait_for(5s), std::future_status::ready);
  auto r = waited.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->response.body, "quiet");
}

TEST_F(RedisPubSubTest, SubscriberReconnectsAfterBeingKilled) {
  WaitForSubscriber();
  auto killed = server_->Command({"CLIENT", "KILL", "TYPE", "pubsub"});
  ASSERT_TRUE(killed.ok());
  EXPECT_GE(killed->integer, 2);  // A's and B's subscribers
  WaitForSubscriber();            // B subscribes again by itself
  const std::string key = "pubsub again " + NewOwnerToken();
  ASSERT_EQ(BeginSync(*a_, NewBegin(key, "a"))->outcome, BeginOutcome::kAcquired);
  auto waited = StartWait(*b_, key, 30s);
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(CompleteSync(*a_, {key, "a", Response("again"), 60'000}).ok());
  ASSERT_EQ(waited.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(waited.get().ok());
}

TEST_F(RedisPubSubTest, WaitEndsAtItsDeadline) {
  const std::string key = "pubsub deadline " + NewOwnerToken();
  ASSERT_EQ(BeginSync(*a_, NewBegin(key, "a"))->outcome, BeginOutcome::kAcquired);
  const auto start = SteadyClock::now();
  auto r = WaitForCompletionSync(*b_, key, 300ms);
  const auto elapsed = SteadyClock::now() - start;
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 1s);
  EXPECT_EQ(WaitForCompletionSync(*b_, key, 0ms).status().code(),
            StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace idem::testing
