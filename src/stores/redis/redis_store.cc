// RedisStore: the Store interface on top of StoreCore (connections, cluster
// routing, scripts, subscription, waiters, sweeper, cache).
#include "idem/redis_store.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "stores/common/lent_loops.h"
#include "stores/redis/begin_op.h"
#include "stores/redis/lease_blob.h"
#include "stores/redis/record_fields.h"
#include "stores/redis/replies.h"
#include "stores/redis/store_core.h"

namespace idem {
namespace {

using redis_internal::Command;
using redis_internal::DeleteReply;
using redis_internal::Endpoint;
using redis_internal::OwnerReply;
using redis_internal::RouterOptions;
using redis_internal::ScriptCall;
using redis_internal::ScriptId;
using redis_internal::StoreCore;

// Timestamps stay below 2^52 ms so that Lua (doubles) handles them exactly.
constexpr int64_t kMaxTimeMs = int64_t{1} << 52;

int64_t AddMs(int64_t now, int64_t delta) {
  return std::clamp<int64_t>(now + std::clamp<int64_t>(delta, 0, kMaxTimeMs), 0,
                             kMaxTimeMs);
}

// The native PEXPIRE backing a record that expires at `at`: never 0 or
// less, which would delete it at once.
int64_t TtlUntil(int64_t now, int64_t at) { return std::max<int64_t>(1, at - now); }

class RedisStore final : public Store {
 public:
  explicit RedisStore(std::shared_ptr<StoreCore> core) : core_(std::move(core)) {}

  ~RedisStore() override {
    const bool on_its_loop = core_->OnOwnLoop();
    stores::ShutdownOffItsLoops(std::move(core_), on_its_loop);
  }

  void Begin(BeginRequest request, Callback<Result<BeginResult>> done) override {
    if (core_->caching()) {
      if (RecordPtr cached = core_->CacheFind(request.key, core_->Now())) {
        const BeginOutcome outcome = cached->fingerprint == request.fingerprint
                                         ? BeginOutcome::kCompleted
                                         : BeginOutcome::kMismatch;
        done(BeginResult{outcome, std::move(cached)});
        return;
      }
    }
    redis_internal::RunBegin(*core_, std::move(request), std::move(done));
  }

  void Complete(CompleteRequest request, Callback<Status> done) override {
    const int64_t now = core_->Now();
    const int64_t expires_at = AddMs(now, request.ttl_ms);
    std::string headers = redis_internal::EncodeHeaders(request.response.headers);
    ScriptCall call = core_->Script(
        ScriptId::kComplete, request.key, now, 6,
        request.owner.size() + headers.size() + request.response.body.size() + 64);
    call.Arg(request.owner)
        .Arg(int64_t{request.response.status})
        .Arg(headers)
        .Arg(request.response.body)
        .Arg(expires_at)
        .Arg(TtlUntil(now, expires_at));
    core_->Send(
        call.Finish([done = std::move(done)](const redisReply* reply, Status status) {
          done(OwnerReply(reply, status));
        }));
  }

  void Release(std::string key, std::string owner, Callback<Status> done) override {
    ScriptCall call =
        core_->Script(ScriptId::kRelease, key, core_->Now(), 1, owner.size());
    call.Arg(owner);
    core_->Send(
        call.Finish([done = std::move(done)](const redisReply* reply, Status status) {
          done(OwnerReply(reply, status));
        }));
  }

  void Extend(std::string key, std::string owner, int64_t lease_ttl_ms,
              Callback<Result<int64_t>> done) override {
    const int64_t now = core_->Now();
    const int64_t lease_at = AddMs(now, lease_ttl_ms);
    ScriptCall call = core_->Script(ScriptId::kExtend, key, now, 3, owner.size() + 40);
    call.Arg(owner).Arg(lease_at).Arg(TtlUntil(now, lease_at));
    core_->Send(call.Finish(
        [lease_at, done = std::move(done)](const redisReply* reply, Status status) {
          Status checked = OwnerReply(reply, status);
          if (!checked.ok()) return done(std::move(checked));
          done(lease_at);
        }));
  }

  void Checkpoint(CheckpointRequest request, Callback<Status> done) override {
    const std::string recovery = redis_internal::EncodeRecovery(request.recovery);
    ScriptCall call = core_->Script(ScriptId::kCheckpoint, request.key, core_->Now(), 2,
                                    request.owner.size() + recovery.size());
    call.Arg(request.owner).Arg(recovery);
    core_->Send(
        call.Finish([done = std::move(done)](const redisReply* reply, Status status) {
          done(OwnerReply(reply, status));
        }));
  }

