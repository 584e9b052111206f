// Expired records leave the disk: Sweep deletes them (resuming where the
// last sweep stopped), the compaction filter drops them, and the optional
// background sweep does it on its own. Reads treating them as absent is in
// the conformance suite.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "rocksdb/raw_db.h"
#include "rocksdb/store_test_util.h"
#include "rocksdb/temp_dir.h"
#include "stores/rocksdb/rocksdb_store_internal.h"

namespace idem::testing {
namespace {

constexpr int64_t kShortTtl = 1'000;

class RocksDbExpiryTest : public ::testing::Test {
 protected:
  void Open(RocksDbStoreOptions options = {}) {
    store_ = OpenStoreAt(dir_.path(), clock_, options);
    ASSERT_NE(store_, nullptr);
  }

  // `count` completed records named prefix-N, replayed for `ttl_ms`.
  void Fill(const std::string& prefix, int count, int64_t ttl_ms) {
    for (int i = 0; i < count; ++i) {
      const std::string key = prefix + "-" + std::to_string(i);
      BeginRequest request = Req(key, "a");
      request.ttl_ms = ttl_ms;
      ASSERT_TRUE(BeginSync(*store_, request).ok());
      ASSERT_TRUE(CompleteSync(*store_, {key, "a", Response(key), ttl_ms}).ok());
    }
  }

  // The keys left on disk once the store is closed.
  std::vector<std::string> KeysOnDisk() {
    store_.reset();
    std::vector<std::string> keys;
    for (const auto& [key, value] : ReadAllRaw(dir_.path())) keys.push_back(key);
    return keys;
  }

  TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::shared_ptr<Store> store_;
};

TEST_F(RocksDbExpiryTest, SweepDeletesExpiredRecordsFromDisk) {
  Open();
  Fill("short", 20, kShortTtl);
  Fill("long", 5, kTtl);
  clock_->AdvanceMs(kLease + kShortTtl);
  auto swept = SweepSync(*store_, 1000);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(*swept, 20u);
  EXPECT_EQ(*SweepSync(*store_, 1000), 0u);
  const auto keys = KeysOnDisk();
  ASSERT_EQ(keys.size(), 5u);
  for (const auto& key : keys) EXPECT_EQ(key.rfind("long-", 0), 0u) << key;
}

TEST_F(RocksDbExpiryTest, SmallSweepsResumeWhereTheLastOneStopped) {
  Open();
  Fill("a-short", 10, kShortTtl);
  Fill("b-long", 10, kTtl);
  Fill("c-short", 10, kShortTtl);
  clock_->AdvanceMs(kLease + kShortTtl);
  size_t total = 0;
  for (int round = 0; round < 20; ++round) {
    auto swept = SweepSync(*store_, 3);
    ASSERT_TRUE(swept.ok());
    ASSERT_LE(*swept, 3u);
    total += *swept;
    if (*swept == 0) break;
  }
  EXPECT_EQ(total, 20u);
  EXPECT_EQ(KeysOnDisk().size(), 10u);
}

TEST_F(RocksDbExpiryTest, AbandonedLeasesAreSweptOnceTheirRecordExpires) {
  Open();
  BeginRequest request = Req("abandoned", "a");
  request.ttl_ms = kShortTtl;  // the lease (10 s) outlives the ttl here
  ASSERT_TRUE(BeginSync(*store_, request).ok());
  clock_->AdvanceMs(kLease - 1);
  EXPECT_EQ(*SweepSync(*store_, 10), 0u);  // still in flight
  clock_->AdvanceMs(1);
  EXPECT_EQ(*SweepSync(*store_, 10), 1u);
  EXPECT_TRUE(KeysOnDisk().empty());
}

TEST_F(RocksDbExpiryTest, CompactionFilterDropsExpiredRecords) {
  Open();
  Fill("short", 20, kShortTtl);
  Fill("long", 5, kTtl);
  clock_->AdvanceMs(kLease + kShortTtl);
  ASSERT_TRUE(rocksdb_store::CompactForTesting(*store_).ok());
  const auto keys = KeysOnDisk();
  ASSERT_EQ(keys.size(), 5u);
  for (const auto& key : keys) EXPECT_EQ(key.rfind("long-", 0), 0u) << key;
}

TEST_F(RocksDbExpiryTest, CompactionFilterCanBeTurnedOff) {
  RocksDbStoreOptions options;
  options.compaction_filter = false;
  Open(options);
  Fill("short", 3, kShortTtl);
  clock_->AdvanceMs(kLease + kShortTtl);
  ASSERT_TRUE(rocksdb_store::CompactForTesting(*store_).ok());
  EXPECT_EQ(KeysOnDisk().size(), 3u);
}

TEST_F(RocksDbExpiryTest, BackgroundSweepRemovesExpiredRecords) {
  RocksDbStoreOptions options;
  options.sweep_interval_ms = 10;
  Open(options);
  Fill("short", 4, kShortTtl);
  const uint64_t writes = rocksdb_store::GetCommitStats(*store_).commits;
  clock_->AdvanceMs(kLease + kShortTtl);
  // Waits for the four deletes to be written; a deadline, not a timing claim.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (rocksdb_store::GetCommitStats(*store_).commits < writes + 4 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(KeysOnDisk().empty());
}

}  // namespace
}  // namespace idem::testing
