#include "lib/lease_keeper.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <utility>

namespace idem::internal {
namespace {

using Steady = std::chrono::steady_clock;

Steady::duration IntervalFor(int64_t lease_ttl_ms) {
  return std::chrono::milliseconds(std::max<int64_t>(1, lease_ttl_ms / 3));
}

}  // namespace

// Shared with the Extend callbacks, which may run after the keeper is gone.
struct LeaseKeeper::State {
  struct Entry {
    Lease lease;
    int64_t lease_ttl_ms;
    Steady::time_point due;
  };
  mutable std::mutex mutex;
  std::condition_variable wake;
  std::map<uint64_t, Entry> entries;
  std::set<uint64_t> lost;
  uint64_t next_handle = 1;
  bool stop = false;
};

LeaseKeeper::LeaseKeeper(std::shared_ptr<Engine> engine)
    : engine_(std::move(engine)), state_(std::make_shared<State>()) {}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stop = true;
  }
  state_->wake.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t LeaseKeeper::Add(const Lease& lease, int64_t lease_ttl_ms) {
  std::lock_guard lock(state_->mutex);
  const uint64_t handle = state_->next_handle++;
  state_->entries.emplace(
      handle,
      State::Entry{lease, lease_ttl_ms, Steady::now() + IntervalFor(lease_ttl_ms)});
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  state_->wake.notify_all();
  return handle;
}

void LeaseKeeper::Remove(uint64_t handle) {
  std::lock_guard lock(state_->mutex);
  state_->entries.erase(handle);
  state_->lost.erase(handle);
}

bool LeaseKeeper::Lost(uint64_t handle) const {
  std::lock_guard lock(state_->mutex);
  return state_->lost.count(handle) != 0;
}

void LeaseKeeper::Loop() {
  std::unique_lock lock(state_->mutex);
  while (!state_->stop) {
    Steady::time_point next = Steady::time_point::max();
    for (const auto& [handle, entry] : state_->entries) next = std::min(next, entry.due);
    if (next == Steady::time_point::max()) {
      state_->wake.wait(lock);
      continue;
    }
    if (Steady::now() < next) {
      state_->wake.wait_until(lock, next);
      continue;
    }
    const auto now = Steady::now();
    std::vector<std::pair<uint64_t, State::Entry>> due;
    for (auto& [handle, entry] : state_->entries) {
      if (entry.due <= now) {
        entry.due = now + IntervalFor(entry.lease_ttl_ms);
        due.emplace_back(handle, entry);
      }
    }
    lock.unlock();
    for (auto& [handle, entry] : due) {
      EnginePolicy policy;
      policy.lease_ttl_ms = entry.lease_ttl_ms;
      engine_->Extend(entry.lease, policy,
                      [state = state_, handle = handle](Result<int64_t> extended) {
                        if (extended.ok()) return;
                        const StatusCode code = extended.status().code();
                        if (code != StatusCode::kLeaseLost &&
                            code != StatusCode::kFailedPrecondition) {
                          return;  // transient: try again next interval
                        }
                        std::lock_guard inner(state->mutex);
                        if (state->entries.erase(handle) != 0) state->lost.insert(handle);
                      });
    }
    lock.lock();
  }
}

}  // namespace idem::internal
