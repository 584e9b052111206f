// The RocksDB store. docs/stores.md ("RocksDB") explains the design; in
// short:
//
// - Atomicity: every call on a key runs its read-decide-queue step under
//   that key's stripe lock. The gateway is the only writer of its
//   directory (RocksDB's LOCK file keeps other processes out), so
//   in-process locks are enough; no RocksDB transaction is needed.
// - Writes (GroupCommitter): a lease is written to the WAL by the calling
//   thread and answered at once; results go to one commit thread that
//   writes whatever has accumulated as one WriteBatch and syncs the log
//   once for all of it (group commit).
// - Pending writes: until it is finished (written, and synced if it must
//   be), a mutation is the key's pending state (Stripe::pending), so the
//   next call on the key decides on it, not on the older state in RocksDB.
//   An answer read from a pending state is held back until that write is
//   finished: nothing a caller learns can be undone by a crash.
#include "idem/rocksdb_store.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/sync_wait.h"
#include "core/waiters.h"
#include "idem/record_codec.h"
#include "stores/rocksdb/callback_runner.h"
#include "stores/rocksdb/commit.h"
#include "stores/rocksdb/expiry_filter.h"
#include "stores/rocksdb/group_committer.h"
#include "stores/rocksdb/open_db.h"
#include "stores/rocksdb/record_cache.h"
#include "stores/rocksdb/rocksdb_store_internal.h"
#include "stores/rocksdb/task_thread.h"

