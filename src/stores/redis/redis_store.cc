// RedisStore: the Store interface on top of the Router (connections,
// cluster routing), the Lua scripts, CompletionWaiters and the Sweeper.
#include "idem/redis_store.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "stores/redis/cluster_slots.h"
#include "stores/redis/command.h"
#include "stores/redis/completion_waiters.h"
#include "stores/redis/io_threads.h"
#include "stores/redis/lua_scripts.h"
#include "stores/redis/record_fields.h"
#include "stores/redis/router.h"
#include "stores/redis/sweeper.h"

namespace idem {
namespace {

using redis_internal::Command;
using redis_internal::CompletionWaiters;
using redis_internal::ConnectionOptions;
using redis_internal::Endpoint;
using redis_internal::IoThreads;
using redis_internal::Router;
using redis_internal::RouterOptions;
using redis_internal::ScriptId;
using redis_internal::Sweeper;
using redis_internal::WatchResult;

// Timestamps stay below 2^52 ms so that Lua (doubles) handles them exactly.
constexpr int64_t kMaxTimeMs = int64_t{1} << 52;

int64_t AddMs(int64_t now, int64_t delta) {
  return std::clamp<int64_t>(now + std::clamp<int64_t>(delta, 0, kMaxTimeMs), 0,
                             kMaxTimeMs);
}

Status CheckReply(const redisReply* reply, const Status& status) {
  if (!status.ok()) return status;
  if (reply->type == REDIS_REPLY_ERROR) return redis_internal::ErrorReplyStatus(reply);
  return Status::Ok();
}

Status Unexpected(std::string_view script) {
  return Internal("redis: unexpected reply from the " + std::string(script) + " script");
}

Status OwnerReply(const redisReply* reply, const Status& status) {
  Status checked = CheckReply(reply, status);
  if (!checked.ok()) return checked;
  if (reply->type != REDIS_REPLY_INTEGER) return Unexpected("owner check");
  switch (reply->integer) {
    case redis_internal::kOwnerOk:
      return Status::Ok();
    case redis_internal::kOwnerGone:
      return LeaseLost("the record is gone (expired, released or deleted)");
    case redis_internal::kOwnerOther:
      return LeaseLost("the lease was taken over by another owner");
    case redis_internal::kOwnerCompleted:
      return FailedPrecondition("the record is already completed");
    default:
      return Unexpected("owner check");
  }
}

Result<BeginResult> ParseBegin(const redisReply* reply, const Status& status,
                               const std::shared_ptr<Record>& fresh) {
  Status checked = CheckReply(reply, status);
  if (!checked.ok()) return checked;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 || reply->elements > 2 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER) {
    return Unexpected("begin");
  }
  const long long code = reply->element[0]->integer;
  if (code == redis_internal::kBeginAcquired && reply->elements == 1) {
    return BeginResult{BeginOutcome::kAcquired, fresh};
  }
  if (reply->elements != 2) return Unexpected("begin");
  auto record = redis_internal::RecordFromFields(reply->element[1], fresh->key);
  if (!record.ok()) return record.status();
  switch (code) {
    case redis_internal::kBeginAcquired:
      return BeginResult{BeginOutcome::kAcquired, *record};
    case redis_internal::kBeginInFlight:
      return BeginResult{BeginOutcome::kInFlight, *record};
    case redis_internal::kBeginCompleted:
      return BeginResult{BeginOutcome::kCompleted, *record};
    case redis_internal::kBeginMismatch:
      return BeginResult{BeginOutcome::kMismatch, *record};
    default:
      return Unexpected("begin");
  }
}

Result<RecordPtr> ParseGet(const redisReply* reply, const Status& status,
                           const std::string& scope_key) {
  Status checked = CheckReply(reply, status);
  if (!checked.ok()) return checked;
  if (reply->type != REDIS_REPLY_ARRAY) return Unexpected("get");
  if (reply->elements == 0) return NotFound("no record for this key");
  return redis_internal::RecordFromFields(reply, scope_key);
}

Result<WatchResult> ParseWatch(const redisReply* reply, const Status& status,
                               const std::string& scope_key) {
  Status checked = CheckReply(reply, status);
  if (!checked.ok()) return checked;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER) {
    return Unexpected("watch");
  }
  WatchResult result;
  switch (reply->element[0]->integer) {
    case redis_internal::kWatchGone:
      result.state = WatchResult::State::kGone;
      return result;
    case redis_internal::kWatchInFlight:
      result.state = WatchResult::State::kInFlight;
      return result;
    case redis_internal::kWatchCompleted: {
      if (reply->elements != 2) return Unexpected("watch");
      auto record = redis_internal::RecordFromFields(reply->element[1], scope_key);
      if (!record.ok()) return record.status();
      result.state = WatchResult::State::kCompleted;
      result.record = *record;
      return result;
    }
    default:
      return Unexpected("watch");
  }
}

