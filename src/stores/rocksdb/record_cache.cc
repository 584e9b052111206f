#include "stores/rocksdb/record_cache.h"

#include <utility>

namespace idem::rocksdb_store {
namespace {

// Roughly the memory a cached record holds: its strings, plus the node,
// the Record and the shared_ptr control block.
size_t ChargeOf(const std::string& key, const Record& record) {
  size_t charge = 2 * key.size() + record.key.size() + record.fingerprint.size() +
                  record.owner.size() + record.recovery.phase.size() +
                  record.recovery.state.size() + record.response.body.size() + 384;
  for (const auto& [name, value] : record.response.headers) {
    charge += name.size() + value.size() + 64;
  }
  return charge;
}

}  // namespace

RecordPtr RecordCache::Find(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.record;
}

void RecordCache::Put(const std::string& key, RecordPtr record) {
  auto it = entries_.find(key);
  const size_t charge = record ? ChargeOf(key, *record) : 0;
  if (!record || charge > capacity_) {
    if (it != entries_.end()) Erase(it);
    return;
  }
  if (it != entries_.end()) {
    // A key's next state (a lease completed, say): replaced in place, no
    // allocation, and it becomes the most recently used.
    used_ = used_ - it->second.charge + charge;
    it->second.record = std::move(record);
    it->second.charge = charge;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  } else {
    lru_.push_front(key);
    entries_.emplace(key, Entry{std::move(record), charge, lru_.begin()});
    used_ += charge;
  }
  // The newest entry is at the front and fits by itself: it is never the
  // one evicted here.
  while (used_ > capacity_) Erase(entries_.find(lru_.back()));
}

void RecordCache::Erase(std::unordered_map<std::string, Entry>::iterator it) {
  used_ -= it->second.charge;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

}  // namespace idem::rocksdb_store