namespace idem {
namespace {

using internal::Waiter;
using internal::WaitTimer;
using internal::Wakeup;
using rocksdb_store::CallbackRunner;
using rocksdb_store::Commit;
using rocksdb_store::CommitPtr;
using rocksdb_store::DbPtr;
using rocksdb_store::ExpiryCompactionFilter;
using rocksdb_store::GroupCommitter;
using rocksdb_store::RecordCache;
using rocksdb_store::TaskThread;
using Wake = Commit::Wake;

constexpr std::string_view kClosed = "the rocksdb store is closed";

// A key for a log line: printable, and short.
std::string LogKey(std::string_view key) {
  std::string out;
  for (const char c : key.substr(0, 120)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (key.size() > 120) out += "...";
  return out;
}

struct Stripe {
  std::mutex mutex;
  // The newest not-yet-durable write of each key that has one.
  std::unordered_map<std::string, CommitPtr> pending;
  std::unordered_map<std::string, std::vector<Waiter>> waiters;
  // Decoded durable records (write-through; see record_cache.h).
  RecordCache cache;

  // Moves the key's waiters into `wakeup`. Caller holds `mutex`.
  void TakeWaiters(const std::string& key, Wakeup& wakeup) {
    auto it = waiters.find(key);
    if (it == waiters.end()) return;
    for (auto& w : it->second) wakeup.waiters.push_back(std::move(w));
    waiters.erase(it);
  }
};

// What is stored on disk under a key.
struct Stored {
  Status error;          // the read itself failed
  bool present = false;  // some bytes are stored under the key
  RecordPtr record;      // null when absent or corrupt
};

// A key's state as a call sees it, under the key's stripe lock.
struct View {
  Status error;
  RecordPtr record;   // the live record; null: absent, expired or corrupt
  CommitPtr pending;  // the not-yet-durable write `record` comes from
  bool corrupt = false;
};

// A finished commit, and what runs for it once the stripe lock is
// dropped: its callback, the answers held back on it, the waiters it
// wakes. Empty: nothing to run.
struct Finished {
  CommitPtr commit;
  std::vector<Commit::Done> followers;
  Wakeup wakeup;

  void Run() {
    if (!commit) return;
    const Status& status = commit->status;
    commit->done(status);
    for (auto& follower : followers) follower(status);
    wakeup.Run();
  }
};

// How a call answers, and the owner of its callback until then: at once
// once the stripe lock is dropped (Send), after the pending write the
// answer was read from (a follower of that write: if the write fails, the
// answer, read from a state that never reached the disk, becomes its
// error), or through the commit the call queued (TakeDone).
template <typename T>
class Reply {
 public:
  explicit Reply(Callback<T> done) : done_(std::move(done)) {}

  // Caller holds the key's stripe lock when `pending` is set.
  void Answer(T answer, const CommitPtr& pending) {
    if (!pending) {
      now_.emplace(std::move(answer));
      return;
    }
    pending->followers.push_back(
        [answer = std::move(answer), done = TakeDone()](const Status& status) {
          if (status.ok()) return done(answer);
          done(T(Unavailable("the write this answer was read from failed: " +
                             status.message())));
        });
  }

  Callback<T> TakeDone() { return std::exchange(done_, nullptr); }

  // Runs the immediate answer, if there is one.
  void Send() {
    if (now_) done_(std::move(*now_));
  }

 private:
  Callback<T> done_;
  std::optional<T> now_;
};

// Counts the deletes one Sweep queued; answers when the last is durable.
class SweepProgress {
 public:
  explicit SweepProgress(Callback<Result<size_t>> done) : done_(std::move(done)) {}

  void Add() {
    std::lock_guard lock(mutex_);
    ++outstanding_;
  }

  // One queued delete (or the scan itself, `removed` false) is over.
  void Arrive(const Status& status, bool removed) {
    Result<size_t> result = size_t{0};
    {
      std::lock_guard lock(mutex_);
      if (!status.ok() && error_.ok()) error_ = status;
      if (status.ok() && removed) ++removed_;
      if (--outstanding_ > 0) return;
      if (error_.ok()) {
        result = removed_;
      } else {
        result = error_;
      }
    }
    done_(std::move(result));
  }

 private:
  std::mutex mutex_;
  size_t outstanding_ = 1;  // the scan's own share
  size_t removed_ = 0;
  Status error_;
  Callback<Result<size_t>> done_;
};

class RocksDbStore final : public Store {
 public:
  RocksDbStore(const RocksDbStoreOptions& options, std::shared_ptr<Clock> clock,
               std::unique_ptr<ExpiryCompactionFilter> filter, DbPtr db)
      : clock_(std::move(clock)),
        filter_(std::move(filter)),
        db_(std::move(db)),
        stripes_(std::max<size_t>(1, options.lock_stripes)),
        sync_results_(options.sync),
        sync_leases_(options.sync && options.sync_leases),
        sweep_batch_(std::max<size_t>(1, options.sweep_batch)),
        timer_([this](size_t stripe, const std::string& key, uint64_t id) {
          ExpireWaiter(stripe, key, id);
        }),
        runner_(options.callback_threads),
        committer_(
            db_.get(),
            GroupCommitter::Limits{options.max_batch_size, options.max_batch_bytes},
            [this](const GroupCommitter::Batch& batch) { Finish(batch); }),
        sweeper_(
            std::chrono::milliseconds(std::max<int64_t>(0, options.sweep_interval_ms)),
            [this] { PeriodicSweep(); }) {
    for (auto& stripe : stripes_) {
      stripe.cache.set_capacity(options.record_cache_bytes / stripes_.size());
    }
  }

  ~RocksDbStore() override {
    sweeper_.Stop();
    committer_.Stop();  // writes what is queued; its callbacks go to runner_
    runner_.Stop();     // runs them
    for (auto& stripe : stripes_) {
      Wakeup wakeup;
      wakeup.result = Unavailable(std::string(kClosed));
      {
        std::lock_guard lock(stripe.mutex);
        for (auto& [key, list] : stripe.waiters) {
          for (auto& w : list) wakeup.waiters.push_back(std::move(w));
        }
        stripe.waiters.clear();
      }
      wakeup.Run();
    }
  }

  void Begin(BeginRequest request, Callback<Result<BeginResult>> done) override {
    if (Broken(done)) return;
    const int64_t now = clock_->NowMs();
    Stripe& stripe = StripeFor(request.key);
    Wakeup wakeup;
    Reply<Result<BeginResult>> reply(std::move(done));
    Finished finished;
    {
      std::lock_guard lock(stripe.mutex);
      const View view = Read(stripe, request.key, now, wakeup);
      std::shared_ptr<Record> next;
      if (!view.error.ok()) {
        reply.Answer(view.error, nullptr);
      } else if (!view.record) {
        if (view.corrupt) {
          spdlog::warn("rocksdb store: overwriting the corrupt record of key \"{}\"",
                       LogKey(request.key));
        }
        next = std::make_shared<Record>();
        next->key = request.key;
        next->state = RecordState::kInFlight;
        next->fingerprint = std::move(request.fingerprint);
        next->owner = std::move(request.owner);
        next->fence = 1;
        next->lease_expires_at_ms = now + request.lease_ttl_ms;
        next->created_at_ms = now;
        next->expires_at_ms = InFlightExpiry(request, now);
      } else {
        const Record& current = *view.record;
        BeginOutcome outcome = BeginOutcome::kAcquired;
        if (current.fingerprint != request.fingerprint) {
          outcome = BeginOutcome::kMismatch;
        } else if (current.state == RecordState::kCompleted) {
          outcome = BeginOutcome::kCompleted;
        } else if (!current.LeaseExpired(now)) {
          outcome = BeginOutcome::kInFlight;
        } else {
          // Takeover: the fence moves on and the recovery point stays.
          next = std::make_shared<Record>(current);
          next->owner = std::move(request.owner);
          next->fence = current.fence + 1;
          next->lease_expires_at_ms = now + request.lease_ttl_ms;
          next->expires_at_ms = InFlightExpiry(request, now);
        }
        if (!next) reply.Answer(BeginResult{outcome, view.record}, view.pending);
      }
      if (next) {
        RecordPtr record = std::move(next);
        auto commit =
            NewCommit(request.key, record, Wake::kNone, sync_leases_, view.pending,
                      [record, done = reply.TakeDone()](const Status& s) {
                        if (!s.ok()) return done(s);
                        done(BeginResult{BeginOutcome::kAcquired, record});
                      });
        Submit(stripe, commit, finished);
      }
    }
    wakeup.Run();
    finished.Run();
    reply.Send();
  }

  void Complete(CompleteRequest request, Callback<Status> done) override {
    auto response = std::make_shared<StoredResponse>(std::move(request.response));
    const int64_t ttl_ms = request.ttl_ms;
    OwnerChecked<Status>(
        std::move(request.key), request.owner, Wake::kCompleted, sync_results_,
        [response, ttl_ms](const Record& current, int64_t now) {
          auto record = std::make_shared<Record>(current);
          record->state = RecordState::kCompleted;
          record->response = std::move(*response);
          record->recovery = {};
          record->expires_at_ms = now + ttl_ms;
          return record;
        },
        [](const RecordPtr&) { return Status::Ok(); }, std::move(done));
  }

  void Release(std::string key, std::string owner, Callback<Status> done) override {
    OwnerChecked<Status>(
        std::move(key), owner, Wake::kGone, sync_leases_,
        [](const Record&, int64_t) { return std::shared_ptr<Record>(); },
        [](const RecordPtr&) { return Status::Ok(); }, std::move(done));
  }

  void Extend(std::string key, std::string owner, int64_t lease_ttl_ms,
              Callback<Result<int64_t>> done) override {
    OwnerChecked<Result<int64_t>>(
        std::move(key), owner, Wake::kNone, sync_leases_,
        [lease_ttl_ms](const Record& current, int64_t now) {
          auto record = std::make_shared<Record>(current);
          record->lease_expires_at_ms = now + lease_ttl_ms;
          record->expires_at_ms =
              std::max(record->expires_at_ms, record->lease_expires_at_ms);
          return record;
        },
        [](const RecordPtr& record) {
          return Result<int64_t>(record->lease_expires_at_ms);
        },
        std::move(done));
  }

  void Checkpoint(CheckpointRequest request, Callback<Status> done) override {
    auto recovery = std::make_shared<RecoveryPoint>(std::move(request.recovery));
    OwnerChecked<Status>(
        std::move(request.key), request.owner, Wake::kNone, sync_results_,
        [recovery](const Record& current, int64_t) {
          auto record = std::make_shared<Record>(current);
          record->recovery = std::move(*recovery);
          return record;
        },
        [](const RecordPtr&) { return Status::Ok(); }, std::move(done));
  }

  void Get(std::string key, Callback<Result<RecordPtr>> done) override {
    if (Broken(done)) return;
    const int64_t now = clock_->NowMs();
    Stripe& stripe = StripeFor(key);
    Wakeup wakeup;
    Reply<Result<RecordPtr>> reply(std::move(done));
    {
      std::lock_guard lock(stripe.mutex);
      const View view = Read(stripe, key, now, wakeup);
      Result<RecordPtr> result = NotFound("no record for this key");
      if (!view.error.ok()) {
        result = view.error;
      } else if (view.record) {
        result = view.record;
      } else if (view.corrupt) {
        result = DataLoss("the stored record of this key is corrupt");
      }
      reply.Answer(std::move(result), view.pending);
    }
    wakeup.Run();
    reply.Send();
  }

  void Delete(std::string key, Callback<Status> done) override {
    if (Broken(done)) return;
    const int64_t now = clock_->NowMs();
    Stripe& stripe = StripeFor(key);
    Wakeup wakeup;
    Reply<Status> reply(std::move(done));
    Finished finished;
    {
      std::lock_guard lock(stripe.mutex);
      const View view = Read(stripe, key, now, wakeup);
      if (!view.error.ok()) {
        reply.Answer(view.error, nullptr);
      } else if (view.record || view.corrupt) {
        auto commit = NewCommit(key, nullptr, Wake::kGone, sync_results_, view.pending,
                                [done = reply.TakeDone()](const Status& s) { done(s); });
        Submit(stripe, commit, finished);
      } else {
        reply.Answer(NotFound("no record for this key"), view.pending);
      }
    }
    wakeup.Run();
    finished.Run();
    reply.Send();
  }

  void Sweep(size_t limit, Callback<Result<size_t>> done) override {
    if (Broken(done)) return;
    sweeper_.Post([this, limit, done = std::move(done)] { SweepNow(limit, done); });
  }

  void WaitForCompletion(std::string key, std::chrono::milliseconds timeout,
                         Callback<Result<RecordPtr>> done) override {
    if (Broken(done)) return;
    const int64_t now = clock_->NowMs();
    const size_t index = StripeIndex(key);
    Stripe& stripe = stripes_[index];
    Wakeup wakeup;
    Reply<Result<RecordPtr>> reply(std::move(done));
    uint64_t waiter_id = 0;
    {
      std::lock_guard lock(stripe.mutex);
      const View view = Read(stripe, key, now, wakeup);
      if (!view.error.ok()) {
        reply.Answer(view.error, nullptr);
      } else if (!view.record) {
        reply.Answer(NotFound("no record for this key"), view.pending);
      } else if (view.record->state == RecordState::kCompleted) {
        reply.Answer(view.record, view.pending);
      } else if (timeout.count() <= 0) {
        reply.Answer(DeadlineExceeded("the operation is still in flight"), view.pending);
      } else {
        waiter_id = next_waiter_id_.fetch_add(1, std::memory_order_relaxed);
        stripe.waiters[key].push_back(Waiter{waiter_id, reply.TakeDone()});
      }
    }
    wakeup.Run();
    if (waiter_id != 0) {
      timer_.Schedule(std::chrono::steady_clock::now() + timeout, index, std::move(key),
                      waiter_id);
    }
    reply.Send();
  }

  void Ping(Callback<Status> done) override { done(committer_.health()); }

  std::vector<StoreMetric> Metrics() const override {
    const rocksdb_store::CommitStats stats = committer_.stats();
    const auto counter = [](std::string name, std::string help, double value) {
      return StoreMetric{std::move(name), std::move(help), StoreMetric::Kind::kCounter,
                         value};
    };
    return {
        counter("rocksdb_commits_total",
                "Mutations the RocksDB store finished (durable or failed).",
                static_cast<double>(stats.commits)),
        counter("rocksdb_batches_total", "WriteBatches written to the RocksDB log.",
                static_cast<double>(stats.batches)),
        counter("rocksdb_syncs_total", "Syncs (fdatasync) of the RocksDB log.",
                static_cast<double>(stats.syncs)),
        counter("rocksdb_failed_batches_total",
                "RocksDB log writes or syncs that failed.",
                static_cast<double>(stats.failed_batches)),
        counter("rocksdb_sync_seconds_total", "Time spent syncing the RocksDB log.",
                static_cast<double>(stats.sync_nanos) / 1e9),
    };
  }

  // Hooks for rocksdb_store_internal.h.
  GroupCommitter& committer() { return committer_; }
  rocksdb::DB& db() { return *db_; }

 private:
  // After a failed log sync nothing the store holds in memory is known to
  // be on disk: every call answers the sync's error until the store is
  // reopened (RocksDB then recovers what the disk has).
  template <typename T>
  bool Broken(Callback<T>& done) {
    if (!committer_.broken()) return false;
    done(T(committer_.health()));
    return true;
  }

  static int64_t InFlightExpiry(const BeginRequest& request, int64_t now) {
    return now + std::max(request.lease_ttl_ms, request.ttl_ms);
  }

  size_t StripeIndex(const std::string& key) const {
    return std::hash<std::string>{}(key) % stripes_.size();
  }
  Stripe& StripeFor(const std::string& key) { return stripes_[StripeIndex(key)]; }

  // The record stored under `key`, or null (with a warning) when its bytes
  // do not decode or name another key.
  static RecordPtr DecodeStored(const std::string& key, std::string_view bytes) {
    Result<Record> decoded = DecodeRecord(bytes);
    Status problem = decoded.status();
    if (decoded.ok()) {
      if (decoded->key == key) {
        return std::make_shared<const Record>(std::move(decoded).value());
      }
      problem = DataLoss("the record names another key");
    }
    spdlog::warn(
        "rocksdb store: the record of key \"{}\" is corrupt ({}); "
        "treated as absent",
        LogKey(key), problem.ToString());
    return nullptr;
  }

  Stored ReadStored(const std::string& key) const {
    Stored stored;
    rocksdb::PinnableSlice value;
    const rocksdb::Status status =
        db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), key, &value);
    if (status.IsNotFound()) return stored;
    if (!status.ok()) {
      stored.error = Unavailable("rocksdb read failed: " + status.ToString());
      return stored;
    }
    stored.present = true;
    stored.record = DecodeStored(key, value.ToStringView());
    return stored;
  }

