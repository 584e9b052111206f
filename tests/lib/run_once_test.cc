#include "idem/run_once.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "idem/keys.h"
#include "idem/memory_store.h"
#include "idem/run_once_json.h"

namespace idem {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<Engine> MemoryEngine() {
  return std::make_shared<Engine>(NewMemoryStore());
}

EnginePolicy WaitPolicy() {
  EnginePolicy policy;
  policy.in_flight = InFlightPolicy::kWait;
  policy.wait_timeout_ms = 20'000;
  return policy;
}

TEST(RunOnceTest, ThirtyTwoThreadsRunTheFunctionOnceAndAllGetItsResult) {
  RunOnce<std::string> once(MemoryEngine(), WaitPolicy());
  std::atomic<int> runs{0};
  std::vector<Result<std::string>> results(32, Internal("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = once.Call("charge-1", [&] {
        std::this_thread::sleep_for(50ms);  // let the duplicates pile up
        return "receipt-" + std::to_string(++runs);
      });
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(runs.load(), 1);
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, "receipt-1");
  }
}

TEST(RunOnceTest, RejectPolicyAnswersConflictToConcurrentDuplicates) {
  RunOnce<std::string> once(MemoryEngine());  // in_flight: reject
  std::atomic<int> runs{0};
  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  std::thread first([&] {
    auto r = once.Call("k", [&] {
      ++runs;
      started = true;
      for (int i = 0; i < 2000 && !release; ++i) std::this_thread::sleep_for(1ms);
      return std::string("first");
    });
    EXPECT_TRUE(r.ok());
  });
  for (int i = 0; i < 2000 && !started; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(started);
  auto dup = once.Call("k", [&] {
    ++runs;
    return std::string("dup");
  });
  EXPECT_EQ(dup.status().code(), StatusCode::kConflict);
  release = true;
  first.join();
  auto later = once.Call("k", [&] {
    ++runs;
    return std::string("later");
  });
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(*later, "first");
  EXPECT_EQ(runs.load(), 1);
}

TEST(RunOnceTest, ReturnedErrorReleasesTheKeySoARetryRuns) {
  RunOnce<std::string> once(MemoryEngine());
  int runs = 0;
  auto flaky = [&]() -> Result<std::string> {
    if (++runs == 1) return Unavailable("bank is down");
    return std::string("ok-" + std::to_string(runs));
  };
  auto first = once.Call("k", flaky);
  EXPECT_EQ(first.status(), Unavailable("bank is down"));
  auto second = once.Call("k", flaky);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, "ok-2");
  auto third = once.Call("k", flaky);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*third, "ok-2");
  EXPECT_EQ(runs, 2);
}

TEST(RunOnceTest, ExceptionReleasesTheKeyAndBecomesInternal) {
  RunOnce<std::string> once(MemoryEngine());
  int runs = 0;
  auto throws_once = [&]() -> std::string {
    if (++runs == 1) throw std::runtime_error("socket closed");
    return "done";
  };
  auto first = once.Call("k", throws_once);
  EXPECT_EQ(first.status().code(), StatusCode::kInternal);
  EXPECT_NE(first.status().message().find("socket closed"), std::string::npos);
  auto second = once.Call("k", throws_once);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, "done");
  EXPECT_EQ(runs, 2);
}

TEST(RunOnceTest, FinalErrorIsStoredAndReplayed) {
  RunOnce<std::string> once(MemoryEngine());
  int runs = 0;
  auto declined = [&]() -> std::string {
    ++runs;
    throw FinalError(InvalidArgument("card declined"));
  };
  for (int i = 0; i < 3; ++i) {
    auto r = once.Call("k", declined);
    EXPECT_EQ(r.status(), InvalidArgument("card declined")) << i;
  }
  EXPECT_EQ(runs, 1);
}

