// Redis Cluster: keys are routed by slot, and moving a slot to another
// master while requests run (ASK while it is half-moved, MOVED afterwards)
// neither loses nor duplicates a key; completions and deletions reach
// stores subscribed on other nodes.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "idem/engine.h"
#include "redis/redis_test_util.h"
#include "stores/redis/cluster_slots.h"

namespace idem::testing {
namespace {

class RedisClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto cluster = RedisCluster::Start(3);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(cluster).value().release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    auto options = ParseRedisUri(cluster_->uri());
    ASSERT_TRUE(options.ok());
    options->command_timeout = 2s;
    store_ = MustOpen(*options);
    ASSERT_NE(store_, nullptr);
    ASSERT_TRUE(WaitUntil([&] { return PingSync(*store_).ok(); }));
  }

  static RedisCluster* cluster_;
  std::shared_ptr<Store> store_;
};

RedisCluster* RedisClusterTest::cluster_ = nullptr;

int SlotOf(const std::string& scope_key) {
  return redis_internal::KeySlot("idem:" + scope_key);
}

TEST_F(RedisClusterTest, KeysLandOnTheMasterOfTheirSlot) {
  std::set<int> ports;
  for (int i = 0; i < 60; ++i) {
    const std::string key = "spread " + std::to_string(i) + " " + NewOwnerToken();
    ASSERT_EQ(BeginSync(*store_, NewBegin(key, "o"))->outcome, BeginOutcome::kAcquired);
    auto master = cluster_->MasterOf(SlotOf(key));
    ASSERT_TRUE(master.ok());
    auto exists = (*master)->Command({"EXISTS", "idem:" + key});
    ASSERT_TRUE(exists.ok());
    EXPECT_EQ(exists->integer, 1) << key;
    ports.insert((*master)->port());
  }
  EXPECT_EQ(ports.size(), 3u);  // 60 random keys reach every master
}

// Calls made before the store knows the slot map wait for it, and then go
// to masters whose connections have only just been made (not yet started
// on their loop): each must still be carried, not failed.
TEST_F(RedisClusterTest, CallsMadeBeforeTheFirstSlotMapAreCarried) {
  // One seed, so the other masters' connections are made by the first map.
  auto options =
      ParseRedisUri("redis+cluster://" + cluster_->nodes().back()->address());
  ASSERT_TRUE(options.ok());
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto fresh = MustOpen(*options);
    ASSERT_NE(fresh, nullptr);
    std::vector<std::string> keys;
    std::atomic<int> answered{0};
    std::mutex mutex;
    std::vector<Status> failures;
    for (int i = 0; i < 12; ++i) {
      keys.push_back("before map " + std::to_string(i) + " " + NewOwnerToken());
      fresh->Begin(NewBegin(keys.back(), "o"), [&](Result<BeginResult> result) {
        if (!result.ok() || result->outcome != BeginOutcome::kAcquired) {
          std::lock_guard lock(mutex);
          failures.push_back(result.ok() ? Internal("not acquired") : result.status());
        }
        ++answered;
      });
    }
    ASSERT_TRUE(WaitUntil([&] { return answered.load() == 12; }));
    std::lock_guard lock(mutex);
    for (const Status& failure : failures) ADD_FAILURE() << failure;
  }
}

TEST_F(RedisClusterTest, SlotMigrationUnderLoadLosesAndDuplicatesNothing) {
  // Every key shares one hash tag, hence one slot: the one being moved.
  const std::string tag = "{mig-" + NewOwnerToken() + "}";
  const int slot = redis_internal::KeySlot("idem:req " + tag);
  auto source = cluster_->MasterOf(slot);
  ASSERT_TRUE(source.ok());
  RedisServer* target = nullptr;
  for (const auto& node : cluster_->nodes()) {
    if (node.get() != *source) target = node.get();
  }

  // Keys completed before the move must replay after it.
  std::vector<std::string> before;
  for (int i = 0; i < 40; ++i) {
    before.push_back("req " + tag + " before " + std::to_string(i));
    ASSERT_EQ(BeginSync(*store_, NewBegin(before.back(), "o"))->outcome,
              BeginOutcome::kAcquired);
    ASSERT_TRUE(
        CompleteSync(*store_, {before.back(), "o", Response(before.back()), 600'000})
            .ok());
  }

  // Load: several threads race over the same keys while the slot moves.
  constexpr int kThreads = 4;
  constexpr int kKeys = 150;
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i)
    keys.push_back("req " + tag + " during " + std::to_string(i));
  std::vector<std::atomic<int>> executions(kKeys);
  std::atomic<int> failures{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200 && !stop.load(); ++round) {
        for (int n = 0; n < kKeys; ++n) {
          const int i = (n + t * 41 + round * 7) % kKeys;
          const std::string owner = "t" + std::to_string(t) + "r" + std::to_string(round);
          auto r = BeginSync(*store_, NewBegin(keys[i], owner));
          if (!r.ok()) {
            failures.fetch_add(1);
            continue;
          }
          if (r->outcome != BeginOutcome::kAcquired) continue;
          executions[i].fetch_add(1);
          if (!CompleteSync(*store_, {keys[i], owner, Response(keys[i]), 600'000}).ok()) {
            failures.fetch_add(1);
          }
        }
      }
    });
  }
  std::this_thread::sleep_for(100ms);
  Status moved =
      cluster_->MigrateSlot(slot, *target, [] { std::this_thread::sleep_for(20ms); });
  ASSERT_TRUE(moved.ok()) << moved;
  auto now_on = cluster_->MasterOf(slot);
  ASSERT_TRUE(now_on.ok());
  EXPECT_EQ(*now_on, target);
  std::this_thread::sleep_for(200ms);  // some load after the move too
  // And back again, to cross both directions.
  moved =
      cluster_->MigrateSlot(slot, **source, [] { std::this_thread::sleep_for(20ms); });
  ASSERT_TRUE(moved.ok()) << moved;
  std::this_thread::sleep_for(200ms);
  stop = true;
  for (auto& t : threads) t.join();

  EXPECT_EQ(failures.load(), 0);
  for (int i = 0; i < kKeys; ++i) {
    EXPECT_EQ(executions[i].load(), 1) << keys[i];
    auto record = GetSync(*store_, keys[i]);
    ASSERT_TRUE(record.ok()) << keys[i] << ": " << record.status();
    EXPECT_EQ((*record)->state, RecordState::kCompleted);
    EXPECT_EQ((*record)->response.body, keys[i]);
  }
  for (const std::string& key : before) {
    auto r = BeginSync(*store_, NewBegin(key, "late"));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->outcome, BeginOutcome::kCompleted) << key;
    EXPECT_EQ(r->record->response.body, key);
  }
}