  // The durable state of a key that has no pending write: from the cache,
  // else from RocksDB (and then cached). Caller holds the stripe lock.
  Stored ReadDurable(Stripe& stripe, const std::string& key) {
    if (RecordPtr cached = stripe.cache.Find(key)) {
      Stored stored;
      stored.present = true;
      stored.record = std::move(cached);
      return stored;
    }
    Stored stored = ReadStored(key);
    if (stored.record) stripe.cache.Put(key, stored.record);
    return stored;
  }

  // The key's current state: its pending write if it has one, else what is
  // on disk. An expired record reads as absent, and its waiters learn that
  // it is gone. Caller holds the stripe lock.
  View Read(Stripe& stripe, const std::string& key, int64_t now, Wakeup& wakeup) {
    View view;
    auto it = stripe.pending.empty() ? stripe.pending.end() : stripe.pending.find(key);
    if (it != stripe.pending.end()) {
      view.pending = it->second;
      view.record = it->second->record;
    } else {
      Stored stored = ReadDurable(stripe, key);
      view.error = std::move(stored.error);
      view.record = std::move(stored.record);
      view.corrupt = stored.present && !view.record;
    }
    if (view.record && view.record->IsExpired(now)) {
      view.record = nullptr;
      stripe.TakeWaiters(key, wakeup);
    }
    return view;
  }

