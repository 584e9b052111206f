// What survives closing and reopening the directory: completed records,
// in-flight leases (with their fence and recovery point), releases.
#include <gtest/gtest.h>

#include "idem/open_store.h"
#include "rocksdb/store_test_util.h"
#include "rocksdb/temp_dir.h"

namespace idem::testing {
namespace {

class RocksDbPersistenceTest : public ::testing::Test {
 protected:
  std::shared_ptr<Store> Open() { return OpenStoreAt(dir_.path(), clock_); }

  TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
};

TEST_F(RocksDbPersistenceTest, CompletedRecordIsReplayedAfterReopen) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(BeginSync(*store, Req("k", "a")).ok());
    ASSERT_TRUE(CompleteSync(*store, {"k", "a", Response("{\"id\":7}"), kTtl}).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto begun = BeginSync(*store, Req("k", "b"));
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_EQ(begun->outcome, BeginOutcome::kCompleted);
  EXPECT_EQ(begun->record->response, Response("{\"id\":7}"));
  EXPECT_EQ(begun->record->expires_at_ms, clock_->NowMs() + kTtl);
}

TEST_F(RocksDbPersistenceTest, InFlightLeaseSurvivesReopenUntilItExpires) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(BeginSync(*store, Req("k", "a")).ok());
    ASSERT_TRUE(CheckpointSync(*store, {"k", "a", {"charged", "ch_1"}}).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto busy = BeginSync(*store, Req("k", "b"));
  ASSERT_TRUE(busy.ok());
  EXPECT_EQ(busy->outcome, BeginOutcome::kInFlight);
  EXPECT_EQ(busy->record->owner, "a");

  clock_->AdvanceMs(kLease);
  auto taken = BeginSync(*store, Req("k", "b"));
  ASSERT_TRUE(taken.ok());
  ASSERT_EQ(taken->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(taken->record->fence, 2u);
  EXPECT_EQ(taken->record->recovery, (RecoveryPoint{"charged", "ch_1"}));
  EXPECT_EQ(CompleteSync(*store, {"k", "a", Response("late"), kTtl}).code(),
            StatusCode::kLeaseLost);
}

TEST_F(RocksDbPersistenceTest, FenceKeepsCountingAcrossReopens) {
  for (uint64_t fence = 1; fence <= 3; ++fence) {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    auto begun = BeginSync(*store, Req("k", "owner-" + std::to_string(fence)));
    ASSERT_TRUE(begun.ok());
    ASSERT_EQ(begun->outcome, BeginOutcome::kAcquired);
    EXPECT_EQ(begun->record->fence, fence);
    clock_->AdvanceMs(kLease);
  }
}

TEST_F(RocksDbPersistenceTest, ReleaseAndDeleteStayDoneAfterReopen) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(BeginSync(*store, Req("released", "a")).ok());
    ASSERT_TRUE(ReleaseSync(*store, "released", "a").ok());
    ASSERT_TRUE(BeginSync(*store, Req("deleted", "a")).ok());
    ASSERT_TRUE(CompleteSync(*store, {"deleted", "a", Response("x"), kTtl}).ok());
    ASSERT_TRUE(DeleteSync(*store, "deleted").ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(GetSync(*store, "released").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(GetSync(*store, "deleted").status().code(), StatusCode::kNotFound);
}

TEST_F(RocksDbPersistenceTest, OpenStoreUnderstandsRocksDbUris) {
  StoreOpenOptions options;
  options.clock = clock_;
  {
    auto store = OpenStore("rocksdb:" + dir_.path(), options);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE(BeginSync(**store, Req("k", "a")).ok());
    ASSERT_TRUE(CompleteSync(**store, {"k", "a", Response("via uri"), kTtl}).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto record = GetSync(*store, "k");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ((*record)->response.body, "via uri");

  EXPECT_EQ(OpenStore("rocksdb:", options).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace idem::testing
