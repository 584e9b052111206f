#include "stores/common/completed_cache.h"

#include "idem/fingerprint.h"

namespace idem::stores {
namespace {

size_t Footprint(const Record& record) {
  size_t bytes = 256 + 2 * record.key.size() + record.fingerprint.size() +
                 record.owner.size() + record.response.body.size();
  for (const auto& [name, value] : record.response.headers) {
    bytes += 64 + name.size() + value.size();
  }
  return bytes;
}

}  // namespace

std::string KeyHash(std::string_view key) { return HexEncode(Sha256(key)); }

RecordPtr CompletedCache::Find(const std::string& key, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  if (it->second->record->IsExpired(now_ms)) {
    EraseLocked(it->second);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->record;
}

void CompletedCache::Insert(const RecordPtr& record, uint64_t epoch) {
  if (!record || record->state != RecordState::kCompleted) return;
  const size_t bytes = Footprint(*record);
  if (bytes > max_bytes_ / 4) return;
  std::string hash = KeyHash(record->key);
  std::lock_guard lock(mutex_);
  if (!listening_ || epoch != epoch_.load(std::memory_order_relaxed)) return;
  if (auto it = by_key_.find(record->key); it != by_key_.end()) EraseLocked(it->second);
  lru_.push_front(Entry{record, hash, bytes});
  by_key_[record->key] = lru_.begin();
  key_by_hash_[std::move(hash)] = record->key;
  bytes_ += bytes;
  while (bytes_ > max_bytes_ && !lru_.empty()) EraseLocked(std::prev(lru_.end()));
}

void CompletedCache::Erase(const std::string& key) {
  std::lock_guard lock(mutex_);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  if (auto it = by_key_.find(key); it != by_key_.end()) EraseLocked(it->second);
}

void CompletedCache::EraseByHash(std::string_view hex_sha256) {
  std::lock_guard lock(mutex_);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  auto hit = key_by_hash_.find(std::string(hex_sha256));
  if (hit == key_by_hash_.end()) return;
  if (auto it = by_key_.find(hit->second); it != by_key_.end()) EraseLocked(it->second);
}

void CompletedCache::SetListening(bool listening) {
  std::lock_guard lock(mutex_);
  listening_ = listening;
  // Reads that started before this moment may predate a missed delete.
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  lru_.clear();
  by_key_.clear();
  key_by_hash_.clear();
  bytes_ = 0;
}

size_t CompletedCache::entries() const {
  std::lock_guard lock(mutex_);
  return by_key_.size();
}

size_t CompletedCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

void CompletedCache::EraseLocked(List::iterator it) {
  bytes_ -= it->bytes;
  key_by_hash_.erase(it->hash);
  by_key_.erase(it->record->key);
  lru_.erase(it);
}

}  // namespace idem::stores
