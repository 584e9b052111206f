// Multi-phase operations: Stripe's atomic phases, Brandur's recovery
// points.
//
// An operation that touches several systems (create the order, charge the
// card, send the receipt) runs as named phases under one key. After each
// phase but the last, its name and the state the next phase needs are
// saved on the in-flight record (Engine::Checkpoint). If the process dies,
// or its lease is taken over, a retry with the same key resumes after the
// last saved phase instead of starting over; the final phase's response is
// stored and replayed to every later retry.
//
//   PhasedOperation order(engine, policy);
//   order.AddPhase("create_order", [&](const PhaseInput& in) -> PhaseResult {
//          return CreateOrder(in.state);              // state for the next phase
//        })
//       .AddPhase("charge_card", ...)
//       .AddPhase("send_receipt", [&](const PhaseInput& in) -> PhaseResult {
//          SendReceipt(in.state);
//          return StoredResponse{201, {}, std::string(in.state)};  // the response
//        });
//   Result<PhasedResult> r = order.Run("order-req-7f3a", R"({"sku":"book"})");
//
// A phase is executed at least once and, unless the process dies between
// the phase's effect and its checkpoint, exactly once: a phase whose effect
// lives elsewhere makes that effect idempotent itself, e.g. by sending the
// downstream service a key from DeriveKey(entity, action, params).
//
// Failures:
//  * A phase returns an error or throws: before any phase was saved, the
//    key is released (a retry starts over); after, the lease is handed
//    back at once (its expiry moved to now) so a retry resumes after the
//    last saved phase. Both return the phase's error.
//  * A phase throws FinalError: the error is stored and returned to every
//    later retry (like a stored response).
//  * A phase may end the operation early by returning a response (e.g. 402
//    card declined): it is stored like the final phase's.
//  * Another process holds the key: kConflict, or a wait for its result,
//    by EnginePolicy::in_flight. The initial state's SHA-256 is the
//    fingerprint, so the same key with another input is kMismatch.
//
// Thread-safety: add every phase before the first Run; after that, Run may
// be called from any number of threads. Phases run on the calling thread;
// the lease is extended by a helper thread while they run.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "idem/engine.h"
#include "idem/record.h"
#include "idem/status.h"

namespace idem {

// What a phase gets.
struct PhaseInput {
  std::string_view key;    // the operation's key, as passed to Run
  std::string_view state;  // the previous phase's state (or Run's input)
  uint64_t fence = 0;      // grows with every takeover; pass it downstream
                           // to fence off a stale owner's writes
  bool resumed = false;    // this Run resumed after a saved phase
};

// What a phase hands on: the state of the next phase, the response that
// ends the operation, or an error. From the last phase, a state becomes a
// 200 response with the state as its body.
class PhaseResult {
 public:
  PhaseResult(std::string next_state)  // NOLINT: implicit by design
      : value_(std::move(next_state)) {}
  PhaseResult(const char* next_state)  // NOLINT: implicit by design
      : value_(std::string(next_state)) {}
  PhaseResult(StoredResponse response)  // NOLINT: implicit by design
      : value_(std::move(response)) {}
  PhaseResult(Status error)  // NOLINT: implicit by design
      : value_(error.ok() ? Internal("a phase returned an ok Status")
                          : std::move(error)) {}

  bool ok() const { return !std::holds_alternative<Status>(value_); }
  bool is_response() const { return std::holds_alternative<StoredResponse>(value_); }
  const std::string& state() const { return std::get<std::string>(value_); }
  const StoredResponse& response() const { return std::get<StoredResponse>(value_); }
  const Status& status() const { return std::get<Status>(value_); }

 private:
  std::variant<std::string, StoredResponse, Status> value_;
};

using PhaseFunction = std::function<PhaseResult(const PhaseInput&)>;

struct PhasedOptions {
  // Names the family of keys: the store key is "<scope> <key>".
  // Default: "phases".
  std::string scope = "phases";

  // Extend the lease every lease_ttl_ms / 3 while phases run. Default: true.
  bool keep_lease_alive = true;

  // Called after a phase's checkpoint is saved, with the phase's name (for
  // logs and metrics; tests use it to crash at a chosen point).
  // Default: none.
  std::function<void(std::string_view phase)> after_checkpoint;
};

struct PhasedResult {
  StoredResponse response;
  bool replayed = false;                // stored by an earlier Run
  std::string resumed_after;            // the saved phase this Run resumed after
  std::vector<std::string> phases_run;  // the phases this Run executed
};

class PhasedOperation {
 public:
  explicit PhasedOperation(std::shared_ptr<Engine> engine, EnginePolicy policy = {},
                           PhasedOptions options = {});
  ~PhasedOperation();
  PhasedOperation(const PhasedOperation&) = delete;
  PhasedOperation& operator=(const PhasedOperation&) = delete;

  // Appends a phase. Names must be unique and non-empty (checked by Run).
  PhasedOperation& AddPhase(std::string name, PhaseFunction fn);

  // Runs (or resumes, or replays) the operation for `key`; `input` is the
  // first phase's state. Errors: a phase's error; kConflict; kMismatch;
  // a stored FinalError; kInvalidArgument for an empty key or bad phase
  // list; kFailedPrecondition when the saved phase is not in the list
  // (the record is left for a program that knows it); the store's errors.
  Result<PhasedResult> Run(std::string_view key, std::string_view input);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace idem