// Everything the io threads touch. It outlives them: Shutdown() closes the
// connections and joins the threads before anything here is destroyed.
class Core {
 public:
  Core(const RedisStoreOptions& options, RouterOptions router_options)
      : clock_(options.clock ? options.clock : SystemClock()),
        prefix_(options.key_prefix),
        channel_(options.key_prefix + "done"),
        io_(options.io_threads),
        router_(io_, std::move(router_options)),
        waiters_(
            io_.at(0), [this] { return router_.NextSubscriberEndpoint(); },
            SubscriberOptions(options),
            [this](const std::string& redis_key, Callback<Result<WatchResult>> done) {
              Watch(redis_key, std::move(done));
            },
            options.wait_poll_interval),
        sweeper_(router_, prefix_,
                 [this](const std::string& redis_key, Callback<Result<bool>> done) {
                   SweepKey(redis_key, std::move(done));
                 }) {
    router_.Start();
    waiters_.Start();
  }

  ~Core() { Shutdown(); }

  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  // Closes everything and joins the io threads; never on an io thread.
  void Shutdown() {
    if (closed_.exchange(true)) return;
    router_.Close();
    waiters_.Close();
    io_.Join();
  }

  bool InIoThread() const { return io_.InPool(); }

  int64_t Now() const { return clock_->NowMs(); }
  const std::string& prefix() const { return prefix_; }

  // One script run on `scope_key`'s record: ARGV = now, channel, extra...
  void RunScript(ScriptId id, const std::string& scope_key, int64_t now,
                 std::vector<std::string> extra, Command::Done done) {
    RunScriptOnKey(id, prefix_ + scope_key, now, std::move(extra), std::move(done));
  }

  void RunScriptOnKey(ScriptId id, std::string redis_key, int64_t now,
                      std::vector<std::string> extra, Command::Done done) {
    if (closed_.load(std::memory_order_acquire)) {
      done(nullptr, Unavailable("the redis store is closed"));
      return;
    }
    auto cmd = std::make_unique<Command>();
    cmd->script = &redis_internal::Script(id);
    cmd->keyed = true;
    if (router_.cluster()) cmd->slot = redis_internal::KeySlot(redis_key);
    cmd->args.reserve(3 + extra.size());
    cmd->args.push_back(std::move(redis_key));
    cmd->args.push_back(std::to_string(now));
    cmd->args.push_back(channel_);
    for (std::string& arg : extra) cmd->args.push_back(std::move(arg));
    cmd->done = std::move(done);
    router_.Send(std::move(cmd));
  }

  void Wait(const std::string& scope_key, std::chrono::milliseconds timeout,
            Callback<Result<RecordPtr>> done) {
    if (closed_.load(std::memory_order_acquire)) {
      done(Unavailable("the redis store is closed"));
      return;
    }
    waiters_.Wait(prefix_ + scope_key, timeout, std::move(done));
  }

  void Sweep(size_t limit, Callback<Result<size_t>> done) {
    if (closed_.load(std::memory_order_acquire)) {
      done(Unavailable("the redis store is closed"));
      return;
    }
    sweeper_.Sweep(limit, std::move(done));
  }

  void Ping(Callback<Status> done);
  void PingAll(const std::vector<Endpoint>& masters, Callback<Status> done);

 private:
  static ConnectionOptions SubscriberOptions(const RedisStoreOptions& options);

  void Watch(const std::string& redis_key, Callback<Result<WatchResult>> done) {
    std::string scope_key = redis_key.substr(prefix_.size());
    RunScriptOnKey(ScriptId::kWatch, redis_key, Now(), {},
                   [scope_key = std::move(scope_key), done = std::move(done)](
                       const redisReply* reply, Status status) {
                     done(ParseWatch(reply, status, scope_key));
                   });
  }

