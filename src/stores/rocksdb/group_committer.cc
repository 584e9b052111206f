#include "stores/rocksdb/group_committer.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <unordered_set>
#include <utility>

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

// Publishes the outcome of finished commits to the other thread: `status`
// was set before, the flag is set after the finish hook ran, so a commit
// that waits for this one is finished after it.
void MarkFinished(GroupCommitter::Batch& finished, const CommitSet& failed) {
  for (const CommitPtr& commit : finished) {
    if (failed.count(commit.get()) != 0) {
      commit->failed.store(true, std::memory_order_release);
    } else {
      commit->durable.store(true, std::memory_order_release);
    }
    commit->depends_on.reset();  // no chains of finished commits stay alive
  }
}

}  // namespace

GroupCommitter::GroupCommitter(rocksdb::DB* db, Limits limits, Finish finish)
    : db_(db),
      limits_{std::max<size_t>(1, limits.max_commits),
              std::max<size_t>(1, limits.max_bytes)},
      finish_(std::move(finish)),
      sync_thread_([this] { SyncLoop(); }),
      write_thread_([this] { WriteLoop(); }) {}

GroupCommitter::~GroupCommitter() { Stop(); }

bool GroupCommitter::Submit(CommitPtr commit) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    queue_.push_back(std::move(commit));
  }
  write_cv_.notify_one();
  return true;
}

void GroupCommitter::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  write_cv_.notify_all();
  if (write_thread_.joinable()) write_thread_.join();
  {
    std::lock_guard lock(mutex_);
    writer_done_ = true;
  }
  sync_cv_.notify_all();
  if (sync_thread_.joinable()) sync_thread_.join();
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
  std::lock_guard lock(mutex_);
  if (!broken_.load(std::memory_order_relaxed)) health_ = status;
}

void GroupCommitter::SetPausedForTesting(bool paused) {
  {
    std::lock_guard lock(mutex_);
    paused_ = paused;
  }
  write_cv_.notify_all();
}

void GroupCommitter::SetSyncsPausedForTesting(bool paused) {
  {
    std::lock_guard lock(mutex_);
    syncs_paused_ = paused;
  }
  sync_cv_.notify_all();
}

void GroupCommitter::FailNextWritesForTesting(int count) {
  writes_to_fail_.store(count, std::memory_order_relaxed);
}

void GroupCommitter::FailNextSyncsForTesting(int count) {
  syncs_to_fail_.store(count, std::memory_order_relaxed);
}

void GroupCommitter::WriteLoop() {
  NameThisThread("idem-rdb-write");
  for (;;) {
    Batch batch;
    {
      std::unique_lock lock(mutex_);
      write_cv_.wait(lock, [this] { return stopping_ || (!paused_ && !queue_.empty()); });
      if (queue_.empty()) return;  // stopping, and everything is written
      size_t bytes = 0;
      while (!queue_.empty() && batch.size() < limits_.max_commits &&
             bytes < limits_.max_bytes) {
        bytes += queue_.front()->key.size() + queue_.front()->value.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    Write(batch);
  }
}

void GroupCommitter::SyncLoop() {
  NameThisThread("idem-rdb-sync");
  for (;;) {
    Batch batch;
    {
      std::unique_lock lock(mutex_);
      sync_cv_.wait(
          lock, [this] { return writer_done_ || (!syncs_paused_ && !to_sync_.empty()); });
      if (to_sync_.empty()) return;  // the writer is done, and everything is synced
      batch.swap(to_sync_);
    }
    Sync(batch);
  }
}

void GroupCommitter::Write(Batch& batch) {
  CommitSet failed;
  rocksdb::WriteBatch write_batch;
  size_t writes = 0;
  for (const CommitPtr& commit : batch) {
    if (DependsOnFailure(*commit, failed)) {
      commit->status = Unavailable("an earlier write to this key failed");
      failed.insert(commit.get());
      continue;
    }
    const rocksdb::Status added = commit->record
                                      ? write_batch.Put(commit->key, commit->value)
                                      : write_batch.Delete(commit->key);
    if (!added.ok()) {  // only a key or value past RocksDB's size limits
      commit->status = Internal("rocksdb refused the record: " + added.ToString());
      failed.insert(commit.get());
      continue;
    }
    ++writes;
  }

  Status status;
  if (writes > 0) {
    rocksdb::Status written;
    if (writes_to_fail_.load(std::memory_order_relaxed) > 0) {
      writes_to_fail_.fetch_sub(1, std::memory_order_relaxed);
      written = rocksdb::Status::IOError("injected write failure (test)");
    } else {
      // Not synced here: the sync thread syncs for the commits that need it
      // while this thread goes on writing.
      written = db_->Write(rocksdb::WriteOptions(), &write_batch);
    }
    batches_.fetch_add(1, std::memory_order_relaxed);
    if (!written.ok()) {
      status = Unavailable("rocksdb write failed: " + written.ToString());
      failed_batches_.fetch_add(1, std::memory_order_relaxed);
      spdlog::error("rocksdb store: a batch of {} writes failed: {}", writes,
                    written.ToString());
    }
    SetHealth(status);
  }

  // Commits that need no sync, and whose base (if any) is finished or
  // finished in the same call before them, are finished now; the others
  // wait for the next sync.
  Batch ready, to_sync;
  CommitSet ready_here;
  for (const CommitPtr& commit : batch) {
    if (failed.count(commit.get()) == 0 && !status.ok()) {
      commit->status = status;
      failed.insert(commit.get());
    }
    bool wait = false;
    if (failed.count(commit.get()) == 0) {
      const Commit* base = commit->depends_on.get();
      const bool base_unfinished = base != nullptr && ready_here.count(base) == 0 &&
                                   !base->durable.load(std::memory_order_acquire);
      wait = commit->sync || base_unfinished;
    }
    if (wait) {
      to_sync.push_back(commit);
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
  if (!to_sync.empty()) {
    {
      std::lock_guard lock(mutex_);
      to_sync_.insert(to_sync_.end(), to_sync.begin(), to_sync.end());
    }
    sync_cv_.notify_one();
  }
}

void GroupCommitter::Sync(Batch& batch) {
  Status status;
  if (broken()) {
    status = health();  // no sync can be trusted after a failed one
  } else {
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
