// NewDeadlineStore: every call races its callback against a timer.
#include "idem/deadline_store.h"

#include <atomic>
#include <string>
#include <utility>

#include "idem/forwarding_store.h"
#include "stores/wrappers/timer_queue.h"

namespace idem {
namespace {

using stores::TimerQueue;

// One call in flight: whichever of the answer and the timer comes first
// runs the callback.
template <typename T>
struct Race {
  explicit Race(Callback<T> d) : done(std::move(d)) {}
  std::atomic<bool> finished{false};
  std::atomic<uint64_t> timer{0};
  Callback<T> done;
};

class DeadlineStore final : public ForwardingStore {
 public:
  DeadlineStore(std::shared_ptr<Store> inner, std::chrono::milliseconds timeout)
      : ForwardingStore(std::move(inner)), timeout_(timeout) {}

  void Begin(BeginRequest request, Callback<Result<BeginResult>> done) override {
    auto race = std::make_shared<Race<Result<BeginResult>>>(std::move(done));
    std::weak_ptr<Store> weak_inner = shared_inner();
    inner().Begin(std::move(request),
                  [timers = timers_, race, weak_inner](Result<BeginResult> result) {
                    if (Finish(*timers, *race, result)) return;
                    // Too late: the caller answered without executing, so a
                    // lease taken now would only block retries. Give it back.
                    if (!result.ok() || result->outcome != BeginOutcome::kAcquired) return;
                    if (auto inner = weak_inner.lock()) {
                      inner->Release(result->record->key, result->record->owner,
                                     [](Status) {});
                    }
                  });
    Arm(race, "begin", timeout_);
  }

  void Complete(CompleteRequest request, Callback<Status> done) override {
    auto race = std::make_shared<Race<Status>>(std::move(done));
    inner().Complete(std::move(request),
                     [timers = timers_, race](Status status) { Finish(*timers, *race, std::move(status)); });
    Arm(race, "complete", timeout_);
  }

  void Release(std::string key, std::string owner, Callback<Status> done) override {
    auto race = std::make_shared<Race<Status>>(std::move(done));
    inner().Release(std::move(key), std::move(owner),
                    [timers = timers_, race](Status status) { Finish(*timers, *race, std::move(status)); });
    Arm(race, "release", timeout_);
  }

  void Extend(std::string key, std::string owner, int64_t lease_ttl_ms,
              Callback<Result<int64_t>> done) override {
    auto race = std::make_shared<Race<Result<int64_t>>>(std::move(done));
    inner().Extend(std::move(key), std::move(owner), lease_ttl_ms,
                   [timers = timers_, race](Result<int64_t> r) { Finish(*timers, *race, std::move(r)); });
    Arm(race, "extend", timeout_);
  }

  void Checkpoint(CheckpointRequest request, Callback<Status> done) override {
    auto race = std::make_shared<Race<Status>>(std::move(done));
    inner().Checkpoint(std::move(request),
                       [timers = timers_, race](Status status) { Finish(*timers, *race, std::move(status)); });
    Arm(race, "checkpoint", timeout_);
  }

  void Get(std::string key, Callback<Result<RecordPtr>> done) override {
    auto race = std::make_shared<Race<Result<RecordPtr>>>(std::move(done));
    inner().Get(std::move(key),
                [timers = timers_, race](Result<RecordPtr> r) { Finish(*timers, *race, std::move(r)); });
    Arm(race, "get", timeout_);
  }

  void Delete(std::string key, Callback<Status> done) override {
    auto race = std::make_shared<Race<Status>>(std::move(done));
    inner().Delete(std::move(key),
                   [timers = timers_, race](Status status) { Finish(*timers, *race, std::move(status)); });
    Arm(race, "delete", timeout_);
  }

  void Sweep(size_t limit, Callback<Result<size_t>> done) override {
    auto race = std::make_shared<Race<Result<size_t>>>(std::move(done));
    inner().Sweep(limit, [timers = timers_, race](Result<size_t> r) { Finish(*timers, *race, std::move(r)); });
    Arm(race, "sweep", timeout_);
  }

  void WaitForCompletion(std::string key, std::chrono::milliseconds timeout,
                         Callback<Result<RecordPtr>> done) override {
    auto race = std::make_shared<Race<Result<RecordPtr>>>(std::move(done));
    inner().WaitForCompletion(
        std::move(key), timeout,
        [timers = timers_, race](Result<RecordPtr> r) { Finish(*timers, *race, std::move(r)); });
    Arm(race, "wait", timeout + timeout_);
  }

  void Ping(Callback<Status> done) override {
    auto race = std::make_shared<Race<Status>>(std::move(done));
    inner().Ping([timers = timers_, race](Status status) { Finish(*timers, *race, std::move(status)); });
    Arm(race, "ping", timeout_);
  }

 private:
  // Runs the callback unless the timer already did; false when too late.
  // The inner store's callbacks hold the timer queue, not the wrapper: a
  // late answer may come while the wrapper is being destroyed.
  template <typename T>
  static bool Finish(TimerQueue& timers, Race<T>& race, T value) {
    if (race.finished.exchange(true)) return false;
    if (const uint64_t timer = race.timer.load()) timers.Cancel(timer);
    race.done(std::move(value));
    return true;
  }

  // Starts the timer unless the answer came already (inline stores answer
  // before the call returns, so they never pay for a timer).
  template <typename T>
  void Arm(const std::shared_ptr<Race<T>>& race, const char* op,
           std::chrono::milliseconds after) {
    if (race->finished.load()) return;
    const uint64_t id = timers_->Schedule(
        TimerQueue::Clock::now() + after, [race, op, after] {
          if (race->finished.exchange(true)) return;
          race->done(T(Unavailable(std::string("store operation ") + op +
                                   " timed out after " + std::to_string(after.count()) +
                                   " ms")));
        });
    race->timer.store(id);
    // The answer may have come between the check and the store of the id,
    // and then did not see the timer: cancel it here instead.
    if (race->finished.load()) timers_->Cancel(id);
  }

  const std::chrono::milliseconds timeout_;
  std::shared_ptr<TimerQueue> timers_ = std::make_shared<TimerQueue>();
};

}  // namespace

std::shared_ptr<Store> NewDeadlineStore(std::shared_ptr<Store> inner,
                                        std::chrono::milliseconds timeout) {
  return std::make_shared<DeadlineStore>(std::move(inner), timeout);
}

}  // namespace idem
