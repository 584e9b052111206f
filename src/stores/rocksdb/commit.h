// Commit: one mutation of the RocksDB store on its way to disk, and what
// runs once it is durable.
//
// The store builds a Commit under the key's stripe lock, makes it the key's
// pending state and hands it to the GroupCommitter, which writes it (with
// others) in one WriteBatch, syncs the log if it must, records the outcome,
// and calls the store's finish hook, which runs `done` and the followers.
// Fields are guarded as noted on each.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "idem/record.h"
#include "idem/status.h"

namespace idem::rocksdb_store {

struct Commit {
  enum class Wake : uint8_t {
    kNone,       // waiters keep waiting (Begin, Extend, Checkpoint)
    kCompleted,  // waiters get `record` (Complete)
    kGone,       // waiters learn the key is absent (Release, Delete, Sweep)
  };
  using Done = std::function<void(const Status&)>;

  // Immutable once queued.
  std::string key;
  RecordPtr record;   // the key's new state; null: the key is deleted
  std::string value;  // EncodeRecord(*record); empty for a delete
  Wake wake = Wake::kNone;
  bool sync = true;  // its batch must reach the disk before it is answered

  // Runs exactly once, after the write is durable or has failed.
  Done done;

  // The pending commit on the same key that this one was derived from,
  // queued earlier: when it fails, this one fails too, and this one is
  // never answered before it. Cleared once this one is finished.
  std::shared_ptr<Commit> depends_on;

  // Guarded by the key's stripe lock: answers that were read from this
  // write's state while it was pending. They run after it, with its status.
  std::vector<Done> followers;

  // Set by the committer's threads: `status` first, then exactly one of the
  // flags (release), which the other thread reads (acquire).
  Status status;
  std::atomic<bool> failed{false};
  std::atomic<bool> durable{false};  // written, and synced if it had to be
};

using CommitPtr = std::shared_ptr<Commit>;

}  // namespace idem::rocksdb_store
