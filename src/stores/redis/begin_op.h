// Begin for the Redis store.
//
// A new key is the common case, and it needs no script: one plain
// `SET <key> <lease> NX GET PX <ttl>` creates the lease when the key is
// absent, and otherwise answers what the key holds, atomically. The store
// then decides from that answer when it can do so without writing (a live
// lease of another request: kInFlight; another fingerprint: kMismatch; a
// completed hash, read once more with HGETALL: kCompleted), and runs the
// Begin script, which decides and writes atomically, when it cannot (an
// expired record, a lapsed lease to take over, anything unexpected). Every
// answer is a state the key really had at one instant, so Begin stays
// atomic. A store without the cache of completed records sends the script
// at once: replays would otherwise cost two round trips.
//
// SET with both NX and GET needs Redis 7.0 or newer.
#pragma once

#include "idem/store.h"
#include "stores/redis/store_core.h"

namespace idem::redis_internal {

void RunBegin(StoreCore& core, BeginRequest request, Callback<Result<BeginResult>> done);

}  // namespace idem::redis_internal
