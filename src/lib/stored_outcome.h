// How library results are kept in a completed record's StoredResponse.
//
// A value is status 200 with the encoded bytes as the body. A final error
// is the HTTP status of its code (HttpStatusFor), one header
// "idem-error: <code name>" and the message as the body, so `idem keys
// get` shows both readably. Pure functions, thread-safe.
#pragma once

#include <string>

#include "idem/record.h"
#include "idem/status.h"

namespace idem::internal {

inline constexpr char kErrorHeader[] = "idem-error";

StoredResponse StoredValue(std::string bytes);
StoredResponse StoredError(const Status& status);

// The value bytes, or the stored error.
Result<std::string> DecodeStored(const StoredResponse& response);

}  // namespace idem::internal
