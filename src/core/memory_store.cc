// The in-process store. Records are immutable shared values once handed
// out: a transition swaps in a new Record (or changes one that nobody else
// holds, see Writable), so readers can hold a RecordPtr without a lock and a
// replay never copies the stored body.
#include "idem/memory_store.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/waiters.h"

namespace idem {
namespace {

using internal::WaitCallback;
using internal::Waiter;
using internal::WaitTimer;
using internal::Wakeup;

// A key and its hash, computed once per store call: the hash picks the shard
// and the bucket (hashing a scope key costs more than the lookup itself).
struct HashedKey {
  explicit HashedKey(std::string_view key)
      : text(key), hash(std::hash<std::string_view>{}(key)) {}
  std::string_view text;
  size_t hash;
};

// How the map keeps a key: with its hash, so neither an insert nor a rehash
// hashes it again.
struct StoredKey {
  std::string text;
  size_t hash;
};

struct KeyHash {
  using is_transparent = void;
  size_t operator()(const StoredKey& key) const noexcept { return key.hash; }
  size_t operator()(const HashedKey& key) const noexcept { return key.hash; }
};

struct KeyEqual {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const noexcept {
    return a.hash == b.hash && a.text == b.text;
  }
};

struct Shard {
  std::mutex mutex;
  std::unordered_map<StoredKey, RecordPtr, KeyHash, KeyEqual> records;
  std::unordered_map<std::string, std::vector<Waiter>> waiters;

  // Moves the key's waiters into `wakeup`. Caller holds `mutex`.
  void TakeWaiters(const std::string& key, Wakeup& wakeup) {
    auto it = waiters.find(key);
    if (it == waiters.end()) return;
    for (auto& w : it->second) wakeup.waiters.push_back(std::move(w));
    waiters.erase(it);
  }
};

class MemoryStore final : public Store {
 public:
  explicit MemoryStore(const MemoryStoreOptions& options)
      : clock_(options.clock ? options.clock : SystemClock()),
        shards_(std::max<size_t>(1, options.shards)),
        max_records_(options.max_records),
        timer_([this](size_t shard, const std::string& key, uint64_t id) {
          ExpireWaiter(shard, key, id);
        }) {}

  ~MemoryStore() override {
    for (auto& shard : shards_) {
      Wakeup wakeup;
      wakeup.result = Unavailable("store closed");
      {
        std::lock_guard lock(shard.mutex);
        for (auto& [key, list] : shard.waiters) {
          for (auto& w : list) wakeup.waiters.push_back(std::move(w));
        }
        shard.waiters.clear();
      }
      wakeup.Run();
    }
  }

  void Begin(BeginRequest request, Callback<Result<BeginResult>> done) override {
    const int64_t now = clock_->NowMs();
    const HashedKey key(request.key);
    Shard& shard = ShardFor(key);
    BeginResult result;
    Wakeup wakeup;
    bool full = false;
    {
      std::lock_guard lock(shard.mutex);
      auto it = LiveRecord(shard, key, now, wakeup);
      if (it == shard.records.end() && !Admit()) {
        full = true;
      } else if (it == shard.records.end()) {
        auto record = std::make_shared<Record>();
        record->key = request.key;
        record->state = RecordState::kInFlight;
        record->fingerprint = std::move(request.fingerprint);
        record->owner = std::move(request.owner);
        record->fence = 1;
        record->lease_expires_at_ms = now + request.lease_ttl_ms;
        record->created_at_ms = now;
        record->expires_at_ms = InFlightExpiry(request, now);
        result = {BeginOutcome::kAcquired, record};
        shard.records.emplace(StoredKey{std::move(request.key), key.hash},
                              std::move(record));
      } else {
        const Record& current = *it->second;
        if (current.fingerprint != request.fingerprint) {
          result = {BeginOutcome::kMismatch, it->second};
        } else if (current.state == RecordState::kCompleted) {
          result = {BeginOutcome::kCompleted, it->second};
        } else if (!current.LeaseExpired(now)) {
          result = {BeginOutcome::kInFlight, it->second};
        } else {
          // Takeover: the fence moves on and the recovery point stays.
          auto record = std::make_shared<Record>(current);
          record->owner = std::move(request.owner);
          record->fence = current.fence + 1;
          record->lease_expires_at_ms = now + request.lease_ttl_ms;
          record->expires_at_ms = InFlightExpiry(request, now);
          it->second = record;
          result = {BeginOutcome::kAcquired, std::move(record)};
        }
      }
    }
    wakeup.Run();
    if (full) {
      return done(ResourceExhausted("the memory store holds max_records records"));
    }
    done(std::move(result));
  }

