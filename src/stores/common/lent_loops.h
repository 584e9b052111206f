// Helpers for stores that run on event loops a caller lends them
// (StoreOpenOptions::io_contexts: `idem serve`'s io threads). Each lent
// io_context is run by exactly one thread, so everything bound to it runs
// on that thread, in order.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <thread>
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
// is one call that closes what lives on each loop, then one or more calls
// with an empty fn, so that what the closing queued (cancelled waits
// finishing with operation_aborted) has run before the store is freed.
void RunOnEachLoop(const std::vector<boost::asio::io_context*>& loops,
                   const std::function<void(size_t)>& fn);

// What a store handle's destructor does with its core: Shutdown() at once,
// or, when the caller runs one of the core's loops (dropped in a callback:
// a loop cannot wait for itself), on a helper thread that starts once this
// handler has returned and holds the core until then.
template <typename Core>
void ShutdownOffItsLoops(std::shared_ptr<Core> core, bool on_one_of_its_loops) {
  if (!on_one_of_its_loops) {
    core->Shutdown();
    return;
  }
  std::thread([core = std::move(core)] { core->Shutdown(); }).detach();
}

}  // namespace idem::stores
