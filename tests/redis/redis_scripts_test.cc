// The scripts and the record layout as Redis sees them: NOSCRIPT reloads,
// the lease string and the hash fields documented in docs/stores.md, the
// native PX backstop and the key prefix.
#include <gtest/gtest.h>

#include <map>

#include "idem/engine.h"
#include "redis/redis_test_util.h"
#include "stores/redis/lease_blob.h"

namespace idem::testing {
namespace {

class RedisScriptsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    store_ = MustOpen(FastOptions(*server_));
    ASSERT_NE(store_, nullptr);
  }

  std::map<std::string, std::string> Fields(const std::string& redis_key) {
    std::map<std::string, std::string> fields;
    auto all = server_->Command({"HGETALL", redis_key});
    EXPECT_TRUE(all.ok());
    if (!all.ok()) return fields;
    for (size_t i = 0; i + 1 < all->elements.size(); i += 2) {
      fields[all->elements[i].str] = all->elements[i + 1].str;
    }
    return fields;
  }

  std::unique_ptr<RedisServer> server_;
  std::shared_ptr<Store> store_;
};

TEST_F(RedisScriptsTest, OperationsWorkAfterScriptFlush) {
  const std::string key = "noscript " + NewOwnerToken();
  ASSERT_TRUE(BeginSync(*store_, NewBegin(key, "o")).ok());
  auto flushed = server_->Command({"SCRIPT", "FLUSH"});
  ASSERT_TRUE(flushed.ok());
  EXPECT_EQ(flushed->str, "OK");
  // Every script is gone from the server's cache: each call reloads its own.
  EXPECT_TRUE(CheckpointSync(*store_, {key, "o", {"p", "s"}}).ok());
  EXPECT_TRUE(ExtendSync(*store_, key, "o", 5'000).ok());
  EXPECT_TRUE(CompleteSync(*store_, {key, "o", Response("after flush"), 60'000}).ok());
  auto got = GetSync(*store_, key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)->response.body, "after flush");
  // Many concurrent callers hitting NOSCRIPT at once all succeed.
  ASSERT_TRUE(server_->Command({"SCRIPT", "FLUSH"}).ok());
  std::vector<std::thread> threads;
  std::atomic<int> acquired{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = BeginSync(*store_, NewBegin(key + "-" + std::to_string(i), "o"));
      if (r.ok() && r->outcome == BeginOutcome::kAcquired) acquired.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(acquired.load(), 8);
}

TEST_F(RedisScriptsTest, RecordLayoutAndNativeExpiry) {
  const std::string key = "layout " + NewOwnerToken();
  const std::string redis_key = "idem:" + key;
  RedisStoreOptions options = FastOptions(*server_);
  options.clock = std::make_shared<ManualClock>();
  store_ = MustOpen(options);
  ASSERT_TRUE(BeginSync(*store_, BeginRequest{key, "fp", "o", 10'000, 60'000}).ok());
  // In flight: the lease string.
  auto raw = server_->Command({"GET", redis_key});
  ASSERT_TRUE(raw.ok());
  ASSERT_EQ(raw->type, RedisReply::Type::kString);
  EXPECT_EQ(raw->str.substr(0, 3), "L10");
  auto lease = redis_internal::DecodeLease(raw->str, key);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ((*lease)->state, RecordState::kInFlight);
  EXPECT_EQ((*lease)->fingerprint, "fp");
  EXPECT_EQ((*lease)->owner, "o");
  EXPECT_EQ((*lease)->fence, 1u);
  EXPECT_EQ((*lease)->expires_at_ms - (*lease)->created_at_ms, 60'000);
  EXPECT_EQ((*lease)->lease_expires_at_ms - (*lease)->created_at_ms, 10'000);
  auto pttl = server_->Command({"PTTL", redis_key});
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT(pttl->integer, 50'000);
  EXPECT_LE(pttl->integer, 60'000);

  ASSERT_TRUE(CheckpointSync(*store_, {key, "o", {"charged", "ch_1"}}).ok());
  ASSERT_TRUE(ExtendSync(*store_, key, "o", 90'000).ok());
  raw = server_->Command({"GET", redis_key});
  ASSERT_TRUE(raw.ok());
  lease = redis_internal::DecodeLease(raw->str, key);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ((*lease)->recovery.phase, "charged");
  EXPECT_EQ((*lease)->recovery.state, "ch_1");
  EXPECT_EQ((*lease)->lease_expires_at_ms - (*lease)->created_at_ms, 90'000);
  EXPECT_EQ((*lease)->expires_at_ms, (*lease)->lease_expires_at_ms);
  pttl = server_->Command({"PTTL", redis_key});
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT(pttl->integer, 80'000);

  // Completed: a hash.
  ASSERT_TRUE(CompleteSync(*store_, {key, "o", Response("done"), 120'000}).ok());
  auto completed = Fields(redis_key);
  EXPECT_EQ(completed["v"], "1");
  EXPECT_EQ(completed["st"], "2");
  EXPECT_EQ(completed["fp"], "fp");
  EXPECT_EQ(completed["ow"], "o");
  EXPECT_EQ(completed["fe"], "1");
  EXPECT_EQ(completed["sc"], "201");
  EXPECT_EQ(completed["bd"], "done");
  EXPECT_EQ(std::stoll(completed["le"]), (*lease)->lease_expires_at_ms);
  EXPECT_EQ(std::stoll(completed["cr"]), (*lease)->created_at_ms);
  EXPECT_EQ(completed.count("rp"), 0u);
  pttl = server_->Command({"PTTL", redis_key});
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT(pttl->integer, 110'000);
  EXPECT_LE(pttl->integer, 120'000);
}

TEST_F(RedisScriptsTest, LargeResponsesRoundTrip) {
  // Commands over 64 KiB travel on the io thread's standby connection; the
  // small ones around them keep to the first.
  const std::string key = "large " + NewOwnerToken();
  std::string body(1 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 31 % 251);
  ASSERT_TRUE(BeginSync(*store_, NewBegin(key, "o")).ok());
  ASSERT_TRUE(CompleteSync(*store_, {key, "o", Response(body), 60'000}).ok());
  auto got = GetSync(*store_, key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)->response.body, body);
  RedisStoreOptions uncached = FastOptions(*server_);
  uncached.cache_completed = false;
  auto other = MustOpen(uncached);
  auto replay = BeginSync(*other, NewBegin(key, "p"));
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->outcome, BeginOutcome::kCompleted);
  EXPECT_EQ(replay->record->response.body, body);
}

TEST_F(RedisScriptsTest, RedisDropsRecordsByItself) {
  const std::string key = "px " + NewOwnerToken();
  ASSERT_TRUE(BeginSync(*store_, BeginRequest{key, "fp", "o", 50, 50}).ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto exists = server_->Command({"EXISTS", "idem:" + key});
        return exists.ok() && exists->integer == 0;
      },
      5s));
}

TEST_F(RedisScriptsTest, KeyPrefixSeparatesStores) {
  RedisStoreOptions other = FastOptions(*server_);
  other.key_prefix = "tenant-b:";
  auto b = MustOpen(other);
  const std::string key = "prefix " + NewOwnerToken();
  ASSERT_EQ(BeginSync(*store_, NewBegin(key, "a"))->outcome, BeginOutcome::kAcquired);
  ASSERT_EQ(BeginSync(*b, NewBegin(key, "b"))->outcome, BeginOutcome::kAcquired);
  auto exists = server_->Command({"EXISTS", "idem:" + key, "tenant-b:" + key});
  ASSERT_TRUE(exists.ok());
  EXPECT_EQ(exists->integer, 2);
}

TEST_F(RedisScriptsTest, CorruptRecordIsDataLoss) {
  const std::string key = "corrupt " + NewOwnerToken();
  ASSERT_TRUE(
      server_
          ->Command({"HSET", "idem:" + key, "v", "1", "st", "9", "ex", "99999999999999"})
          .ok());
  EXPECT_EQ(GetSync(*store_, key).status().code(), StatusCode::kDataLoss);
  ASSERT_TRUE(server_->Command({"HSET", "idem:" + key, "v", "7", "st", "1"}).ok());
  EXPECT_EQ(GetSync(*store_, key).status().code(), StatusCode::kDataLoss);
  // A string that is not a lease.
  ASSERT_TRUE(server_->Command({"SET", "idem:plain " + key, "x"}).ok());
  EXPECT_EQ(GetSync(*store_, "plain " + key).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(CompleteSync(*store_, {"plain " + key, "o", Response("r"), 60'000}).code(),
            StatusCode::kDataLoss);
  // Begin treats it as absent and takes the key, as for an expired record.
  auto taken = BeginSync(*store_, NewBegin("plain " + key, "o"));
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->outcome, BeginOutcome::kAcquired);
  EXPECT_TRUE(CompleteSync(*store_, {"plain " + key, "o", Response("r"), 60'000}).ok());
  // A key of another type under the prefix is an error, not a crash.
  ASSERT_TRUE(server_->Command({"RPUSH", "idem:list " + key, "x"}).ok());
  EXPECT_EQ(GetSync(*store_, "list " + key).status().code(), StatusCode::kInternal);
}

TEST_F(RedisScriptsTest, LeasesOfTheOlderHashLayoutAreUnderstood) {
  // Before leases were strings, an in-flight record was a hash with st 1.
  const std::string key = "old layout " + NewOwnerToken();
  const std::string redis_key = "idem:" + key;
  auto clock = std::make_shared<ManualClock>();
  RedisStoreOptions options = FastOptions(*server_);
  options.clock = clock;
  auto store = MustOpen(options);
  const std::string now = std::to_string(clock->NowMs());
  const std::string lease_at = std::to_string(clock->NowMs() + 10'000);
  const std::string expires_at = std::to_string(clock->NowMs() + 600'000);
  ASSERT_TRUE(
      server_
          ->Command({"HSET", redis_key,  "v",  "1",       "st", "1",      "fp", "fp",
                     "ow",   "old",      "fe", "3",       "le", lease_at, "cr", now,
                     "ex",   expires_at, "rp", "charged", "rs", "ch_9"})
          .ok());
  auto busy = BeginSync(*store, NewBegin(key, "new"));
  ASSERT_TRUE(busy.ok()) << busy.status();
  EXPECT_EQ(busy->outcome, BeginOutcome::kInFlight);
  EXPECT_EQ(busy->record->owner, "old");
  clock->AdvanceMs(10'000);  // the old lease lapses: taken over, as a lease
  auto taken = BeginSync(*store, NewBegin(key, "new"));
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(taken->record->fence, 4u);
  EXPECT_EQ(taken->record->recovery.phase, "charged");
  EXPECT_EQ(taken->record->recovery.state, "ch_9");
  EXPECT_TRUE(CompleteSync(*store, {key, "new", Response("resumed"), 60'000}).ok());
  auto got = GetSync(*store, key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)->response.body, "resumed");
  EXPECT_EQ((*got)->fence, 4u);
}

}  // namespace
}  // namespace idem::testing
