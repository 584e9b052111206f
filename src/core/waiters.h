// In-process waiters for Store::WaitForCompletion, shared by the stores
// that wake their own callers (memory, RocksDB).
//
// A store keeps a list of Waiter per key under its own lock, moves the
// key's list into a Wakeup when the record completes or goes away, and
// runs the Wakeup once the lock is dropped (a callback may re-enter the
// store). WaitTimer fails the waits whose deadline passes. WaitTimer is
// thread-safe; Waiter and Wakeup are plain values guarded by their owner.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "idem/record.h"
#include "idem/status.h"
#include "idem/store.h"

namespace idem::internal {

using WaitCallback = Callback<Result<RecordPtr>>;

struct Waiter {
  uint64_t id;
  WaitCallback done;
};

// Waiters to call once the store's lock is dropped.
struct Wakeup {
  std::vector<Waiter> waiters;
  // What they get; unset: the record is gone (kNotFound). Made only when
  // there is someone to tell: most store operations wake nobody.
  std::optional<Result<RecordPtr>> result;

  void Run() {
    if (waiters.empty()) return;
    const Result<RecordPtr> answer = result ? *result : NotFound("record is gone");
    for (auto& waiter : waiters) waiter.done(answer);
  }
};

// One thread that fails waits whose time-out has passed. It only holds
// (deadline, shard, key, id): a waiter already woken is simply not found.
// The thread starts with the first Schedule and stops in the destructor.
class WaitTimer {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  using Expire = std::function<void(size_t shard, const std::string& key, uint64_t id)>;

  explicit WaitTimer(Expire expire) : expire_(std::move(expire)) {}

  WaitTimer(const WaitTimer&) = delete;
  WaitTimer& operator=(const WaitTimer&) = delete;

  ~WaitTimer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void Schedule(SteadyTime deadline, size_t shard, std::string key, uint64_t id) {
    {
      std::lock_guard lock(mutex_);
      if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
      queue_.push(Entry{deadline, shard, std::move(key), id});
    }
    cv_.notify_all();
  }

 private:
  struct Entry {
    SteadyTime deadline;
    size_t shard;
    std::string key;
    uint64_t id;
    bool operator>(const Entry& other) const { return deadline > other.deadline; }
  };

  void Loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (queue_.empty()) {
        cv_.wait(lock);
        continue;
      }
      const SteadyTime next = queue_.top().deadline;
      if (std::chrono::steady_clock::now() < next) {
        cv_.wait_until(lock, next);
        continue;
      }
      Entry entry = queue_.top();
      queue_.pop();
      lock.unlock();
      expire_(entry.shard, entry.key, entry.id);
      lock.lock();
    }
  }

  Expire expire_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace idem::internal