  static CommitPtr NewCommit(const std::string& key, RecordPtr record, Wake wake,
                             bool sync, CommitPtr depends_on, Commit::Done done) {
    auto commit = std::make_shared<Commit>();
    commit->key = key;
    commit->record = std::move(record);
    commit->wake = wake;
    commit->sync = sync;
    commit->depends_on = std::move(depends_on);
    commit->done = std::move(done);
    return commit;
  }

  // Hands `commit` to the committer as the key's newest state. Caller
  // holds the stripe lock, so the commit is the key's pending state (or
  // finished) before any other call on the key looks. A commit finished
  // at once (written, or failed, or refused because the store is closing)
  // comes back in `finished`, to run once the lock is dropped.
  void Submit(Stripe& stripe, const CommitPtr& commit, Finished& finished) {
    switch (committer_.Submit(commit)) {
      case GroupCommitter::Submitted::kPending:
        stripe.pending[commit->key] = commit;
        return;
      case GroupCommitter::Submitted::kFinished:
        finished = FinishLocked(stripe, commit);
        return;
      case GroupCommitter::Submitted::kRejected:
        commit->status = Unavailable(std::string(kClosed));
        finished.commit = commit;
        return;
    }
  }

  static Status CheckOwner(const View& view, const std::string& owner) {
    if (!view.record) {
      return LeaseLost("the record is gone (expired, released or deleted)");
    }
    if (view.record->owner != owner) {
      return LeaseLost("the lease was taken over by another owner");
    }
    if (view.record->state != RecordState::kInFlight) {
      return FailedPrecondition("the record is already completed");
    }
    return Status::Ok();
  }

