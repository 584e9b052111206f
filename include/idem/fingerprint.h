// Request fingerprints: what makes two requests "the same operation".
//
// A fingerprint is SHA-256 over the method, the path with query, the
// content type and a digest of the body chosen by the mode:
//   body    the raw body bytes (default)
//   json    canonical JSON of the body (see canonical_json.h), so reordered
//           fields or changed white space are not a mismatch
//   fields  canonical JSON of only the listed JSON pointers (RFC 6901); a
//           pointer that selects nothing counts as absent, not as an error
//   none    no fingerprint at all: every request with the key matches
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "idem/status.h"

namespace idem {

enum class FingerprintMode { kBody, kJson, kFields, kNone };

// "body", "json", "fields", "none".
std::string_view FingerprintModeName(FingerprintMode mode);
Result<FingerprintMode> ParseFingerprintMode(std::string_view name);

struct FingerprintInput {
  std::string_view method;
  std::string_view path_with_query;
  std::string_view content_type;
  std::string_view body;
};

// The raw 32-byte digest, or "" for mode none. kInvalidArgument when the
// body is not valid JSON in modes json and fields, or a field is not a
// valid JSON pointer.
Result<std::string> ComputeFingerprint(FingerprintMode mode,
                                       const FingerprintInput& input,
                                       const std::vector<std::string>& fields = {});

// SHA-256 of `data` (OpenSSL), raw 32 bytes.
std::string Sha256(std::string_view data);
// HMAC-SHA-256 (OpenSSL), raw 32 bytes.
std::string HmacSha256(std::string_view key, std::string_view data);
// Lower-case hex of arbitrary bytes.
std::string HexEncode(std::string_view bytes);

}  // namespace idem
