#include "stores/redis/store_core.h"

#include <mutex>
#include <utility>

#include "stores/redis/cluster_slots.h"
#include "stores/redis/replies.h"

namespace idem::redis_internal {
namespace {

RouterOptions WithReconnectCounter(RouterOptions options, Counters& counters) {
  options.connection.reconnects = &counters.reconnects;
  return options;
}

}  // namespace

ConnectionOptions ConnectionOptionsFor(const RedisStoreOptions& options,
                                       Counters* counters) {
  ConnectionOptions connection;
  connection.user = options.user;
  connection.password = options.password;
  connection.db = options.db;
  connection.connect_timeout = options.connect_timeout;
  connection.command_timeout = options.command_timeout;
  connection.idle_timeout = options.idle_timeout;
  connection.min_backoff = options.reconnect_min_backoff;
  connection.max_backoff = options.reconnect_max_backoff;
  if (counters != nullptr) connection.reconnects = &counters->reconnects;
  return connection;
}

StoreCore::StoreCore(const RedisStoreOptions& options, RouterOptions router_options)
    : clock_(options.clock ? options.clock : SystemClock()),
      prefix_(options.key_prefix),
      channel_(options.key_prefix + "done"),
      scripts_(channel_),
      cache_on_(options.cache_completed),
      cache_(options.cache_max_bytes),
      loops_(options.io_contexts, options.io_threads),
      router_(loops_, WithReconnectCounter(std::move(router_options), counters_),
              counters_),
      waiters_(
          loops_.at(0),
          [this](const std::string& redis_key, Callback<Result<WatchResult>> done) {
            Watch(redis_key, std::move(done));
          },
          options.wait_poll_interval),
      subscription_(
          loops_.at(0), [this] { return router_.NextSubscriberEndpoint(); },
          SubscriptionOptions(options),
          [this](std::string payload, std::function<void(bool)> done) {
            Publish(std::move(payload), std::move(done));
          },
          this),
      sweeper_(router_, prefix_,
               [this](const std::string& redis_key, Callback<Result<bool>> done) {
                 SweepKey(redis_key, std::move(done));
               }) {
  router_.Start();
  subscription_.Start();
}

StoreCore::~StoreCore() { Shutdown(); }

Subscription::Options StoreCore::SubscriptionOptions(const RedisStoreOptions& options) {
  Subscription::Options subscription;
  subscription.connection = ConnectionOptionsFor(options, &counters_);
  subscription.connection.subscribe_channel = channel_;
  subscription.heartbeat_after = options.idle_timeout;
  subscription.heartbeat_timeout = options.command_timeout;
  return subscription;
}

void StoreCore::Shutdown() {
  if (closed_.exchange(true)) return;
  router_.Close();
  loops_.RunOnEach([this](size_t loop) {
    router_.CloseLoop(loop);
    if (loop != 0) return;
    waiters_.Close();
    subscription_.Close();
  });
  // What the loops queued before or while closing (timer completions, a
  // failed command's hand-off to loop 0) may still use this core: let it
  // run first. Nothing queued after that uses it, as everything is closed.
  loops_.RunOnEach([](size_t) {});
  loops_.Join();
}

std::string StoreCore::RedisKey(std::string_view scope_key) const {
  std::string key;
  key.reserve(prefix_.size() + scope_key.size());
  key.append(prefix_).append(scope_key);
  return key;
}

ScriptCall StoreCore::Script(ScriptId id, std::string_view scope_key, int64_t now,
                             size_t arguments, size_t reserve_bytes) const {
  ScriptCall call(scripts_[id], RedisKey(scope_key), 1 + arguments, router_.cluster(),
                  prefix_.size() + reserve_bytes + 24);
  call.Arg(now);
  return call;
}

std::unique_ptr<Command> StoreCore::KeyCommand(
    std::initializer_list<std::string_view> args, std::string_view redis_key,
    Command::Done done) const {
  auto cmd = PlainCommand(args, std::move(done));
  cmd->keyed = true;
  if (router_.cluster()) cmd->slot = KeySlot(redis_key);
  return cmd;
}

void StoreCore::Send(std::unique_ptr<Command> cmd) {
  if (closed()) {
    cmd->Fail(Unavailable("the redis store is closed"));
    return;
  }
  router_.Send(std::move(cmd));
}

RecordPtr StoreCore::CacheFind(const std::string& scope_key, int64_t now) {
  RecordPtr cached = cache_.Find(scope_key, now);
  if (cached) counters_.cache_hits.fetch_add(1, std::memory_order_relaxed);
  return cached;
}

void StoreCore::CacheInsert(const RecordPtr& record, uint64_t epoch) {
  if (cache_on_) cache_.Insert(record, epoch);
}

void StoreCore::CacheErase(const std::string& scope_key) {
  if (cache_on_) cache_.Erase(scope_key);
}

void StoreCore::OnListening(bool listening) {
  // A delete published while nobody listened was missed: the cache starts
  // empty again (SetListening empties it either way).
  cache_.SetListening(listening && cache_on_);
  if (listening) waiters_.RecheckAll();
}

void StoreCore::OnEvent(char event, std::string_view redis_key) {
  counters_.notifications.fetch_add(1, std::memory_order_relaxed);
  if (event == kEventDeleted && cache_on_ &&
      redis_key.substr(0, prefix_.size()) == prefix_) {
    cache_.Erase(std::string(redis_key.substr(prefix_.size())));
  }
  waiters_.OnKeyChanged(redis_key);
}

void StoreCore::Publish(std::string payload, std::function<void(bool)> done) {
  Send(PlainCommand({"PUBLISH", channel_, payload},
                    [done = std::move(done)](const redisReply* reply, Status status) {
                      done(CheckReply(reply, status).ok());
                    }));
}

void StoreCore::Get(std::string scope_key, Callback<Result<RecordPtr>> done) {
  ScriptCall call = Script(ScriptId::kGet, scope_key, Now(), 0);
  Send(call.Finish([this, scope_key = std::move(scope_key), done = std::move(done)](
                       const redisReply* reply, Status status) {
    done(GetReply(reply, status, scope_key, Now()));
  }));
}

void StoreCore::Wait(const std::string& scope_key, std::chrono::milliseconds timeout,
                     Callback<Result<RecordPtr>> done) {
  if (closed()) {
    done(Unavailable("the redis store is closed"));
    return;
  }
  waiters_.Wait(RedisKey(scope_key), timeout, std::move(done));
}

void StoreCore::Watch(const std::string& redis_key, Callback<Result<WatchResult>> done) {
  std::string scope_key = redis_key.substr(prefix_.size());
  const uint64_t epoch = CacheEpoch();
  ScriptCall call(scripts_[ScriptId::kWatch], redis_key, 1, router_.cluster());
  call.Arg(Now());
  Send(call.Finish([this, epoch, scope_key = std::move(scope_key),
                    done = std::move(done)](const redisReply* reply, Status status) {
    Result<WatchResult> result = WatchReply(reply, status, scope_key);
    if (result.ok() && result->state == WatchResult::State::kCompleted) {
      CacheInsert(result->record, epoch);
    }
    done(std::move(result));
  }));
}

void StoreCore::Sweep(size_t limit, Callback<Result<size_t>> done) {
  if (closed()) {
    done(Unavailable("the redis store is closed"));
    return;
  }
  sweeper_.Sweep(limit, std::move(done));
}

void StoreCore::SweepKey(const std::string& redis_key, Callback<Result<bool>> done) {
  ScriptCall call(scripts_[ScriptId::kSweep], redis_key, 1, router_.cluster());
  call.Arg(Now());
  Send(call.Finish([done = std::move(done)](const redisReply* reply, Status status) {
    done(SweepReply(reply, status));
  }));
}

void StoreCore::Ping(Callback<Status> done) {
  if (closed()) {
    done(Unavailable("the redis store is closed"));
    return;
  }
  router_.WithMasters(
      [this, done = std::move(done)](Result<std::vector<Endpoint>> masters) mutable {
        if (!masters.ok()) return done(masters.status());
        PingAll(*masters, std::move(done));
      });
}

void StoreCore::PingAll(const std::vector<Endpoint>& masters, Callback<Status> done) {
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
        PlainCommand({"PING"}, [pings, node](const redisReply* reply, Status status) {
          Status checked = CheckReply(reply, status);
          if (checked.ok() && (reply->type != REDIS_REPLY_STATUS ||
                               std::string_view(reply->str, reply->len) != "PONG")) {
            checked = Unavailable("redis at " + node.ToString() + " did not answer PONG");
          }
          Callback<Status> finish;
          Status result;
          {
            std::lock_guard lock(pings->mutex);
            if (!checked.ok() && pings->first_error.ok()) pings->first_error = checked;
            if (--pings->pending > 0) return;
            finish = std::move(pings->done);
            result = pings->first_error;
          }
          finish(std::move(result));
        }));
  }
}