  // Complete, Release, Extend and Checkpoint: checks `owner` against the
  // key's state and queues the state `change` makes of it (null deletes
  // the key); `answer_of` turns the written state into the answer.
  template <typename T>
  void OwnerChecked(std::string key, const std::string& owner, Wake wake, bool sync,
                    std::function<std::shared_ptr<Record>(const Record&, int64_t)> change,
                    std::function<T(const RecordPtr&)> answer_of, Callback<T> done) {
    if (Broken(done)) return;
    const int64_t now = clock_->NowMs();
    Stripe& stripe = StripeFor(key);
    Wakeup wakeup;
    Reply<T> reply(std::move(done));
    Finished finished;
    {
      std::lock_guard lock(stripe.mutex);
      const View view = Read(stripe, key, now, wakeup);
      Status status = view.error.ok() ? CheckOwner(view, owner) : view.error;
      if (!status.ok()) {
        reply.Answer(T(std::move(status)), view.pending);
      } else {
        RecordPtr record = change(*view.record, now);
        auto commit =
            NewCommit(key, record, wake, sync, view.pending,
                      [record, answer_of = std::move(answer_of), done = reply.TakeDone()](
                          const Status& s) { done(s.ok() ? answer_of(record) : T(s)); });
        Submit(stripe, commit, finished);
      }
    }
    wakeup.Run();
    finished.Run();
    reply.Send();
  }

