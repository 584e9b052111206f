// Scenarios of the library APIs that every store must support, run by the
// tests of each backend (memory, RocksDB, Redis, PostgreSQL) on a store
// they opened: run-once under 32 racing threads, the async form, the inbox
// under repeated and concurrent deliveries, and a multi-phase operation
// resumed after a simulated crash (a lapsed lease with a checkpoint).
// Real time, short leases; every wait is bounded.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "idem/fingerprint.h"
#include "idem/inbox.h"
#include "idem/keys.h"
#include "idem/phases.h"
#include "idem/run_once.h"

namespace idem::libtest {

inline void RunOnceRaceScenario(const std::shared_ptr<Store>& store) {
  EnginePolicy policy;
  policy.in_flight = InFlightPolicy::kWait;
  policy.wait_timeout_ms = 30'000;
  RunOnce<std::string> once(std::make_shared<Engine>(store), policy);
  const std::string key = NewUuidV7();
  std::atomic<int> runs{0};
  std::vector<Result<std::string>> results(32, Internal("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = once.Call(key, [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        return "result-" + std::to_string(++runs);
      });
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(runs.load(), 1);
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, "result-1");
  }
}

inline void RunOnceAsyncScenario(const std::shared_ptr<Store>& store) {
  RunOnce<std::string> once(std::make_shared<Engine>(store));
  const std::string key = NewUuidV7();
  std::atomic<int> runs{0};
  auto call = [&] {
    std::promise<Result<std::string>> done;
    once.CallAsync(
        key,
        [&](Callback<Result<std::string>> finish) {
          ++runs;
          finish(std::string("async"));
        },
        [&](Result<std::string> r) { done.set_value(std::move(r)); });
    auto future = done.get_future();
    EXPECT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    return future.get();
  };
  auto first = call();
  auto second = call();
  ASSERT_TRUE(first.ok() && second.ok()) << first.status() << second.status();
  EXPECT_EQ(*second, "async");
  EXPECT_EQ(runs.load(), 1);
}

inline void InboxScenario(const std::shared_ptr<Store>& store) {
  InboxOptions options;
  options.consumer = NewUuidV7();
  options.wait_timeout_ms = 30'000;
  Inbox inbox(std::make_shared<Engine>(store), options);
  std::atomic<int> effects{0};
  std::atomic<int> processed{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int delivery = 0; delivery < 5; ++delivery) {
        auto outcome = inbox.Process("msg-1", [&] {
          ++effects;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          return Status();
        });
        if (!outcome.ok()) {
          ++errors;
        } else if (*outcome == InboxOutcome::kProcessed) {
          ++processed;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(processed.load(), 1);
  EXPECT_EQ(effects.load(), 1);
}

inline void PhasesResumeScenario(const std::shared_ptr<Store>& store) {
  auto engine = std::make_shared<Engine>(store);
  EnginePolicy policy;
  policy.lease_ttl_ms = 300;
  const std::string key = NewUuidV7();
  // A process saved "first" and died: its lease lapses after 300 ms.
  auto crashed = engine->BeginSync("phases " + key, Sha256("in"), policy);
  ASSERT_TRUE(crashed.ok()) << crashed.status();
  ASSERT_EQ(crashed->kind, Decision::Kind::kExecute);
  ASSERT_TRUE(engine->CheckpointSync(crashed->lease, {"first", "in|first"}).ok());

  std::vector<std::string> ran;
  PhasedOperation op(engine, policy);
  op.AddPhase("first",
              [&](const PhaseInput& in) -> PhaseResult {
                ran.push_back("first");
                return std::string(in.state) + "|first";
              })
      .AddPhase("second",
                [&](const PhaseInput& in) -> PhaseResult {
                  ran.push_back("second");
                  return std::string(in.state) + "|second";
                })
      .AddPhase("last", [&](const PhaseInput& in) -> PhaseResult {
        ran.push_back("last");
        return StoredResponse{201, {}, std::string(in.state) + "|last"};
      });
  Result<PhasedResult> result = Internal("not run");
  for (int attempt = 0; attempt < 200; ++attempt) {
    result = op.Run(key, "in");
    if (result.ok() || result.status().code() != StatusCode::kConflict) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->resumed_after, "first");
  EXPECT_EQ(result->response.body, "in|first|second|last");
  EXPECT_EQ(ran, (std::vector<std::string>{"second", "last"}));
  auto replay = op.Run(key, "in");
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_TRUE(replay->replayed);
  EXPECT_EQ(replay->response, result->response);
}

inline void AllLibraryScenarios(const std::shared_ptr<Store>& store) {
  {
    SCOPED_TRACE("run-once race");
    RunOnceRaceScenario(store);
  }
  {
    SCOPED_TRACE("run-once async");
    RunOnceAsyncScenario(store);
  }
  {
    SCOPED_TRACE("inbox");
    InboxScenario(store);
  }
  {
    SCOPED_TRACE("phases resume");
    PhasesResumeScenario(store);
  }
}

}  // namespace idem::libtest
