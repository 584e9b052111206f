// Corrupt or truncated record bytes on disk are reported and skipped: Get
// says kDataLoss, Begin treats the key as absent and overwrites it, the
// owner-checked calls see no lease, Delete and Sweep remove the bytes, and
// nothing crashes.
#include <gtest/gtest.h>

#include "idem/record_codec.h"
#include "rocksdb/raw_db.h"
#include "rocksdb/store_test_util.h"
#include "rocksdb/temp_dir.h"

namespace idem::testing {
namespace {

class RocksDbCorruptRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    {
      auto store = OpenStoreAt(dir_.path(), clock_);
      ASSERT_NE(store, nullptr);
      for (const char* key : {"good", "garbage", "truncated", "flipped"}) {
        ASSERT_TRUE(BeginSync(*store, Req(key, "a")).ok());
        ASSERT_TRUE(CompleteSync(*store, {key, "a", Response(key), kTtl}).ok());
      }
    }
    Record record;
    record.key = "truncated";
    record.state = RecordState::kCompleted;
    record.response = Response("a body long enough to cut in half");
    record.expires_at_ms = clock_->NowMs() + kTtl;
    const std::string bytes = EncodeRecord(record);
    std::string flipped = bytes;
    flipped[flipped.size() / 2] ^= 0x5a;
    record.key = "some other key";
    ASSERT_TRUE(PutRaw(dir_.path(), "garbage", "\x01\x02 definitely not a record"));
    ASSERT_TRUE(PutRaw(dir_.path(), "truncated", bytes.substr(0, bytes.size() / 2)));
    ASSERT_TRUE(PutRaw(dir_.path(), "flipped", flipped));
    ASSERT_TRUE(PutRaw(dir_.path(), "misplaced", EncodeRecord(record)));
    store_ = OpenStoreAt(dir_.path(), clock_);
    ASSERT_NE(store_, nullptr);
  }

  TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::shared_ptr<Store> store_;
};

TEST_F(RocksDbCorruptRecordTest, GetReportsDataLoss) {
  for (const char* key : {"garbage", "truncated", "flipped", "misplaced"}) {
    EXPECT_EQ(GetSync(*store_, key).status().code(), StatusCode::kDataLoss) << key;
  }
  auto good = GetSync(*store_, "good");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ((*good)->response.body, "good");
}

TEST_F(RocksDbCorruptRecordTest, BeginTreatsACorruptRecordAsAbsent) {
  auto begun = BeginSync(*store_, Req("garbage", "b"));
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_EQ(begun->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(begun->record->fence, 1u);
  ASSERT_TRUE(CompleteSync(*store_, {"garbage", "b", Response("healed"), kTtl}).ok());
  auto record = GetSync(*store_, "garbage");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ((*record)->response.body, "healed");
}

TEST_F(RocksDbCorruptRecordTest, OwnerCheckedCallsSeeNoLease) {
  EXPECT_EQ(CompleteSync(*store_, {"truncated", "a", Response("x"), kTtl}).code(),
            StatusCode::kLeaseLost);
  EXPECT_EQ(ReleaseSync(*store_, "truncated", "a").code(), StatusCode::kLeaseLost);
  EXPECT_EQ(ExtendSync(*store_, "truncated", "a", kLease).status().code(),
            StatusCode::kLeaseLost);
  EXPECT_EQ(WaitForCompletionSync(*store_, "truncated", std::chrono::seconds(5))
                .status()
                .code(),
            StatusCode::kNotFound);
}

TEST_F(RocksDbCorruptRecordTest, DeleteRemovesCorruptBytes) {
  EXPECT_TRUE(DeleteSync(*store_, "flipped").ok());
  EXPECT_EQ(GetSync(*store_, "flipped").status().code(), StatusCode::kNotFound);
}

TEST_F(RocksDbCorruptRecordTest, SweepRemovesCorruptRecordsAndKeepsGoodOnes) {
  auto swept = SweepSync(*store_, 100);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(*swept, 4u);
  store_.reset();
  const auto all = ReadAllRaw(dir_.path());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.begin()->first, "good");
}

}  // namespace
}  // namespace idem::testing
