// ExecutionLog counts how often the demo upstream executed a request, in
// total and per idempotency key, and keeps the headers of the most recent
// requests so tests can see what a proxy forwarded.
//
// Thread-safe: every method may be called from any io thread. The per-key
// state is sharded by key hash so io threads rarely contend. Headers are kept
// for the most recent kLastPerShard keys of each shard (and for the last
// request overall); counts are kept for every key until Reset().
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace idem::demo {

// What a request looked like when it reached the upstream: the method, the
// target and its header lines, kept as "Name: value\r\n" text.
struct RequestSnapshot {
  std::string method;
  std::string target;
  std::string header_lines;
  uint64_t body_bytes = 0;
};

class ExecutionLog {
 public:
  static constexpr size_t kShards = 16;
  static constexpr size_t kLastPerShard = 256;

  // One execution of a keyed request: its serial number (the "execution"
  // of the response body) and its Idempotency-Fence (0 when it had none).
  struct Execution {
    uint64_t serial = 0;
    uint64_t fence = 0;
  };
  // Executions kept per key for ExecutionsFor (the count goes on).
  static constexpr size_t kExecutionsPerKey = 64;

  // Records one execution. `key` is the normalized idempotency key, or
  // nullopt when the request carried none.
  void Record(std::optional<std::string_view> key, const RequestSnapshot& snapshot,
              Execution execution);

  uint64_t Total() const { return total_.load(std::memory_order_relaxed); }
  uint64_t CountFor(std::string_view key) const;
  // The first kExecutionsPerKey executions of `key`, in the order recorded.
  std::vector<Execution> ExecutionsFor(std::string_view key) const;

  // The last request carrying `key`, or the last request overall.
  std::optional<RequestSnapshot> LastFor(std::string_view key) const;
  std::optional<RequestSnapshot> Last() const;

  // Forgets every count and snapshot.
  void Reset();

 private:
  struct Snapshot {
    uint64_t seq = 0;
    RequestSnapshot request;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, uint64_t> counts;
    std::unordered_map<std::string, std::vector<Execution>> executions;
    // At most kLastPerShard entries; `order` says which is oldest.
    std::unordered_map<std::string, Snapshot> snapshots;
    std::deque<std::pair<std::string, uint64_t>> order;
    uint64_t next_seq = 1;
  };

  Shard& ShardFor(std::string_view key);
  const Shard& ShardFor(std::string_view key) const;

  std::atomic<uint64_t> total_{0};
  std::array<Shard, kShards> shards_;
  mutable std::mutex last_mu_;
  std::optional<RequestSnapshot> last_;
};

// Strips RFC 8941 string quoting from a key header value ("abc" -> abc,
// with \" and \\ unescaped) and surrounding white space, so the quoted and
// bare forms of a key count as one. Values that are not a valid quoted
// string are returned trimmed but otherwise unchanged.
std::string NormalizeKey(std::string_view header_value);

// Executions as JSON: [{"execution":N,"fence":F},...].
std::string ExecutionsJson(const std::vector<ExecutionLog::Execution>& executions);

// A snapshot as JSON: {"method":..,"target":..,"headers":[[name,value],..],
// "body_bytes":N}, headers in the order they arrived.
std::string SnapshotJson(const RequestSnapshot& snapshot);

}  // namespace idem::demo
