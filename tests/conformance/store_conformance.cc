#include "conformance/store_conformance.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "idem/engine.h"  // NewOwnerToken

namespace idem::testing {

using namespace std::chrono_literals;

void StoreConformanceTest::SetUp() {
  clock_ = std::make_shared<ManualClock>();
  store_ = GetParam().open(clock_);
  ASSERT_NE(store_, nullptr);
}

void StoreConformanceTest::TearDown() { store_.reset(); }

std::string StoreConformanceTest::Key(const std::string& suffix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string("tenant POST /") + info->name() + " " + NewOwnerToken() +
         suffix;
}

namespace {

constexpr int64_t kLease = 10'000;
constexpr int64_t kTtl = 3'600'000;

BeginRequest Req(const std::string& key, const std::string& owner,
                 const std::string& fingerprint = "fp") {
  return BeginRequest{key, fingerprint, owner, kLease, kTtl};
}

StoredResponse SampleResponse() {
  StoredResponse r;
  r.status = 201;
  r.headers = {{"Content-Type", "application/json"},
               {"X-Multi", "a"},
               {"X-Multi", "b"}};
  r.body = std::string("{\"id\":1}\0\xff\x01 binary", 17);
  return r;
}

BeginOutcome OutcomeOf(const Result<BeginResult>& r) {
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->outcome : BeginOutcome::kMismatch;
}

}  // namespace

TEST_P(StoreConformanceTest, PingAnswers) { EXPECT_TRUE(PingSync(*store_).ok()); }

TEST_P(StoreConformanceTest, BeginOnAbsentKeyAcquiresWithFenceOne) {
  const auto key = Key();
  auto r = BeginSync(*store_, Req(key, "owner-a"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(r->record->key, key);
  EXPECT_EQ(r->record->state, RecordState::kInFlight);
  EXPECT_EQ(r->record->owner, "owner-a");
  EXPECT_EQ(r->record->fence, 1u);
  EXPECT_EQ(r->record->lease_expires_at_ms, clock_->NowMs() + kLease);
  EXPECT_TRUE(r->record->recovery.empty());
}

TEST_P(StoreConformanceTest, SecondBeginWhileLeaseIsLiveIsInFlight) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  clock_->AdvanceMs(kLease - 1);
  auto r = BeginSync(*store_, Req(key, "b"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, BeginOutcome::kInFlight);
  EXPECT_EQ(r->record->owner, "a");
}

TEST_P(StoreConformanceTest, OtherFingerprintIsMismatchInFlightAndCompleted) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a", "fp1"))),
            BeginOutcome::kAcquired);
  EXPECT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "b", "fp2"))),
            BeginOutcome::kMismatch);
  ASSERT_TRUE(CompleteSync(*store_, {key, "a", SampleResponse(), kTtl}).ok());
  EXPECT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "c", "fp2"))),
            BeginOutcome::kMismatch);
  EXPECT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "d", "fp1"))),
            BeginOutcome::kCompleted);
}

TEST_P(StoreConformanceTest, EmptyFingerprintMatchesEmpty) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a", ""))), BeginOutcome::kAcquired);
  EXPECT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "b", ""))), BeginOutcome::kInFlight);
}

TEST_P(StoreConformanceTest, CompletedRecordReplaysResponseByteForByte) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  ASSERT_TRUE(CompleteSync(*store_, {key, "a", SampleResponse(), kTtl}).ok());
  auto r = BeginSync(*store_, Req(key, "b"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->outcome, BeginOutcome::kCompleted);
  EXPECT_EQ(r->record->state, RecordState::kCompleted);
  EXPECT_EQ(r->record->response, SampleResponse());
  EXPECT_EQ(r->record->expires_at_ms, clock_->NowMs() + kTtl);
  auto got = GetSync(*store_, key);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->response, SampleResponse());
}

