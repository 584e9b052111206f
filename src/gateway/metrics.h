// Metrics: request outcomes and latency histograms, rendered in the
// Prometheus text format (every name starts with idem_).
//
// Recording is lock-free and cheap enough for every request: relaxed atomic
// adds on per-thread shards (each on its own cache lines), summed only when
// /metrics is rendered. All members are thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "idem/store.h"

namespace idem::gateway {

// How the gateway handled one request (the `outcome` label).
enum class Outcome : uint8_t {
  kForwarded,      // not covered, or no key and none required: passed through
  kExecuted,       // a lease was taken and the upstream ran
  kReplayed,       // a stored response was sent back
  kConflict,       // 409: the key is in flight
  kMismatch,       // 422: the key belongs to another request
  kInvalidKey,     // 400: malformed or repeated key header
  kMissingKey,     // 400: the route requires a key
  kInvalidBody,    // 400: not JSON in a json/fields fingerprint mode
  kStoreError,     // 503: the store failed and on_store_error = "reject"
  kUnprotected,    // the store failed and on_store_error = "pass" forwarded it
  kLeaseLost,      // executed, but another owner took the key over meanwhile
  kUpstreamError,  // 502/504 from the gateway
  kRejected,       // 400/408/413/431: refused before any idempotency step
};
inline constexpr size_t kOutcomeCount = 13;
std::string_view OutcomeName(Outcome outcome);

// Store calls timed by idem_store_duration_seconds{op=...}.
enum class StoreOp : uint8_t { kBegin, kFinish, kAbandon, kExtend };
inline constexpr size_t kStoreOpCount = 4;
std::string_view StoreOpName(StoreOp op);

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  void CountRequest(Outcome outcome);
  void ObserveStore(StoreOp op, std::chrono::nanoseconds duration);
  void CountStoreError(StoreOp op);
  void ObserveUpstream(std::chrono::nanoseconds duration);
  void ConnectionOpened();
  void ConnectionClosed();

  // Sums over all shards (for tests and the renderer).
  uint64_t RequestCount(Outcome outcome) const;
  uint64_t StoreErrorCount(StoreOp op) const;
  uint64_t UpstreamObservationCount() const;

  std::string RenderPrometheus() const;
  // Appends the store backend's own numbers as `idem_store_<name>`.
  static void RenderStoreMetrics(std::string& out, const std::vector<StoreMetric>& metrics);

  // Upper bounds of the histogram buckets, in seconds (+Inf is implicit).
  static constexpr std::array<double, 17> kBucketBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};

 private:
  struct Histogram {
    std::array<std::atomic<uint64_t>, kBucketBounds.size() + 1> buckets{};
    std::atomic<uint64_t> sum_ns{0};
    void Observe(std::chrono::nanoseconds duration);
  };
  struct alignas(64) Shard {
    std::array<std::atomic<uint64_t>, kOutcomeCount> requests{};
    std::array<std::atomic<uint64_t>, kStoreOpCount> store_errors{};
    std::array<Histogram, kStoreOpCount> store{};
    Histogram upstream;
  };
  static constexpr size_t kShards = 16;

  Shard& LocalShard();
  void RenderHistogram(std::string& out, std::string_view name, std::string_view labels,
                       const std::array<const Histogram*, kShards>& parts) const;

  std::array<Shard, kShards> shards_;
  std::atomic<int64_t> connections_{0};
};

}  // namespace idem::gateway
