// The deadline store (idem/deadline_store.h): no call outlasts its
// deadline, late answers are dropped, late leases are given back.
#include "idem/deadline_store.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <optional>

#include "idem/fault_store.h"
#include "idem/forwarding_store.h"
#include "idem/memory_store.h"

namespace idem {
namespace {

using namespace std::chrono_literals;

BeginRequest Begin(std::string key) {
  BeginRequest r;
  r.key = std::move(key);
  r.fingerprint = "fp";
  r.owner = "owner-" + r.key;
  return r;
}

std::shared_ptr<Store> Faulty(std::shared_ptr<Store> inner, std::string_view rules) {
  return NewFaultInjectingStore(std::move(inner), ParseFaultSpec(rules).value());
}

// Holds Begin calls until Open() is called, then forwards them: a backend
// whose answer comes after the caller gave up.
class GatedStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  void Begin(BeginRequest request, Callback<Result<BeginResult>> done) override {
    std::lock_guard lock(mutex_);
    held_.emplace_back(std::move(request), std::move(done));
  }
  void Open() {
    std::vector<std::pair<BeginRequest, Callback<Result<BeginResult>>>> held;
    {
      std::lock_guard lock(mutex_);
      held.swap(held_);
    }
    for (auto& [request, done] : held) ForwardingStore::Begin(std::move(request), std::move(done));
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<BeginRequest, Callback<Result<BeginResult>>>> held_;
};

TEST(DeadlineStore, AHungCallFailsAtTheDeadline) {
  auto store = NewDeadlineStore(Faulty(NewMemoryStore(), "*=hang"), 30ms);
  // The *Sync helpers block until the callback: they return only because
  // the deadline answered.
  EXPECT_EQ(BeginSync(*store, Begin("k")).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(PingSync(*store).code(), StatusCode::kUnavailable);
  EXPECT_EQ(GetSync(*store, "k").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(ReleaseSync(*store, "k", "o").code(), StatusCode::kUnavailable);
  EXPECT_EQ(ExtendSync(*store, "k", "o", 1000).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(DeleteSync(*store, "k").code(), StatusCode::kUnavailable);
  EXPECT_EQ(SweepSync(*store, 10).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(WaitForCompletionSync(*store, "k", 10ms).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(CompleteSync(*store, CompleteRequest{"k", "o", {}, 1000}).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(CheckpointSync(*store, CheckpointRequest{"k", "o", {}}).code(),
            StatusCode::kUnavailable);
}

TEST(DeadlineStore, PromptAnswersPassThrough) {
  auto memory = NewMemoryStore();
  auto store = NewDeadlineStore(memory, 10s);
  auto begun = BeginSync(*store, Begin("k"));
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_EQ(begun->outcome, BeginOutcome::kAcquired);
  EXPECT_TRUE(CompleteSync(*store, CompleteRequest{"k", "owner-k", {201, {}, "body"}, 60000}).ok());
  auto record = GetSync(*store, "k");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ((*record)->response.body, "body");
  // Slow but in time: answered by the store, not the deadline.
  auto slow = NewDeadlineStore(Faulty(memory, "get=latency,ms=20"), 10s);
  EXPECT_TRUE(GetSync(*slow, "k").ok());
}

TEST(DeadlineStore, ALeaseAcquiredAfterTheDeadlineIsReleased) {
  auto memory = NewMemoryStore();
  auto gated = std::make_shared<GatedStore>(memory);
  auto store = NewDeadlineStore(gated, 20ms);
  EXPECT_EQ(BeginSync(*store, Begin("k")).status().code(), StatusCode::kUnavailable);
  gated->Open();  // the memory store acquires now, inline, and is released
  auto record = GetSync(*memory, "k");
  EXPECT_EQ(record.status().code(), StatusCode::kNotFound)
      << "the late lease must be given back, not left to block retries";
  auto again = BeginSync(*memory, Begin("k"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(again->record->fence, 1u);
}

TEST(DeadlineStore, ALateAnswerOfAnotherOutcomeIsDropped) {
  auto memory = NewMemoryStore();
  ASSERT_TRUE(BeginSync(*memory, Begin("k")).ok());  // someone else's lease
  auto gated = std::make_shared<GatedStore>(memory);
  auto store = NewDeadlineStore(gated, 20ms);
  BeginRequest mine = Begin("k");
  mine.owner = "me";
  EXPECT_EQ(BeginSync(*store, mine).status().code(), StatusCode::kUnavailable);
  gated->Open();  // in flight: nothing to release; the other lease stays
  auto record = GetSync(*memory, "k");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ((*record)->owner, "owner-k");
}

TEST(DeadlineStore, WaitGetsItsOwnTimeOnTop) {
  auto memory = NewMemoryStore();
  ASSERT_TRUE(BeginSync(*memory, Begin("k")).ok());
  auto store = NewDeadlineStore(memory, 10s);
  // The wait ends by the memory store's own deadline (kDeadlineExceeded),
  // not the wrapper's (kUnavailable).
  EXPECT_EQ(WaitForCompletionSync(*store, "k", 20ms).status().code(),
            StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace idem
