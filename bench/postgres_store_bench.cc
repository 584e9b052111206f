// Store-level cost of the PostgreSQL store, with no engine and no HTTP:
// Begin then Complete on new keys, and Begin on completed keys (the replay
// path) with and without the local cache of completed records. Each
// benchmark thread is one caller waiting for its answer, as one gateway
// request does; the `async` variants keep 64 calls in flight from one
// thread, as a gateway's event loop does, which is where pipelining shows.
// `p99_us` is the 99th percentile latency of one call (per thread, averaged).
//
// The server is $IDEM_BENCH_POSTGRES (a libpq URI) or, by default, a fresh
// one started for the run (tests/postgres/postgres_server.h) with fsync
// off, as the Redis benchmark runs Redis without persistence: the numbers
// then compare the stores, not the disk. IDEM_BENCH_POSTGRES_DURABLE=1
// turns fsync on (every Complete on disk before it returns: throughput is
// then bound by the disk's flush rate and group commit).
// $IDEM_BENCH_POSTGRES_POOL sets the pool size (default: the store's).
//
// With fsync on, the new-key benchmarks also report `keys_per_flush`: keys
// (Begin + Complete) per WAL flush of the server (pg_stat_wal.wal_sync),
// which says how well commits are grouped whatever the disk's speed on the
// day; throughput is about flushes per second times that.
#include <benchmark/benchmark.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "idem/postgres_store.h"
#include "postgres/postgres_server.h"

namespace idem {
namespace {

using SteadyClock = std::chrono::steady_clock;

const std::string kFingerprint(32, 'f');
constexpr int kReplayKeys = 10'000;
constexpr int kAsyncInFlight = 64;

struct Backend {
  std::unique_ptr<testing::PostgresServer> server;  // destroyed last
  std::string uri;
  std::shared_ptr<Store> cached;
  std::shared_ptr<Store> uncached;
};

[[noreturn]] void Die(const Status& status) {
  std::fprintf(stderr, "postgres bench: %s\n", status.ToString().c_str());
  std::exit(1);
}

std::shared_ptr<Store> Open(const std::string& uri, bool cache) {
  PostgresStoreOptions options;
  options.conninfo = uri;
  options.auto_migrate = true;
  options.cache_completed = cache;
  if (const char* pool = std::getenv("IDEM_BENCH_POSTGRES_POOL"); pool && *pool) {
    options.pool_size = static_cast<size_t>(std::max(1, std::atoi(pool)));
  }
  auto store = NewPostgresStore(options);
  if (!store.ok()) Die(store.status());
  return *store;
}

Backend& Shared() {
  static Backend backend = [] {
    Backend b;
    if (const char* uri = std::getenv("IDEM_BENCH_POSTGRES"); uri && *uri) {
      b.uri = uri;
    } else {
      testing::PostgresServerOptions options;
      const char* durable = std::getenv("IDEM_BENCH_POSTGRES_DURABLE");
      options.fsync = durable && std::string(durable) == "1";
      auto server = testing::PostgresServer::Start(options);
      if (!server.ok()) Die(server.status());
      b.server = std::move(server).value();
      if (Status s = b.server->CreateDatabase("bench"); !s.ok()) Die(s);
      b.uri = b.server->Uri("bench");
    }
    b.cached = Open(b.uri, true);
    b.uncached = Open(b.uri, false);
    return b;
  }();
  return backend;
}

StoredResponse SmallResponse() {
  StoredResponse r;
  r.status = 201;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = R"({"id":"pay_1","amount":1000,"currency":"eur","status":"succeeded"})";
  return r;
}

std::string RunId() {
  static const std::string id =
      std::to_string(SteadyClock::now().time_since_epoch().count());
  return id;
}

const std::vector<std::string>& CompletedKeys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    Store& store = *Shared().uncached;
    for (int i = 0; i < kReplayKeys; ++i) {
      k.push_back("tenant POST /payments replay-" + RunId() + "-" + std::to_string(i));
      if (BeginSync(store, {k.back(), kFingerprint, "owner", 10'000, 86'400'000}).ok()) {
        (void)CompleteSync(store, {k.back(), "owner", SmallResponse(), 86'400'000});
      }
    }
    return k;
  }();
  return keys;
}

// WAL flushes the server has made so far (pg_stat_wal.wal_sync), or -1
// when fsync is off (nothing is flushed) or the count cannot be read.
int64_t WalFlushes() {
  const std::string conninfo = Shared().uri;
  PGconn* conn = PQconnectdb(conninfo.c_str());
  int64_t flushes = -1;
  if (PQstatus(conn) == CONNECTION_OK) {
    PGresult* result = PQexec(
        conn, "SELECT wal_sync FROM pg_stat_wal WHERE current_setting('fsync') = 'on'");
    if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1) {
      flushes = std::atoll(PQgetvalue(result, 0, 0));
    }
    PQclear(result);
  }
  PQfinish(conn);
  return flushes;
}

// Reports keys_per_flush for the keys a benchmark made, on thread 0.
class FlushCounter {
 public:
  explicit FlushCounter(const benchmark::State& state)
      : before_(state.thread_index() == 0 ? WalFlushes() : -1) {}

