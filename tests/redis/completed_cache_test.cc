// CompletedCache (src/stores/common), the cache behind the Redis and
// PostgreSQL stores' replays: only completed records, only while listening,
// expiry judged on every read, the epoch that keeps a read from before a
// delete out, and the byte bound.
#include "stores/common/completed_cache.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace idem::stores {
namespace {

RecordPtr Completed(const std::string& key, int64_t expires_at_ms,
                    size_t body_bytes = 10) {
  auto record = std::make_shared<Record>();
  record->key = key;
  record->state = RecordState::kCompleted;
  record->fingerprint = "fp";
  record->response.status = 201;
  record->response.body = std::string(body_bytes, 'b');
  record->expires_at_ms = expires_at_ms;
  return record;
}

TEST(CompletedCacheTest, KeepsCompletedRecordsOnlyWhileListening) {
  CompletedCache cache(1 << 20);
  cache.Insert(Completed("a", 100), cache.epoch());
  EXPECT_EQ(cache.Find("a", 0), nullptr);  // not listening yet
  cache.SetListening(true);
  cache.Insert(Completed("a", 100), cache.epoch());
  ASSERT_NE(cache.Find("a", 0), nullptr);
  EXPECT_EQ(cache.entries(), 1u);
  auto in_flight = Completed("b", 100);
  std::const_pointer_cast<Record>(in_flight)->state = RecordState::kInFlight;
  cache.Insert(in_flight, cache.epoch());
  EXPECT_EQ(cache.Find("b", 0), nullptr);
  cache.SetListening(false);  // deletes may go unheard: forget everything
  EXPECT_EQ(cache.Find("a", 0), nullptr);
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  cache.SetListening(true);  // and start empty
  EXPECT_EQ(cache.Find("a", 0), nullptr);
}

TEST(CompletedCacheTest, ExpiryIsJudgedOnEveryRead) {
  CompletedCache cache(1 << 20);
  cache.SetListening(true);
  cache.Insert(Completed("a", 100), cache.epoch());
  EXPECT_NE(cache.Find("a", 99), nullptr);
  EXPECT_EQ(cache.Find("a", 100), nullptr);
  EXPECT_EQ(cache.entries(), 0u);  // dropped on the way
}

TEST(CompletedCacheTest, AReadFromBeforeADeleteIsNotKept) {
  CompletedCache cache(1 << 20);
  cache.SetListening(true);
  const uint64_t before = cache.epoch();      // a read is sent...
  cache.Erase("other");                       // ...a delete is heard meanwhile...
  cache.Insert(Completed("a", 100), before);  // ...its answer arrives
  EXPECT_EQ(cache.Find("a", 0), nullptr);
  const uint64_t before_resubscribe = cache.epoch();
  cache.SetListening(true);
  cache.Insert(Completed("a", 100), before_resubscribe);
  EXPECT_EQ(cache.Find("a", 0), nullptr);
  cache.Insert(Completed("a", 100), cache.epoch());
  EXPECT_NE(cache.Find("a", 0), nullptr);
  cache.EraseByHash(KeyHash("a"));
  EXPECT_EQ(cache.Find("a", 0), nullptr);
}

TEST(CompletedCacheTest, BoundedByBytesLeastRecentlyUsedFirst) {
  CompletedCache cache(64 << 10);
  cache.SetListening(true);
  cache.Insert(Completed("huge", 100, 20 << 10), cache.epoch());  // > a quarter
  EXPECT_EQ(cache.Find("huge", 0), nullptr);
  for (int i = 0; i < 100; ++i) {
    cache.Insert(Completed("k" + std::to_string(i), 100, 4 << 10), cache.epoch());
    ASSERT_NE(cache.Find("k0", 0), nullptr);  // k0 stays the most recently used
  }
  EXPECT_LE(cache.bytes(), size_t{64} << 10);
  EXPECT_GT(cache.entries(), 5u);
  EXPECT_NE(cache.Find("k0", 0), nullptr);
  EXPECT_NE(cache.Find("k99", 0), nullptr);
  EXPECT_EQ(cache.Find("k1", 0), nullptr);
}

}  // namespace
}  // namespace idem::stores
