#include "stores/redis/begin_op.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "stores/redis/lease_blob.h"
#include "stores/redis/record_fields.h"
#include "stores/redis/replies.h"

namespace idem::redis_internal {
namespace {

// Timestamps stay below 2^52 ms so that Lua (doubles) handles them exactly.
constexpr int64_t kMaxTimeMs = int64_t{1} << 52;

int64_t AddMs(int64_t now, int64_t delta) {
  return std::clamp<int64_t>(now + std::clamp<int64_t>(delta, 0, kMaxTimeMs), 0,
                             kMaxTimeMs);
}

// A completed hash that vanished between SET NX GET and HGETALL (deleted,
// expired) sends Begin round again; after this many rounds, the script.
constexpr int kMaxPlainRounds = 3;

class BeginOp : public std::enable_shared_from_this<BeginOp> {
 public:
  BeginOp(StoreCore& core, BeginRequest request, Callback<Result<BeginResult>> done)
      : core_(core),
        now_(core.Now()),
        epoch_(core.CacheEpoch()),
        redis_key_(core.RedisKey(request.key)),
        done_(std::move(done)) {
    auto fresh = std::make_shared<Record>();
    fresh->key = std::move(request.key);
    fresh->state = RecordState::kInFlight;
    fresh->fingerprint = std::move(request.fingerprint);
    fresh->owner = std::move(request.owner);
    fresh->fence = 1;
    fresh->lease_expires_at_ms = AddMs(now_, request.lease_ttl_ms);
    fresh->created_at_ms = now_;
    fresh->expires_at_ms = AddMs(now_, std::max(request.lease_ttl_ms, request.ttl_ms));
    ttl_ = std::to_string(std::max<int64_t>(1, fresh->expires_at_ms - now_));
    lease_ = EncodeLease(*fresh);
    fresh_ = std::move(fresh);
  }

  void Start() {
    if (core_.caching()) {
      SetIfAbsent();
    } else {
      RunScript();
    }
  }

 private:
  void SetIfAbsent() {
    core_.Send(core_.KeyCommand(
        {"SET", redis_key_, lease_, "NX", "GET", "PX", ttl_}, redis_key_,
        [self = shared_from_this()](const redisReply* reply, Status status) {
          self->OnSet(reply, std::move(status));
        }));
  }

  void OnSet(const redisReply* reply, Status status) {
    if (!status.ok()) return Finish(std::move(status));
    switch (reply->type) {
      case REDIS_REPLY_NIL:
        return Finish(BeginResult{BeginOutcome::kAcquired, fresh_});
      case REDIS_REPLY_STRING: {
        auto lease = DecodeLease(std::string_view(reply->str, reply->len), fresh_->key);
        if (!lease.ok() || (*lease)->IsExpired(now_)) return RunScript();
        if ((*lease)->fingerprint != fresh_->fingerprint) {
          return Finish(BeginResult{BeginOutcome::kMismatch, *lease});
        }
        if (!(*lease)->LeaseExpired(now_)) {
          return Finish(BeginResult{BeginOutcome::kInFlight, *lease});
        }
        return RunScript();  // a lapsed lease: the script takes it over
      }
      case REDIS_REPLY_ERROR:
        if (IsErrorWithPrefix(reply, "WRONGTYPE")) return ReadHash();
        if (IsErrorWithPrefix(reply, "ERR syntax error")) {
          return Finish(Internal(
              "redis: SET with NX and GET was refused; the redis store needs Redis 7.0 "
              "or newer"));
        }
        return Finish(CheckReply(reply, status));
      default:
        return Finish(Internal("redis: unexpected reply to SET NX GET"));
    }
  }

  // The key holds a hash: a completed record, normally.
  void ReadHash() {
    core_.Send(core_.KeyCommand(
        {"HGETALL", redis_key_}, redis_key_,
        [self = shared_from_this()](const redisReply* reply, Status status) {
          self->OnHash(reply, std::move(status));
        }));
  }

  void OnHash(const redisReply* reply, Status status) {
    Status checked = CheckReply(reply, status);
    if (!checked.ok()) return Finish(std::move(checked));
    if (reply->type != REDIS_REPLY_ARRAY) return RunScript();
    if (reply->elements == 0) {
      if (++rounds_ < kMaxPlainRounds) return SetIfAbsent();
      return RunScript();
    }
    auto record = RecordFromFields(reply, fresh_->key);
    if (!record.ok() || (*record)->IsExpired(now_) ||
        (*record)->state != RecordState::kCompleted) {
      return RunScript();
    }
    core_.CacheInsert(*record, epoch_);
    const BeginOutcome outcome = (*record)->fingerprint == fresh_->fingerprint
                                     ? BeginOutcome::kCompleted
                                     : BeginOutcome::kMismatch;
    Finish(BeginResult{outcome, *record});
  }

  void RunScript() {
    ScriptCall call = core_.Script(
        ScriptId::kBegin, fresh_->key, now_, 6,
        fresh_->fingerprint.size() + fresh_->owner.size() + lease_.size() + 64);
    call.Arg(fresh_->fingerprint)
        .Arg(fresh_->owner)
        .Arg(fresh_->lease_expires_at_ms)
        .Arg(fresh_->expires_at_ms)
        .Arg(ttl_)
        .Arg(lease_);
    core_.Send(
        call.Finish([self = shared_from_this()](const redisReply* reply, Status status) {
          Result<BeginResult> result = BeginReply(reply, status, self->fresh_);
          if (result.ok() && result->record->state == RecordState::kCompleted) {
            self->core_.CacheInsert(result->record, self->epoch_);
          }
          self->Finish(std::move(result));
        }));
  }

  void Finish(Result<BeginResult> result) {
    std::exchange(done_, nullptr)(std::move(result));
  }

  StoreCore& core_;
  const int64_t now_;
  const uint64_t epoch_;
  const std::string redis_key_;
  Callback<Result<BeginResult>> done_;
  std::shared_ptr<Record> fresh_;
  std::string lease_;
  std::string ttl_;
  int rounds_ = 0;
};

}  // namespace

void RunBegin(StoreCore& core, BeginRequest request, Callback<Result<BeginResult>> done) {
  std::make_shared<BeginOp>(core, std::move(request), std::move(done))->Start();
}

}  // namespace idem::redis_internal
