// Record: what a store keeps for one scope key.
//
// A record is either in flight (an owner holds a lease and is executing the
// operation) or completed (the response is stored and replayed to every
// retry). Records are immutable values once handed out by a store
// (RecordPtr is a pointer to const), so they can be shared across threads
// without copying a stored response body.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace idem {

enum class RecordState : uint8_t { kInFlight = 1, kCompleted = 2 };

// A stored HTTP-like response: status, header lines in order, body bytes.
// Library users that are not HTTP put their result in `body` and may leave
// the rest empty.
struct StoredResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  friend bool operator==(const StoredResponse&, const StoredResponse&) = default;
};

// A recovery point saved by Checkpoint on an in-flight record: the name of
// the last finished phase and the state the next phase needs.
struct RecoveryPoint {
  std::string phase;  // empty: no phase finished yet
  std::string state;

  bool empty() const { return phase.empty(); }
  friend bool operator==(const RecoveryPoint&, const RecoveryPoint&) = default;
};

struct Record {
  std::string key;          // the scope key
  RecordState state = RecordState::kInFlight;
  std::string fingerprint;  // raw SHA-256 bytes, or empty (mode "none")

  // Lease (meaningful while in flight; kept for inspection once completed).
  std::string owner;             // token of the lease holder
  uint64_t fence = 0;            // 1 for the first owner, +1 per takeover
  int64_t lease_expires_at_ms = 0;

  RecoveryPoint recovery;  // in flight: the last saved recovery point
  StoredResponse response;  // completed: what every retry gets

  int64_t created_at_ms = 0;
  // The record counts as absent from this moment on, whatever its state.
  // In flight: at least the lease expiry (abandoned leases age out);
  // completed: completion time + ttl.
  int64_t expires_at_ms = 0;

  bool IsExpired(int64_t now_ms) const { return now_ms >= expires_at_ms; }
  bool LeaseExpired(int64_t now_ms) const {
    return state == RecordState::kInFlight && now_ms >= lease_expires_at_ms;
  }

  friend bool operator==(const Record&, const Record&) = default;
};

using RecordPtr = std::shared_ptr<const Record>;

}  // namespace idem
