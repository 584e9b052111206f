// The embedded durable store: one RocksDB database in a local directory.
//
// The default store for a single node: no server to run, and a completion
// is on disk (the write-ahead log fsynced) before its callback runs, so a
// result a client has seen is replayed after a crash and a restart.
// Leases are written to the WAL by the calling thread; concurrent results
// are grouped into one WriteBatch and one WAL sync by a commit thread
// (group commit); docs/stores.md describes the design.
//
// Thread-safety: the store is thread-safe; one process at a time may open a
// directory (RocksDB's LOCK file). Callbacks of calls that only read what
// is already durable, and of writes that need no sync (leases, with the
// defaults) and could be written at once, run inline on the calling thread
// before the call returns; callbacks of synced writes, and of calls that
// saw a write still pending, run on the store's callback threads once that
// write is in the log (and synced, for the writes `sync` covers);
// WaitForCompletion time-outs run on its timer thread. Keep callbacks
// short and never call a *Sync helper from one. Destroy the store from a
// thread that is not running one of its callbacks; the destructor writes
// what is queued, then runs the pending callbacks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "idem/clock.h"
#include "idem/status.h"
#include "idem/store.h"

namespace idem {

struct RocksDbStoreOptions {
  // Directory of the database; created, with its parents, when missing and
  // create_if_missing is set. Default: "./idem-data".
  std::string path = "./idem-data";

  // Clock that expiry is judged by: in reads, in Sweep and in the
  // compaction filter. Default: the system clock.
  std::shared_ptr<Clock> clock;

  // Sync the write-ahead log to disk before a Complete, a Checkpoint or a
  // Delete is acknowledged, so a result a caller has seen survives a power
  // loss. false: it survives a crash of the process (kill -9), not of the
  // machine. Default: true.
  bool sync = true;

  // Also sync before Begin, Extend and Release are acknowledged. Off, they
  // are written to the log (the OS's page cache) by the calling thread and
  // acknowledged at once, so they survive a crash of the process; a crash
  // of the machine can lose the newest leases, which lets those keys run
  // again before lease_ttl has passed (a reboot usually takes longer than
  // that). Off, a new request costs one sync instead of two, and its Begin
  // no thread hand-off. Default: false.
  bool sync_leases = false;

  // Create the directory and the database when they do not exist; false
  // fails with kNotFound instead. Default: true.
  bool create_if_missing = true;

  // Most mutations the commit thread writes as one WriteBatch and one WAL
  // sync. Default: 1024.
  size_t max_batch_size = 1024;

  // Most bytes (keys and encoded records) one WriteBatch carries; a batch
  // closes at whichever limit it reaches first. Default: 16 MiB.
  size_t max_batch_bytes = size_t{16} << 20;

  // Threads that run the callbacks of writes finished by the commit thread
  // (results), so a slow callback never holds up the next WAL sync; 0 runs
  // them on the commit thread. Default: 1.
  size_t callback_threads = 1;

  // Independently locked key stripes (the per-key atomicity of Begin and
  // the owner-checked calls). Default: 256.
  size_t lock_stripes = 256;

  // Period of the background sweep of expired records, in milliseconds;
  // 0 disables it (the owner calls Sweep, e.g. `idem gc`). Default: 0.
  int64_t sweep_interval_ms = 0;

  // Records one pass of the background sweep removes at most before it
  // looks again. Default: 1000.
  size_t sweep_batch = 1000;

  // Decoded records of recently used keys kept in memory, so a replay
  // neither reads nor decodes the stored bytes; 0 disables it.
  // Default: 64 MiB.
  size_t record_cache_bytes = size_t{64} << 20;

  // Drop expired records when RocksDB compacts their files. Default: true.
  bool compaction_filter = true;

  // RocksDB block cache for record reads (replays), in bytes.
  // Default: 64 MiB.
  size_t block_cache_bytes = size_t{64} << 20;
};

// Opens (or creates) the database at options.path. Once open, calls fail
// with kUnavailable when RocksDB cannot write; after a failed WAL sync the
// store fails stop: every call answers kUnavailable until it is reopened.
// Errors of the open itself: kUnavailable
// when another process holds the directory ("rocksdb:DIR is in use by
// another process (LOCK held)") or it cannot be created or read;
// kNotFound when it does not exist and create_if_missing is false;
// kDataLoss when RocksDB finds its own files corrupt; kInvalidArgument for
// an empty path.
Result<std::shared_ptr<Store>> NewRocksDbStore(const RocksDbStoreOptions& options);

}  // namespace idem
