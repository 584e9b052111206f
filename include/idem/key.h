// Idempotency keys: parsing the header value and building scope keys.
//
// A client sends `Idempotency-Key: "abc"` (an RFC 8941 sf-string, as the
// IETF draft says) or, as many clients do, the bare token `abc`; both are
// the same key. A scope key names one record in the store:
//   "<tenant> <METHOD> <path> <key>"
// Tenant, method and path never contain a space, so the client's key, which
// may, is always the unambiguous tail. All functions are pure and
// thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "idem/status.h"

namespace idem {

inline constexpr size_t kMaxIdempotencyKeyLength = 255;

// The key carried by one Idempotency-Key header value. kInvalidArgument
// (with a message fit for a client) when the value is empty, longer than
// kMaxIdempotencyKeyLength after unquoting, holds a byte outside printable
// ASCII (0x20-0x7E), or is a malformed sf-string (unterminated, bad escape,
// trailing bytes). Optional white space around the value is ignored; a bare
// token must not contain spaces, quotes or backslashes.
Result<std::string> ParseIdempotencyKey(std::string_view header_value);

// Identifies a tenant by its credential header values without keeping
// them: hex of HMAC-SHA-256(secret, values) truncated to 32 characters, or
// of SHA-256 when `secret` is empty. No credentials give "anonymous".
std::string TenantId(const std::vector<std::string>& credential_values,
                     std::string_view secret = {});

// "<tenant> <METHOD> <path> <key>"; `path` has no query string.
std::string BuildScopeKey(std::string_view tenant, std::string_view method,
                          std::string_view path, std::string_view key);

}  // namespace idem
