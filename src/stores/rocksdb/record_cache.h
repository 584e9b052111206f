// RecordCache: decoded records of recently used keys, so a replay does not
// read and decode the same bytes again. One per lock stripe, guarded by
// the stripe's lock (not thread-safe by itself).
//
// The cache is write-through and holds only durable states: the store
// fills it from RocksDB reads and from writes once they are durable, and
// the store is the only writer of its directory (RocksDB's LOCK), so an
// entry always equals what is on disk. Expiry is still judged on every
// read. Bounded by an approximate byte charge per entry, least recently
// used first out.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>

#include "idem/record.h"

namespace idem::rocksdb_store {

class RecordCache {
 public:
  // 0 disables the cache.
  void set_capacity(size_t bytes) { capacity_ = bytes; }

  // The cached record, or null.
  RecordPtr Find(const std::string& key);

  // Caches `record` as the key's state; null forgets the key.
  void Put(const std::string& key, RecordPtr record);

 private:
  struct Entry {
    RecordPtr record;
    size_t charge = 0;
    std::list<std::string>::iterator lru;
  };

  void Erase(std::unordered_map<std::string, Entry>::iterator it);

  size_t capacity_ = 0;
  size_t used_ = 0;
  std::list<std::string> lru_;  // front: most recently used
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace idem::rocksdb_store
