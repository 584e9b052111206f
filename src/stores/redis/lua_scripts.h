// The Lua scripts behind every RedisStore operation, and their SHA-1 digests
// for EVALSHA. Each script touches only KEYS[1] (cluster-safe) and takes
// ARGV[1] = now (ms, from the store's Clock) and ARGV[2] = the completion
// channel; the record layout and the reply of each script are documented in
// docs/stores.md and in lua_scripts.cc.
#pragma once

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

struct LuaScript {
  std::string_view name;
  std::string body;
  std::string sha1;  // lower-case hex, as EVALSHA wants it
};

// Built once, on first use; thread-safe.
const LuaScript& Script(ScriptId id);

// Owner-checked scripts (Complete, Release, Extend, Checkpoint) answer one of
// these integers.
enum OwnerCheck : long long {
  kOwnerOk = 0,
  kOwnerGone = 1,       // absent or expired
  kOwnerOther = 2,      // taken over by another owner
  kOwnerCompleted = 3,  // already completed
};

// Begin answers {outcome} (a new record: nothing else to say) or
// {outcome, fields...}; Watch answers {state} or {state, fields...}.
enum BeginCode : long long {
  kBeginAcquired = 1,
  kBeginInFlight = 2,
  kBeginCompleted = 3,
  kBeginMismatch = 4,
};
enum WatchCode : long long {
  kWatchGone = 0,
  kWatchInFlight = 2,
  kWatchCompleted = 3,
};

}  // namespace idem::redis_internal
