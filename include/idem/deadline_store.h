// A deadline for every store call: NewDeadlineStore wraps a Store so that a
// call whose callback has not run within `timeout` gets kUnavailable
// ("store operation timed out") instead, and the caller never waits longer,
// whatever the backend does (a hung connection, a paused server, a lost
// reply). WaitForCompletion gets its own wait time plus `timeout`.
//
// The inner call is not cancelled, and it may still take effect. When a
// Begin that timed out later turns out to have acquired the key, the
// wrapper releases that lease at once (nobody executes under it), so the
// key is free again without waiting for the lease to run out. Its late
// answer is otherwise dropped: each callback runs exactly once.
//
// `idem serve` wraps every store in one (store.operation_timeout).
#pragma once

#include <chrono>
#include <memory>

#include "idem/store.h"

namespace idem {

std::shared_ptr<Store> NewDeadlineStore(std::shared_ptr<Store> inner,
                                        std::chrono::milliseconds timeout);

}  // namespace idem
