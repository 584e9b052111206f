// Keys for callers: fresh idempotency keys and deterministic derived keys.
//
// NewUuidV7 makes a new key per logical operation, as a client sends in
// Idempotency-Key: an RFC 9562 UUID version 7 (48-bit Unix time in
// milliseconds, then 74 bits from OpenSSL's CSPRNG), so keys sort by
// creation time and index well. Keys made in one process are strictly
// increasing, also within one millisecond (RFC 9562 section 6.2, method 2:
// the random part is incremented by a random amount).
//
// DeriveKey makes the same key every time for the same operation, e.g. the
// key of a downstream call made by phase "charge card" of order 42, so that
// a retried phase retries the downstream call with the same key:
//
//   DeriveKey("order/42", "charge", R"({"amount":1200,"currency":"EUR"})")
//
// is SHA-256 over the three fields, each preceded by its length as 8 bytes
// little-endian; the parameters enter as canonical JSON (canonical_json.h),
// so reordered members or other white space give the same key. The key is
// the first 16 bytes of the digest as 32 lower-case hex characters.
//
// Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "idem/status.h"

namespace idem {

// "0190b6e2-4c1d-7a3e-9f12-0c4e5d6a7b8c": 36 characters, lower-case hex.
// Aborts the process only if the CSPRNG fails, which OpenSSL reports when
// it cannot be seeded at all; a predictable key would be worse.
std::string NewUuidV7();

// kInvalidArgument when `entity` or `action` is empty or `params_json` is
// not one valid JSON value (use "{}" or "null" for no parameters).
Result<std::string> DeriveKey(std::string_view entity, std::string_view action,
                              std::string_view params_json);

}  // namespace idem
