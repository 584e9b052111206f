// The Lua scripts behind the RedisStore operations that must decide and
// write atomically, and their SHA-1 digests for EVALSHA. Each script touches
// only KEYS[1] (cluster-safe) and takes ARGV[1] = now (ms, from the store's
// Clock). The record layout and the reply of each script are documented in
// docs/stores.md and in lua_scripts.cc. A new key needs no script: Begin
// first tries a plain SET NX GET.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace idem::redis_internal {

enum class ScriptId {
  kBegin,
  kComplete,
  kRelease,
  kExtend,
  kCheckpoint,
  kGet,
  kDelete,
  kWatch,
  kSweep,
};
inline constexpr size_t kScriptCount = 9;

struct LuaScript {
  std::string_view name;
  std::string body;
  std::string sha1;  // lower-case hex, as EVALSHA wants it
};

// The scripts of one store. The notification channel is written into the
// scripts as a literal rather than passed with every call (one argument
// less to convert per call), so stores with different key prefixes run
// different scripts. Immutable once built; thread-safe.
class ScriptSet {
 public:
  explicit ScriptSet(std::string_view channel);

  const LuaScript& operator[](ScriptId id) const {
    return scripts_[static_cast<size_t>(id)];
  }

 private:
  std::array<LuaScript, kScriptCount> scripts_;
};

// What the scripts publish on the channel: one event letter, then the
// record's Redis key.
inline constexpr char kEventWatchedEnded = 'w';  // a watched flight ended
inline constexpr char kEventDeleted = 'd';       // Store::Delete, whatever the state
// Published by the store itself to check that its subscription still hears
// the channel; nobody acts on it.
inline constexpr char kEventHeartbeat = 'h';

// Owner-checked scripts (Complete, Release, Extend, Checkpoint) answer one of
// these integers.
enum OwnerCheck : long long {
  kOwnerOk = 0,
  kOwnerGone = 1,       // absent or expired
  kOwnerOther = 2,      // taken over by another owner
  kOwnerCompleted = 3,  // already completed
  kOwnerMalformed = 4,  // not a record of this layout
};

// Begin answers the integer 1 (the new lease is in place) or {outcome,
// lease string or hash fields}; Watch answers an integer state or
// {3, hash fields}; Get answers 0 or {kind, lease string or hash fields}.
enum BeginCode : long long {
  kBeginAcquired = 1,
  kBeginInFlight = 2,
  kBeginCompleted = 3,
  kBeginMismatch = 4,
};
enum GetCode : long long {
  kGetAbsent = 0,
  kGetHash = 1,
  kGetLease = 2,
};
enum WatchCode : long long {
  kWatchGone = 0,
  kWatchInFlight = 2,
  kWatchCompleted = 3,
};

}  // namespace idem::redis_internal
