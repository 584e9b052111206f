// The per-stripe LRU of decoded records: least recently used out first, a
// key's next state replaces its entry in place, null and oversized records
// are not kept.
#include "stores/rocksdb/record_cache.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace idem::rocksdb_store {
namespace {

// A record whose charge is dominated by its body of `bytes` bytes.
RecordPtr RecordOf(const std::string& key, size_t bytes, char fill = 'x') {
  auto record = std::make_shared<Record>();
  record->key = key;
  record->state = RecordState::kCompleted;
  record->response.body.assign(bytes, fill);
  return record;
}

// Room for two records of 1000 bytes, not three.
constexpr size_t kCapacity = 3'000;

class RecordCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { cache_.set_capacity(kCapacity); }
  RecordCache cache_;
};

TEST_F(RecordCacheTest, EvictsTheLeastRecentlyUsed) {
  cache_.Put("a", RecordOf("a", 1000));
  cache_.Put("b", RecordOf("b", 1000));
  ASSERT_NE(cache_.Find("a"), nullptr);  // a is now the most recently used
  cache_.Put("c", RecordOf("c", 1000));
  EXPECT_NE(cache_.Find("a"), nullptr);
  EXPECT_EQ(cache_.Find("b"), nullptr);
  EXPECT_NE(cache_.Find("c"), nullptr);
}

TEST_F(RecordCacheTest, ANewStateReplacesTheEntryAndRefreshesIt) {
  cache_.Put("a", RecordOf("a", 1000, 'x'));
  cache_.Put("b", RecordOf("b", 1000));
  cache_.Put("a", RecordOf("a", 1000, 'y'));  // a is the most recently used
  cache_.Put("c", RecordOf("c", 1000));
  RecordPtr a = cache_.Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->response.body, std::string(1000, 'y'));
  EXPECT_EQ(cache_.Find("b"), nullptr);
  EXPECT_NE(cache_.Find("c"), nullptr);
}

TEST_F(RecordCacheTest, AGrownEntryPushesOthersOut) {
  cache_.Put("a", RecordOf("a", 1000));
  cache_.Put("b", RecordOf("b", 1000));
  cache_.Put("a", RecordOf("a", 2000));  // the charge of a grows past the room left
  EXPECT_NE(cache_.Find("a"), nullptr);
  EXPECT_EQ(cache_.Find("b"), nullptr);
  // The charge of the old state was given back: two small ones fit again.
  cache_.Put("a", RecordOf("a", 1000));
  cache_.Put("b", RecordOf("b", 1000));
  EXPECT_NE(cache_.Find("a"), nullptr);
  EXPECT_NE(cache_.Find("b"), nullptr);
}

TEST_F(RecordCacheTest, NullAndOversizedRecordsAreNotKept) {
  cache_.Put("a", RecordOf("a", 1000));
  cache_.Put("a", nullptr);
  EXPECT_EQ(cache_.Find("a"), nullptr);

  cache_.Put("b", RecordOf("b", 1000));
  cache_.Put("b", RecordOf("b", kCapacity));  // bigger than the whole cache
  EXPECT_EQ(cache_.Find("b"), nullptr);
  cache_.Put("c", RecordOf("c", 1000));
  cache_.Put("d", RecordOf("d", 1000));
  EXPECT_NE(cache_.Find("c"), nullptr);  // b's charge is not counted any more
  EXPECT_NE(cache_.Find("d"), nullptr);
}

TEST(RecordCacheDisabledTest, CapacityZeroKeepsNothing) {
  RecordCache cache;
  cache.set_capacity(0);
  cache.Put("a", RecordOf("a", 10));
  EXPECT_EQ(cache.Find("a"), nullptr);
}

}  // namespace
}  // namespace idem::rocksdb_store
