// The scripts and the record layout as Redis sees them: NOSCRIPT reloads,
// the hash fields documented in docs/stores.md, the native PX backstop and
// the key prefix.
#include <gtest/gtest.h>

#include <map>

#include "idem/engine.h"
#include "redis/redis_test_util.h"

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
  ASSERT_TRUE(BeginSync(*store_, BeginRequest{key, "fp", "o", 10'000, 60'000}).ok());
  auto in_flight = Fields(redis_key);
  EXPECT_EQ(in_flight["v"], "1");
  EXPECT_EQ(in_flight["st"], "1");
  EXPECT_EQ(in_flight["fp"], "fp");
  EXPECT_EQ(in_flight["ow"], "o");
  EXPECT_EQ(in_flight["fe"], "1");
  EXPECT_EQ(std::stoll(in_flight["ex"]) - std::stoll(in_flight["cr"]), 60'000);
  EXPECT_EQ(std::stoll(in_flight["le"]) - std::stoll(in_flight["cr"]), 10'000);
  auto pttl = server_->Command({"PTTL", redis_key});
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT(pttl->integer, 50'000);
  EXPECT_LE(pttl->integer, 60'000);

  ASSERT_TRUE(CheckpointSync(*store_, {key, "o", {"charged", "ch_1"}}).ok());
  EXPECT_EQ(Fields(redis_key)["rp"], "charged");
  ASSERT_TRUE(CompleteSync(*store_, {key, "o", Response("done"), 120'000}).ok());
  auto completed = Fields(redis_key);
  EXPECT_EQ(completed["st"], "2");
  EXPECT_EQ(completed["sc"], "201");
  EXPECT_EQ(completed["bd"], "done");
  EXPECT_EQ(completed.count("rp"), 0u);
  pttl = server_->Command({"PTTL", redis_key});
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT(pttl->integer, 110'000);
  EXPECT_LE(pttl->integer, 120'000);
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
  // A key of another type under the prefix is an error, not a crash.
  ASSERT_TRUE(server_->Command({"SET", "idem:plain " + key, "x"}).ok());
  EXPECT_EQ(GetSync(*store_, "plain " + key).status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace idem::testing
