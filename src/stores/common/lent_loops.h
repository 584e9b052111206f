// Helpers for stores that run on event loops a caller lends them
// (StoreOpenOptions::io_contexts: `idem serve`'s io threads). Each lent
// io_context is run by exactly one thread, so everything bound to it runs
// on that thread, in order.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <functional>
#include <vector>

namespace idem::stores {

inline constexpr size_t kNoLoop = static_cast<size_t>(-1);

// The index of the loop the calling thread is running, or kNoLoop.
size_t LoopOfThisThread(const std::vector<boost::asio::io_context*>& loops);

// Runs fn(i) for every loop i, on that loop, and returns once all have
// run: inline for the loop the caller runs; directly for a loop that has
// stopped (no thread may be running it any more); for any other by a
// posted handler, waited for, so such a loop must keep running until then.
// Handlers queued on a loop before the call run before fn. Closing a store
// is one call that closes what lives on each loop, then one or two calls
// with an empty fn, so that what the closing queued (cancelled waits
// finishing with operation_aborted) has run before the store is freed.
void RunOnEachLoop(const std::vector<boost::asio::io_context*>& loops,
                   const std::function<void(size_t)>& fn);

}  // namespace idem::stores
