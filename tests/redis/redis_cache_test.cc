// The completed-record cache of the Redis store: replays served without a
// round trip once the store hears its channel, a Delete on one store seen by
// another, nothing kept while the subscription is down, expiry judged from
// the Clock, and the subscription's heartbeat.
#include <gtest/gtest.h>

#include <algorithm>

#include "idem/engine.h"
#include "redis/redis_test_util.h"

namespace idem::testing {
namespace {

double MetricValue(const Store& store, const std::string& name) {
  for (const StoreMetric& metric : store.Metrics()) {
    if (metric.name == name) return metric.value;
  }
  ADD_FAILURE() << "no store metric " << name;
  return -1;
}

double CacheHits(const Store& store) {
  return MetricValue(store, "redis_cache_hits_total");
}

bool Subscribed(const Store& store) {
  return MetricValue(store, "redis_subscribed") == 1;
}

class RedisCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }

  std::shared_ptr<Store> Open(RedisStoreOptions options) {
    auto store = MustOpen(options);
    EXPECT_NE(store, nullptr);
    EXPECT_TRUE(WaitUntil([&] { return store && Subscribed(*store); }));
    return store;
  }

  // Runs a key to completion on `store`.
  void Execute(Store& store, const std::string& key, const std::string& body,
               int64_t ttl_ms = 600'000) {
    auto begun = BeginSync(store, BeginRequest{key, "fp", "runner", 10'000, ttl_ms});
    ASSERT_TRUE(begun.ok()) << begun.status();
    ASSERT_EQ(begun->outcome, BeginOutcome::kAcquired);
    ASSERT_TRUE(CompleteSync(store, {key, "runner", Response(body), ttl_ms}).ok());
  }

  static Result<BeginResult> Retry(Store& store, const std::string& key,
                                   const std::string& fingerprint = "fp") {
    return BeginSync(store,
                     BeginRequest{key, fingerprint, NewOwnerToken(), 10'000, 600'000});
  }

  std::unique_ptr<RedisServer> server_;
};

TEST_F(RedisCacheTest, ReplaysComeFromTheCache) {
  auto store = Open(FastOptions(*server_));
  const std::string key = "cache replay " + NewOwnerToken();
  Execute(*store, key, "first result");
  // The first replay reads Redis and fills the cache; later ones do not.
  auto first = Retry(*store, key);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->outcome, BeginOutcome::kCompleted);
  EXPECT_EQ(CacheHits(*store), 0);
  // Changed behind idem's back: a replay from the cache does not see it.
  ASSERT_TRUE(server_->Command({"HSET", "idem:" + key, "bd", "changed"}).ok());
  for (int i = 1; i <= 3; ++i) {
    auto again = Retry(*store, key);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->outcome, BeginOutcome::kCompleted);
    EXPECT_EQ(again->record->response.body, "first result");
    EXPECT_EQ(CacheHits(*store), i);
  }
  // Another payload under the key is still a mismatch.
  auto other = Retry(*store, key, "other fingerprint");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->outcome, BeginOutcome::kMismatch);
  EXPECT_GE(MetricValue(*store, "redis_cache_records"), 1);

  RedisStoreOptions uncached = FastOptions(*server_);
  uncached.cache_completed = false;
  auto plain = Open(uncached);
  for (int i = 0; i < 2; ++i) {
    auto read = Retry(*plain, key);
    ASSERT_TRUE(read.ok());
    EXPECT_EQ(read->record->response.body, "changed");
  }
  EXPECT_EQ(CacheHits(*plain), 0);
  EXPECT_EQ(MetricValue(*plain, "redis_cache_records"), 0);
}

TEST_F(RedisCacheTest, DeleteOnOneStoreIsSeenByAnother) {
  auto a = Open(FastOptions(*server_));
  auto b = Open(FastOptions(*server_));
  const std::string key = "cache delete " + NewOwnerToken();
  Execute(*a, key, "result");
  ASSERT_EQ(Retry(*b, key)->outcome, BeginOutcome::kCompleted);
  ASSERT_EQ(Retry(*b, key)->outcome, BeginOutcome::kCompleted);
  ASSERT_EQ(CacheHits(*b), 1);  // b holds the record now

  const double heard = MetricValue(*b, "redis_notifications_total");
  ASSERT_TRUE(DeleteSync(*a, key).ok());
  ASSERT_TRUE(
      WaitUntil([&] { return MetricValue(*b, "redis_notifications_total") > heard; }));
  // b dropped its copy: the retry executes again.
  auto after = Retry(*b, key);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(CacheHits(*b), 1);
}

TEST_F(RedisCacheTest, DeletingStoreDropsItsOwnCopyAtOnce) {
  RedisStoreOptions options = FastOptions(*server_);
  auto store = Open(options);
  const std::string key = "cache own delete " + NewOwnerToken();
  Execute(*store, key, "result");
  ASSERT_EQ(Retry(*store, key)->outcome, BeginOutcome::kCompleted);
  ASSERT_EQ(Retry(*store, key)->outcome, BeginOutcome::kCompleted);
  ASSERT_EQ(CacheHits(*store), 1);
  ASSERT_TRUE(DeleteSync(*store, key).ok());
  EXPECT_EQ(Retry(*store, key)->outcome, BeginOutcome::kAcquired);
}