TEST(RunOnceTest, IsFinalMarksReturnedErrorsFinal) {
  RunOnceOptions options;
  options.is_final = [](const Status& s) {
    return s.code() == StatusCode::kFailedPrecondition;
  };
  RunOnce<std::string> once(MemoryEngine(), {}, options);
  int runs = 0;
  auto fn = [&]() -> Result<std::string> {
    ++runs;
    return FailedPrecondition("account closed");
  };
  EXPECT_EQ(once.Call("k", fn).status(), FailedPrecondition("account closed"));
  EXPECT_EQ(once.Call("k", fn).status(), FailedPrecondition("account closed"));
  EXPECT_EQ(runs, 1);
  // Errors the predicate does not accept still release.
  auto transient = [&]() -> Result<std::string> {
    ++runs;
    return Unavailable("later");
  };
  EXPECT_EQ(once.Call("k2", transient).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(once.Call("k2", transient).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(runs, 3);
}

TEST(RunOnceTest, EmptyKeyIsInvalid) {
  RunOnce<std::string> once(MemoryEngine());
  EXPECT_EQ(once.Call("", [] { return std::string("x"); }).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(RunOnceTest, ScopesKeepFamiliesOfKeysApart) {
  auto engine = MemoryEngine();
  RunOnceOptions a;
  a.scope = "charge";
  RunOnceOptions b;
  b.scope = "refund";
  RunOnce<std::string> charge(engine, {}, a);
  RunOnce<std::string> refund(engine, {}, b);
  EXPECT_EQ(*charge.Call("order-1", [] { return std::string("charged"); }), "charged");
  EXPECT_EQ(*refund.Call("order-1", [] { return std::string("refunded"); }), "refunded");
  EXPECT_EQ(*charge.Call("order-1", [] { return std::string("again"); }), "charged");
}

TEST(RunOnceTest, BytesAndJsonCodecsRoundTrip) {
  auto engine = MemoryEngine();
  RunOnce<Bytes> bytes(engine);
  const Bytes blob = {0, 1, 2, 255, 0, 7};
  EXPECT_EQ(*bytes.Call("b", [&] { return blob; }), blob);
  EXPECT_EQ(*bytes.Call("b", [] { return Bytes{9}; }), blob);

  RunOnce<boost::json::value> json(engine);
  const boost::json::value doc = {{"id", "ch_1"}, {"amount", 1200}, {"ok", true}};
  EXPECT_EQ(*json.Call("j", [&] { return doc; }), doc);
  EXPECT_EQ(*json.Call("j", [] { return boost::json::value(nullptr); }), doc);
}

struct Money {
  int64_t cents = 0;
  std::string currency;
  friend bool operator==(const Money&, const Money&) = default;
};

struct MoneyCodec {
  static std::string Encode(const Money& m) {
    return std::to_string(m.cents) + " " + m.currency;
  }
  static Result<Money> Decode(std::string_view bytes) {
    const size_t space = bytes.find(' ');
    if (space == std::string_view::npos) return DataLoss("bad money");
    return Money{std::stoll(std::string(bytes.substr(0, space))),
                 std::string(bytes.substr(space + 1))};
  }
};

TEST(RunOnceTest, UserSuppliedCodec) {
  RunOnce<Money, MoneyCodec> once(MemoryEngine());
  const Money paid{1200, "EUR"};
  EXPECT_EQ(*once.Call("m", [&] { return paid; }), paid);
  EXPECT_EQ(*once.Call("m", [] { return Money{1, "USD"}; }), paid);
}

struct BrokenCodec {
  static std::string Encode(const std::string& s) { return s; }
  static Result<std::string> Decode(std::string_view) {
    throw std::runtime_error("corrupt");
  }
};

TEST(RunOnceTest, CodecFailuresBecomeStatuses) {
  RunOnce<std::string, BrokenCodec> once(MemoryEngine());
  auto r = once.Call("k", [] { return std::string("v"); });
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
}

TEST(RunOnceTest, OnceFunctionDerivesTheKeyFromItsArguments) {
  int runs = 0;
  OnceFunction<std::string(std::string, int)> charge(
      RunOnce<std::string>(MemoryEngine()),
      [](const std::string& order, const int& cents) {
        return DeriveKey("order/" + order, "charge",
                         "{\"cents\":" + std::to_string(cents) + "}");
      },
      [&](std::string order, int cents) -> Result<std::string> {
        ++runs;
        return "ch_" + order + "_" + std::to_string(cents);
      });
  EXPECT_EQ(*charge("42", 1200), "ch_42_1200");
  EXPECT_EQ(*charge("42", 1200), "ch_42_1200");
  EXPECT_EQ(*charge("43", 1200), "ch_43_1200");
  EXPECT_EQ(runs, 2);
}

TEST(RunOnceTest, KeyFunctionErrorsAreReturned) {
  OnceFunction<std::string(std::string)> fn(
      RunOnce<std::string>(MemoryEngine()),
      [](const std::string& params) { return DeriveKey("e", "a", params); },
      [](std::string) -> Result<std::string> { return std::string("ran"); });
  EXPECT_EQ(fn("{broken").status().code(), StatusCode::kInvalidArgument);
}

TEST(RunOnceTest, LeaseIsExtendedWhileASlowFunctionRuns) {
  EnginePolicy policy;
  policy.lease_ttl_ms = 300;
  RunOnce<std::string> once(MemoryEngine(), policy);
  std::atomic<int> runs{0};
  std::thread slow([&] {
    auto r = once.Call("slow", [&] {
      ++runs;
      std::this_thread::sleep_for(1200ms);  // four lease lengths
      return std::string("slow result");
    });
    EXPECT_TRUE(r.ok()) << r.status();
  });
  std::this_thread::sleep_for(700ms);
  auto dup = once.Call("slow", [&] {
    ++runs;
    return std::string("dup");
  });
  EXPECT_EQ(dup.status().code(), StatusCode::kConflict) << "the lease lapsed";
  slow.join();
  EXPECT_EQ(runs.load(), 1);
}

TEST(RunOnceTest, WithoutKeepAliveALapsedLeaseIsTakenOverAndTheStaleResultRefused) {
  EnginePolicy policy;
  policy.lease_ttl_ms = 100;
  RunOnceOptions options;
  options.keep_lease_alive = false;
  RunOnce<std::string> once(MemoryEngine(), policy, options);
  std::atomic<int> runs{0};
  Result<std::string> stale = Internal("not run");
  std::thread slow([&] {
    stale = once.Call("k", [&] {
      ++runs;
      std::this_thread::sleep_for(600ms);
      return std::string("stale");
    });
  });
  std::this_thread::sleep_for(300ms);
  auto fresh = once.Call("k", [&] {
    ++runs;
    return std::string("fresh");
  });
  slow.join();
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(*fresh, "fresh");
  EXPECT_EQ(runs.load(), 2);
  // The stale owner's result is not stored and not handed out as if it were.
  EXPECT_FALSE(stale.ok());
  EXPECT_EQ(*once.Call("k", [] { return std::string("x"); }), "fresh");
}

TEST(RunOnceTest, AsyncFormRunsOnceAndReplays) {
  RunOnce<std::string> once(MemoryEngine());
  std::atomic<int> runs{0};
  std::vector<std::thread> workers;
  auto fn = [&](Callback<Result<std::string>> finish) {
    ++runs;
    workers.emplace_back([finish] {
      std::this_thread::sleep_for(20ms);
      finish(std::string("async result"));
    });
  };
  std::promise<Result<std::string>> first;
  once.CallAsync("k", fn, [&](Result<std::string> r) { first.set_value(std::move(r)); });
  auto r1 = first.get_future().get();
  for (auto& w : workers) w.join();
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(*r1, "async result");

  std::promise<Result<std::string>> second;
  once.CallAsync("k", fn, [&](Result<std::string> r) { second.set_value(std::move(r)); });
  auto r2 = second.get_future().get();
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(*r2, "async result");
  EXPECT_EQ(runs.load(), 1);
}

TEST(RunOnceTest, AsyncFormReleasesOnErrorAndOnSynchronousThrow) {
  RunOnce<std::string> once(MemoryEngine());
  auto call = [&](auto fn) {
    std::promise<Result<std::string>> p;
    once.CallAsync("k", fn, [&](Result<std::string> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  EXPECT_EQ(call([](Callback<Result<std::string>> finish) { finish(Unavailable("x")); })
                .status()
                .code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(call([](Callback<Result<std::string>>) { throw std::runtime_error("boom"); })
                .status()
                .code(),
            StatusCode::kInternal);
  auto ok = call([](Callback<Result<std::string>> finish) { finish(std::string("v")); });
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "v");
}

}  // namespace
}  // namespace idem
