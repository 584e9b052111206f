// A record as JSON, for people: `idem keys get` and the admin listener's
// GET /keys/... both print this shape (documented in docs/http.md).
// Binary fields are base64; the fingerprint is hex. Pure, thread-safe.
#pragma once

#include <string>

#include "idem/record.h"

namespace idem {

std::string RecordToJson(const Record& record);

}  // namespace idem
