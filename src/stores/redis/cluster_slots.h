// The Redis Cluster slot map: CRC16 key slots with hash tags, the parsed
// CLUSTER SLOTS reply, and MOVED/ASK redirections. Values only; a Topology is
// immutable once built, so it is shared between threads by shared_ptr.
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "idem/status.h"
#include "stores/redis/endpoint.h"

namespace idem::redis_internal {

inline constexpr int kClusterSlots = 16384;

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as Redis uses it.
uint16_t Crc16(std::string_view data);

// The slot of a key: CRC16 of the hash tag ("{...}", the first '{' up to the
// next '}', when non-empty) or else of the whole key, modulo 16384.
uint16_t KeySlot(std::string_view key);

struct SlotRange {
  int first = 0;
  int last = 0;
  Endpoint master;
};

// Reads a CLUSTER SLOTS reply. A master announced without a host ("" or
// "?") is reachable at the host of `asked`, the node that answered.
Result<std::vector<SlotRange>> ParseClusterSlots(const redisReply* reply,
                                                 const Endpoint& asked);

class Topology {
 public:
  // kUnavailable when the ranges leave a slot unserved.
  static Result<std::shared_ptr<const Topology>> FromRanges(
      const std::vector<SlotRange>& ranges);

  const Endpoint& MasterFor(uint16_t slot) const { return masters_[slot_master_[slot]]; }
  // The index of that master in masters().
  size_t MasterIndexFor(uint16_t slot) const { return slot_master_[slot]; }
  const std::vector<Endpoint>& masters() const { return masters_; }

  // A copy in which `slot` is served by `master` (after a MOVED reply).
  std::shared_ptr<const Topology> WithSlot(uint16_t slot, const Endpoint& master) const;

 private:
  std::vector<Endpoint> masters_;
  std::vector<uint16_t> slot_master_;  // index into masters_, one per slot
};

struct Redirect {
  enum class Kind { kMoved, kAsk };
  Kind kind = Kind::kMoved;
  uint16_t slot = 0;
  Endpoint to;
};

// "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381" (an empty host
// means the host of `from`); nullopt for any other error.
std::optional<Redirect> ParseRedirect(std::string_view error, const Endpoint& from);

}  // namespace idem::redis_internal