  void SweepKey(const std::string& redis_key, Callback<Result<bool>> done) {
    RunScriptOnKey(ScriptId::kSweep, redis_key, Now(), {},
                   [done = std::move(done)](const redisReply* reply, Status status) {
                     Status checked = CheckReply(reply, status);
                     if (!checked.ok()) return done(std::move(checked));
                     if (reply->type != REDIS_REPLY_INTEGER) {
                       return done(Unexpected("sweep"));
                     }
                     done(reply->integer == 1);
                   });
  }

  const std::shared_ptr<Clock> clock_;
  const std::string prefix_;
  const std::string channel_;
  std::atomic<bool> closed_{false};
  IoThreads io_;  // first: destroyed last
  Router router_;
  CompletionWaiters waiters_;
  Sweeper sweeper_;
};

ConnectionOptions ConnectionOptionsFor(const RedisStoreOptions& options) {
  ConnectionOptions connection;
  connection.user = options.user;
  connection.password = options.password;
  connection.db = options.db;
  connection.connect_timeout = options.connect_timeout;
  connection.command_timeout = options.command_timeout;
  connection.idle_timeout = options.idle_timeout;
  connection.min_backoff = options.reconnect_min_backoff;
  connection.max_backoff = options.reconnect_max_backoff;
  return connection;
}

ConnectionOptions Core::SubscriberOptions(const RedisStoreOptions& options) {
  ConnectionOptions subscriber = ConnectionOptionsFor(options);
  subscriber.subscribe_channel = options.key_prefix + "done";
  return subscriber;
}

void Core::Ping(Callback<Status> done) {
  if (closed_.load(std::memory_order_acquire)) {
    done(Unavailable("the redis store is closed"));
    return;
  }
  router_.WithMasters(
      [this, done = std::move(done)](Result<std::vector<Endpoint>> masters) mutable {
        if (!masters.ok()) return done(masters.status());
        PingAll(*masters, std::move(done));
      });
}

void Core::PingAll(const std::vector<Endpoint>& masters, Callback<Status> done) {
  struct Pings {
    std::mutex mutex;
    size_t pending = 0;
    Status first_error;
    Callback<Status> done;
  };
  auto pings = std::make_shared<Pings>();
  pings->pending = masters.size();
  pings->done = std::move(done);
  for (const Endpoint& node : masters) {
    router_.SendTo(
        node,
        redis_internal::PlainCommand({"PING"}, [pings, node](const redisReply* reply,
                                                             Status status) {
          Status checked = CheckReply(reply, status);
          if (checked.ok() && (reply->type != REDIS_REPLY_STATUS ||
                               std::string_view(reply->str, reply->len) != "PONG")) {
            checked = Unavailable("redis at " + node.ToString() + " did not answer PONG");
          }
          Callback<Status> finish;
          Status result;
          {
            std::lock_guard lock(pings->mutex);
            if (!checked.ok() && pings->first_error.ok()) {
              pings->first_error = checked;
            }
            if (--pings->pending > 0) return;
            finish = std::move(pings->done);
            result = pings->first_error;
          }
          finish(std::move(result));
        }));
  }
}

class RedisStore final : public Store {
 public:
  explicit RedisStore(std::shared_ptr<Core> core) : core_(std::move(core)) {}

  ~RedisStore() override {
    if (!core_->InIoThread()) {
      core_->Shutdown();
      return;
    }
    // Dropped from one of its own callbacks: an io thread cannot join
    // itself, so a helper thread does it once this callback has returned.
    std::thread([core = std::move(core_)] { core->Shutdown(); }).detach();
  }

  void Begin(BeginRequest request, Callback<Result<BeginResult>> done) override {
    const int64_t now = core_->Now();
    auto fresh = std::make_shared<Record>();
    fresh->key = request.key;
    fresh->state = RecordState::kInFlight;
    fresh->fingerprint = request.fingerprint;
    fresh->owner = request.owner;
    fresh->fence = 1;
    fresh->lease_expires_at_ms = AddMs(now, request.lease_ttl_ms);
    fresh->created_at_ms = now;
    fresh->expires_at_ms = AddMs(now, std::max(request.lease_ttl_ms, request.ttl_ms));
    std::vector<std::string> args;
    args.reserve(4);
    args.push_back(std::move(request.fingerprint));
    args.push_back(std::move(request.owner));
    args.push_back(std::to_string(fresh->lease_expires_at_ms));
    args.push_back(std::to_string(fresh->expires_at_ms));
    core_->RunScript(
        ScriptId::kBegin, request.key, now, std::move(args),
        [fresh, done = std::move(done)](const redisReply* reply, Status status) {
          done(ParseBegin(reply, status, fresh));
        });
  }

