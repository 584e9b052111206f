// Store: the durable home of idempotency records, and its state machine.
//
//            Begin (new key, or lease expired)
//   absent ──────────────────────────────────► in_flight{owner, fence, lease}
//     ▲   Release(owner) / expiry                 │ Complete(owner, response)
//     └───────────────────────────────────────────┤
//                                                 ▼
//                               completed{response, expires_at} ─► absent
//                                            (expiry / Delete)
//
// Every operation is atomic inside the store (never a read followed by a
// separate write). Owner-checked operations (Complete, Release, Extend,
// Checkpoint) fail with kLeaseLost when the record is gone or belongs to
// another owner, so a stale owner never overwrites the current one's work.
// Expiry is judged from the record's own timestamps against the store's
// Clock, whatever a backend's native TTL does.
//
// The interface is asynchronous: each call takes a callback that runs
// exactly once, on whatever thread the backend completes on (the memory
// store runs it inline, before the call returns). The *Sync helpers at the
// bottom block the calling thread instead. Implementations are thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "idem/record.h"
#include "idem/status.h"

namespace idem {

template <typename T>
using Callback = std::function<void(T)>;

struct BeginRequest {
  std::string key;
  std::string fingerprint;  // compared with the stored one; empty matches empty
  std::string owner;        // token that identifies this lease holder
  int64_t lease_ttl_ms = 10'000;
  // How long the record lives in the store: the in-flight record expires at
  // max(lease expiry, now + ttl_ms), so an abandoned lease keeps its fence
  // and recovery point for a later takeover.
  int64_t ttl_ms = 86'400'000;
};

enum class BeginOutcome {
  kAcquired,   // the caller owns a lease and must execute the operation
  kInFlight,   // another owner holds a live lease
  kCompleted,  // the stored response is ready to replay
  kMismatch,   // the key is taken by a request with another fingerprint
};

struct BeginResult {
  BeginOutcome outcome = BeginOutcome::kAcquired;
  // kAcquired: the new in-flight record (owner, fence, lease expiry, and the
  // recovery point handed over by an expired lease that was taken over).
  // Other outcomes: the record as it is stored.
  RecordPtr record;
};

struct CompleteRequest {
  std::string key;
  std::string owner;
  StoredResponse response;
  int64_t ttl_ms = 86'400'000;  // how long the response is replayed
};

// One number a backend reports about itself (group commits, rows reaped,
// cache hits...). The gateway renders it on /metrics as `idem_store_<name>`.
struct StoreMetric {
  enum class Kind { kCounter, kGauge };
  std::string name;  // [a-z_]+; counters end in "_total"
  std::string help;  // one line
  Kind kind = Kind::kCounter;
  double value = 0;
};

struct CheckpointRequest {
  std::string key;
  std::string owner;
  RecoveryPoint recovery;
};

class Store {
 public:
  virtual ~Store() = default;

  // Takes the key, or reports who has it. Atomic.
  virtual void Begin(BeginRequest request, Callback<Result<BeginResult>> done) = 0;

  // Stores the response; the record becomes completed. Owner-checked.
  virtual void Complete(CompleteRequest request, Callback<Status> done) = 0;

  // Gives the key up (the record is deleted) so a retry executes again.
  // Owner-checked.
  virtual void Release(std::string key, std::string owner,
                       Callback<Status> done) = 0;

  // Moves the lease expiry to now + lease_ttl_ms and returns it.
  // Owner-checked; allowed while no one has taken the lease over.
  virtual void Extend(std::string key, std::string owner, int64_t lease_ttl_ms,
                      Callback<Result<int64_t>> done) = 0;

  // Saves a recovery point on the in-flight record. Owner-checked.
  virtual void Checkpoint(CheckpointRequest request, Callback<Status> done) = 0;

  // The live record, or kNotFound when absent or expired.
  virtual void Get(std::string key, Callback<Result<RecordPtr>> done) = 0;

  // Removes a record whatever its state (admin purge). kNotFound if absent.
  virtual void Delete(std::string key, Callback<Status> done) = 0;

  // Removes up to `limit` expired records; returns how many it removed.
  virtual void Sweep(size_t limit, Callback<Result<size_t>> done) = 0;

  // Waits until the record is no longer in flight or `timeout` passes.
  // Returns the completed record; kNotFound when the key became absent
  // (released, deleted or expired: the caller may Begin again);
  // kDeadlineExceeded on time-out. Returns at once if the record is not in
  // flight when called.
  virtual void WaitForCompletion(std::string key,
                                 std::chrono::milliseconds timeout,
                                 Callback<Result<RecordPtr>> done) = 0;

  // Whether the store answers (for /readyz).
  virtual void Ping(Callback<Status> done) = 0;

  // The backend's own counters and gauges, read without blocking (for
  // /metrics). Default: none.
  virtual std::vector<StoreMetric> Metrics() const { return {}; }
};

// Blocking forms for plain programs and tests. They wait on the calling
// thread for the callback; never call them on a thread the backend needs to
// complete the call (e.g. its own event loop).
Result<BeginResult> BeginSync(Store& store, BeginRequest request);
Status CompleteSync(Store& store, CompleteRequest request);
Status ReleaseSync(Store& store, std::string key, std::string owner);
Result<int64_t> ExtendSync(Store& store, std::string key, std::string owner,
                           int64_t lease_ttl_ms);
Status CheckpointSync(Store& store, CheckpointRequest request);
Result<RecordPtr> GetSync(Store& store, std::string key);
Status DeleteSync(Store& store, std::string key);
Result<size_t> SweepSync(Store& store, size_t limit);
Result<RecordPtr> WaitForCompletionSync(Store& store, std::string key,
                                        std::chrono::milliseconds timeout);
Status PingSync(Store& store);

}  // namespace idem
