// Engine + memory store: the cost of the idempotency step itself, with no
// network. Uses the asynchronous interface, as the gateway does (the memory
// store completes inline).
#include <benchmark/benchmark.h>

#include <atomic>
#include <string>
#include <vector>

#include "idem/engine.h"
#include "idem/memory_store.h"

namespace idem {
namespace {

const std::string kFingerprint(32, 'f');

Engine& SharedEngine() {
  static Engine engine(NewMemoryStore());
  return engine;
}

StoredResponse SmallResponse() {
  StoredResponse r;
  r.status = 201;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = R"({"id":"pay_1","amount":1000,"currency":"eur","status":"succeeded"})";
  return r;
}

// Begin then Finish on a key never seen before.
void BM_NewKeyBeginFinish(benchmark::State& state) {
  Engine& engine = SharedEngine();
  const EnginePolicy policy;
  static std::atomic<uint64_t> next{0};
  const std::string prefix = "tenant POST /payments new-" +
                             std::to_string(state.thread_index()) + "-";
  const StoredResponse response = SmallResponse();
  int64_t errors = 0;
  for (auto _ : state) {
    std::string key = prefix + std::to_string(next.fetch_add(1, std::memory_order_relaxed));
    engine.Begin(std::move(key), kFingerprint, policy,
                 [&](Result<Decision> decision) {
                   if (!decision.ok() || decision->kind != Decision::Kind::kExecute) {
                     ++errors;
                     return;
                   }
                   engine.Finish(decision->lease, response, policy,
                                 [&](Result<FinishOutcome> outcome) {
                                   if (!outcome.ok()) ++errors;
                                 });
                 });
  }
  if (errors != 0) state.SkipWithError("unexpected decision");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NewKeyBeginFinish)->Threads(1)->Threads(2)->UseRealTime();

// Begin on completed keys: the replay path.
void BM_ReplayCompletedKey(benchmark::State& state) {
  Engine& engine = SharedEngine();
  const EnginePolicy policy;
  static const std::vector<std::string> keys = [&] {
    std::vector<std::string> out;
    for (int i = 0; i < 1024; ++i) {
      out.push_back("tenant POST /payments replay-" + std::to_string(i));
      auto d = engine.BeginSync(out.back(), kFingerprint, policy);
      if (d.ok() && d->kind == Decision::Kind::kExecute) {
        (void)engine.FinishSync(d->lease, SmallResponse(), policy);
      }
    }
    return out;
  }();
  size_t i = static_cast<size_t>(state.thread_index()) * 131;
  int64_t errors = 0;
  for (auto _ : state) {
    engine.Begin(keys[i++ & 1023], kFingerprint, policy,
                 [&](Result<Decision> decision) {
                   if (!decision.ok() || decision->kind != Decision::Kind::kReplay) {
                     ++errors;
                     return;
                   }
                   benchmark::DoNotOptimize(decision->record->response.body.data());
                 });
  }
  if (errors != 0) state.SkipWithError("unexpected decision");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReplayCompletedKey)->Threads(1)->Threads(2)->UseRealTime();

// Every thread hits the same in-flight key: the 409 path under contention.
void BM_ContendedBeginOneKey(benchmark::State& state) {
  Engine& engine = SharedEngine();
  const EnginePolicy policy;
  static const bool held = [&] {
    auto d = engine.BeginSync("tenant POST /payments contended", kFingerprint, policy);
    return d.ok() && d->kind == Decision::Kind::kExecute;
  }();
  if (!held) state.SkipWithError("could not take the contended key");
  const std::string key = "tenant POST /payments contended";
  int64_t errors = 0;
  for (auto _ : state) {
    engine.Begin(key, kFingerprint, policy, [&](Result<Decision> decision) {
      if (!decision.ok() || decision->kind != Decision::Kind::kConflict) ++errors;
    });
  }
  if (errors != 0) state.SkipWithError("unexpected decision");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ContendedBeginOneKey)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace idem

BENCHMARK_MAIN();
