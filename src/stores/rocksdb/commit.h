// Commit: one mutation of the RocksDB store on its way to disk, and what
// runs once it is durable.
//
// The store builds a Commit under the key's stripe lock and hands it to the
// GroupCommitter, which writes it (on the caller's thread, or queued with
// others in one WriteBatch), syncs the log if it must and records the
// outcome. Until it is finished the commit is the key's pending state; the
// store's finish hook (or the caller, for a commit finished at once) runs
// `done` and the followers.
// Fields are guarded as noted on each.
#pragma once

#include <atomic>
#include <cstddef>
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
  RecordPtr record;  // the key's new state; null: the key is deleted
  Wake wake = Wake::kNone;
  bool sync = true;  // its batch must reach the disk before it is answered

  // EncodeRecord(*record), made by the thread that writes the commit (so a
  // result is encoded on the commit thread, not the caller's); empty for a
  // delete.
  std::string value;

  // About the bytes the commit adds to a WriteBatch, before it is encoded.
  size_t ApproximateBytes() const {
    size_t bytes = key.size() + value.size();
    if (record && value.empty()) {
      bytes += record->key.size() + record->fingerprint.size() + record->owner.size() +
               record->recovery.phase.size() + record->recovery.state.size() +
               record->response.body.size();
      for (const auto& [name, field] : record->response.headers) {
        bytes += name.size() + field.size();
      }
    }
    return bytes;
  }

  // Runs exactly once, after the write is durable or has failed.
  Done done;

  // The pending commit on the same key that this one was derived from,
  // queued earlier: when it fails, this one fails too, and this one is
  // never answered before it. Cleared once this one is finished.
  std::shared_ptr<Commit> depends_on;

  // Guarded by the key's stripe lock: answers that were read from this
  // write's state while it was pending. They run after it, with its status.
  std::vector<Done> followers;

  // Set by whichever thread writes or syncs it: `status` first, then the
  // flags (release), which other threads read (acquire).
  Status status;
  std::atomic<bool> failed{false};
  // In RocksDB and handed on (finished, or lined up for a sync): a commit
  // derived from this one may now be written behind it.
  std::atomic<bool> written{false};
  std::atomic<bool> durable{false};  // written, and synced if it had to be
};

using CommitPtr = std::shared_ptr<Commit>;

}  // namespace idem::rocksdb_store