TEST_P(StoreConformanceTest, ReleaseMakesTheKeyAbsent) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  ASSERT_TRUE(ReleaseSync(*store_, key, "a").ok());
  EXPECT_EQ(GetSync(*store_, key).status().code(), StatusCode::kNotFound);
  auto r = BeginSync(*store_, Req(key, "b"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(r->record->owner, "b");
}

TEST_P(StoreConformanceTest, ExpiredLeaseIsTakenOverWithNextFenceAndRecoveryPoint) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  ASSERT_TRUE(CheckpointSync(*store_, {key, "a", {"charged", "ch_123"}}).ok());
  clock_->AdvanceMs(kLease);
  auto r = BeginSync(*store_, Req(key, "b"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(r->record->owner, "b");
  EXPECT_EQ(r->record->fence, 2u);
  EXPECT_EQ(r->record->recovery, (RecoveryPoint{"charged", "ch_123"}));
  clock_->AdvanceMs(kLease);
  auto third = BeginSync(*store_, Req(key, "c"));
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(third->record->fence, 3u);
}

TEST_P(StoreConformanceTest, StaleOwnerIsRefusedAfterTakeover) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  clock_->AdvanceMs(kLease + 1);
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "b"))), BeginOutcome::kAcquired);

  EXPECT_EQ(CompleteSync(*store_, {key, "a", SampleResponse(), kTtl}).code(),
            StatusCode::kLeaseLost);
  EXPECT_EQ(ReleaseSync(*store_, key, "a").code(), StatusCode::kLeaseLost);
  EXPECT_EQ(ExtendSync(*store_, key, "a", kLease).status().code(),
            StatusCode::kLeaseLost);
  EXPECT_EQ(CheckpointSync(*store_, {key, "a", {"p", "s"}}).code(),
            StatusCode::kLeaseLost);

  auto record = GetSync(*store_, key);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ((*record)->owner, "b");
  EXPECT_EQ((*record)->state, RecordState::kInFlight);
  EXPECT_TRUE((*record)->recovery.empty());
  EXPECT_TRUE(CompleteSync(*store_, {key, "b", SampleResponse(), kTtl}).ok());
}

TEST_P(StoreConformanceTest, OwnerCheckedCallsOnAbsentKeyAreLeaseLost) {
  const auto key = Key();
  EXPECT_EQ(CompleteSync(*store_, {key, "a", SampleResponse(), kTtl}).code(),
            StatusCode::kLeaseLost);
  EXPECT_EQ(ReleaseSync(*store_, key, "a").code(), StatusCode::kLeaseLost);
  EXPECT_EQ(ExtendSync(*store_, key, "a", kLease).status().code(),
            StatusCode::kLeaseLost);
  EXPECT_EQ(CheckpointSync(*store_, {key, "a", {"p", "s"}}).code(),
            StatusCode::kLeaseLost);
}

TEST_P(StoreConformanceTest, CompletedRecordRefusesSecondCompleteAndRelease) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  ASSERT_TRUE(CompleteSync(*store_, {key, "a", SampleResponse(), kTtl}).ok());
  StoredResponse other = SampleResponse();
  other.body = "other";
  EXPECT_EQ(CompleteSync(*store_, {key, "a", other, kTtl}).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReleaseSync(*store_, key, "a").code(), StatusCode::kFailedPrecondition);
  auto record = GetSync(*store_, key);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ((*record)->response, SampleResponse());
}

TEST_P(StoreConformanceTest, ExtendKeepsTheLeaseFromBeingTakenOver) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  clock_->AdvanceMs(kLease - 100);
  auto extended = ExtendSync(*store_, key, "a", kLease);
  ASSERT_TRUE(extended.ok()) << extended.status();
  EXPECT_EQ(*extended, clock_->NowMs() + kLease);
  clock_->AdvanceMs(kLease - 1);
  EXPECT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "b"))), BeginOutcome::kInFlight);
  clock_->AdvanceMs(1);
  EXPECT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "b"))), BeginOutcome::kAcquired);
}

TEST_P(StoreConformanceTest, LapsedLeaseMayStillBeExtendedAndCompletedBeforeTakeover) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  clock_->AdvanceMs(kLease + 5);
  ASSERT_TRUE(ExtendSync(*store_, key, "a", kLease).ok());
  EXPECT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "b"))), BeginOutcome::kInFlight);
  EXPECT_TRUE(CompleteSync(*store_, {key, "a", SampleResponse(), kTtl}).ok());
}

