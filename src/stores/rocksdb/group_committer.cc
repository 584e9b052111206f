#include "stores/rocksdb/group_committer.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <unordered_set>
#include <utility>

#include "idem/record_codec.h"
#include "stores/rocksdb/thread_name.h"

namespace idem::rocksdb_store {
namespace {

using CommitSet = std::unordered_set<const Commit*>;

// Whether `commit` was derived from a write that failed: one that failed in
// this round (`failed_here`) or one already finished as failed.
bool DependsOnFailure(const Commit& commit, const CommitSet& failed_here) {
  const Commit* base = commit.depends_on.get();
  return base != nullptr &&
         (failed_here.count(base) != 0 || base->failed.load(std::memory_order_acquire));
}

// Whether the write `commit` was derived from is over: written (and handed
// on, so `commit` lines up behind it) or failed. Only then may `commit` be
// written without going through the queue behind it.
bool BaseIsWritten(const Commit& commit) {
  const Commit* base = commit.depends_on.get();
  return base == nullptr || base->written.load(std::memory_order_acquire) ||
         base->failed.load(std::memory_order_acquire);
}

bool BaseIsDurable(const Commit& commit) {
  const Commit* base = commit.depends_on.get();
  return base == nullptr || base->durable.load(std::memory_order_acquire);
}

// Publishes the outcome of finished commits to the other threads: `status`
// was set before, the flags are set after the finish hook ran, so a commit
// that waits for this one is finished after it.
void MarkFinished(Commit& commit, bool failed) {
  if (failed) {
    commit.failed.store(true, std::memory_order_release);
  } else {
    commit.written.store(true, std::memory_order_release);
    commit.durable.store(true, std::memory_order_release);
  }
}

void MarkFinished(const GroupCommitter::Batch& finished, const CommitSet& failed) {
  for (const CommitPtr& commit : finished) {
    MarkFinished(*commit, failed.count(commit.get()) != 0);
    commit->depends_on.reset();  // no chains of finished commits stay alive
  }
}

// Adds the commit's Put (encoding its record here, on the writing thread)
// or Delete to `batch`.
Status AddTo(rocksdb::WriteBatch& batch, Commit& commit) {
  if (commit.record && commit.value.empty()) commit.value = EncodeRecord(*commit.record);
  const rocksdb::Status added =
      commit.record ? batch.Put(commit.key, commit.value) : batch.Delete(commit.key);
  if (added.ok()) return Status::Ok();
  // Only a key or value past RocksDB's size limits.
  return Internal("rocksdb refused the record: " + added.ToString());
}

}  // namespace

GroupCommitter::GroupCommitter(rocksdb::DB* db, Limits limits, Finish finish)
    : db_(db),
      limits_{std::max<size_t>(1, limits.max_commits),
              std::max<size_t>(1, limits.max_bytes)},
      finish_(std::move(finish)),
      thread_([this] { Loop(); }) {}

GroupCommitter::~GroupCommitter() { Stop(); }

GroupCommitter::Submitted GroupCommitter::Submit(const CommitPtr& commit) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return Submitted::kRejected;
    if (commit->sync || paused_ || !BaseIsWritten(*commit)) {
      queue_.push_back(commit);
      cv_.notify_one();
      return Submitted::kPending;
    }
  }

  // A lease, written here on the caller's thread.
  Status error;
  if (commit->depends_on && commit->depends_on->failed.load(std::memory_order_acquire)) {
    error = Unavailable("an earlier write to this key failed");
  } else {
    rocksdb::WriteBatch batch;
    error = AddTo(batch, *commit);
    if (error.ok()) {
      const rocksdb::Status written = WriteToDb(batch, /*may_stall=*/false);
      if (written.IsIncomplete()) {
        // RocksDB would stall this write (memtables full, too many L0
        // files): the commit thread waits for it instead of the caller.
        std::lock_guard lock(mutex_);
        queue_.push_back(commit);
        cv_.notify_one();
        return Submitted::kPending;
      }
      if (!written.ok())
        error = Unavailable("rocksdb write failed: " + written.ToString());
    }
  }
  commit->status = error;
  if (!error.ok() || BaseIsDurable(*commit)) {
    commits_.fetch_add(1, std::memory_order_relaxed);
    MarkFinished(*commit, /*failed=*/!error.ok());
    commit->depends_on.reset();
    return Submitted::kFinished;
  }
  // Written, but derived from a write that is not durable yet: the commit
  // thread finishes it after that one.
  {
    std::lock_guard lock(mutex_);
    waiting_.push_back(commit);
    commit->written.store(true, std::memory_order_release);
    cv_.notify_one();
  }
  return Submitted::kPending;
}

