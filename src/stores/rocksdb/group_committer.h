// GroupCommitter: how the RocksDB store's mutations reach the disk.
//
// Two paths, chosen per commit by Submit:
//
// - A commit that needs no sync (a lease: Begin, Extend, Release with the
//   default options) is written on the calling thread: one WriteBatch to
//   the WAL (handed to the OS, not synced) and the memtable, joined by
//   RocksDB with whatever other threads write at that moment. It is
//   finished before Submit returns, so its answer costs no thread
//   hand-off at all.
// - A commit that must reach the disk (a result: Complete, Checkpoint,
//   Delete) is queued for the commit thread, which takes everything queued
//   (up to a count and a byte budget), writes it as one WriteBatch, syncs
//   the WAL once (DB::SyncWAL) and finishes the lot: N concurrent
//   completions cost one write and one fsync per round, not N, and the
//   WAL append and memtable insertion of results run off the callers'
//   threads. Callers keep writing leases while a sync runs, so a lease
//   never waits for someone else's fsync.
//
// A lease that cannot be written at once (RocksDB would stall the write,
// or the commit it depends on is not written yet, or a test holds the
// writes) is queued too, so a caller's thread never waits for a RocksDB
// write stall or an fsync.
//
// Ordering: a commit is never written before the commit it depends on
// (`depends_on`, an earlier write to the same key), and never finished
// before it; when that one fails, so does the dependent. "Finished" means
// `status` is set and the finish hook has been called (or, for a commit
// finished inside Submit, that Submit returned kFinished); the store keeps
// a commit as the key's pending state until then, so nobody reads a write
// that is visible in RocksDB but not yet durable. Thread-safe.
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
class Status;
class WriteBatch;
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
  // Called on the commit thread with commits that are finished: `status`,
  // and `failed` or `durable`, are set.
  using Finish = std::function<void(const Batch& finished)>;

  struct Limits {
    size_t max_commits = 1024;
    size_t max_bytes = size_t{16} << 20;
  };

  enum class Submitted {
    kFinished,  // written (or failed) and finished already: `status` is set;
                // the finish hook is not called, the caller finishes it
    kPending,   // the finish hook will be called for it later
    kRejected,  // Stop has begun: dropped, nothing will run
  };

  // `db` must outlive the committer.
  GroupCommitter(rocksdb::DB* db, Limits limits, Finish finish);
  ~GroupCommitter();

  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Writes a commit that needs no sync now if it can, else queues the
  // commit. Never blocks on a sync or a RocksDB stall; may append to the
  // WAL on the calling thread.
  Submitted Submit(const CommitPtr& commit);

  // Writes and syncs everything already queued, then stops the commit
  // thread. Idempotent.
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

  // Test hooks: hold the writes (every commit queues, so a test can build a
  // batch of a known size) or the syncs, or fail the next `count` writes
  // or syncs as a broken disk would.
  void SetPausedForTesting(bool paused);
  void SetSyncsPausedForTesting(bool paused);
  void FailNextWritesForTesting(int count);
  void FailNextSyncsForTesting(int count);

 private:
  void Loop();
  // Writes `batch` as one WriteBatch; finishes what needs neither a sync
  // nor an unfinished base and appends the rest to `waiting`.
  void WriteQueued(const Batch& batch, Batch& waiting);
  // Writes `batch` to the WAL (not synced) and the memtable, counts it and
  // records the store's health. may_stall false: Incomplete, and nothing
  // written, where RocksDB would make the write wait for a stall.
  rocksdb::Status WriteToDb(rocksdb::WriteBatch& batch, bool may_stall);
  // Syncs the WAL once for `batch` (written already), then finishes it.
  void SyncAndFinish(Batch& batch);
  void SetHealth(const Status& status);

  rocksdb::DB* const db_;
  const Limits limits_;
  const Finish finish_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<CommitPtr> queue_;     // to write
  std::vector<CommitPtr> waiting_;  // written by a caller, waiting for its base
  bool stopping_ = false;
  bool paused_ = false;
  bool syncs_paused_ = false;
  Status health_;

  std::atomic<bool> healthy_{true};  // health_ is ok (read without the lock)
  std::atomic<bool> broken_{false};  // health_ holds the sync error
  std::atomic<int> writes_to_fail_{0};
  std::atomic<int> syncs_to_fail_{0};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> failed_batches_{0};
  std::atomic<uint64_t> sync_nanos_{0};

  // Last: it starts once everything above is ready.
  std::thread thread_;
};

}  // namespace idem::rocksdb_store