  // A finished write (durable or failed) stops being pending; the cache
  // learns its state and the waiters it wakes are taken. Caller holds the
  // stripe lock.
  static Finished FinishLocked(Stripe& stripe, const CommitPtr& commit) {
    Finished item;
    auto it = stripe.pending.find(commit->key);
    if (it != stripe.pending.end() && it->second == commit) stripe.pending.erase(it);
    item.followers = std::move(commit->followers);
    commit->followers.clear();
    const bool failed = !commit->status.ok();
    if (!failed) stripe.cache.Put(commit->key, commit->record);
    if (failed) {
      stripe.TakeWaiters(commit->key, item.wakeup);
      item.wakeup.result = commit->status;
    } else if (commit->wake == Wake::kCompleted) {
      stripe.TakeWaiters(commit->key, item.wakeup);
      item.wakeup.result = commit->record;
    } else if (commit->wake == Wake::kGone) {
      stripe.TakeWaiters(commit->key, item.wakeup);
    }
    item.commit = commit;
    return item;
  }

  // Runs on the committer's threads for writes finished there; their
  // callbacks go to the callback threads.
  void Finish(const GroupCommitter::Batch& batch) {
    auto finished = std::make_shared<std::vector<Finished>>();
    finished->reserve(batch.size());
    for (const CommitPtr& commit : batch) {
      Stripe& stripe = StripeFor(commit->key);
      std::lock_guard lock(stripe.mutex);
      finished->push_back(FinishLocked(stripe, commit));
    }
    runner_.Post([finished] {
      for (Finished& item : *finished) item.Run();
    });
  }

