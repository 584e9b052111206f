// Problem details (RFC 9457): every error the gateway answers itself.
//
// Each kind of error has a stable `type` URI, urn:idem:problem:<slug>, that
// clients may branch on; the title and status are fixed per type and the
// detail never carries internal state (no store errors, no addresses). The
// list is documented in docs/http.md. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "idem/record.h"

namespace idem::gateway {

enum class ProblemType {
  kMissingKey,           // 400
  kInvalidKey,           // 400
  kDuplicateKeyHeader,   // 400
  kInvalidJsonBody,      // 400
  kMalformedRequest,     // 400
  kRequestTimeout,       // 408
  kRequestInProgress,    // 409
  kResponseNotStored,    // 410
  kBodyTooLarge,         // 413
  kKeyMismatch,          // 422
  kHeadersTooLarge,      // 431
  kUpstreamUnreachable,  // 502
  kUpstreamBadResponse,  // 502
  kStoreUnavailable,     // 503
  kDraining,             // 503
  kUpstreamTimeout,      // 504
  kNotFound,             // 404 (admin)
  kMethodNotAllowed,     // 405 (admin)
  kUnauthorized,         // 401 (admin, with a token configured)
};

struct Problem {
  ProblemType type = ProblemType::kMalformedRequest;
  std::string detail;         // fit for clients; empty: the type's default
  int64_t retry_after_s = 0;  // > 0: sent as Retry-After
  int original_status = 0;    // kResponseNotStored: the first response's status
};

int ProblemStatus(ProblemType type);
std::string_view ProblemSlug(ProblemType type);
std::string_view ProblemTitle(ProblemType type);
// "urn:idem:problem:<slug>"
std::string ProblemTypeUri(ProblemType type);

// The application/problem+json body.
std::string ProblemJson(const Problem& problem);

// The whole answer: status, Content-Type, Retry-After and Link where the
// type calls for them, and the body. Also what a response-not-stored marker
// record holds.
StoredResponse ProblemResponse(const Problem& problem);

}  // namespace idem::gateway
