// The group-commit counters the store reports through Store::Metrics()
// (rendered on the gateway's /metrics as idem_store_rocksdb_*): they count
// what happened, and a decorator passes them through.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "idem/forwarding_store.h"
#include "rocksdb/store_test_util.h"
#include "rocksdb/temp_dir.h"
#include "stores/rocksdb/rocksdb_store_internal.h"

namespace idem::testing {
namespace {

std::map<std::string, StoreMetric> ByName(const Store& store) {
  std::map<std::string, StoreMetric> out;
  for (const StoreMetric& metric : store.Metrics()) out[metric.name] = metric;
  return out;
}

class RocksDbMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenStoreAt(dir_.path(), std::make_shared<ManualClock>());
    ASSERT_NE(store_, nullptr);
  }

  TempDir dir_;
  std::shared_ptr<Store> store_;
};

TEST_F(RocksDbMetricsTest, ReportsTheGroupCommitCounters) {
  auto metrics = ByName(*store_);
  for (const char* name :
       {"rocksdb_commits_total", "rocksdb_batches_total", "rocksdb_syncs_total",
        "rocksdb_failed_batches_total", "rocksdb_sync_seconds_total"}) {
    ASSERT_EQ(metrics.count(name), 1u) << name;
    EXPECT_EQ(metrics[name].kind, StoreMetric::Kind::kCounter) << name;
    EXPECT_FALSE(metrics[name].help.empty()) << name;
    EXPECT_EQ(metrics[name].value, 0) << name << " on a fresh store";
  }

  // One request after the other: each write is its own batch, and only
  // the completions are synced, one sync each.
  constexpr int kRequests = 3;
  for (int i = 0; i < kRequests; ++i) {
    const std::string key = "key-" + std::to_string(i);
    ASSERT_TRUE(BeginSync(*store_, Req(key, "a")).ok());
    ASSERT_TRUE(CompleteSync(*store_, {key, "a", Response("x"), kTtl}).ok());
  }
  metrics = ByName(*store_);
  EXPECT_EQ(metrics["rocksdb_commits_total"].value, 2 * kRequests);
  EXPECT_EQ(metrics["rocksdb_batches_total"].value, 2 * kRequests);
  EXPECT_EQ(metrics["rocksdb_syncs_total"].value, kRequests);
  EXPECT_EQ(metrics["rocksdb_failed_batches_total"].value, 0);
  EXPECT_GT(metrics["rocksdb_sync_seconds_total"].value, 0);
  const rocksdb_store::CommitStats stats = rocksdb_store::GetCommitStats(*store_);
  EXPECT_EQ(metrics["rocksdb_syncs_total"].value, static_cast<double>(stats.syncs));
}

TEST_F(RocksDbMetricsTest, CountsAFailedWrite) {
  rocksdb_store::FailNextBatchesForTesting(*store_, 1);
  EXPECT_EQ(BeginSync(*store_, Req("k", "a")).status().code(), StatusCode::kUnavailable);
  auto metrics = ByName(*store_);
  EXPECT_EQ(metrics["rocksdb_failed_batches_total"].value, 1);
  EXPECT_EQ(metrics["rocksdb_commits_total"].value, 1);
}

TEST_F(RocksDbMetricsTest, DecoratorsPassThemThrough) {
  ASSERT_TRUE(BeginSync(*store_, Req("k", "a")).ok());
  ForwardingStore decorated(store_);
  auto metrics = ByName(decorated);
  ASSERT_EQ(metrics.count("rocksdb_commits_total"), 1u);
  EXPECT_EQ(metrics["rocksdb_commits_total"].value, 1);
}

}  // namespace
}  // namespace idem::testing
