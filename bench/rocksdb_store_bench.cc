// Store-level cost of the RocksDB store next to the memory store, with no
// engine and no network: Begin then Complete on new keys (default options:
// every Complete fsynced; the thread counts show group commit at work:
// `writes/sync` is mutations written per WAL sync), and Begin or Get on
// completed keys (the replay path). In most benchmarks each benchmark
// thread is one caller waiting for its answer, as one gateway request does;
// BM_NewKeysInFlight drives many requests from one thread without
// blocking, as one gateway io thread does. The RocksDB directory is a fresh
// one under $IDEM_BENCH_DIR (default: $TMPDIR or /tmp), removed at exit.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "idem/memory_store.h"
#include "idem/rocksdb_store.h"
#include "stores/rocksdb/rocksdb_store_internal.h"

namespace idem {
namespace {

enum Backend : int64_t { kMemory = 0, kRocksDb = 1 };

const std::string kFingerprint(32, 'f');
constexpr int kReplayKeys = 10'000;

class BenchDir {
 public:
  BenchDir() {
    const char* base = std::getenv("IDEM_BENCH_DIR");
    if (base == nullptr || *base == '\0') base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                          "/idem-bench-XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~BenchDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::shared_ptr<Store> OpenRocksDb() {
  static BenchDir dir;  // constructed first, so removed after the store closes
  RocksDbStoreOptions options;
  options.path = dir.path() + "/db";
  auto store = NewRocksDbStore(options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    std::abort();
  }
  return std::move(store).value();
}

Store& StoreFor(int64_t backend) {
  static std::shared_ptr<Store> memory = NewMemoryStore();
  if (backend == kMemory) return *memory;
  static std::shared_ptr<Store> rocksdb = OpenRocksDb();
  return *rocksdb;
}

const char* NameOf(int64_t backend) { return backend == kMemory ? "memory" : "rocksdb"; }

StoredResponse SmallResponse() {
  StoredResponse r;
  r.status = 201;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = R"({"id":"pay_1","amount":1000,"currency":"eur","status":"succeeded"})";
  return r;
}

// Keys completed once per backend, for the replay benchmarks. Filled with
// every key in flight at once, so that the fsyncs of RocksDB's Completes
// are grouped (one at a time would cost one fsync per key).
const std::vector<std::string>& CompletedKeys(int64_t backend) {
  static std::vector<std::string> keys[2];
  static std::once_flag once[2];
  std::call_once(once[backend], [backend] {
    Store& store = StoreFor(backend);
    std::mutex mu;
    std::condition_variable cv;
    int pending = kReplayKeys;
    auto finish = [&] {
      std::lock_guard lock(mu);
      if (--pending == 0) cv.notify_all();
    };
    for (int i = 0; i < kReplayKeys; ++i) {
      keys[backend].push_back("tenant POST /payments replay-" + std::to_string(i));
    }
    for (const std::string& key : keys[backend]) {
      auto on_begun = [&store, &finish, key](Result<BeginResult> begun) {
        if (!begun.ok()) return finish();
        store.Complete({key, "owner", SmallResponse(), 86'400'000},
                       [&finish](Status) { finish(); });
      };
      store.Begin({key, kFingerprint, "owner", 10'000, 86'400'000}, std::move(on_begun));
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return pending == 0; });
  });
  return keys[backend];
}

// Begin then Complete on a key never seen before: what a new request costs.
void BM_BeginComplete(benchmark::State& state) {
  const int64_t backend = state.range(0);
  Store& store = StoreFor(backend);
  static std::atomic<uint64_t> next{0};
  const StoredResponse response = SmallResponse();
  const auto before = rocksdb_store::GetCommitStats(store);
  int64_t errors = 0;
  for (auto _ : state) {
    const std::string key =
        "tenant POST /payments new-" + std::to_string(next.fetch_add(1));
    const std::string owner = "owner-" + std::to_string(state.thread_index());
    auto begun = BeginSync(store, {key, kFingerprint, owner, 10'000, 86'400'000});
    if (!begun.ok() || begun->outcome != BeginOutcome::kAcquired ||
        !CompleteSync(store, {key, owner, response, 86'400'000}).ok()) {
      ++errors;
    }
  }
  if (errors != 0) state.SkipWithError("a Begin or Complete failed");
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(NameOf(backend));
  if (state.thread_index() == 0 && backend == kRocksDb) {
    const auto after = rocksdb_store::GetCommitStats(store);
    const double syncs = static_cast<double>(after.syncs - before.syncs);
    if (syncs > 0) {
      state.counters["writes/sync"] =
          static_cast<double>(after.commits - before.commits) / syncs;
    }
  }
}
BENCHMARK(BM_BeginComplete)
    ->ArgName("backend")
    ->Arg(kMemory)
    ->Arg(kRocksDb)
    ->Threads(1)
    ->Threads(8)
    ->Threads(32)
    ->UseRealTime();

// New keys the way the gateway drives the store: one thread keeps
// `in_flight` requests going (wrk -c32 against one io thread), each a
// Begin then a Complete, and starts the next request from the callback of
// the last one's Complete; it never blocks on a store call. Callbacks that
// arrive on a store thread are handed back to the driving thread through a
// queue, as the gateway posts them to its io thread.
class InFlightDriver {
 public:
  InFlightDriver(Store& store, std::string prefix)
      : store_(store), prefix_(std::move(prefix)), response_(SmallResponse()) {}

  // Starts one request; its completion is counted by WaitForOne.
  void Start() {
    const std::string key = prefix_ + std::to_string(next_++);
    store_.Begin({key, kFingerprint, "owner", 10'000, 86'400'000},
                 [this, key](Result<BeginResult> begun) {
                   if (!begun.ok() || begun->outcome != BeginOutcome::kAcquired) {
                     return Arrive(false);
                   }
                   store_.Complete({key, "owner", response_, 86'400'000},
                                   [this](Status status) { Arrive(status.ok()); });
                 });
  }

  // Waits until some request has finished; false if it failed.
  bool WaitForOne() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return !finished_.empty(); });
    const bool ok = finished_.front();
    finished_.pop_front();
    return ok;
  }

 private:
  void Arrive(bool ok) {
    {
      std::lock_guard lock(mutex_);
      finished_.push_back(ok);
    }
    cv_.notify_one();
  }

  Store& store_;
  const std::string prefix_;
  const StoredResponse response_;
  uint64_t next_ = 0;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<bool> finished_;
};

void BM_NewKeysInFlight(benchmark::State& state) {
  const int64_t backend = state.range(0);
  const int64_t in_flight = state.range(1);
  Store& store = StoreFor(backend);
  static std::atomic<uint64_t> run{0};
  InFlightDriver driver(store, "tenant POST /payments flight-" + std::to_string(run++) + "-");
  const auto before = rocksdb_store::GetCommitStats(store);
  for (int64_t i = 0; i < in_flight; ++i) driver.Start();
  int64_t errors = 0;
  for (auto _ : state) {
    if (!driver.WaitForOne()) ++errors;
    driver.Start();
  }
  for (int64_t i = 0; i < in_flight; ++i) {
    if (!driver.WaitForOne()) ++errors;
  }
  if (errors != 0) state.SkipWithError("a Begin or Complete failed");
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(NameOf(backend));
  if (backend == kRocksDb) {
    const auto after = rocksdb_store::GetCommitStats(store);
    const double syncs = static_cast<double>(after.syncs - before.syncs);
    if (syncs > 0) {
      state.counters["writes/sync"] =
          static_cast<double>(after.commits - before.commits) / syncs;
    }
  }
}
BENCHMARK(BM_NewKeysInFlight)
    ->ArgNames({"backend", "in_flight"})
    ->Args({kMemory, 32})
    ->Args({kRocksDb, 1})
    ->Args({kRocksDb, 32})
    ->UseRealTime();

// Begin on a completed key: the replay decision.
void BM_ReplayBegin(benchmark::State& state) {
  const int64_t backend = state.range(0);
  Store& store = StoreFor(backend);
  const auto& keys = CompletedKeys(backend);
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  int64_t errors = 0;
  for (auto _ : state) {
    auto begun = BeginSync(
        store, {keys[i++ % keys.size()], kFingerprint, "retry", 10'000, 86'400'000});
    if (!begun.ok() || begun->outcome != BeginOutcome::kCompleted) ++errors;
  }
  if (errors != 0) state.SkipWithError("a replay was not kCompleted");
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(NameOf(backend));
}
BENCHMARK(BM_ReplayBegin)
    ->ArgName("backend")
    ->Arg(kMemory)
    ->Arg(kRocksDb)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// Get of a completed key (`idem keys get`, and what a waiter reads).
void BM_Get(benchmark::State& state) {
  const int64_t backend = state.range(0);
  Store& store = StoreFor(backend);
  const auto& keys = CompletedKeys(backend);
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  int64_t errors = 0;
  for (auto _ : state) {
    if (!GetSync(store, keys[i++ % keys.size()]).ok()) ++errors;
  }
  if (errors != 0) state.SkipWithError("a Get failed");
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(NameOf(backend));
}
BENCHMARK(BM_Get)
    ->ArgName("backend")
    ->Arg(kMemory)
    ->Arg(kRocksDb)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

}  // namespace
}  // namespace idem

BENCHMARK_MAIN();