  void ExpireWaiter(size_t index, const std::string& key, uint64_t id) {
    Stripe& stripe = stripes_[index];
    internal::WaitCallback done;
    {
      std::lock_guard lock(stripe.mutex);
      auto it = stripe.waiters.find(key);
      if (it == stripe.waiters.end()) return;
      auto& list = it->second;
      auto w = std::find_if(list.begin(), list.end(),
                            [id](const Waiter& x) { return x.id == id; });
      if (w == list.end()) return;
      done = std::move(w->done);
      list.erase(w);
      if (list.empty()) stripe.waiters.erase(it);
    }
    done(DeadlineExceeded("the operation is still in flight"));
  }

  // Queues the deletion of `key` if it is still expired (or corrupt) now
  // that its stripe is locked and no write of it is pending.
  bool SweepKey(const std::string& key, int64_t now,
                const std::shared_ptr<SweepProgress>& progress) {
    Stripe& stripe = StripeFor(key);
    Finished finished;
    {
      std::lock_guard lock(stripe.mutex);
      if (stripe.pending.count(key) != 0) return false;  // judged on a later pass
      const Stored stored = ReadDurable(stripe, key);
      if (!stored.error.ok() || !stored.present) return false;
      if (stored.record && !stored.record->IsExpired(now)) return false;
      if (!stored.record) {
        spdlog::warn("rocksdb store: sweep removes the corrupt record of key \"{}\"",
                     LogKey(key));
      }
      auto commit = NewCommit(key, nullptr, Wake::kGone, /*sync=*/false, nullptr,
                              [progress](const Status& s) { progress->Arrive(s, true); });
      progress->Add();
      Submit(stripe, commit, finished);
    }
    finished.Run();
    return true;
  }

