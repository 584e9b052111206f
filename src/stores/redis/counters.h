// Counters of one Redis store, for Store::Metrics. Bumped from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace idem::redis_internal {

struct Counters {
  std::atomic<uint64_t> cache_hits{0};      // Begin answered from the cache
  std::atomic<uint64_t> reconnects{0};      // connections back after a loss
  std::atomic<uint64_t> notifications{0};   // events heard on the channel
  std::atomic<uint64_t> script_reloads{0};  // NOSCRIPT answered with EVAL
  std::atomic<uint64_t> redirections{0};    // MOVED and ASK followed
};

}  // namespace idem::redis_internal
