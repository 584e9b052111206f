// The in-flight record ("lease") as Redis keeps it: one string value, so a
// new key is taken by a single plain `SET key lease NX GET PX ttl` rather
// than a script (see docs/stores.md, "Key layout"). Completed records are
// hashes (record_fields.h). Pure functions, thread-safe.
//
// Layout (integers big-endian, as Lua's struct library reads them with
// '>c2c1i8i8i8i8i4c0i4c0i4c0i4c0'):
//   offset 0   "L1"        tag and layout version
//   offset 2   '0' | '1'   '1' while a waiter somewhere watches the flight
//   offset 3   i64         expires_at_ms
//   offset 11  i64         lease_expires_at_ms
//   offset 19  i64         created_at_ms
//   offset 27  i64         fence
//   offset 35  i32 + bytes owner, then fingerprint, recovery phase and
//                          recovery state the same way
#pragma once

#include <string>
#include <string_view>

#include "idem/record.h"
#include "idem/status.h"

namespace idem::redis_internal {

inline constexpr std::string_view kLeaseTag = "L1";

std::string EncodeLease(const Record& record);

// The last two fields of a lease (Checkpoint sends them as one argument).
std::string EncodeRecovery(const RecoveryPoint& recovery);

// The in-flight record of `scope_key`; kDataLoss when `blob` is not a lease.
Result<RecordPtr> DecodeLease(std::string_view blob, const std::string& scope_key);

}  // namespace idem::redis_internal
