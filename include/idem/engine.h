// Engine: the idempotency policy on top of any Store.
//
// The engine turns the store's state machine into decisions a caller acts
// on: execute the operation (holding a lease), replay a stored result,
// answer "in flight" (409, or wait for the first result), or answer
// "mismatch" (422). After executing, Finish stores the result or releases
// the key, as the policy says for that status.
//
// Each call comes in two forms: asynchronous (a callback, run on the
// store's completion thread; what servers use) and blocking (*Sync; for
// plain programs). An Engine is thread-safe and cheap to share; policies
// are passed per call so one engine serves routes with different rules.
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "idem/clock.h"
#include "idem/record.h"
#include "idem/status.h"
#include "idem/store.h"

namespace idem {

// Which response statuses are stored (and so replayed). Rules are applied
// in order: "2xx" adds a class, "404" adds one status, "!409" removes one,
// "!5xx" removes a class.
class StatusPolicy {
 public:
  // 2xx and 4xx except 408, 409, 425 and 429 (Stripe's and the IETF
  // draft's choice: those 4xx say "try again", so they must not stick).
  StatusPolicy();

  static Result<StatusPolicy> Parse(const std::vector<std::string>& rules);
  static const std::vector<std::string>& DefaultRules();

  bool ShouldStore(int status) const {
    return status >= 100 && status < 600 && stored_[static_cast<size_t>(status)];
  }

 private:
  std::bitset<600> stored_;
};

enum class InFlightPolicy { kReject, kWait };
enum class ServerErrorPolicy { kRelease, kStore };

struct EnginePolicy {
  // How long a completed result replays. Default: 24 h.
  int64_t ttl_ms = 86'400'000;
  // How long a lease lasts without Extend. Default: 10 s.
  int64_t lease_ttl_ms = 10'000;
  // Duplicates of an in-flight operation. Default: reject (409).
  InFlightPolicy in_flight = InFlightPolicy::kReject;
  // With kWait: the longest a duplicate waits for the first result.
  // Default: 10 s.
  int64_t wait_timeout_ms = 10'000;
  // Statuses stored by Finish. Default: StatusPolicy().
  StatusPolicy store_statuses;
  // 5xx results: released (the retry runs again) or stored. Default: release.
  ServerErrorPolicy on_server_error = ServerErrorPolicy::kRelease;
};

// What the holder of an execution needs to report back.
struct Lease {
  std::string key;
  std::string owner;
  uint64_t fence = 0;
  int64_t expires_at_ms = 0;
  RecoveryPoint recovery;  // handed over from an abandoned earlier lease
};

struct Decision {
  enum class Kind {
    kExecute,   // run the operation, then Finish or Abandon the lease
    kReplay,    // send `record->response`
    kConflict,  // in flight elsewhere: answer 409 with Retry-After
    kMismatch,  // the key belongs to another request: answer 422
  };
  Kind kind = Kind::kExecute;
  Lease lease;                // kExecute
  RecordPtr record;           // kReplay, kConflict, kMismatch
  int64_t retry_after_s = 0;  // kConflict: seconds until the lease may end
};

enum class FinishOutcome { kStored, kReleased };

// A fresh random owner token (128 bits, hex).
std::string NewOwnerToken();

class Engine {
 public:
  explicit Engine(std::shared_ptr<Store> store,
                  std::shared_ptr<Clock> clock = SystemClock());

  Store& store() { return *store_; }
  const std::shared_ptr<Store>& shared_store() const { return store_; }

  // Decides what to do with a request for `scope_key`. Errors: the store's
  // (kUnavailable and the like); never kConflict or kMismatch, which are
  // decisions.
  void Begin(std::string scope_key, std::string fingerprint,
             const EnginePolicy& policy, Callback<Result<Decision>> done);

  // Reports the result of an execution: stored when the policy says so for
  // its status, released otherwise. kLeaseLost if the lease was taken over
  // meanwhile (the result is then not stored).
  void Finish(const Lease& lease, StoredResponse response,
              const EnginePolicy& policy, Callback<Result<FinishOutcome>> done);

  // Gives the key up after a failed execution so a retry runs it again.
  void Abandon(const Lease& lease, Callback<Status> done);

  // Keeps a long execution's lease alive; returns the new expiry.
  void Extend(const Lease& lease, const EnginePolicy& policy,
              Callback<Result<int64_t>> done);

  // Saves a recovery point for a multi-phase operation.
  void Checkpoint(const Lease& lease, RecoveryPoint recovery,
                  Callback<Status> done);

  Result<Decision> BeginSync(std::string scope_key, std::string fingerprint,
                             const EnginePolicy& policy);
  Result<FinishOutcome> FinishSync(const Lease& lease, StoredResponse response,
                                   const EnginePolicy& policy);
  Status AbandonSync(const Lease& lease);
  Result<int64_t> ExtendSync(const Lease& lease, const EnginePolicy& policy);
  Status CheckpointSync(const Lease& lease, RecoveryPoint recovery);

 private:
  struct WaitState;
  void BeginAttempt(std::shared_ptr<WaitState> state);
  Decision Decide(BeginResult result) const;

  std::shared_ptr<Store> store_;
  std::shared_ptr<Clock> clock_;
};

}  // namespace idem