std::vector<StoreMetric> StoreCore::Metrics() const {
  auto counter = [](std::string name, std::string help,
                    const std::atomic<uint64_t>& value) {
    return StoreMetric{std::move(name), std::move(help), StoreMetric::Kind::kCounter,
                       static_cast<double>(value.load(std::memory_order_relaxed))};
  };
  auto gauge = [](std::string name, std::string help, double value) {
    return StoreMetric{std::move(name), std::move(help), StoreMetric::Kind::kGauge,
                       value};
  };
  return {
      counter("redis_cache_hits_total",
              "Begin calls answered from the local cache of completed records",
              counters_.cache_hits),
      gauge("redis_cache_records", "Completed records held in the local cache",
            static_cast<double>(cache_.entries())),
      gauge("redis_cache_bytes", "Bytes the cached records are charged",
            static_cast<double>(cache_.bytes())),
      gauge("redis_subscribed",
            "1 while the store hears its pub/sub channel (the cache only fills then)",
            subscription_.listening() ? 1 : 0),
      counter("redis_reconnects_total",
              "Connections to Redis re-established after being lost",
              counters_.reconnects),
      counter("redis_notifications_total",
              "Completion and deletion events heard on the pub/sub channel",
              counters_.notifications),
      counter("redis_script_reloads_total",
              "Scripts sent again with EVAL after a NOSCRIPT answer",
              counters_.script_reloads),
      counter("redis_redirections_total", "MOVED and ASK redirections followed",
              counters_.redirections),
  };
}

}  // namespace idem::redis_internal