  void Complete(CompleteRequest request, Callback<Status> done) override {
    const int64_t now = clock_->NowMs();
    const HashedKey key(request.key);
    Shard& shard = ShardFor(key);
    Wakeup wakeup;
    Status status;
    {
      std::lock_guard lock(shard.mutex);
      auto it = LiveRecord(shard, key, now, wakeup);
      status = CheckOwner(shard, it, request.owner);
      if (status.ok()) {
        Record& record = Writable(it->second);
        record.state = RecordState::kCompleted;
        record.response = std::move(request.response);
        record.recovery = {};
        record.expires_at_ms = now + request.ttl_ms;
        shard.TakeWaiters(request.key, wakeup);
        wakeup.result = it->second;
      }
    }
    wakeup.Run();
    done(std::move(status));
  }

  void Release(std::string key, std::string owner, Callback<Status> done) override {
    const int64_t now = clock_->NowMs();
    const HashedKey hashed(key);
    Shard& shard = ShardFor(hashed);
    Wakeup wakeup;
    Status status;
    {
      std::lock_guard lock(shard.mutex);
      auto it = LiveRecord(shard, hashed, now, wakeup);
      status = CheckOwner(shard, it, owner);
      if (status.ok()) {
        Erase(shard, it);
        shard.TakeWaiters(key, wakeup);
      }
    }
    wakeup.Run();
    done(std::move(status));
  }

  void Extend(std::string key, std::string owner, int64_t lease_ttl_ms,
              Callback<Result<int64_t>> done) override {
    const int64_t now = clock_->NowMs();
    const HashedKey hashed(key);
    Shard& shard = ShardFor(hashed);
    Wakeup wakeup;
    Result<int64_t> result = Internal("unset");
    {
      std::lock_guard lock(shard.mutex);
      auto it = LiveRecord(shard, hashed, now, wakeup);
      Status status = CheckOwner(shard, it, owner);
      if (status.ok()) {
        auto record = std::make_shared<Record>(*it->second);
        record->lease_expires_at_ms = now + lease_ttl_ms;
        record->expires_at_ms =
            std::max(record->expires_at_ms, record->lease_expires_at_ms);
        result = record->lease_expires_at_ms;
        it->second = std::move(record);
      } else {
        result = std::move(status);
      }
    }
    wakeup.Run();
    done(std::move(result));
  }

  void Checkpoint(CheckpointRequest request, Callback<Status> done) override {
    const int64_t now = clock_->NowMs();
    const HashedKey key(request.key);
    Shard& shard = ShardFor(key);
    Wakeup wakeup;
    Status status;
    {
      std::lock_guard lock(shard.mutex);
      auto it = LiveRecord(shard, key, now, wakeup);
      status = CheckOwner(shard, it, request.owner);
      if (status.ok()) {
        auto record = std::make_shared<Record>(*it->second);
        record->recovery = std::move(request.recovery);
        it->second = std::move(record);
      }
    }
    wakeup.Run();
    done(std::move(status));
  }

  void Get(std::string key, Callback<Result<RecordPtr>> done) override {
    const int64_t now = clock_->NowMs();
    const HashedKey hashed(key);
    Shard& shard = ShardFor(hashed);
    Result<RecordPtr> result = NotFound("no record for this key");
    {
      std::lock_guard lock(shard.mutex);
      auto it = shard.records.find(hashed);
      if (it != shard.records.end() && !it->second->IsExpired(now)) {
        result = it->second;
      }
    }
    done(std::move(result));
  }

  void Delete(std::string key, Callback<Status> done) override {
    const int64_t now = clock_->NowMs();
    const HashedKey hashed(key);
    Shard& shard = ShardFor(hashed);
    Wakeup wakeup;
    Status status;
    {
      std::lock_guard lock(shard.mutex);
      auto it = LiveRecord(shard, hashed, now, wakeup);
      if (it == shard.records.end()) {
        status = NotFound("no record for this key");
      } else {
        Erase(shard, it);
        shard.TakeWaiters(key, wakeup);
      }
    }
    wakeup.Run();
    done(std::move(status));
  }

  void Sweep(size_t limit, Callback<Result<size_t>> done) override {
    const int64_t now = clock_->NowMs();
    size_t removed = 0;
    for (auto& shard : shards_) {
      if (removed >= limit) break;
      Wakeup wakeup;
      {
        std::lock_guard lock(shard.mutex);
        for (auto it = shard.records.begin();
             it != shard.records.end() && removed < limit;) {
          if (it->second->IsExpired(now)) {
            shard.TakeWaiters(it->first.text, wakeup);
            records_.fetch_sub(1, std::memory_order_relaxed);
            it = shard.records.erase(it);
            ++removed;
          } else {
            ++it;
          }
        }
      }
      wakeup.Run();
    }
    done(removed);
  }

