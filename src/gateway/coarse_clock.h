// CoarseClock: CLOCK_MONOTONIC_COARSE as a std::chrono clock.
//
// Its resolution is the kernel tick (a few milliseconds), and reading it
// costs a few nanoseconds even in a virtual machine, where steady_clock may
// cost a hundred. Connection deadlines are set several times per request
// and only need to be as precise as the watchdog's tick.
#pragma once

#include <time.h>

#include <chrono>

namespace idem::gateway {

struct CoarseClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<CoarseClock>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point(std::chrono::seconds(ts.tv_sec) +
                      std::chrono::nanoseconds(ts.tv_nsec));
  }
};

}  // namespace idem::gateway
