// RedisStore against a real redis-server on loopback: Begin→Complete on new
// keys and Begin on completed keys (the replay path, with the local cache of
// completed records and without it), blocking per call from 1..16 threads
// (latency-bound) and pipelined from one thread with a window of outstanding
// calls (throughput-bound).
//
// Starts its own redis-server (persistence off) on a free loopback port, or
// uses IDEM_BENCH_REDIS=host:port.
#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "idem/redis_store.h"
#include "redis/redis_server.h"

namespace idem {
namespace {

const std::string kFingerprint(32, 'f');
constexpr int64_t kTtlMs = 600'000;
constexpr int kReplayKeys = 1024;

struct Fixture {
  std::unique_ptr<testing::RedisServer> server;  // destroyed after the stores
  std::shared_ptr<Store> store;                  // the defaults: cache on
  std::shared_ptr<Store> uncached;               // cache_completed = false
  Status error;
};

// The cache only fills once the store hears its channel.
bool WaitUntilSubscribed(const Store& store) {
  for (int i = 0; i < 500; ++i) {
    for (const StoreMetric& metric : store.Metrics()) {
      if (metric.name == "redis_subscribed" && metric.value == 1) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

Fixture& Shared() {
  static Fixture fixture = [] {
    Fixture f;
    RedisStoreOptions options;
    if (const char* address = std::getenv("IDEM_BENCH_REDIS")) {
      auto parsed = ParseRedisUri(std::string("redis://") + address);
      if (!parsed.ok()) {
        f.error = parsed.status();
        return f;
      }
      options = *parsed;
    } else {
      auto server = testing::RedisServer::Start();
      if (!server.ok()) {
        f.error = server.status();
        return f;
      }
      f.server = std::move(server).value();
      options.port = f.server->port();
    }
    options.key_prefix = "idem-bench:";
    auto store = NewRedisStore(options);
    options.cache_completed = false;
    auto uncached = NewRedisStore(options);
    if (!store.ok() || !uncached.ok()) {
      f.error = store.ok() ? uncached.status() : store.status();
      return f;
    }
    f.store = *store;
    f.uncached = *uncached;
    f.error = PingSync(*f.store);
    if (f.error.ok() && !WaitUntilSubscribed(*f.store)) {
      f.error = Unavailable("the store never subscribed to its channel");
    }
    return f;
  }();
  return fixture;
}

StoredResponse SmallResponse() {
  StoredResponse r;
  r.status = 201;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = R"({"id":"pay_1","amount":1000,"currency":"eur","status":"succeeded"})";
  return r;
}

std::string NewKey(const char* kind) {
  static std::atomic<uint64_t> next{0};
  static const std::string run = std::to_string(std::rand());
  return std::string("tenant POST /payments ") + kind + "-" + run + "-" +
         std::to_string(next.fetch_add(1, std::memory_order_relaxed));
}

const std::vector<std::string>& CompletedKeys(Store& store) {
  static const std::vector<std::string> keys = [&] {
    std::vector<std::string> out;
    for (int i = 0; i < kReplayKeys; ++i) {
      out.push_back(NewKey("replay"));
      auto begun = BeginSync(store, {out.back(), kFingerprint, "owner", 10'000, kTtlMs});
      if (begun.ok() && begun->outcome == BeginOutcome::kAcquired) {
        (void)CompleteSync(store, {out.back(), "owner", SmallResponse(), kTtlMs});
      }
    }
    return out;
  }();
  return keys;
}

// Blocking Begin then Complete on a key never seen before.
void BM_RedisNewKeyBeginComplete(benchmark::State& state) {
  Fixture& f = Shared();
  if (!f.error.ok()) return state.SkipWithError(f.error.ToString().c_str());
  const StoredResponse response = SmallResponse();
  int64_t errors = 0;
  for (auto _ : state) {
    std::string key = NewKey("new");
    auto begun = BeginSync(*f.store, {key, kFingerprint, "owner", 10'000, kTtlMs});
    if (!begun.ok() || begun->outcome != BeginOutcome::kAcquired ||
        !CompleteSync(*f.store, {std::move(key), "owner", response, kTtlMs}).ok()) {
      ++errors;
    }
  }
  if (errors != 0) state.SkipWithError("unexpected store answer");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RedisNewKeyBeginComplete)
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->UseRealTime();

// Blocking Begin on completed keys: the replay path. state.range(0): 1 with
// the cache of completed records (the default), 0 without.
void BM_RedisReplayCompletedKey(benchmark::State& state) {
  Fixture& f = Shared();
  if (!f.error.ok()) return state.SkipWithError(f.error.ToString().c_str());
  Store& store = state.range(0) == 1 ? *f.store : *f.uncached;
  const auto& keys = CompletedKeys(*f.store);
  size_t i = static_cast<size_t>(state.thread_index()) * 131;
  int64_t errors = 0;
  for (auto _ : state) {
    auto r =
        BeginSync(store, {keys[i++ % keys.size()], kFingerprint, "late", 10'000, kTtlMs});
    if (!r.ok() || r->outcome != BeginOutcome::kCompleted) {
      ++errors;
      continue;
    }
    benchmark::DoNotOptimize(r->record->response.body.data());
  }
  if (errors != 0) state.SkipWithError("unexpected store answer");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RedisReplayCompletedKey)
    ->ArgName("cache")
    ->Arg(1)
    ->Arg(0)
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->UseRealTime();

// Keeps up to `window` asynchronous operations in flight from one thread.
class Window {
 public:
  explicit Window(int64_t limit) : limit_(limit) {}
  void Acquire() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return outstanding_ < limit_; });
    ++outstanding_;
  }
  void Release(bool ok) {
    std::lock_guard lock(mutex_);
    --outstanding_;
    if (!ok) ++errors_;
    cv_.notify_all();
  }
  int64_t Drain() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return outstanding_ == 0; });
    return errors_;
  }

 private:
  const int64_t limit_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int64_t outstanding_ = 0;
  int64_t errors_ = 0;
};

// Pipelined Begin→Complete on new keys, state.range(0) pairs in flight.
void BM_RedisNewKeyPipelined(benchmark::State& state) {
  Fixture& f = Shared();
  if (!f.error.ok()) return state.SkipWithError(f.error.ToString().c_str());
  Store& store = *f.store;
  const StoredResponse response = SmallResponse();
  Window window(state.range(0));
  for (auto _ : state) {
    window.Acquire();
    std::string key = NewKey("pipelined");
    store.Begin({key, kFingerprint, "owner", 10'000, kTtlMs},
                [&store, &window, &response, key](Result<BeginResult> begun) {
                  if (!begun.ok() || begun->outcome != BeginOutcome::kAcquired) {
                    return window.Release(false);
                  }
                  store.Complete({key, "owner", response, kTtlMs},
                                 [&window](Status s) { window.Release(s.ok()); });
                });
  }
  if (window.Drain() != 0) state.SkipWithError("unexpected store answer");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RedisNewKeyPipelined)->Arg(64)->Arg(256)->UseRealTime();

// Pipelined Begin on completed keys, state.range(0) in flight, without the
// cache (with it every answer is given before Begin returns).
void BM_RedisReplayPipelined(benchmark::State& state) {
  Fixture& f = Shared();
  if (!f.error.ok()) return state.SkipWithError(f.error.ToString().c_str());
  Store& store = *f.uncached;
  const auto& keys = CompletedKeys(*f.store);
  Window window(state.range(0));
  size_t i = 0;
  for (auto _ : state) {
    window.Acquire();
    store.Begin({keys[i++ % keys.size()], kFingerprint, "late", 10'000, kTtlMs},
                [&window](Result<BeginResult> r) {
                  window.Release(r.ok() && r->outcome == BeginOutcome::kCompleted);
                });
  }
  if (window.Drain() != 0) state.SkipWithError("unexpected store answer");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RedisReplayPipelined)->Arg(64)->Arg(256)->UseRealTime();

}  // namespace
}  // namespace idem

BENCHMARK_MAIN();