TEST_F(RedisCacheTest, NothingIsCachedWhileTheSubscriptionIsDown) {
  // a writes as a user that may publish; b uses the default user, whose
  // channels are taken away below, so b's subscriber cannot come back.
  ASSERT_TRUE(
      server_
          ->Command({"ACL", "SETUSER", "writer", "on", ">writer-pw", "~*", "&*", "+@all"})
          .ok());
  RedisStoreOptions writer = FastOptions(*server_);
  writer.user = "writer";
  writer.password = "writer-pw";
  auto a = Open(writer);
  auto b = Open(FastOptions(*server_));
  const std::string cached = "cache outage " + NewOwnerToken();
  Execute(*a, cached, "result");
  ASSERT_EQ(Retry(*b, cached)->outcome, BeginOutcome::kCompleted);
  ASSERT_EQ(Retry(*b, cached)->outcome, BeginOutcome::kCompleted);
  ASSERT_EQ(CacheHits(*b), 1);

  ASSERT_TRUE(server_->Command({"ACL", "SETUSER", "default", "resetchannels"}).ok());
  (void)server_->Command({"CLIENT", "KILL", "TYPE", "pubsub"});
  ASSERT_TRUE(WaitUntil([&] { return !Subscribed(*b); }));
  EXPECT_EQ(MetricValue(*b, "redis_cache_records"), 0);

  // A delete b cannot hear of: b must not replay the record.
  ASSERT_TRUE(DeleteSync(*a, cached).ok());
  EXPECT_EQ(Retry(*b, cached)->outcome, BeginOutcome::kAcquired);
  // And nothing read meanwhile is kept.
  const std::string other = "cache outage other " + NewOwnerToken();
  Execute(*a, other, "other");
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(Retry(*b, other)->outcome, BeginOutcome::kCompleted);
  EXPECT_EQ(CacheHits(*b), 1);
  EXPECT_FALSE(Subscribed(*b));

  // Once b hears the channel again it caches again.
  ASSERT_TRUE(server_->Command({"ACL", "SETUSER", "default", "allchannels"}).ok());
  ASSERT_TRUE(WaitUntil([&] { return Subscribed(*b); }));
  ASSERT_EQ(Retry(*b, other)->outcome, BeginOutcome::kCompleted);
  ASSERT_EQ(Retry(*b, other)->outcome, BeginOutcome::kCompleted);
  EXPECT_EQ(CacheHits(*b), 2);
  EXPECT_GE(MetricValue(*b, "redis_reconnects_total"), 1);
}

TEST_F(RedisCacheTest, ExpiryIsJudgedFromTheClock) {
  auto clock = std::make_shared<ManualClock>(1'700'000'000'000);
  RedisStoreOptions options = FastOptions(*server_);
  options.clock = clock;
  auto store = Open(options);
  const std::string key = "cache expiry " + NewOwnerToken();
  Execute(*store, key, "short lived", 60'000);
  ASSERT_EQ(Retry(*store, key)->outcome, BeginOutcome::kCompleted);
  ASSERT_EQ(Retry(*store, key)->outcome, BeginOutcome::kCompleted);
  ASSERT_EQ(CacheHits(*store), 1);
  clock->AdvanceMs(59'999);
  ASSERT_EQ(Retry(*store, key)->outcome, BeginOutcome::kCompleted);
  ASSERT_EQ(CacheHits(*store), 2);
  clock->AdvanceMs(1);
  auto expired = Retry(*store, key);
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(expired->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(CacheHits(*store), 2);
}

TEST_F(RedisCacheTest, SubscriptionThatCannotProveItHearsIsReset) {
  // Silence triggers a heartbeat after 100 ms; when it cannot be published
  // (the user may no longer PUBLISH) the subscriber starts over, and the
  // cache with it.
  RedisStoreOptions options = FastOptions(*server_);
  options.idle_timeout = 100ms;
  auto store = Open(options);
  const std::string key = "cache heartbeat " + NewOwnerToken();
  Execute(*store, key, "result");
  ASSERT_EQ(Retry(*store, key)->outcome, BeginOutcome::kCompleted);
  ASSERT_EQ(Retry(*store, key)->outcome, BeginOutcome::kCompleted);
  ASSERT_EQ(CacheHits(*store), 1);
  // Heartbeats get through: the subscription stays up.
  const double reconnects = MetricValue(*store, "redis_reconnects_total");
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(MetricValue(*store, "redis_reconnects_total"), reconnects);
  EXPECT_EQ(MetricValue(*store, "redis_cache_records"), 1);

  ASSERT_TRUE(server_->Command({"ACL", "SETUSER", "default", "-publish"}).ok());
  ASSERT_TRUE(WaitUntil(
      [&] { return MetricValue(*store, "redis_reconnects_total") >= reconnects + 2; }));
  EXPECT_EQ(MetricValue(*store, "redis_cache_records"), 0);
  ASSERT_TRUE(server_->Command({"ACL", "SETUSER", "default", "+publish"}).ok());
}

}  // namespace
}  // namespace idem::testing