  void Complete(CompleteRequest request, Callback<Status> done) override {
    const int64_t now = core_->Now();
    std::vector<std::string> args;
    args.reserve(5);
    args.push_back(std::move(request.owner));
    args.push_back(std::to_string(request.response.status));
    args.push_back(redis_internal::EncodeHeaders(request.response.headers));
    args.push_back(std::move(request.response.body));
    args.push_back(std::to_string(AddMs(now, request.ttl_ms)));
    core_->RunScript(ScriptId::kComplete, request.key, now, std::move(args),
                     [done = std::move(done)](const redisReply* reply, Status status) {
                       done(OwnerReply(reply, status));
                     });
  }

  void Release(std::string key, std::string owner, Callback<Status> done) override {
    core_->RunScript(ScriptId::kRelease, key, core_->Now(), {std::move(owner)},
                     [done = std::move(done)](const redisReply* reply, Status status) {
                       done(OwnerReply(reply, status));
                     });
  }

  void Extend(std::string key, std::string owner, int64_t lease_ttl_ms,
              Callback<Result<int64_t>> done) override {
    const int64_t now = core_->Now();
    const int64_t lease_at = AddMs(now, lease_ttl_ms);
    core_->RunScript(
        ScriptId::kExtend, key, now, {std::move(owner), std::to_string(lease_at)},
        [lease_at, done = std::move(done)](const redisReply* reply, Status status) {
          Status checked = OwnerReply(reply, status);
          if (!checked.ok()) return done(std::move(checked));
          done(lease_at);
        });
  }

  void Checkpoint(CheckpointRequest request, Callback<Status> done) override {
    std::vector<std::string> args;
    args.reserve(3);
    args.push_back(std::move(request.owner));
    args.push_back(std::move(request.recovery.phase));
    args.push_back(std::move(request.recovery.state));
    core_->RunScript(ScriptId::kCheckpoint, request.key, core_->Now(), std::move(args),
                     [done = std::move(done)](const redisReply* reply, Status status) {
                       done(OwnerReply(reply, status));
                     });
  }

  void Get(std::string key, Callback<Result<RecordPtr>> done) override {
    core_->RunScript(
        ScriptId::kGet, key, core_->Now(), {},
        [key, done = std::move(done)](const redisReply* reply, Status status) {
          done(ParseGet(reply, status, key));
        });
  }

  void Delete(std::string key, Callback<Status> done) override {
    core_->RunScript(
        ScriptId::kDelete, key, core_->Now(), {},
        [done = std::move(done)](const redisReply* reply, Status status) {
          Status checked = CheckReply(reply, status);
          if (!checked.ok()) return done(std::move(checked));
          if (reply->type != REDIS_REPLY_INTEGER) return done(Unexpected("delete"));
          done(reply->integer == 0 ? Status::Ok() : NotFound("no record for this key"));
        });
  }

  void Sweep(size_t limit, Callback<Result<size_t>> done) override {
    core_->Sweep(limit, std::move(done));
  }

  void WaitForCompletion(std::string key, std::chrono::milliseconds timeout,
                         Callback<Result<RecordPtr>> done) override {
    core_->Wait(key, timeout, std::move(done));
  }

  void Ping(Callback<Status> done) override { core_->Ping(std::move(done)); }

 private:
  std::shared_ptr<Core> core_;
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
  router.connection = ConnectionOptionsFor(options);
  router.connections_per_thread = options.connections_per_thread;
  router.topology_refresh_interval = options.topology_refresh_interval;
  router.max_redirects = options.max_redirects;
  auto core = std::make_shared<Core>(options, std::move(router));
  return std::shared_ptr<Store>(std::make_shared<RedisStore>(std::move(core)));
}

}  // namespace idem
