// GroupCommitter: the single writer of the RocksDB store, with pipelined
// group commit.
//
// Callers queue Commits from any thread. The commit thread takes whatever
// has accumulated (up to a count and a byte budget) and writes it as one
// WriteBatch to the WAL (handed to the OS, not synced) and the memtable.
// Commits that need no sync are finished at once. Commits that must reach
// the disk go to the sync thread, which syncs the WAL (DB::SyncWAL) for
// all of those that have accumulated, then finishes them. The commit
// thread keeps writing while a sync runs, so a lease never waits for
// someone else's fsync, and N concurrent completions cost about one fsync
// per round, not N.
//
// Ordering: a commit is never finished before the commit it depends on
// (`depends_on`, an earlier write to the same key); when that one fails,
// so does the dependent. "Finished" means the finish hook has been called
// with the commit's `status` set; the store keeps a written commit as the
// key's pending state until then, so nobody reads a write that is visible
// in RocksDB but not yet durable. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "idem/status.h"
#include "stores/rocksdb/commit.h"

namespace rocksdb {
class DB;
}  // namespace rocksdb

namespace idem::rocksdb_store {

struct CommitStats {
  uint64_t commits = 0;         // mutations finished (written or failed)
  uint64_t batches = 0;         // WriteBatches written
  uint64_t syncs = 0;           // WAL syncs
  uint64_t failed_batches = 0;  // WriteBatches or syncs RocksDB refused
  uint64_t sync_nanos = 0;      // time spent in WAL syncs
};

class GroupCommitter {
 public:
  using Batch = std::vector<CommitPtr>;
  // Called on the commit thread or the sync thread with commits that are
  // finished: `status`, and `failed` or `durable`, are set.
  using Finish = std::function<void(const Batch& finished)>;

  struct Limits {
    size_t max_commits = 1024;
    size_t max_bytes = size_t{16} << 20;
  };

  // `db` must outlive the committer.
  GroupCommitter(rocksdb::DB* db, Limits limits, Finish finish);
  ~GroupCommitter();

  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Queues a commit. False once Stop has begun (the commit is dropped and
  // its callbacks are not run).
  bool Submit(CommitPtr commit);

  // Writes and syncs everything already queued, then stops both threads.
  // Idempotent.
  void Stop();

  CommitStats stats() const;

  // Ok, or the error of the last write if that one failed, or the error of
  // a failed sync (sticky, see broken()).
  Status health() const;

  // Whether a WAL sync has failed. RocksDB then refuses further writes, and
  // what it holds in memory may not be on disk: the store must stop
  // answering until it is reopened (which recovers from what the disk
  // has). Every later commit fails with that error.
  bool broken() const { return broken_.load(std::memory_order_acquire); }

  // Test hooks: hold the writes (so a test can build a batch of a known
  // size) or the syncs, or fail the next `count` writes or syncs as a
  // broken disk would.
  void SetPausedForTesting(bool paused);
  void SetSyncsPausedForTesting(bool paused);
  void FailNextWritesForTesting(int count);
  void FailNextSyncsForTesting(int count);

 private:
  void WriteLoop();
  void SyncLoop();
  void Write(Batch& batch);
  void Sync(Batch& batch);
  void SetHealth(const Status& status);

  rocksdb::DB* const db_;
  const Limits limits_;
  const Finish finish_;

  mutable std::mutex mutex_;
  std::condition_variable write_cv_;
  std::condition_variable sync_cv_;
  std::deque<CommitPtr> queue_;     // to write
  std::vector<CommitPtr> to_sync_;  // written, waiting for a sync
  bool stopping_ = false;
  bool writer_done_ = false;
  bool paused_ = false;
  bool syncs_paused_ = false;
  Status health_;

  std::atomic<bool> broken_{false};  // health_ holds the sync error
  std::atomic<int> writes_to_fail_{0};
  std::atomic<int> syncs_to_fail_{0};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> failed_batches_{0};
  std::atomic<uint64_t> sync_nanos_{0};

  // Last: they start once everything above is ready.
  std::thread sync_thread_;
  std::thread write_thread_;
};

}  // namespace idem::rocksdb_store
