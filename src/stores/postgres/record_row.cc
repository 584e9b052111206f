#include "stores/postgres/record_row.h"

#include <memory>

#include "stores/postgres/pg_schema.h"

namespace idem::pg {

Result<RecordPtr> ReadRecord(RowReader& row, int first_column) {
  auto record = std::make_shared<Record>();
  int c = first_column;
  record->key = row.Bytes(c++);
  const int16_t state = row.Int2(c++);
  record->fingerprint = row.Bytes(c++);
  record->owner = row.Bytes(c++);
  record->fence = static_cast<uint64_t>(row.Int8(c++));
  record->lease_expires_at_ms = row.Int8(c++);
  record->recovery.phase = row.Bytes(c++);
  record->recovery.state = row.Bytes(c++);
  record->response.status = row.Int4(c++);
  const std::string headers = row.Bytes(c++);
  record->response.body = row.Bytes(c++);
  record->created_at_ms = row.Int8(c++);
  record->expires_at_ms = row.Int8(c++);
  static_assert(kRecordColumnCount == 13);
  if (!row.ok() || (state != 1 && state != 2) ||
      !DecodeHeaders(headers, &record->response.headers)) {
    return DataLoss("postgres: malformed record row");
  }
  record->state = static_cast<RecordState>(state);
  return RecordPtr(std::move(record));
}

}  // namespace idem::pg
