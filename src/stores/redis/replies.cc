#include "stores/redis/replies.h"

#include "stores/redis/command.h"
#include "stores/redis/lease_blob.h"
#include "stores/redis/lua_scripts.h"
#include "stores/redis/record_fields.h"

namespace idem::redis_internal {
namespace {

Status Unexpected(std::string_view what) {
  return Internal("redis: unexpected reply from the " + std::string(what) + " script");
}

}  // namespace

Status CheckReply(const redisReply* reply, const Status& status) {
  if (!status.ok()) return status;
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReplyStatus(reply);
  return Status::Ok();
}

Status OwnerReply(const redisReply* reply, const Status& status) {
  Status checked = CheckReply(reply, status);
  if (!checked.ok()) return checked;
  if (reply->type != REDIS_REPLY_INTEGER) return Unexpected("owner check");
  switch (reply->integer) {
    case kOwnerOk:
      return Status::Ok();
    case kOwnerGone:
      return LeaseLost("the record is gone (expired, released or deleted)");
    case kOwnerOther:
      return LeaseLost("the lease was taken over by another owner");
    case kOwnerCompleted:
      return FailedPrecondition("the record is already completed");
    case kOwnerMalformed:
      return DataLoss("the redis record is not an idem record of this layout");
    default:
      return Unexpected("owner check");
  }
}

Result<RecordPtr> RecordFromReply(const redisReply* element,
                                  const std::string& scope_key) {
  if (element->type == REDIS_REPLY_STRING) {
    return DecodeLease(std::string_view(element->str, element->len), scope_key);
  }
  return RecordFromFields(element, scope_key);
}

Result<BeginResult> BeginReply(const redisReply* reply, const Status& status,
                               const std::shared_ptr<Record>& fresh) {
  Status checked = CheckReply(reply, status);
  if (!checked.ok()) return checked;
  if (reply->type == REDIS_REPLY_INTEGER && reply->integer == kBeginAcquired) {
    return BeginResult{BeginOutcome::kAcquired, fresh};
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER) {
    return Unexpected("begin");
  }
  auto record = RecordFromReply(reply->element[1], fresh->key);
  if (!record.ok()) return record.status();
  switch (reply->element[0]->integer) {
    case kBeginAcquired:
      return BeginResult{BeginOutcome::kAcquired, *record};
    case kBeginInFlight:
      return BeginResult{BeginOutcome::kInFlight, *record};
    case kBeginCompleted:
      return BeginResult{BeginOutcome::kCompleted, *record};
    case kBeginMismatch:
      return BeginResult{BeginOutcome::kMismatch, *record};
    default:
      return Unexpected("begin");
  }
}

Result<RecordPtr> GetReply(const redisReply* reply, const Status& status,
                           const std::string& scope_key, int64_t now_ms) {
  Status checked = CheckReply(reply, status);
  if (!checked.ok()) return checked;
  if (reply->type == REDIS_REPLY_INTEGER && reply->integer == kGetAbsent) {
    return NotFound("no record for this key");
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER) {
    return Unexpected("get");
  }
  auto record = RecordFromReply(reply->element[1], scope_key);
  if (!record.ok()) return record.status();
  if ((*record)->IsExpired(now_ms)) return NotFound("no record for this key");
  return record;
}

Result<WatchResult> WatchReply(const redisReply* reply, const Status& status,
                               const std::string& scope_key) {
  Status checked = CheckReply(reply, status);
  if (!checked.ok()) return checked;
  WatchResult result;
  if (reply->type == REDIS_REPLY_INTEGER) {
    switch (reply->integer) {
      case kWatchGone:
        result.state = WatchResult::State::kGone;
        return result;
      case kWatchInFlight:
        result.state = WatchResult::State::kInFlight;
        return result;
      default:
        return Unexpected("watch");
    }
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER ||
      reply->element[0]->integer != kWatchCompleted) {
    return Unexpected("watch");
  }
  auto record = RecordFromFields(reply->element[1], scope_key);
  if (!record.ok()) return record.status();
  result.state = WatchResult::State::kCompleted;
  result.record = *record;
  return result;
}

Status DeleteReply(const redisReply* reply, const Status& status) {
  Status checked = CheckReply(reply, status);
  if (!checked.ok()) return checked;
  if (reply->type != REDIS_REPLY_INTEGER) return Unexpected("delete");
  return reply->integer == 0 ? Status::Ok() : NotFound("no record for this key");
}

Result<bool> SweepReply(const redisReply* reply, const Status& status) {
  Status checked = CheckReply(reply, status);
  if (!checked.ok()) return checked;
  if (reply->type != REDIS_REPLY_INTEGER) return Unexpected("sweep");
  return reply->integer == 1;
}

}  // namespace idem::redis_internal
