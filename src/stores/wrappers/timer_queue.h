// TimerQueue: runs functions at given times on one thread of its own. The
// fault-injecting store delays answers with it and the deadline store
// fails calls that take too long; neither may block the caller's thread,
// and neither has an event loop to borrow (stores are loop-agnostic).
//
// Schedule returns an id that Cancel takes; cancelling an entry that has
// run, or was cancelled, is a no-op. Destruction runs every pending entry
// at once (callers rely on it to keep "every callback runs exactly once").
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace idem::stores {

class TimerQueue {
 public:
  using Clock = std::chrono::steady_clock;

  TimerQueue();
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `fn` on the queue's thread at `when` (at once if it has passed).
  // Ids start at 1.
  uint64_t Schedule(Clock::time_point when, std::function<void()> fn);
  void Cancel(uint64_t id);

 private:
  using Entries = std::multimap<Clock::time_point, std::pair<uint64_t, std::function<void()>>>;
  void Run();

  std::mutex mutex_;
  std::condition_variable wake_;
  Entries entries_;
  std::unordered_map<uint64_t, Entries::iterator> by_id_;
  uint64_t next_id_ = 1;
  Clock::time_point wake_at_{};  // when the thread wakes by itself
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace idem::stores
