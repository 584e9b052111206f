// IdempotencyFilter: the idempotency step of the gateway as a plain object,
// in the manner of an Envoy HTTP filter. It sees a request as views (method,
// target, header lines, body) and says what to do: forward it untouched,
// answer it with a problem, execute it under a lease, or replay a stored
// response. It knows nothing of sockets, so it is tested with a real memory
// store and no network.
//
// A request goes through up to three steps:
//   1. Classify (header section only): kForward, kRespond or kProtect. Only
//      kProtect touches the store, and only kProtect needs the body.
//   2. Begin (body read): asks the Engine and turns its decision into an
//      Action: kExecute (holding a lease), kReplay, kRespond (409, 422, 503,
//      or 400 for a body that is not JSON) or kForward (store down and
//      on_store_error = "pass"; a stored record that cannot be read, e.g.
//      encrypted with a key no longer configured, is a 503 even then).
//   3. After the upstream answered: Complete (stored or released by the
//      route's policy), CompleteNotStored (the response was too large to
//      keep), or Abandon (the upstream never got the request).
//
// Thread-safe: const after construction; callbacks run on the store's
// completion thread (inline for the memory store).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "gateway/config.h"
#include "gateway/http_headers.h"
#include "gateway/metrics.h"
#include "gateway/problem.h"
#include "idem/engine.h"
#include "idem/record.h"
#include "idem/store.h"

namespace idem::gateway {

struct RequestView {
  std::string_view method;
  std::string_view target;              // origin form: path and query
  std::span<const HeaderLine> headers;  // in arrival order
  std::string_view body;                // needed by Begin only
};

// Step 1's answer.
struct Classification {
  enum class Kind { kForward, kRespond, kProtect };
  Kind kind = Kind::kForward;
  Outcome outcome = Outcome::kForwarded;     // for metrics and the access log
  Problem problem;                           // kRespond
  const IdempotencyConfig* route = nullptr;  // kProtect
  std::string key;                           // kProtect: the client's key, unquoted
};

// A request being executed under a lease.
struct Execution {
  Lease lease;
  const IdempotencyConfig* route = nullptr;
};

// Step 2's answer.
struct Action {
  enum class Kind { kForward, kRespond, kExecute, kReplay };
  Kind kind = Kind::kForward;
  Outcome outcome = Outcome::kForwarded;
  Problem problem;        // kRespond
  Execution execution;    // kExecute
  RecordPtr record;       // kReplay: send record->response
  std::string scope_key;  // every kind but a 400: the record's address
};

class IdempotencyFilter {
 public:
  IdempotencyFilter(const GatewayConfig& config, Engine& engine, Metrics& metrics);

  Classification Classify(const RequestView& request) const;

  // `classification` must be kProtect; `request.body` is the whole body.
  void Begin(const Classification& classification, const RequestView& request,
             Callback<Action> done);

  // Would the route's policy store a response with this status (so the
  // gateway must hold the body until the store has it)?
  static bool WillStore(const IdempotencyConfig& route, int status);

  // Reports the upstream's response: stored or released per the route's
  // policy. Answers kExecuted, or kLeaseLost when another owner took the
  // key over (the response is then not stored). A store failure is logged
  // and counted; the response still goes to the client.
  void Complete(const Execution& execution, StoredResponse response,
                Callback<Outcome> done);

  // For a response whose status would be stored but whose body exceeds
  // max_stored_body: completes the key with a response-not-stored marker
  // (410), so a retry is told so instead of running the request again.
  void CompleteNotStored(const Execution& execution, int original_status,
                         Callback<Outcome> done);

  // Releases the key after the upstream never received the request.
  void Abandon(const Execution& execution, Callback<Status> done);

  // Moves the lease expiry on; used while a slow upstream works.
  void Extend(const Execution& execution, Callback<Result<int64_t>> done);

  // The record a response-not-stored marker holds.
  static StoredResponse NotStoredMarker(int original_status);

  // A short, non-reversible tag of a scope key for logs (16 hex digits).
  static std::string KeyTag(std::string_view scope_key);

  // The tenant part of scope keys: values of the route's tenant_headers in
  // their configured order (a missing header counts as empty, repeated
  // lines are joined with ", "), hashed (HMAC-SHA-256 keyed with `secret`,
  // plain SHA-256 when it is empty); "anonymous" when none is present.
  static std::string TenantOf(const IdempotencyConfig& route,
                              std::span<const HeaderLine> headers,
                              std::string_view secret = {});

 private:
  const GatewayConfig& config_;
  Engine& engine_;
  Metrics& metrics_;
};

}  // namespace idem::gateway
