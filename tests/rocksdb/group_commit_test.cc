// Group commit and the pending-write rules, made deterministic with the
// store's test hooks (held writes or syncs, injected failures) rather than
// with timing:
// - a lease is written and answered on the caller's thread;
// - concurrent mutations share one WriteBatch, and results one WAL sync;
// - leases are not held up by a sync in progress;
// - an answer read from a write that is not yet durable waits for it;
// - when a write fails, everything derived from it fails too and the key
//   reads as it is on disk.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "rocksdb/store_test_util.h"
#include "rocksdb/temp_dir.h"
#include "stores/rocksdb/rocksdb_store_internal.h"

namespace idem::testing {
namespace {

using rocksdb_store::FailNextBatchesForTesting;
using rocksdb_store::FailNextSyncsForTesting;
using rocksdb_store::GetCommitStats;
using rocksdb_store::PauseCommitsForTesting;
using rocksdb_store::PauseSyncsForTesting;

// The result of one asynchronous call, once its callback has run.
template <typename T>
class Slot {
 public:
  Callback<T> Done() {
    return [this](T value) {
      std::lock_guard lock(mutex_);
      value_.emplace(std::move(value));
      cv_.notify_all();
    };
  }
  bool ready() {
    std::lock_guard lock(mutex_);
    return value_.has_value();
  }
  T Wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return value_.has_value(); });
    return *value_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<T> value_;
};

class RocksDbGroupCommitTest : public ::testing::Test {
 protected:
  void Open(RocksDbStoreOptions options = {}) {
    store_ = OpenStoreAt(dir_.path(), clock_, options);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    if (store_) {
      PauseCommitsForTesting(*store_, false);
      PauseSyncsForTesting(*store_, false);
    }
    store_.reset();
  }

  TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::shared_ptr<Store> store_;
};