TEST_F(RedisClusterTest, OperationsWorkAfterScriptFlushOnEveryNode) {
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) {
    keys.push_back("flush " + std::to_string(i) + " " + NewOwnerToken());
    ASSERT_TRUE(BeginSync(*store_, NewBegin(keys.back(), "o")).ok());
  }
  for (const auto& node : cluster_->nodes()) {
    ASSERT_TRUE(node->Command({"SCRIPT", "FLUSH"}).ok());
  }
  for (const std::string& key : keys) {
    EXPECT_TRUE(CompleteSync(*store_, {key, "o", Response("ok"), 60'000}).ok()) << key;
  }
}

TEST_F(RedisClusterTest, WaiterIsWokenAcrossNodes) {
  auto other =
      MustOpen(*ParseRedisUri("redis+cluster://" + cluster_->nodes().back()->address()));
  ASSERT_NE(other, nullptr);
  const std::string key = "cluster wait " + NewOwnerToken();
  ASSERT_EQ(BeginSync(*store_, NewBegin(key, "a"))->outcome, BeginOutcome::kAcquired);
  std::thread completer([&] {
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(CompleteSync(*store_, {key, "a", Response("across"), 60'000}).ok());
  });
  auto waited = WaitForCompletionSync(*other, key, 10s);
  completer.join();
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_EQ((*waited)->response.body, "across");
}

double MetricValue(const Store& store, const std::string& name) {
  for (const StoreMetric& metric : store.Metrics()) {
    if (metric.name == name) return metric.value;
  }
  return -1;
}

TEST_F(RedisClusterTest, DeleteReachesCachesSubscribedOnEveryNode) {
  // One store per node as seed: their subscribers start on different nodes,
  // while each key's script (and its PUBLISH) runs on the key's master.
  std::vector<std::shared_ptr<Store>> stores;
  for (const auto& node : cluster_->nodes()) {
    stores.push_back(MustOpen(*ParseRedisUri("redis+cluster://" + node->address())));
    ASSERT_NE(stores.back(), nullptr);
  }
  for (const auto& store : stores) {
    ASSERT_TRUE(WaitUntil([&] { return MetricValue(*store, "redis_subscribed") == 1; }));
  }
  std::vector<std::string> keys;
  for (int i = 0; i < 6; ++i) {  // keys on (very likely) every master
    keys.push_back("cluster cache " + std::to_string(i) + " " + NewOwnerToken());
    ASSERT_EQ(BeginSync(*store_, NewBegin(keys.back(), "a"))->outcome,
              BeginOutcome::kAcquired);
    ASSERT_TRUE(CompleteSync(*store_, {keys.back(), "a", Response("r"), 60'000}).ok());
  }
  for (const auto& store : stores) {
    for (const std::string& key : keys) {
      for (int read = 0; read < 2; ++read) {  // the second one from the cache
        ASSERT_EQ(BeginSync(*store, NewBegin(key, "b"))->outcome,
                  BeginOutcome::kCompleted);
      }
    }
    ASSERT_EQ(MetricValue(*store, "redis_cache_hits_total"), double(keys.size()));
  }
  for (const std::string& key : keys) ASSERT_TRUE(DeleteSync(*store_, key).ok());
  for (const auto& store : stores) {
    ASSERT_TRUE(WaitUntil([&] {
      return MetricValue(*store, "redis_notifications_total") >= double(keys.size());
    }));
    for (const std::string& key : keys) {
      EXPECT_EQ(BeginSync(*store, NewBegin(key, "c"))->outcome, BeginOutcome::kAcquired)
          << key;
      ASSERT_TRUE(ReleaseSync(*store, key, "c").ok());
    }
    EXPECT_EQ(MetricValue(*store, "redis_cache_hits_total"), double(keys.size()));
  }
}

}  // namespace
}  // namespace idem::testing
