#include "idem/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "idem/memory_store.h"

namespace idem {
namespace {

using Kind = Decision::Kind;

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() {
    MemoryStoreOptions options;
    options.clock = clock_;
    engine_ = std::make_unique<Engine>(NewMemoryStore(options), clock_);
  }

  Decision Begin(const std::string& key, const std::string& fp = "fp") {
    auto d = engine_->BeginSync(key, fp, policy_);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *d : Decision{};
  }

  static StoredResponse Response(int status, std::string body = "result") {
    StoredResponse r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<Engine> engine_;
  EnginePolicy policy_;
};

TEST_F(EngineTest, FirstRequestExecutesAndRetryReplays) {
  Decision first = Begin("k");
  ASSERT_EQ(first.kind, Kind::kExecute);
  EXPECT_EQ(first.lease.fence, 1u);
  EXPECT_EQ(first.lease.owner.size(), 32u);
  auto finished = engine_->FinishSync(first.lease, Response(201), policy_);
  ASSERT_TRUE(finished.ok());
  EXPECT_EQ(*finished, FinishOutcome::kStored);
  Decision retry = Begin("k");
  ASSERT_EQ(retry.kind, Kind::kReplay);
  EXPECT_EQ(retry.record->response, Response(201));
}

TEST_F(EngineTest, DuplicateWhileInFlightIsConflictWithRetryAfter) {
  ASSERT_EQ(Begin("k").kind, Kind::kExecute);
  clock_->AdvanceMs(2'500);
  Decision dup = Begin("k");
  ASSERT_EQ(dup.kind, Kind::kConflict);
  EXPECT_EQ(dup.retry_after_s, 8);  // 7.5 s of lease left, rounded up
  clock_->AdvanceMs(7'499);
  EXPECT_EQ(Begin("k").retry_after_s, 1);  // never 0
}

TEST_F(EngineTest, OtherFingerprintIsMismatch) {
  ASSERT_EQ(Begin("k", "a").kind, Kind::kExecute);
  EXPECT_EQ(Begin("k", "b").kind, Kind::kMismatch);
}

TEST_F(EngineTest, StatusPolicyDecidesWhatIsStored) {
  struct Case {
    int status;
    FinishOutcome expected;
  };
  const Case cases[] = {{200, FinishOutcome::kStored},   {201, FinishOutcome::kStored},
                        {400, FinishOutcome::kStored},   {404, FinishOutcome::kStored},
                        {408, FinishOutcome::kReleased}, {409, FinishOutcome::kReleased},
                        {425, FinishOutcome::kReleased}, {429, FinishOutcome::kReleased},
                        {302, FinishOutcome::kReleased}, {500, FinishOutcome::kReleased},
                        {503, FinishOutcome::kReleased}};
  for (const auto& c : cases) {
    const std::string key = "k" + std::to_string(c.status);
    Decision d = Begin(key);
    ASSERT_EQ(d.kind, Kind::kExecute);
    auto outcome = engine_->FinishSync(d.lease, Response(c.status), policy_);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(*outcome, c.expected) << c.status;
    EXPECT_EQ(Begin(key).kind,
              c.expected == FinishOutcome::kStored ? Kind::kReplay : Kind::kExecute)
        << c.status;
  }
}

TEST_F(EngineTest, ServerErrorsAreStoredWhenThePolicySaysSo) {
  policy_.on_server_error = ServerErrorPolicy::kStore;
  Decision d = Begin("k");
  auto outcome = engine_->FinishSync(d.lease, Response(502, "bad gateway"), policy_);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(*outcome, FinishOutcome::kStored);
  Decision retry = Begin("k");
  ASSERT_EQ(retry.kind, Kind::kReplay);
  EXPECT_EQ(retry.record->response.status, 502);
}

TEST_F(EngineTest, AbandonLetsTheRetryExecute) {
  Decision d = Begin("k");
  ASSERT_TRUE(engine_->AbandonSync(d.lease).ok());
  EXPECT_EQ(Begin("k").kind, Kind::kExecute);
}

TEST_F(EngineTest, FinishAfterTakeoverIsLeaseLostAndStoresNothing) {
  Decision first = Begin("k");
  clock_->AdvanceMs(policy_.lease_ttl_ms);
  Decision second = Begin("k");
  ASSERT_EQ(second.kind, Kind::kExecute);
  EXPECT_EQ(second.lease.fence, 2u);
  auto stale = engine_->FinishSync(first.lease, Response(200, "stale"), policy_);
  EXPECT_EQ(stale.status().code(), StatusCode::kLeaseLost);
  ASSERT_TRUE(engine_->FinishSync(second.lease, Response(200, "fresh"), policy_).ok());
  EXPECT_EQ(Begin("k").record->response.body, "fresh");
}

TEST_F(EngineTest, ExtendAndCheckpointGoThroughTheLease) {
  Decision d = Begin("k");
  ASSERT_TRUE(engine_->CheckpointSync(d.lease, {"phase1", "state"}).ok());
  clock_->AdvanceMs(5'000);
  auto extended = engine_->ExtendSync(d.lease, policy_);
  ASSERT_TRUE(extended.ok());
  EXPECT_EQ(*extended, clock_->NowMs() + policy_.lease_ttl_ms);
  clock_->AdvanceMs(policy_.lease_ttl_ms);
  Decision takeover = Begin("k");
  ASSERT_EQ(takeover.kind, Kind::kExecute);
  EXPECT_EQ(takeover.lease.recovery, (RecoveryPoint{"phase1", "state"}));
}

TEST_F(EngineTest, WaitPolicyHandsEveryWaiterTheFirstResult) {
  policy_.in_flight = InFlightPolicy::kWait;
  policy_.wait_timeout_ms = 30'000;
  Decision first = Begin("k");
  ASSERT_EQ(first.kind, Kind::kExecute);
  constexpr int kWaiters = 8;
  std::atomic<int> replayed{0}, started{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&] {
      started.fetch_add(1);
      auto d = engine_->BeginSync("k", "fp", policy_);
      if (d.ok() && d->kind == Kind::kReplay && d->record->response.body == "first")
        replayed.fetch_add(1);
    });
  }
  while (started.load() < kWaiters) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(engine_->FinishSync(first.lease, Response(200, "first"), policy_).ok());
  for (auto& t : waiters) t.join();
  EXPECT_EQ(replayed.load(), kWaiters);
}

TEST_F(EngineTest, WaitPolicyExecutesWhenTheFirstIsReleased) {
  policy_.in_flight = InFlightPolicy::kWait;
  Decision first = Begin("k");
  std::atomic<bool> started{false};
  Result<Decision> waited = Internal("unset");
  std::thread waiter([&] {
    started = true;
    waited = engine_->BeginSync("k", "fp", policy_);
  });
  while (!started) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(engine_->AbandonSync(first.lease).ok());
  waiter.join();
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ(waited->kind, Kind::kExecute);
}

TEST_F(EngineTest, WaitPolicyAnswersConflictAtTheDeadline) {
  policy_.in_flight = InFlightPolicy::kWait;
  policy_.wait_timeout_ms = 100;
  ASSERT_EQ(Begin("k").kind, Kind::kExecute);
  EXPECT_EQ(Begin("k").kind, Kind::kConflict);
}

TEST(StatusPolicyTest, DefaultStoresSuccessAndFinalClientErrors) {
  StatusPolicy policy;
  EXPECT_TRUE(policy.ShouldStore(200));
  EXPECT_TRUE(policy.ShouldStore(299));
  EXPECT_TRUE(policy.ShouldStore(400));
  EXPECT_TRUE(policy.ShouldStore(422));
  for (int s : {100, 301, 408, 409, 425, 429, 500, 599, 0, 600, -1}) {
    EXPECT_FALSE(policy.ShouldStore(s)) << s;
  }
}

TEST(StatusPolicyTest, RulesApplyInOrder) {
  auto policy = StatusPolicy::Parse({"2xx", "!204", "5xx", "!503", "302"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(policy->ShouldStore(200));
  EXPECT_FALSE(policy->ShouldStore(204));
  EXPECT_TRUE(policy->ShouldStore(500));
  EXPECT_FALSE(policy->ShouldStore(503));
  EXPECT_TRUE(policy->ShouldStore(302));
  EXPECT_FALSE(policy->ShouldStore(400));
  auto empty = StatusPolicy::Parse({});
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->ShouldStore(200));
}

TEST(StatusPolicyTest, BadRulesAreNamed) {
  for (const char* rule : {"", "2x", "6xx", "0xx", "99", "600", "!", "abc", "2xxx", "!4x"}) {
    auto policy = StatusPolicy::Parse({rule});
    ASSERT_FALSE(policy.ok()) << rule;
    EXPECT_EQ(policy.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(policy.status().message().find(rule), std::string::npos);
  }
}

TEST(OwnerTokenTest, TokensAreHexAndDistinct) {
  const std::string a = NewOwnerToken(), b = NewOwnerToken();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

}  // namespace
}  // namespace idem
