// StoreCore: everything a RedisStore's event loops touch — the router
// (connections, cluster routing), the scripts, the subscription, the
// waiters, the sweeper, the completed-record cache and the counters.
// Shutdown() closes everything on its loop and lets what the loops queued
// before run out before anything here is destroyed, so handlers and
// callbacks may hold a plain pointer to it. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "idem/clock.h"
#include "idem/redis_store.h"
#include "idem/store.h"
#include "stores/common/completed_cache.h"
#include "stores/redis/command.h"
#include "stores/redis/completion_waiters.h"
#include "stores/redis/counters.h"
#include "stores/redis/event_loops.h"
#include "stores/redis/lua_scripts.h"
#include "stores/redis/router.h"
#include "stores/redis/subscription.h"
#include "stores/redis/sweeper.h"

namespace idem::redis_internal {

class StoreCore final : public SubscriptionListener {
 public:
  StoreCore(const RedisStoreOptions& options, RouterOptions router_options);
  ~StoreCore() override;

  StoreCore(const StoreCore&) = delete;
  StoreCore& operator=(const StoreCore&) = delete;

  // Closes everything (on each loop, see EventLoops::RunOnEach) and joins
  // the store's own threads; never on one of the loops.
  void Shutdown();
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  bool OnOwnLoop() const { return loops_.Current() != EventLoops::kNone; }

  int64_t Now() const { return clock_->NowMs(); }
  std::string RedisKey(std::string_view scope_key) const;

  // A script call on `scope_key`'s record, ARGV[1] (now) included:
  // `arguments` more Arg calls follow.
  ScriptCall Script(ScriptId id, std::string_view scope_key, int64_t now,
                    size_t arguments, size_t reserve_bytes = 0) const;
  // A plain command on one record's key, routed by the key's slot.
  std::unique_ptr<Command> KeyCommand(std::initializer_list<std::string_view> args,
                                      std::string_view redis_key,
                                      Command::Done done) const;
  // Sends a command to the master of its key (fails it when closed).
  void Send(std::unique_ptr<Command> cmd);

  void Get(std::string scope_key, Callback<Result<RecordPtr>> done);
  void Wait(const std::string& scope_key, std::chrono::milliseconds timeout,
            Callback<Result<RecordPtr>> done);
  void Sweep(size_t limit, Callback<Result<size_t>> done);
  void Ping(Callback<Status> done);

  // The completed-record cache (cache_completed). Find counts hits.
  bool caching() const { return cache_on_; }
  RecordPtr CacheFind(const std::string& scope_key, int64_t now);
  uint64_t CacheEpoch() const { return cache_.epoch(); }
  void CacheInsert(const RecordPtr& record, uint64_t epoch);
  void CacheErase(const std::string& scope_key);

  std::vector<StoreMetric> Metrics() const;

  // SubscriptionListener (loop 0).
  void OnListening(bool listening) override;
  void OnEvent(char event, std::string_view redis_key) override;

 private:
  void Watch(const std::string& redis_key, Callback<Result<WatchResult>> done);
  void SweepKey(const std::string& redis_key, Callback<Result<bool>> done);
  void Publish(std::string payload, std::function<void(bool)> done);
  void PingAll(const std::vector<Endpoint>& masters, Callback<Status> done);
  Subscription::Options SubscriptionOptions(const RedisStoreOptions& options);

  const std::shared_ptr<Clock> clock_;
  const std::string prefix_;
  const std::string channel_;
  const ScriptSet scripts_;
  const bool cache_on_;
  Counters counters_;
  stores::CompletedCache cache_;
  std::atomic<bool> closed_{false};
  EventLoops loops_;  // before everything bound to its io_contexts
  Router router_;
  CompletionWaiters waiters_;
  Subscription subscription_;
  Sweeper sweeper_;
};

// The options every store connection gets.
ConnectionOptions ConnectionOptionsFor(const RedisStoreOptions& options,
                                       Counters* counters);

}  // namespace idem::redis_internal