void GroupCommitter::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

CommitStats GroupCommitter::stats() const {
  return CommitStats{commits_.load(std::memory_order_relaxed),
                     batches_.load(std::memory_order_relaxed),
                     syncs_.load(std::memory_order_relaxed),
                     failed_batches_.load(std::memory_order_relaxed),
                     sync_nanos_.load(std::memory_order_relaxed)};
}

Status GroupCommitter::health() const {
  std::lock_guard lock(mutex_);
  return health_;
}

void GroupCommitter::SetHealth(const Status& status) {
  if (status.ok() && healthy_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(mutex_);
  if (broken_.load(std::memory_order_relaxed)) return;
  health_ = status;
  healthy_.store(status.ok(), std::memory_order_release);
}

void GroupCommitter::SetPausedForTesting(bool paused) {
  {
    std::lock_guard lock(mutex_);
    paused_ = paused;
  }
  cv_.notify_all();
}

void GroupCommitter::SetSyncsPausedForTesting(bool paused) {
  {
    std::lock_guard lock(mutex_);
    syncs_paused_ = paused;
  }
  cv_.notify_all();
}

void GroupCommitter::FailNextWritesForTesting(int count) {
  writes_to_fail_.store(count, std::memory_order_relaxed);
}

void GroupCommitter::FailNextSyncsForTesting(int count) {
  syncs_to_fail_.store(count, std::memory_order_relaxed);
}

void GroupCommitter::Loop() {
  NameThisThread("idem-rdb-commit");
  for (;;) {
    Batch to_write, waiting;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] {
        return stopping_ || (!paused_ && !queue_.empty()) || !waiting_.empty();
      });
      if (queue_.empty() && waiting_.empty()) return;  // stopping, and all is done
      // Written before anything queued now, so finished before it.
      waiting.swap(waiting_);
      size_t bytes = 0;
      while (!queue_.empty() && (!paused_ || stopping_) &&
             to_write.size() < limits_.max_commits && bytes < limits_.max_bytes) {
        bytes += queue_.front()->ApproximateBytes();
        to_write.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (!to_write.empty()) WriteQueued(to_write, waiting);
    if (!waiting.empty()) SyncAndFinish(waiting);
  }
}

rocksdb::Status GroupCommitter::WriteToDb(rocksdb::WriteBatch& batch, bool may_stall) {
  rocksdb::Status written;
  if (writes_to_fail_.load(std::memory_order_relaxed) > 0) {
    writes_to_fail_.fetch_sub(1, std::memory_order_relaxed);
    written = rocksdb::Status::IOError("injected write failure (test)");
  } else {
    // Not synced here: the commit thread syncs once for what needs it.
    rocksdb::WriteOptions options;
    options.no_slowdown = !may_stall;
    written = db_->Write(options, &batch);
    if (written.IsIncomplete()) return written;  // not written; nothing to count
  }
  batches_.fetch_add(1, std::memory_order_relaxed);
  if (!written.ok()) {
    failed_batches_.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("rocksdb store: a batch of {} writes failed: {}", batch.Count(),
                  written.ToString());
    SetHealth(Unavailable("rocksdb write failed: " + written.ToString()));
  } else {
    SetHealth(Status::Ok());
  }
  return written;
}

