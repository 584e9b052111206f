// Hooks into the RocksDB store for its own tests and benchmarks: commit
// counters (group commit is measured by commits per batch and per sync, not
// by timing), switches that hold the writes or the syncs, a way to fail
// writes and syncs as a broken disk would, and a manual compaction. Not part of the
// public API. Each takes a store made by NewRocksDbStore; for any other store they do
// nothing (and report zero counters). Thread-safe.
#pragma once

#include "idem/status.h"
#include "idem/store.h"
#include "stores/rocksdb/group_committer.h"

namespace idem::rocksdb_store {

CommitStats GetCommitStats(Store& store);

// While paused, writes queue up and are written as one batch on resume.
void PauseCommitsForTesting(Store& store, bool paused);

// While paused, written commits that need a sync wait for it.
void PauseSyncsForTesting(Store& store, bool paused);

// The next `count` WriteBatches (or WAL syncs) fail as if RocksDB had
// refused them.
void FailNextBatchesForTesting(Store& store, int count);
void FailNextSyncsForTesting(Store& store, int count);

// Compacts every file now, so the compaction filter sees every record.
Status CompactForTesting(Store& store);

}  // namespace idem::rocksdb_store