  void Report(benchmark::State& state, int64_t keys) const {
    if (state.thread_index() != 0 || before_ < 0) return;
    // Backends publish their WAL counters about once a second when idle.
    std::this_thread::sleep_for(std::chrono::milliseconds(2'500));
    const int64_t flushes = WalFlushes() - before_;
    if (flushes > 0) {
      state.counters["keys_per_flush"] =
          static_cast<double>(keys) / static_cast<double>(flushes);
    }
  }

 private:
  int64_t before_;
};

class Latencies {
 public:
  void Add(SteadyClock::duration d) {
    samples_.push_back(std::chrono::duration<double, std::micro>(d).count());
  }
  void Report(benchmark::State& state) {
    if (samples_.empty()) return;
    const size_t at = samples_.size() * 99 / 100;
    std::nth_element(samples_.begin(), samples_.begin() + at, samples_.end());
    state.counters["p99_us"] =
        benchmark::Counter(samples_[at], benchmark::Counter::kAvgThreads);
  }

 private:
  std::vector<double> samples_;
};

std::string NewKey() {
  static std::atomic<uint64_t> next{0};
  return "tenant POST /payments new-" + RunId() + "-" + std::to_string(next.fetch_add(1));
}

// Begin then Complete on a key never seen before: what a new request costs.
void BM_PostgresBeginComplete(benchmark::State& state) {
  Store& store = *Shared().cached;
  const StoredResponse response = SmallResponse();
  const std::string owner = "owner-" + std::to_string(state.thread_index());
  Latencies latencies;
  int64_t errors = 0;
  std::string first_error;
  const FlushCounter flushes(state);
  for (auto _ : state) {
    const std::string key = NewKey();
    const auto start = SteadyClock::now();
    auto begun = BeginSync(store, {key, kFingerprint, owner, 10'000, 86'400'000});
    Status status = begun.ok() ? CompleteSync(store, {key, owner, response, 86'400'000})
                               : begun.status();
    if (!status.ok() || begun->outcome != BeginOutcome::kAcquired) {
      if (errors++ == 0) first_error = status.ToString();
    }
    latencies.Add(SteadyClock::now() - start);
  }
  if (errors != 0) {
    state.SkipWithError(("a Begin or Complete failed: " + first_error).c_str());
  }
  state.SetItemsProcessed(state.iterations());
  latencies.Report(state);
  flushes.Report(state, state.iterations() * state.threads());
}
BENCHMARK(BM_PostgresBeginComplete)->Threads(1)->Threads(8)->Threads(32)->UseRealTime();

// Begin on a completed key: the replay decision. range(0): local cache on.
void BM_PostgresReplayBegin(benchmark::State& state) {
  const bool cache = state.range(0) != 0;
  Store& store = cache ? *Shared().cached : *Shared().uncached;
  const auto& keys = CompletedKeys();
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  Latencies latencies;
  int64_t errors = 0;
  for (auto _ : state) {
    const auto start = SteadyClock::now();
    auto begun = BeginSync(
        store, {keys[i++ % keys.size()], kFingerprint, "retry", 10'000, 86'400'000});
    if (!begun.ok() || begun->outcome != BeginOutcome::kCompleted) ++errors;
    latencies.Add(SteadyClock::now() - start);
  }
  if (errors != 0) state.SkipWithError("a replay was not kCompleted");
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(cache ? "cache" : "no cache");
  latencies.Report(state);
}
BENCHMARK(BM_PostgresReplayBegin)
    ->ArgName("cache")
    ->Arg(1)
    ->Arg(0)
    ->Threads(1)
    ->Threads(8)
    ->Threads(32)
    ->UseRealTime();

// One thread keeps kAsyncInFlight calls outstanding (callbacks start the
// next step), as the gateway's event loop does: pipelining at work.
class AsyncRunner {
 public:
  explicit AsyncRunner(Store& store) : store_(store) {}

  // Runs `total` operations, `kAsyncInFlight` at a time; returns failures.
  int64_t Run(int64_t total, bool replay, Latencies& latencies) {
    remaining_ = total;
    outstanding_ = 0;
    errors_ = 0;
    latencies_ = &latencies;
    replay_ = replay;
    for (int i = 0; i < kAsyncInFlight; ++i) StartOne();
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return outstanding_ == 0 && remaining_ <= 0; });
    return errors_;
  }

 private:
  void StartOne() {
    {
      std::lock_guard lock(mutex_);
      if (remaining_ <= 0) return;
      --remaining_;
      ++outstanding_;
    }
    const auto start = SteadyClock::now();
    if (replay_) {
      const auto& keys = CompletedKeys();
      const std::string& key = keys[next_key_.fetch_add(1) % keys.size()];
      store_.Begin({key, kFingerprint, "retry", 10'000, 86'400'000},
                   [this, start](Result<BeginResult> r) {
                     Finish(start, r.ok() && r->outcome == BeginOutcome::kCompleted);
                   });
      return;
    }
    std::string key = NewKey();
    store_.Begin({key, kFingerprint, "owner", 10'000, 86'400'000},
                 [this, key, start](Result<BeginResult> r) {
                   if (!r.ok() || r->outcome != BeginOutcome::kAcquired) {
                     Finish(start, false);
                     return;
                   }
                   store_.Complete({key, "owner", SmallResponse(), 86'400'000},
                                   [this, start](Status s) { Finish(start, s.ok()); });
                 });
  }

  // Starts the next call before counting this one done, and notifies under
  // the lock, so Run() cannot return while this thread still uses *this.
  void Finish(SteadyClock::time_point start, bool ok) {
    {
      std::lock_guard lock(mutex_);
      latencies_->Add(SteadyClock::now() - start);
      if (!ok) ++errors_;
    }
    StartOne();
    std::lock_guard lock(mutex_);
    --outstanding_;
    cv_.notify_all();
  }

  Store& store_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int64_t remaining_ = 0;
  int64_t outstanding_ = 0;
  int64_t errors_ = 0;
  bool replay_ = false;
  Latencies* latencies_ = nullptr;
  std::atomic<uint64_t> next_key_{0};
};

// range(0): 0 new keys (Begin+Complete), 1 replays without the cache.
void BM_PostgresAsync(benchmark::State& state) {
  const bool replay = state.range(0) != 0;
  AsyncRunner runner(replay ? *Shared().uncached : *Shared().cached);
  if (replay) CompletedKeys();
  Latencies latencies;
  constexpr int64_t kBatch = 256;
  int64_t errors = 0;
  const FlushCounter flushes(state);
  for (auto _ : state) errors += runner.Run(kBatch, replay, latencies);
  if (errors != 0) state.SkipWithError("an asynchronous call failed");
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetLabel(replay ? "replay, no cache, 64 in flight" : "new keys, 64 in flight");
  latencies.Report(state);
  if (!replay) flushes.Report(state, state.iterations() * kBatch);
}
BENCHMARK(BM_PostgresAsync)->ArgName("replay")->Arg(0)->Arg(1)->UseRealTime();

}  // namespace

// The server is started here, on the main thread: it is told to quit when
// the thread that started it exits (PR_SET_PDEATHSIG), and benchmark worker
// threads come and go.
void StartSharedBackend() { Shared(); }

}  // namespace idem

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  idem::StartSharedBackend();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
