// The versioned binary encoding of a Record, shared by every store that
// keeps bytes (RocksDB, Redis, PostgreSQL) and decoded by `idem keys get`.
// The format is documented in docs/record-format.md. Pure functions,
// thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "idem/record.h"
#include "idem/status.h"

namespace idem {

inline constexpr uint8_t kRecordFormatVersion = 1;

std::string EncodeRecord(const Record& record);

// kDataLoss when the bytes are truncated, corrupt (checksum), of an unknown
// version, or carry trailing garbage. Never crashes on any input.
Result<Record> DecodeRecord(std::string_view bytes);

}  // namespace idem