void GroupCommitter::WriteQueued(const Batch& batch, Batch& waiting) {
  CommitSet failed;
  rocksdb::WriteBatch write_batch;
  size_t writes = 0;
  for (const CommitPtr& commit : batch) {
    if (DependsOnFailure(*commit, failed)) {
      commit->status = Unavailable("an earlier write to this key failed");
      failed.insert(commit.get());
      continue;
    }
    Status added = AddTo(write_batch, *commit);
    if (!added.ok()) {
      commit->status = std::move(added);
      failed.insert(commit.get());
      continue;
    }
    ++writes;
  }

  Status status;
  if (writes > 0) {
    const rocksdb::Status written = WriteToDb(write_batch, /*may_stall=*/true);
    if (!written.ok())
      status = Unavailable("rocksdb write failed: " + written.ToString());
  }

  // Commits that need no sync, and whose base (if any) is finished or
  // finished in the same call before them, are finished now; the others
  // wait for the sync that follows.
  Batch ready;
  CommitSet ready_here;
  const size_t waited_before = waiting.size();
  for (const CommitPtr& commit : batch) {
    if (failed.count(commit.get()) == 0 && !status.ok()) {
      commit->status = status;
      failed.insert(commit.get());
    }
    bool wait = false;
    if (failed.count(commit.get()) == 0) {
      const Commit* base = commit->depends_on.get();
      const bool base_unfinished =
          base != nullptr && ready_here.count(base) == 0 && !BaseIsDurable(*commit);
      wait = commit->sync || base_unfinished;
    }
    if (wait) {
      waiting.push_back(commit);
    } else {
      ready.push_back(commit);
      ready_here.insert(commit.get());
    }
  }
  if (!ready.empty()) {
    commits_.fetch_add(ready.size(), std::memory_order_relaxed);
    finish_(ready);
    MarkFinished(ready, failed);
  }
  // From here a caller may write a lease derived from one of these behind
  // it (it is finished after them, in a later round).
  for (size_t i = waited_before; i < waiting.size(); ++i) {
    waiting[i]->written.store(true, std::memory_order_release);
  }
}

void GroupCommitter::SyncAndFinish(Batch& batch) {
  // Every commit's base is durable, failed, or earlier in `batch`: a sync
  // is needed only for the commits that ask for one.
  const bool needs_sync = std::any_of(
      batch.begin(), batch.end(), [](const CommitPtr& commit) { return commit->sync; });
  Status status;
  if (broken()) {
    status = health();  // no sync can be trusted after a failed one
  } else if (needs_sync) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return !syncs_paused_ || stopping_; });
    }
    rocksdb::Status synced;
    if (syncs_to_fail_.load(std::memory_order_relaxed) > 0) {
      syncs_to_fail_.fetch_sub(1, std::memory_order_relaxed);
      synced = rocksdb::Status::IOError("injected sync failure (test)");
    } else {
      const auto started = std::chrono::steady_clock::now();
      synced = db_->SyncWAL();
      sync_nanos_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::steady_clock::now() - started)
                                .count(),
                            std::memory_order_relaxed);
    }
    syncs_.fetch_add(1, std::memory_order_relaxed);
    if (!synced.ok()) {
      status = Unavailable("rocksdb log sync failed (the store must be reopened): " +
                           synced.ToString());
      failed_batches_.fetch_add(1, std::memory_order_relaxed);
      spdlog::error(
          "rocksdb store: syncing the log for {} writes failed, refusing "
          "every call until the store is reopened: {}",
          batch.size(), synced.ToString());
      std::lock_guard lock(mutex_);
      health_ = status;
      healthy_.store(false, std::memory_order_release);
      broken_.store(true, std::memory_order_release);
    } else {
      SetHealth(status);
    }
  }

  CommitSet failed;
  for (const CommitPtr& commit : batch) {
    if (!status.ok()) {
      commit->status = status;
      failed.insert(commit.get());
    } else if (DependsOnFailure(*commit, failed)) {
      commit->status = Unavailable("an earlier write to this key failed");
      failed.insert(commit.get());
    }
  }
  commits_.fetch_add(batch.size(), std::memory_order_relaxed);
  finish_(batch);
  MarkFinished(batch, failed);
}

}  // namespace idem::rocksdb_store
