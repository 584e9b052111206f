// Clock: the wall clock that lease and TTL expiry are judged by.
//
// Stores and the engine never call the system clock directly; they take a
// Clock so tests can move time by hand instead of sleeping. Times are
// milliseconds since the Unix epoch. Implementations are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace idem {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
};

// The process-wide system clock (std::chrono::system_clock).
std::shared_ptr<Clock> SystemClock();

// A clock that only moves when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t NowMs() const override { return now_.load(std::memory_order_acquire); }
  void AdvanceMs(int64_t delta) { now_.fetch_add(delta, std::memory_order_acq_rel); }
  void SetMs(int64_t now) { now_.store(now, std::memory_order_release); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace idem