TEST_P(StoreConformanceTest, ExtendMayShortenTheLeaseToHandItBack) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  ASSERT_TRUE(CheckpointSync(*store_, {key, "a", {"phase1", "s"}}).ok());
  ASSERT_TRUE(ExtendSync(*store_, key, "a", 1).ok());
  clock_->AdvanceMs(1);
  auto r = BeginSync(*store_, Req(key, "b"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(r->record->fence, 2u);
  EXPECT_EQ(r->record->recovery, (RecoveryPoint{"phase1", "s"}));
}

TEST_P(StoreConformanceTest, CheckpointIsSavedOnTheInFlightRecord) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  ASSERT_TRUE(CheckpointSync(*store_, {key, "a", {"order_created", "{\"order\":7}"}}).ok());
  ASSERT_TRUE(CheckpointSync(*store_, {key, "a", {"card_charged", "ch_9"}}).ok());
  auto record = GetSync(*store_, key);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ((*record)->recovery, (RecoveryPoint{"card_charged", "ch_9"}));
  EXPECT_EQ((*record)->state, RecordState::kInFlight);
}

TEST_P(StoreConformanceTest, CompletedRecordExpiresByItsTimestamps) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  ASSERT_TRUE(CompleteSync(*store_, {key, "a", SampleResponse(), 5'000}).ok());
  clock_->AdvanceMs(4'999);
  EXPECT_TRUE(GetSync(*store_, key).ok());
  EXPECT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "b"))), BeginOutcome::kCompleted);
  clock_->AdvanceMs(1);
  EXPECT_EQ(GetSync(*store_, key).status().code(), StatusCode::kNotFound);
  auto r = BeginSync(*store_, Req(key, "c", "another fingerprint is fine now"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(r->record->fence, 1u);
}

TEST_P(StoreConformanceTest, AbandonedInFlightRecordExpiresAfterTtl) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a", "fp1"))),
            BeginOutcome::kAcquired);
  clock_->AdvanceMs(kLease);
  // The lapsed lease still holds its fingerprint until the record expires.
  EXPECT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "b", "fp2"))),
            BeginOutcome::kMismatch);
  clock_->AdvanceMs(kTtl);
  EXPECT_EQ(GetSync(*store_, key).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "b", "fp2"))),
            BeginOutcome::kAcquired);
}

TEST_P(StoreConformanceTest, GetAndDelete) {
  const auto key = Key();
  EXPECT_EQ(GetSync(*store_, key).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(DeleteSync(*store_, key).code(), StatusCode::kNotFound);
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  ASSERT_TRUE(CompleteSync(*store_, {key, "a", SampleResponse(), kTtl}).ok());
  EXPECT_TRUE(DeleteSync(*store_, key).ok());
  EXPECT_EQ(GetSync(*store_, key).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "b"))), BeginOutcome::kAcquired);
  EXPECT_TRUE(DeleteSync(*store_, key).ok());  // in flight too
}

TEST_P(StoreConformanceTest, SweepRemovesExactlyTheExpiredRecords) {
  std::vector<std::string> short_lived, long_lived;
  for (int i = 0; i < 10; ++i) {
    short_lived.push_back(Key("-short-" + std::to_string(i)));
    long_lived.push_back(Key("-long-" + std::to_string(i)));
  }
  for (const auto& key : short_lived) {
    ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
    ASSERT_TRUE(CompleteSync(*store_, {key, "a", SampleResponse(), 1'000}).ok());
  }
  for (const auto& key : long_lived) {
    ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
    ASSERT_TRUE(CompleteSync(*store_, {key, "a", SampleResponse(), kTtl * 2}).ok());
  }
  clock_->AdvanceMs(kTtl + kLease);  // also past the in-flight retention
  size_t removed = 0;
  for (int round = 0; round < 100; ++round) {
    auto swept = SweepSync(*store_, 3);
    ASSERT_TRUE(swept.ok()) << swept.status();
    EXPECT_LE(*swept, 3u);
    removed += *swept;
    if (*swept == 0) break;
  }
  // A shared backend may hold other tests' expired records too.
  EXPECT_GE(removed, short_lived.size());
  for (const auto& key : short_lived) {
    EXPECT_EQ(GetSync(*store_, key).status().code(), StatusCode::kNotFound);
  }
  for (const auto& key : long_lived) EXPECT_TRUE(GetSync(*store_, key).ok());
}

TEST_P(StoreConformanceTest, WaitReturnsAtOnceWhenNotInFlight) {
  const auto key = Key();
  EXPECT_EQ(WaitForCompletionSync(*store_, key, 5s).status().code(),
            StatusCode::kNotFound);
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  ASSERT_TRUE(CompleteSync(*store_, {key, "a", SampleResponse(), kTtl}).ok());
  auto waited = WaitForCompletionSync(*store_, key, 5s);
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ((*waited)->response, SampleResponse());
}

TEST_P(StoreConformanceTest, WaitersAreWokenByCompletion) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  constexpr int kWaiters = 4;
  std::vector<std::thread> waiters;
  std::atomic<int> replayed{0};
  std::atomic<int> started{0};
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&] {
      started.fetch_add(1);
      auto r = WaitForCompletionSync(*store_, key, 30s);
      if (r.ok() && (*r)->response == SampleResponse()) replayed.fetch_add(1);
    });
  }
  while (started.load() < kWaiters) std::this_thread::yield();
  std::this_thread::sleep_for(50ms);  // let them register; not a timing assertion
  ASSERT_TRUE(CompleteSync(*store_, {key, "a", SampleResponse(), kTtl}).ok());
  for (auto& t : waiters) t.join();
  EXPECT_EQ(replayed.load(), kWaiters);
}

