// ExpiryCompactionFilter: drops expired records while RocksDB compacts.
//
// Expiry is judged from the record's own expires_at against the store's
// Clock, the same test reads apply, so compaction only removes records
// that reads already treat as absent. A removed record becomes a deletion
// marker (RocksDB's kRemove), so an older version in a lower level cannot
// come back. Bytes that do not decode are kept: Sweep reports and removes
// them. Stateless apart from the clock; thread-safe, as RocksDB requires of
// a filter shared by concurrent compactions.
#pragma once

#include <rocksdb/compaction_filter.h>

#include <memory>
#include <string>
#include <utility>

#include "idem/clock.h"

namespace idem::rocksdb_store {

class ExpiryCompactionFilter final : public rocksdb::CompactionFilter {
 public:
  explicit ExpiryCompactionFilter(std::shared_ptr<Clock> clock)
      : clock_(std::move(clock)) {}

  bool Filter(int level, const rocksdb::Slice& key, const rocksdb::Slice& existing_value,
              std::string* new_value, bool* value_changed) const override;

  const char* Name() const override { return "idem.ExpiryCompactionFilter"; }

 private:
  std::shared_ptr<Clock> clock_;
};

}  // namespace idem::rocksdb_store
