// The fault-injecting store (idem/fault_store.h) over a real memory store.
#include "idem/fault_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "idem/memory_store.h"
#include "idem/open_store.h"

namespace idem {
namespace {

using ::testing::HasSubstr;

BeginRequest Begin(std::string key) {
  BeginRequest r;
  r.key = std::move(key);
  r.fingerprint = "fp";
  r.owner = "owner-" + r.key;
  return r;
}

std::shared_ptr<Store> Faulty(std::shared_ptr<Store> inner, std::string_view rules) {
  Result<FaultSpec> spec = ParseFaultSpec(rules);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return NewFaultInjectingStore(std::move(inner), spec.ok() ? *spec : FaultSpec{});
}

// A callback's value, waited for with a bound (never a timing assertion).
template <typename T>
class Answer {
 public:
  Callback<T> callback() {
    return [this](T value) {
      std::lock_guard lock(mutex_);
      value_.emplace(std::move(value));
      cv_.notify_all();
    };
  }
  bool has_value() {
    std::lock_guard lock(mutex_);
    return value_.has_value();
  }
  std::optional<T> Wait(std::chrono::seconds limit = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, limit, [this] { return value_.has_value(); });
    return value_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<T> value_;
};

TEST(FaultSpec, ParsesRulesAndParameters) {
  Result<FaultSpec> spec =
      ParseFaultSpec("begin=error;complete=latency,ms=250,after=2,times=3;*=hang,rate=0.25;seed=9");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->rules.size(), 3u);
  EXPECT_EQ(spec->seed, 9u);
  EXPECT_EQ(spec->rules[0].op, FaultOp::kBegin);
  EXPECT_EQ(spec->rules[0].kind, FaultKind::kError);
  EXPECT_EQ(spec->rules[1].kind, FaultKind::kLatency);
  EXPECT_EQ(spec->rules[1].latency_ms, 250);
  EXPECT_EQ(spec->rules[1].after, 2u);
  EXPECT_EQ(spec->rules[1].times, 3u);
  EXPECT_FALSE(spec->rules[2].op.has_value());
  EXPECT_EQ(spec->rules[2].kind, FaultKind::kHang);
  EXPECT_DOUBLE_EQ(spec->rules[2].rate, 0.25);
}

TEST(FaultSpec, RejectsWhatItDoesNotKnow) {
  for (const std::string_view bad :
       {"", "seed=1", "begin", "bogus=error", "begin=explode", "begin=error,rate=2",
        "begin=error,rate=x", "begin=error,after=-1", "begin=latency,ms=1.5",
        "begin=error,colour=red", "begin=error;;", "seed=x;begin=error"}) {
    EXPECT_FALSE(ParseFaultSpec(bad).ok()) << bad;
  }
  EXPECT_THAT(ParseFaultSpec("begin=explode").status().message(), HasSubstr("explode"));
}

TEST(FaultUri, SplitsRulesFromTheInnerUri) {
  auto parsed = ParseFaultUri("fault:begin=error|postgresql://u:p@h/db?sslmode=disable");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->second, "postgresql://u:p@h/db?sslmode=disable");
  EXPECT_FALSE(ParseFaultUri("fault:begin=error").ok());
  EXPECT_FALSE(ParseFaultUri("fault:begin=error|").ok());
  EXPECT_FALSE(ParseFaultUri("memory:").ok());
}