// Waits (bounded) until the store has written `batches` WriteBatches in
// all; false if that never happens.
bool WaitForBatches(Store& store, uint64_t batches) {
  for (int i = 0; i < 10'000; ++i) {
    if (GetCommitStats(store).batches >= batches) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

TEST_F(RocksDbGroupCommitTest, LeasesAreWrittenAndAnsweredOnTheCallersThread) {
  Open();
  const std::thread::id caller = std::this_thread::get_id();
  std::optional<std::thread::id> answered_on;
  std::optional<Result<BeginResult>> begun;
  store_->Begin(Req("k", "a"), [&](Result<BeginResult> result) {
    answered_on = std::this_thread::get_id();
    begun = std::move(result);
  });
  // Answered before Begin returned: no hand-off to another thread.
  ASSERT_TRUE(begun.has_value());
  ASSERT_TRUE(begun->ok()) << begun->status();
  EXPECT_EQ((*begun)->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(answered_on, caller);
  EXPECT_EQ(GetCommitStats(*store_).batches, 1u);

  // Extend and Release are leases too.
  std::optional<Result<int64_t>> extended;
  store_->Extend("k", "a", kLease, [&](Result<int64_t> r) { extended = std::move(r); });
  ASSERT_TRUE(extended.has_value());
  EXPECT_TRUE(extended->ok()) << extended->status();
  std::optional<Status> released;
  store_->Release("k", "a", [&](Status s) { released = std::move(s); });
  ASSERT_TRUE(released.has_value());
  EXPECT_TRUE(released->ok()) << *released;
  EXPECT_EQ(GetCommitStats(*store_).syncs, 0u);
  EXPECT_EQ(GetSync(*store_, "k").status().code(), StatusCode::kNotFound);
}

TEST_F(RocksDbGroupCommitTest, AFailedLeaseWriteFailsThatLeaseOnly) {
  Open();
  FailNextBatchesForTesting(*store_, 1);
  auto failed = BeginSync(*store_, Req("k", "a"));
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(PingSync(*store_).code(), StatusCode::kUnavailable);
  EXPECT_EQ(GetSync(*store_, "k").status().code(), StatusCode::kNotFound);
  // Nothing was written: the next Begin starts the key afresh, and the
  // store is healthy again.
  auto again = BeginSync(*store_, Req("k", "b"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(again->record->fence, 1u);
  EXPECT_TRUE(PingSync(*store_).ok());
}

// A lease derived from a deletion that is not durable yet (Begin after
// Delete, both pending) is answered only once the deletion is: written
// behind it on the caller's thread when the deletion is written already,
// queued behind it when it is not.
TEST_F(RocksDbGroupCommitTest, ALeaseDerivedFromAPendingDeleteWaitsForIt) {
  Open();
  for (const bool delete_written_first : {true, false}) {
    SCOPED_TRACE(delete_written_first ? "delete written first" : "delete still queued");
    const std::string key = delete_written_first ? "written" : "queued";
    ASSERT_TRUE(BeginSync(*store_, Req(key, "a")).ok());
    ASSERT_TRUE(CompleteSync(*store_, {key, "a", Response("x"), kTtl}).ok());

    PauseSyncsForTesting(*store_, true);
    if (!delete_written_first) PauseCommitsForTesting(*store_, true);
    const uint64_t batches = GetCommitStats(*store_).batches;
    Slot<Status> deleted;
    store_->Delete(key, deleted.Done());
    if (delete_written_first) {
      ASSERT_TRUE(WaitForBatches(*store_, batches + 1));
    }
    Slot<Result<BeginResult>> begun;
    store_->Begin(Req(key, "b"), begun.Done());
    PauseCommitsForTesting(*store_, false);
    EXPECT_FALSE(deleted.ready());
    EXPECT_FALSE(begun.ready());

    PauseSyncsForTesting(*store_, false);
    EXPECT_TRUE(deleted.Wait().ok());
    auto lease = begun.Wait();
    ASSERT_TRUE(lease.ok()) << lease.status();
    EXPECT_EQ(lease->outcome, BeginOutcome::kAcquired);
    EXPECT_EQ(lease->record->fence, 1u);  // a fresh start, not a takeover
    auto record = GetSync(*store_, key);
    ASSERT_TRUE(record.ok()) << record.status();
    EXPECT_EQ((*record)->owner, "b");
  }
}

TEST_F(RocksDbGroupCommitTest, ConcurrentWritesShareOneBatch) {
  Open();
  constexpr int kWrites = 64;
  PauseCommitsForTesting(*store_, true);
  std::vector<std::unique_ptr<Slot<Result<BeginResult>>>> slots;
  for (int i = 0; i < kWrites; ++i) {
    slots.push_back(std::make_unique<Slot<Result<BeginResult>>>());
    store_->Begin(Req("key-" + std::to_string(i), "a"), slots.back()->Done());
  }
  for (auto& slot : slots) EXPECT_FALSE(slot->ready());  // not durable yet
  const auto before = GetCommitStats(*store_);
  PauseCommitsForTesting(*store_, false);
  for (auto& slot : slots) {
    auto result = slot->Wait();
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->outcome, BeginOutcome::kAcquired);
  }
  const auto after = GetCommitStats(*store_);
  EXPECT_EQ(after.commits - before.commits, uint64_t{kWrites});
  EXPECT_EQ(after.batches - before.batches, 1u);
}

TEST_F(RocksDbGroupCommitTest, BatchesRespectTheSizeLimit) {
  RocksDbStoreOptions options;
  options.max_batch_size = 10;
  Open(options);
  PauseCommitsForTesting(*store_, true);
  std::vector<std::unique_ptr<Slot<Result<BeginResult>>>> slots;
  for (int i = 0; i < 25; ++i) {
    slots.push_back(std::make_unique<Slot<Result<BeginResult>>>());
    store_->Begin(Req("key-" + std::to_string(i), "a"), slots.back()->Done());
  }
  PauseCommitsForTesting(*store_, false);
  for (auto& slot : slots) ASSERT_TRUE(slot->Wait().ok());
  EXPECT_EQ(GetCommitStats(*store_).batches, 3u);
}

// Begins ten keys in one batch, then completes them in another; returns
// how many of the two batches were synced to disk.
uint64_t SyncsForBeginsThenCompletes(Store& store) {
  const uint64_t before = GetCommitStats(store).syncs;
  for (const bool complete : {false, true}) {
    PauseCommitsForTesting(store, true);
    std::vector<std::unique_ptr<Slot<Status>>> slots;
    for (int i = 0; i < 10; ++i) {
      const std::string key = "key-" + std::to_string(i);
      slots.push_back(std::make_unique<Slot<Status>>());
      if (complete) {
        store.Complete({key, "a", Response(key), kTtl}, slots.back()->Done());
      } else {
        store.Begin(Req(key, "a"), [slot = slots.back().get()](Result<BeginResult> r) {
          slot->Done()(r.status());
        });
      }
    }
    PauseCommitsForTesting(store, false);
    for (auto& slot : slots) EXPECT_TRUE(slot->Wait().ok());
  }
  return GetCommitStats(store).syncs - before;
}

TEST_F(RocksDbGroupCommitTest, ByDefaultOnlyResultsAreSynced) {
  Open();
  EXPECT_EQ(SyncsForBeginsThenCompletes(*store_), 1u);
}

TEST_F(RocksDbGroupCommitTest, SyncLeasesSyncsBeginsToo) {
  RocksDbStoreOptions options;
  options.sync_leases = true;
  Open(options);
  EXPECT_EQ(SyncsForBeginsThenCompletes(*store_), 2u);
}

TEST_F(RocksDbGroupCommitTest, SyncOffSyncsNothing) {
  RocksDbStoreOptions options;
  options.sync = false;
  options.sync_leases = true;  // meaningless without sync
  Open(options);
  EXPECT_EQ(SyncsForBeginsThenCompletes(*store_), 0u);
}

TEST_F(RocksDbGroupCommitTest, LeasesDoNotWaitForAnotherRequestsSync) {
  Open();
  ASSERT_TRUE(BeginSync(*store_, Req("slow", "a")).ok());
  PauseSyncsForTesting(*store_, true);
  Slot<Status> completed;
  store_->Complete({"slow", "a", Response("x"), kTtl}, completed.Done());
  // The completion waits for its sync; a new lease meanwhile does not.
  auto begun = BeginSync(*store_, Req("fast", "b"));
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_EQ(begun->outcome, BeginOutcome::kAcquired);
  EXPECT_FALSE(completed.ready());
  // Neither does an answer read from the completion: it waits for the sync.
  Slot<Result<RecordPtr>> got;
  store_->Get("slow", got.Done());
  EXPECT_FALSE(got.ready());
  PauseSyncsForTesting(*store_, false);
  EXPECT_TRUE(completed.Wait().ok());
  auto record = got.Wait();
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ((*record)->state, RecordState::kCompleted);
}

TEST_F(RocksDbGroupCommitTest, AFailedSyncFailsEverythingUntilReopened) {
  Open();
  ASSERT_TRUE(BeginSync(*store_, Req("k", "a")).ok());
  PauseSyncsForTesting(*store_, true);
  FailNextSyncsForTesting(*store_, 1);
  Slot<Status> completed;
  Slot<Result<RecordPtr>> got;
  Slot<Result<RecordPtr>> waited;
  store_->WaitForCompletion("k", std::chrono::seconds(60), waited.Done());
  store_->Complete({"k", "a", Response("x"), kTtl}, completed.Done());
  store_->Get("k", got.Done());
  PauseSyncsForTesting(*store_, false);
  EXPECT_EQ(completed.Wait().code(), StatusCode::kUnavailable);
  EXPECT_EQ(got.Wait().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(waited.Wait().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(GetCommitStats(*store_).failed_batches, 1u);
  // What the store holds in memory may not be on disk any more: it refuses
  // every call until it is reopened, and the reopened store answers again.
  EXPECT_EQ(PingSync(*store_).code(), StatusCode::kUnavailable);
  EXPECT_EQ(GetSync(*store_, "k").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(BeginSync(*store_, Req("other", "a")).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(SweepSync(*store_, 10).status().code(), StatusCode::kUnavailable);
  store_.reset();
  Open();
  EXPECT_TRUE(PingSync(*store_).ok());
  EXPECT_TRUE(BeginSync(*store_, Req("other", "a")).ok());
}

TEST_F(RocksDbGroupCommitTest, AnswersReadFromAPendingWriteWaitForIt) {
  Open();
  PauseCommitsForTesting(*store_, true);
  Slot<Result<BeginResult>> first, second;
  Slot<Result<RecordPtr>> got;
  store_->Begin(Req("k", "a"), first.Done());
  store_->Begin(Req("k", "b"), second.Done());  // sees a's pending lease
  store_->Get("k", got.Done());
  EXPECT_FALSE(first.ready());
  EXPECT_FALSE(second.ready());
  EXPECT_FALSE(got.ready());

  PauseCommitsForTesting(*store_, false);
  auto a = first.Wait();
  auto b = second.Wait();
  auto record = got.Wait();
  ASSERT_TRUE(a.ok() && b.ok() && record.ok());
  EXPECT_EQ(a->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(b->outcome, BeginOutcome::kInFlight);
  EXPECT_EQ(b->record->owner, "a");
  EXPECT_EQ((*record)->owner, "a");
}

TEST_F(RocksDbGroupCommitTest, WaitersAreWokenOnlyOnceTheCompletionIsDurable) {
  Open();
  ASSERT_TRUE(BeginSync(*store_, Req("k", "a")).ok());
  Slot<Result<RecordPtr>> waited;
  store_->WaitForCompletion("k", std::chrono::seconds(60), waited.Done());
  PauseCommitsForTesting(*store_, true);
  Slot<Status> completed;
  store_->Complete({"k", "a", Response("done"), kTtl}, completed.Done());
  Slot<Result<RecordPtr>> late_waiter;  // arrives while the completion is pending
  store_->WaitForCompletion("k", std::chrono::seconds(60), late_waiter.Done());
  EXPECT_FALSE(completed.ready());
  EXPECT_FALSE(waited.ready());
  EXPECT_FALSE(late_waiter.ready());

  PauseCommitsForTesting(*store_, false);
  EXPECT_TRUE(completed.Wait().ok());
  for (auto* slot : {&waited, &late_waiter}) {
    auto record = slot->Wait();
    ASSERT_TRUE(record.ok()) << record.status();
    EXPECT_EQ((*record)->response.body, "done");
  }
}

TEST_F(RocksDbGroupCommitTest, AFailedWriteFailsWhatWasReadFromIt) {
  Open();
  PauseCommitsForTesting(*store_, true);
  FailNextBatchesForTesting(*store_, 1);
  Slot<Result<BeginResult>> first, second;
  Slot<Result<RecordPtr>> got;
  store_->Begin(Req("k", "a"), first.Done());
  store_->Begin(Req("k", "b"), second.Done());
  store_->Get("k", got.Done());
  PauseCommitsForTesting(*store_, false);
  EXPECT_EQ(first.Wait().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(second.Wait().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(got.Wait().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(PingSync(*store_).code(), StatusCode::kUnavailable);

  // The key reads as it is on disk (absent), and the store recovers.
  EXPECT_EQ(GetSync(*store_, "k").status().code(), StatusCode::kNotFound);
  auto again = BeginSync(*store_, Req("k", "c"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(again->record->fence, 1u);
  EXPECT_TRUE(PingSync(*store_).ok());
}

TEST_F(RocksDbGroupCommitTest, AWriteDerivedFromAFailedOneIsNotWritten) {
  RocksDbStoreOptions options;
  options.max_batch_size = 1;  // each write its own batch
  Open(options);
  PauseCommitsForTesting(*store_, true);
  FailNextBatchesForTesting(*store_, 1);
  Slot<Result<BeginResult>> begun, other;
  Slot<Status> completed;
  store_->Begin(Req("k", "a"), begun.Done());                           // fails
  store_->Complete({"k", "a", Response("x"), kTtl}, completed.Done());  // skipped
  store_->Begin(Req("other", "a"), other.Done());                       // written
  PauseCommitsForTesting(*store_, false);
  EXPECT_EQ(begun.Wait().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(completed.Wait().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(other.Wait().ok());
  EXPECT_EQ(GetSync(*store_, "k").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(GetSync(*store_, "other").ok());
  EXPECT_EQ(GetCommitStats(*store_).failed_batches, 1u);
}

TEST_F(RocksDbGroupCommitTest, ClosingTheStoreWritesWhatIsQueued) {
  Open();
  PauseCommitsForTesting(*store_, true);
  Slot<Result<BeginResult>> begun;
  store_->Begin(Req("k", "a"), begun.Done());
  store_.reset();  // the destructor writes the queue, then runs its callbacks
  ASSERT_TRUE(begun.ready());
  EXPECT_TRUE(begun.Wait().ok());
  Open();
  auto record = GetSync(*store_, "k");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ((*record)->owner, "a");
}

}  // namespace
}  // namespace idem::testing
