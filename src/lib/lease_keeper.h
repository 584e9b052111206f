// LeaseKeeper: keeps the leases of running executions alive.
//
// Each added lease is extended every lease_ttl_ms / 3 (at least every
// millisecond) by one helper thread, started on the first Add, until it is
// removed or an Extend reports that the lease is gone. Extend is called
// asynchronously, so the helper thread never blocks on the store and the
// destructor (which joins it) returns promptly. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "idem/engine.h"

namespace idem::internal {

class LeaseKeeper {
 public:
  explicit LeaseKeeper(std::shared_ptr<Engine> engine);
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // Starts extending `lease` by `lease_ttl_ms`; returns a handle for Remove.
  uint64_t Add(const Lease& lease, int64_t lease_ttl_ms);
  // Stops extending it. Unknown handles are ignored.
  void Remove(uint64_t handle);

  // The lease was lost (an Extend answered kLeaseLost or
  // kFailedPrecondition) while it was being kept.
  bool Lost(uint64_t handle) const;

 private:
  struct State;
  void Loop();

  std::shared_ptr<Engine> engine_;
  std::shared_ptr<State> state_;
  std::thread thread_;  // guarded by state_->mutex until started
};

// Removes a lease from a keeper when it goes out of scope.
class KeptLease {
 public:
  KeptLease(LeaseKeeper* keeper, const Lease& lease, int64_t lease_ttl_ms)
      : keeper_(keeper), handle_(keeper ? keeper->Add(lease, lease_ttl_ms) : 0) {}
  ~KeptLease() { Stop(); }
  KeptLease(const KeptLease&) = delete;
  KeptLease& operator=(const KeptLease&) = delete;

  void Stop() {
    if (keeper_ != nullptr) keeper_->Remove(handle_);
    keeper_ = nullptr;
  }

 private:
  LeaseKeeper* keeper_;
  uint64_t handle_;
};

}  // namespace idem::internal
