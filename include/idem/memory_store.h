// The in-process store: a sharded hash map guarded by one mutex per shard.
//
// For tests, development and single-process programs; nothing survives the
// process. Thread-safe. Callbacks run inline on the calling thread, except
// WaitForCompletion, whose callback runs on the thread that completes,
// releases or deletes the record, or on the store's timer thread when the
// wait times out.
#pragma once

#include <cstddef>
#include <memory>

#include "idem/clock.h"
#include "idem/store.h"

namespace idem {

struct MemoryStoreOptions {
  // Number of independently locked shards. Default: 64.
  size_t shards = 64;
  // Clock that expiry is judged by. Default: the system clock.
  std::shared_ptr<Clock> clock;
  // The most records held at once; 0: no limit. When it is reached, Begin
  // of a new key fails with kResourceExhausted (existing keys, replays and
  // completions go on): evicting a completed record would break its
  // replay promise, refusing new keys keeps it. Expired records count until
  // they are swept or looked up.
  size_t max_records = 0;
};

std::shared_ptr<Store> NewMemoryStore(const MemoryStoreOptions& options = {});

}  // namespace idem
