#include "stores/wrappers/timer_queue.h"

#include <utility>
#include <vector>

namespace idem::stores {
namespace {

// How long the thread sleeps with nothing to do. Schedule wakes it only for
// an entry due before it would wake anyway, so a steady stream of calls
// with the same time-out costs no wake-ups (a futex call and a context
// switch each, most of a call's cost otherwise).
constexpr std::chrono::milliseconds kIdleTick{200};

}  // namespace

TimerQueue::TimerQueue() : thread_([this] { Run(); }) {}

TimerQueue::~TimerQueue() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  // Whatever is still pending runs now, outside the lock.
  std::vector<std::function<void()>> pending;
  for (auto& [when, entry] : entries_) pending.push_back(std::move(entry.second));
  entries_.clear();
  by_id_.clear();
  for (auto& fn : pending) fn();
}

uint64_t TimerQueue::Schedule(Clock::time_point when, std::function<void()> fn) {
  uint64_t id = 0;
  bool sooner = false;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
    auto it = entries_.emplace(when, std::make_pair(id, std::move(fn)));
    by_id_.emplace(id, it);
    sooner = when < wake_at_;
    if (sooner) wake_at_ = when;
  }
  if (sooner) wake_.notify_one();
  return id;
}

void TimerQueue::Cancel(uint64_t id) {
  std::function<void()> dropped;  // destroyed outside the lock
  std::lock_guard lock(mutex_);
  auto found = by_id_.find(id);
  if (found == by_id_.end()) return;
  dropped = std::move(found->second->second.second);
  entries_.erase(found->second);
  by_id_.erase(found);
}

void TimerQueue::Run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    const auto now = Clock::now();
    if (entries_.empty() || entries_.begin()->first > now) {
      wake_at_ = entries_.empty() ? now + kIdleTick : entries_.begin()->first;
      wake_.wait_until(lock, wake_at_);
      continue;
    }
    const auto first = entries_.begin();
    std::function<void()> fn = std::move(first->second.second);
    by_id_.erase(first->second.first);
    entries_.erase(first);
    lock.unlock();
    fn();
    fn = nullptr;
    lock.lock();
  }
}

}  // namespace idem::stores