TEST(FaultUri, OpenStoreWrapsTheInnerStore) {
  auto store = OpenStore("fault:begin=error,times=1|memory:");
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(BeginSync(**store, Begin("a")).status().code(), StatusCode::kUnavailable);
  auto second = BeginSync(**store, Begin("a"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->outcome, BeginOutcome::kAcquired);
  EXPECT_FALSE(OpenStore("fault:begin=error|fault:get=error|memory:").ok());
  EXPECT_FALSE(OpenStore("fault:begin=error|nowhere:").ok());
}

TEST(FaultStore, ErrorNeverReachesTheInnerStore) {
  auto memory = NewMemoryStore();
  auto store = Faulty(memory, "begin=error");
  auto begun = BeginSync(*store, Begin("k"));
  ASSERT_FALSE(begun.ok());
  EXPECT_EQ(begun.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(begun.status().message(), HasSubstr("injected"));
  EXPECT_EQ(GetSync(*memory, "k").status().code(), StatusCode::kNotFound);
  // Other operations pass.
  EXPECT_TRUE(PingSync(*store).ok());
}

TEST(FaultStore, ErrorAfterTakesEffectButLosesTheAnswer) {
  auto memory = NewMemoryStore();
  auto store = Faulty(memory, "begin=error-after");
  EXPECT_EQ(BeginSync(*store, Begin("k")).status().code(), StatusCode::kUnavailable);
  auto record = GetSync(*memory, "k");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ((*record)->state, RecordState::kInFlight);
}

TEST(FaultStore, AfterAndTimesCountCallsOfTheirOperation) {
  auto store = Faulty(NewMemoryStore(), "get=error,after=2,times=2");
  std::vector<bool> failed;
  for (int i = 0; i < 6; ++i) {
    failed.push_back(GetSync(*store, "k").status().code() == StatusCode::kUnavailable);
    EXPECT_TRUE(PingSync(*store).ok()) << "other operations do not count";
  }
  EXPECT_EQ(failed, (std::vector<bool>{false, false, true, true, false, false}));
}

TEST(FaultStore, RatesAreReproducibleForASeed) {
  const auto pattern = [](std::string_view rules) {
    auto store = Faulty(NewMemoryStore(), rules);
    std::vector<bool> failed;
    for (int i = 0; i < 200; ++i) failed.push_back(!PingSync(*store).ok());
    return failed;
  };
  const auto a = pattern("ping=error,rate=0.5;seed=42");
  EXPECT_EQ(a, pattern("ping=error,rate=0.5;seed=42"));
  EXPECT_NE(a, pattern("ping=error,rate=0.5;seed=43"));
  const auto fired = std::count(a.begin(), a.end(), true);
  EXPECT_GT(fired, 0);
  EXPECT_LT(fired, 200);
}

TEST(FaultStore, FirstMatchingRuleDecides) {
  auto memory = NewMemoryStore();
  auto store = Faulty(memory, "begin=error-after,times=1;*=error");
  EXPECT_EQ(BeginSync(*store, Begin("k")).status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(GetSync(*memory, "k").ok()) << "the first rule (error-after) applied";
  EXPECT_EQ(BeginSync(*store, Begin("j")).status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(GetSync(*memory, "j").ok()) << "then the second (error)";
}

TEST(FaultStore, LatencyDelaysButAnswers) {
  auto memory = NewMemoryStore();
  auto store = Faulty(memory, "begin=latency,ms=20");
  Answer<Result<BeginResult>> answer;
  store->Begin(Begin("k"), answer.callback());
  auto result = answer.Wait();
  ASSERT_TRUE(result.has_value()) << "a delayed call must still be answered";
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->outcome, BeginOutcome::kAcquired);
}

TEST(FaultStore, HangAnswersOnlyWhenTheStoreIsDestroyed) {
  auto memory = NewMemoryStore();
  auto store = Faulty(memory, "complete=hang");
  ASSERT_TRUE(BeginSync(*store, Begin("k")).ok());
  Answer<Status> answer;
  CompleteRequest complete;
  complete.key = "k";
  complete.owner = "owner-k";
  complete.response.status = 200;
  store->Complete(std::move(complete), answer.callback());
  EXPECT_FALSE(answer.has_value());
  auto record = GetSync(*memory, "k");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ((*record)->state, RecordState::kInFlight) << "hang never calls the inner store";
  store.reset();
  auto status = answer.Wait();
  ASSERT_TRUE(status.has_value()) << "every callback runs exactly once";
  EXPECT_EQ(status->code(), StatusCode::kUnavailable);
}

TEST(FaultStore, HangAfterTakesEffectAndWithholdsTheAnswer) {
  auto memory = NewMemoryStore();
  auto store = Faulty(memory, "begin=hang-after");
  Answer<Result<BeginResult>> answer;
  store->Begin(Begin("k"), answer.callback());
  EXPECT_FALSE(answer.has_value());
  EXPECT_TRUE(GetSync(*memory, "k").ok()) << "the lease was taken";
  store.reset();
  auto result = answer.Wait();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace idem
