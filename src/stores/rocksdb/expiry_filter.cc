#include "stores/rocksdb/expiry_filter.h"

#include "idem/record_codec.h"

namespace idem::rocksdb_store {

bool ExpiryCompactionFilter::Filter(int /*level*/, const rocksdb::Slice& /*key*/,
                                    const rocksdb::Slice& existing_value,
                                    std::string* /*new_value*/,
                                    bool* /*value_changed*/) const {
  Result<Record> record = DecodeRecord(existing_value.ToStringView());
  return record.ok() && record->IsExpired(clock_->NowMs());
}

}  // namespace idem::rocksdb_store