TEST_P(StoreConformanceTest, WaitersLearnOfARelease) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  std::atomic<bool> started{false};
  Status waited_status;
  std::thread waiter([&] {
    started = true;
    waited_status = WaitForCompletionSync(*store_, key, 30s).status();
  });
  while (!started) std::this_thread::yield();
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(ReleaseSync(*store_, key, "a").ok());
  waiter.join();
  EXPECT_EQ(waited_status.code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, WaitersGiveUpAtTheirDeadline) {
  const auto key = Key();
  ASSERT_EQ(OutcomeOf(BeginSync(*store_, Req(key, "a"))), BeginOutcome::kAcquired);
  auto waited = WaitForCompletionSync(*store_, key, 100ms);
  EXPECT_EQ(waited.status().code(), StatusCode::kDeadlineExceeded);
  // The record is untouched by the waiter giving up.
  EXPECT_TRUE(CompleteSync(*store_, {key, "a", SampleResponse(), kTtl}).ok());
}

TEST_P(StoreConformanceTest, ManyThreadsRacingOnOneKeyGetExactlyOneAcquired) {
  const auto key = Key();
  constexpr int kThreads = 64;
  std::atomic<int> acquired{0}, in_flight{0}, other{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      auto r = BeginSync(*store_, Req(key, "owner-" + std::to_string(i)));
      if (!r.ok()) {
        other.fetch_add(1);
      } else if (r->outcome == BeginOutcome::kAcquired) {
        acquired.fetch_add(1);
      } else if (r->outcome == BeginOutcome::kInFlight) {
        in_flight.fetch_add(1);
      } else {
        other.fetch_add(1);
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(acquired.load(), 1);
  EXPECT_EQ(in_flight.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
}

TEST_P(StoreConformanceTest, RacesOnManyKeysLoseNothing) {
  constexpr int kThreads = 8;
  constexpr int kKeys = 200;
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(Key("-" + std::to_string(i)));
  std::vector<std::atomic<int>> executions(kKeys);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < kKeys; ++n) {
        const int i = (n + t * 37) % kKeys;  // each thread its own order
        const std::string owner = "t" + std::to_string(t);
        auto r = BeginSync(*store_, Req(keys[i], owner));
        if (!r.ok()) {
          errors.fetch_add(1);
          continue;
        }
        if (r->outcome != BeginOutcome::kAcquired) continue;
        executions[i].fetch_add(1);
        StoredResponse response;
        response.status = 200;
        response.body = keys[i];
        if (!CompleteSync(*store_, {keys[i], owner, response, kTtl}).ok()) {
          errors.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  for (int i = 0; i < kKeys; ++i) {
    EXPECT_EQ(executions[i].load(), 1) << keys[i];
    auto record = GetSync(*store_, keys[i]);
    ASSERT_TRUE(record.ok()) << keys[i];
    EXPECT_EQ((*record)->state, RecordState::kCompleted);
    EXPECT_EQ((*record)->response.body, keys[i]);
  }
}

}  // namespace idem::testing
