// Turns a callback-style call into a blocking one without a heap
// allocation: the result slot lives on the caller's stack. The callback
// notifies while holding the mutex, so the waiting thread cannot return and
// destroy the slot before the callback is done touching it.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <utility>

namespace idem::internal {

template <typename T, typename Start>
T WaitFor(Start&& start) {
  std::optional<T> slot;
  std::mutex mutex;
  std::condition_variable cv;
  start([&slot, &mutex, &cv](T value) {
    std::lock_guard lock(mutex);
    slot.emplace(std::move(value));
    cv.notify_one();
  });
  std::unique_lock lock(mutex);
  cv.wait(lock, [&slot] { return slot.has_value(); });
  return std::move(*slot);
}

}  // namespace idem::internal
