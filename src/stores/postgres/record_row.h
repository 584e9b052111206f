// Turns a row of the records table (the columns in kColumns order, see
// pg_schema.cc) back into a Record. Pure, thread-safe. Internal to the
// PostgreSQL store.
#pragma once

#include "idem/record.h"
#include "idem/status.h"
#include "stores/postgres/pg_wire.h"

namespace idem::pg {

// Reads kRecordColumnCount columns starting at `first_column`; kDataLoss
// when a value is NULL, of the wrong size, or not a valid state.
Result<RecordPtr> ReadRecord(RowReader& row, int first_column);

}  // namespace idem::pg
