// Internal helpers of canonical_json.cc for the fingerprint's "fields" mode,
// which selects several pointers from one body and must not parse it once
// per pointer. Not part of the public API. Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "idem/status.h"

namespace idem::internal {

// Ok when `pointer` is a well-formed RFC 6901 JSON pointer ("" or "/..."
// with "~" only in "~0" and "~1"); kInvalidArgument otherwise.
Status ValidateJsonPointer(std::string_view pointer);

// Parses `text` once and returns, in the order of `pointers`, the canonical
// JSON of each selected value, or nullopt where a pointer selects nothing.
// kInvalidArgument when the text or a pointer is malformed.
Result<std::vector<std::optional<std::string>>> CanonicalJsonAtEach(
    std::string_view text, const std::vector<std::string>& pointers);

}  // namespace idem::internal
