// Reading the replies of the store's commands into Store results. Pure
// functions, thread-safe. `reply` is only read when `status` is ok.
#pragma once

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <string_view>

#include "idem/record.h"
#include "idem/status.h"
#include "idem/store.h"

namespace idem::redis_internal {

struct WatchResult {
  enum class State { kGone, kInFlight, kCompleted };
  State state = State::kGone;
  RecordPtr record;  // kCompleted
};

// `status` itself, or the Status of a Redis error reply.
Status CheckReply(const redisReply* reply, const Status& status);

// An owner-checked script's answer (Complete, Release, Extend, Checkpoint).
Status OwnerReply(const redisReply* reply, const Status& status);

// A record as a script returns it: a lease string (in flight) or the fields
// of a hash (completed, or in flight in the older layout).
Result<RecordPtr> RecordFromReply(const redisReply* element,
                                  const std::string& scope_key);

// The Begin script's answer; `fresh` is the record a new key gets.
Result<BeginResult> BeginReply(const redisReply* reply, const Status& status,
                               const std::shared_ptr<Record>& fresh);

// The Get script's answer: kNotFound when absent or expired at `now_ms`.
Result<RecordPtr> GetReply(const redisReply* reply, const Status& status,
                           const std::string& scope_key, int64_t now_ms);

// The Watch script's answer.
Result<WatchResult> WatchReply(const redisReply* reply, const Status& status,
                               const std::string& scope_key);

// The Delete script's answer: ok, or kNotFound when there was no live record.
Status DeleteReply(const redisReply* reply, const Status& status);

// The Sweep script's answer: whether it removed the record.
Result<bool> SweepReply(const redisReply* reply, const Status& status);

}  // namespace idem::redis_internal