  // Runs on the sweeper thread. Scans from where the last sweep stopped to
  // the end and then from the start back to there (at most one pass per
  // call), queueing deletes for expired and corrupt records.
  void SweepNow(size_t limit, const Callback<Result<size_t>>& done) {
    auto progress = std::make_shared<SweepProgress>(done);
    const int64_t now = clock_->NowMs();
    Status scan_error;
    if (limit > 0) {
      rocksdb::ReadOptions read;
      read.fill_cache = false;       // a scan must not evict the replay working set
      read.total_order_seek = true;  // every key in order, not one prefix (open_db.cc)
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read));
      size_t queued = 0;
      // Returns true when it stopped at the limit, leaving the cursor there.
      auto scan = [&](const std::string& from, const std::string* until) {
        for (it->Seek(from); it->Valid(); it->Next()) {
          const std::string_view key = it->key().ToStringView();
          if (until != nullptr && key >= *until) break;
          if (queued >= limit) {
            sweep_cursor_ = std::string(key);
            return true;
          }
          Result<Record> record = DecodeRecord(it->value().ToStringView());
          if (record.ok() && record->key == key && !record->IsExpired(now)) continue;
          if (SweepKey(std::string(key), now, progress)) ++queued;
        }
        return false;
      };
      const std::string start = sweep_cursor_;
      bool stopped = scan(start, nullptr);
      if (!stopped && !start.empty()) stopped = scan(std::string(), &start);
      if (!stopped) sweep_cursor_.clear();
      if (!it->status().ok()) {
        scan_error = Unavailable("rocksdb scan failed: " + it->status().ToString());
      }
    }
    progress->Arrive(scan_error, false);
  }

  // The background sweep: passes of sweep_batch_ until one finds less.
  void PeriodicSweep() {
    for (;;) {
      Result<size_t> swept = internal::WaitFor<Result<size_t>>(
          [this](auto done) { SweepNow(sweep_batch_, std::move(done)); });
      if (!swept.ok()) {
        spdlog::warn("rocksdb store: background sweep: {}", swept.status().ToString());
        return;
      }
      if (*swept < sweep_batch_) return;
    }
  }

  std::shared_ptr<Clock> clock_;
  std::unique_ptr<ExpiryCompactionFilter> filter_;  // outlives db_
  DbPtr db_;
  std::vector<Stripe> stripes_;
  const bool sync_results_;  // Complete, Checkpoint, Delete
  const bool sync_leases_;   // Begin, Extend, Release
  const size_t sweep_batch_;
  std::string sweep_cursor_;  // sweeper thread only
  std::atomic<uint64_t> next_waiter_id_{1};
  // The threads, started last and stopped first (see the destructor).
  WaitTimer timer_;
  CallbackRunner runner_;
  GroupCommitter committer_;
  TaskThread sweeper_;
};

RocksDbStore* AsRocksDb(Store& store) { return dynamic_cast<RocksDbStore*>(&store); }

}  // namespace

Result<std::shared_ptr<Store>> NewRocksDbStore(const RocksDbStoreOptions& options) {
  std::shared_ptr<Clock> clock = options.clock ? options.clock : SystemClock();
  std::unique_ptr<ExpiryCompactionFilter> filter;
  if (options.compaction_filter) filter = std::make_unique<ExpiryCompactionFilter>(clock);
  Result<DbPtr> db = rocksdb_store::OpenDb(options, filter.get());
  if (!db.ok()) return db.status();
  return std::shared_ptr<Store>(std::make_shared<RocksDbStore>(
      options, std::move(clock), std::move(filter), std::move(db).value()));
}

namespace rocksdb_store {

CommitStats GetCommitStats(Store& store) {
  RocksDbStore* rocks = AsRocksDb(store);
  return rocks != nullptr ? rocks->committer().stats() : CommitStats{};
}

void PauseCommitsForTesting(Store& store, bool paused) {
  if (RocksDbStore* rocks = AsRocksDb(store)) {
    rocks->committer().SetPausedForTesting(paused);
  }
}

void PauseSyncsForTesting(Store& store, bool paused) {
  if (RocksDbStore* rocks = AsRocksDb(store)) {
    rocks->committer().SetSyncsPausedForTesting(paused);
  }
}

void FailNextBatchesForTesting(Store& store, int count) {
  if (RocksDbStore* rocks = AsRocksDb(store)) {
    rocks->committer().FailNextWritesForTesting(count);
  }
}

void FailNextSyncsForTesting(Store& store, int count) {
  if (RocksDbStore* rocks = AsRocksDb(store)) {
    rocks->committer().FailNextSyncsForTesting(count);
  }
}

Status CompactForTesting(Store& store) {
  RocksDbStore* rocks = AsRocksDb(store);
  if (rocks == nullptr) return InvalidArgument("not a rocksdb store");
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  const rocksdb::Status status = rocks->db().CompactRange(options, nullptr, nullptr);
  if (!status.ok()) return Unavailable("rocksdb compaction failed: " + status.ToString());
  return Status::Ok();
}

}  // namespace rocksdb_store
}  // namespace idem