  void WaitForCompletion(std::string key, std::chrono::milliseconds timeout,
                         Callback<Result<RecordPtr>> done) override {
    const int64_t now = clock_->NowMs();
    const HashedKey hashed(key);
    const size_t index = ShardIndex(hashed);
    Shard& shard = shards_[index];
    Wakeup wakeup;
    Result<RecordPtr> immediate = NotFound("no record for this key");
    bool waiting = false;
    uint64_t id = 0;
    {
      std::lock_guard lock(shard.mutex);
      auto it = LiveRecord(shard, hashed, now, wakeup);
      if (it != shard.records.end()) {
        if (it->second->state == RecordState::kCompleted) {
          immediate = it->second;
        } else if (timeout.count() <= 0) {
          immediate = DeadlineExceeded("the operation is still in flight");
        } else {
          id = next_waiter_id_.fetch_add(1, std::memory_order_relaxed);
          shard.waiters[key].push_back(Waiter{id, std::move(done)});
          waiting = true;
        }
      }
    }
    wakeup.Run();
    if (waiting) {
      timer_.Schedule(std::chrono::steady_clock::now() + timeout, index, std::move(key),
                      id);
    } else {
      done(std::move(immediate));
    }
  }

  void Ping(Callback<Status> done) override { done(Status::Ok()); }

 private:
  using Iterator = decltype(Shard::records)::iterator;

  // The record in `slot`, ready to be changed. Records handed out are
  // immutable, so one that someone else still holds is copied first; the
  // usual in-flight record is held by the map alone (its owner kept only
  // the lease) and is changed in place, saving a copy of its strings. Caller
  // holds the shard lock, so no new holder can appear meanwhile.
  static Record& Writable(RecordPtr& slot) {
    if (slot.use_count() == 1) {
      // Pairs with the release in the last other holder's reference drop:
      // its reads of the record happen before the changes made here.
      std::atomic_thread_fence(std::memory_order_acquire);
      // Every record is made by make_shared<Record>, never as a const object.
      return const_cast<Record&>(*slot);
    }
    auto copy = std::make_shared<Record>(*slot);
    Record& record = *copy;
    slot = std::move(copy);
    return record;
  }

  static int64_t InFlightExpiry(const BeginRequest& request, int64_t now) {
    return now + std::max(request.lease_ttl_ms, request.ttl_ms);
  }

  size_t ShardIndex(const HashedKey& key) const { return key.hash % shards_.size(); }
  Shard& ShardFor(const HashedKey& key) { return shards_[ShardIndex(key)]; }

  // The key's record if it is live; an expired one is dropped on the way
  // (its waiters learn that it is gone). Caller holds the shard lock.
  Iterator LiveRecord(Shard& shard, const HashedKey& key, int64_t now, Wakeup& wakeup) {
    auto it = shard.records.find(key);
    if (it != shard.records.end() && it->second->IsExpired(now)) {
      shard.TakeWaiters(it->first.text, wakeup);
      Erase(shard, it);
      return shard.records.end();
    }
    return it;
  }

  // Counts a new record in; false (counting nothing) when the store is full.
  bool Admit() {
    const size_t before = records_.fetch_add(1, std::memory_order_relaxed);
    if (max_records_ == 0 || before < max_records_) return true;
    records_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }

  void Erase(Shard& shard, Iterator it) {
    shard.records.erase(it);
    records_.fetch_sub(1, std::memory_order_relaxed);
  }

  static Status CheckOwner(Shard& shard, Iterator it, const std::string& owner) {
    if (it == shard.records.end()) {
      return LeaseLost("the record is gone (expired, released or deleted)");
    }
    if (it->second->owner != owner) {
      return LeaseLost("the lease was taken over by another owner");
    }
    if (it->second->state != RecordState::kInFlight) {
      return FailedPrecondition("the record is already completed");
    }
    return Status::Ok();
  }

  void ExpireWaiter(size_t index, const std::string& key, uint64_t id) {
    Shard& shard = shards_[index];
    WaitCallback done;
    {
      std::lock_guard lock(shard.mutex);
      auto it = shard.waiters.find(key);
      if (it == shard.waiters.end()) return;
      auto& list = it->second;
      auto w = std::find_if(list.begin(), list.end(),
                            [id](const Waiter& x) { return x.id == id; });
      if (w == list.end()) return;
      done = std::move(w->done);
      list.erase(w);
      if (list.empty()) shard.waiters.erase(it);
    }
    done(DeadlineExceeded("the operation is still in flight"));
  }

  std::shared_ptr<Clock> clock_;
  std::vector<Shard> shards_;
  const size_t max_records_;
  std::atomic<size_t> records_{0};  // held in all shards
  std::atomic<uint64_t> next_waiter_id_{1};
  WaitTimer timer_;  // last: its thread stops before the shards go away
};

}  // namespace

std::shared_ptr<Store> NewMemoryStore(const MemoryStoreOptions& options) {
  return std::make_shared<MemoryStore>(options);
}

}  // namespace idem
