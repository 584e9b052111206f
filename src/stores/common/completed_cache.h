// A bounded, least-recently-used cache of completed records, so replays on
// this gateway skip a shared store (PostgreSQL, Redis). Sound because a
// completed record never changes until it expires (judged here, by the same
// Clock) or is deleted, and the store broadcasts deletes (NOTIFY, PUBLISH)
// naming the key by its SHA-256; while that broadcast cannot be heard the
// cache keeps nothing. Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "idem/record.h"

namespace idem::stores {

class CompletedCache {
 public:
  explicit CompletedCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  // The cached completed record, or null (absent, or expired and dropped).
  RecordPtr Find(const std::string& key, int64_t now_ms);

  // Entries are kept only while deletes can be heard of (the store's
  // listening connection is up); turning listening off empties the cache.
  void SetListening(bool listening);

  // Bumped by every erase: a record read from the database before a delete
  // was heard of must not enter the cache after it. Read it before
  // sending the statement whose answer Insert() gets.
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  // Keeps a completed record unless an erase happened since `epoch` or
  // the cache is not listening; in-flight and oversized records are
  // ignored.
  void Insert(const RecordPtr& record, uint64_t epoch);
  void Erase(const std::string& key);
  // `hex_sha256`: lower-case hex SHA-256 of the key, as delete broadcasts name it.
  void EraseByHash(std::string_view hex_sha256);

  // For metrics: records held, and the bytes they are charged.
  size_t entries() const;
  size_t bytes() const;

 private:
  struct Entry {
    RecordPtr record;
    std::string hash;
    size_t bytes;
  };
  using List = std::list<Entry>;

  void EraseLocked(List::iterator it);

  const size_t max_bytes_;
  mutable std::mutex mutex_;
  List lru_;  // front: most recently used
  std::unordered_map<std::string, List::iterator> by_key_;
  std::unordered_map<std::string, std::string> key_by_hash_;
  size_t bytes_ = 0;
  std::atomic<uint64_t> epoch_{0};  // changed under mutex_
  bool listening_ = false;
};

// Lower-case hex SHA-256 of a key, the name delete broadcasts use.
std::string KeyHash(std::string_view key);

}  // namespace idem::stores
