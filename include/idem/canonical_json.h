// Canonical JSON: one byte sequence for every way of writing the same value.
//
// Object members are sorted by key (byte order of their UTF-8), white space
// outside strings is removed, and numbers and strings keep the exact text
// the client wrote (a number is never re-formatted through a double, so
// 1.10 and 1.1 stay different and 12345678901234567890 stays exact).
// Strings are re-emitted with the minimal escapes JSON needs. Duplicate
// member names are an error. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "idem/status.h"

namespace idem {

// kInvalidArgument, with the position of the problem, when `text` is not
// one valid JSON value.
Result<std::string> CanonicalizeJson(std::string_view text);

// Canonical JSON of the value selected by an RFC 6901 pointer in `text`.
// kNotFound when the pointer selects nothing; kInvalidArgument when the
// text or the pointer is malformed.
Result<std::string> CanonicalJsonAt(std::string_view text,
                                    std::string_view pointer);

}  // namespace idem