  void Get(std::string key, Callback<Result<RecordPtr>> done) override {
    core_->Get(std::move(key), std::move(done));
  }

  void Delete(std::string key, Callback<Status> done) override {
    ScriptCall call = core_->Script(ScriptId::kDelete, key, core_->Now(), 0);
    StoreCore* core = core_.get();
    core_->Send(call.Finish([core, key = std::move(key), done = std::move(done)](
                                const redisReply* reply, Status status) {
      // The broadcast reaches this store's cache too, a little later; a
      // replay in between must not be served from here. Dropped even when
      // the outcome is unknown (a time-out): a cache only holds what it may.
      core->CacheErase(key);
      done(DeleteReply(reply, status));
    }));
  }

  void Sweep(size_t limit, Callback<Result<size_t>> done) override {
    core_->Sweep(limit, std::move(done));
  }

  void WaitForCompletion(std::string key, std::chrono::milliseconds timeout,
                         Callback<Result<RecordPtr>> done) override {
    core_->Wait(key, timeout, std::move(done));
  }

  void Ping(Callback<Status> done) override { core_->Ping(std::move(done)); }

  std::vector<StoreMetric> Metrics() const override { return core_->Metrics(); }

 private:
  std::shared_ptr<StoreCore> core_;
};

Status Validate(const RedisStoreOptions& o) {
  if (o.cluster_seeds.empty() && (o.host.empty() || o.port <= 0 || o.port > 65535)) {
    return InvalidArgument("redis store: host and port (1-65535) are required");
  }
  if (!o.cluster_seeds.empty() && o.db != 0) {
    return InvalidArgument("redis store: a Redis Cluster only has database 0");
  }
  if (o.db < 0) return InvalidArgument("redis store: db must not be negative");
  if (o.key_prefix.empty()) {
    return InvalidArgument("redis store: key_prefix must not be empty");
  }
  if (o.io_threads < 1 || o.io_threads > 64 || o.connections_per_thread < 1 ||
      o.connections_per_thread > 64) {
    return InvalidArgument(
        "redis store: io_threads and connections_per_thread must be within 1-64");
  }
  if (std::find(o.io_contexts.begin(), o.io_contexts.end(), nullptr) !=
      o.io_contexts.end()) {
    return InvalidArgument("redis store: io_contexts must not hold a null pointer");
  }
  if (o.connect_timeout.count() <= 0 || o.command_timeout.count() <= 0 ||
      o.idle_timeout.count() <= 0 || o.wait_poll_interval.count() <= 0 ||
      o.topology_refresh_interval.count() <= 0) {
    return InvalidArgument("redis store: time-outs and intervals must be positive");
  }
  if (o.reconnect_min_backoff.count() <= 0 ||
      o.reconnect_max_backoff < o.reconnect_min_backoff) {
    return InvalidArgument(
        "redis store: need 0 < reconnect_min_backoff <= reconnect_max_backoff");
  }
  if (o.max_redirects < 0) return InvalidArgument("redis store: max_redirects < 0");
  if (!o.user.empty() && o.password.empty()) {
    return InvalidArgument("redis store: a user needs a password");
  }
  if (o.cache_completed && o.cache_max_bytes < kMinRedisCacheBytes) {
    return InvalidArgument("redis store: cache_max_bytes must be at least 1 MiB");
  }
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<Store>> NewRedisStore(const RedisStoreOptions& options) {
  Status valid = Validate(options);
  if (!valid.ok()) return valid;
  RouterOptions router;
  router.cluster = !options.cluster_seeds.empty();
  if (router.cluster) {
    for (const std::string& seed : options.cluster_seeds) {
      auto endpoint = redis_internal::ParseEndpoint(seed);
      if (!endpoint || endpoint->host.empty()) {
        return InvalidArgument("redis store: bad cluster seed \"" + seed +
                               "\" (expected host:port)");
      }
      router.servers.push_back(std::move(*endpoint));
    }
  } else {
    router.servers.push_back(Endpoint{options.host, options.port});
  }
  router.connection = redis_internal::ConnectionOptionsFor(options, nullptr);
  router.connections_per_thread = options.connections_per_thread;
  router.topology_refresh_interval = options.topology_refresh_interval;
  router.max_redirects = options.max_redirects;
  auto core = std::make_shared<StoreCore>(options, std::move(router));
  return std::shared_ptr<Store>(std::make_shared<RedisStore>(std::move(core)));
}

}  // namespace idem
