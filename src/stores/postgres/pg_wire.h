// The binary wire format of the statements' parameters and results
// (network byte order integers, raw bytea), the encoding of stored header
// lines, and how PostgreSQL errors map onto Status codes. Pure functions,
// thread-safe. Internal to the PostgreSQL store.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "idem/status.h"

namespace idem::pg {

// Type OIDs of the parameters and results we use (pg_type.h is a server
// header, so they are spelled out; they never change).
inline constexpr Oid kBoolOid = 16;
inline constexpr Oid kByteaOid = 17;
inline constexpr Oid kInt8Oid = 20;
inline constexpr Oid kInt2Oid = 21;
inline constexpr Oid kInt4Oid = 23;

std::string Int8Param(int64_t value);
std::string Int4Param(int32_t value);

// Reads binary columns of one result row. A NULL or a value of the wrong
// size reads as zero / empty and clears ok(), which callers turn into
// kDataLoss.
class RowReader {
 public:
  RowReader(const PGresult* result, int row) : result_(result), row_(row) {}

  bool IsNull(int column) const;
  bool Bool(int column);
  int16_t Int2(int column);
  int32_t Int4(int column);
  int64_t Int8(int column);
  std::string Bytes(int column);

  bool ok() const { return ok_; }

 private:
  std::string_view Raw(int column, int expected_size);

  const PGresult* result_;
  int row_;
  bool ok_ = true;
};

// Header lines as stored in the response_headers column: for each line,
// a 4-byte big-endian name length, the name, a 4-byte value length, the
// value. Empty for no headers.
std::string EncodeHeaders(
    const std::vector<std::pair<std::string, std::string>>& headers);
bool DecodeHeaders(std::string_view bytes,
                   std::vector<std::pair<std::string, std::string>>* headers);

// The five-character SQLSTATE of a failed result, or "" when there is none
// (the connection broke).
std::string SqlState(const PGresult* result);

// Races another transaction won (serialization failure, deadlock, unique
// violation): the statement may simply run again.
bool IsRetryableRace(std::string_view sqlstate);

// Maps a failed statement onto a Status: the server or the connection being
// unusable (connection exceptions, shutdown, statement time-out, resources,
// read-only standby) is kUnavailable, a lost race kConflict, the rest
// kInternal. `what` names the operation in the message.
Status StatusFromError(std::string_view sqlstate, std::string_view message,
                       std::string_view what);

// Quotes an SQL identifier ("a""b") and a string literal ('a''b').
std::string QuoteIdentifier(std::string_view name);
std::string QuoteLiteral(std::string_view text);

}  // namespace idem::pg
