// EventLoops: the io_contexts a store's connections run on. Either the
// store's own (one thread each, started here) or the caller's
// (RedisStoreOptions::io_contexts), which the caller runs. Everything bound
// to one io_context (a connection, its timers) runs on the thread running
// it and needs no lock.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "stores/common/lent_loops.h"

namespace idem::redis_internal {

class EventLoops {
 public:
  static constexpr size_t kNone = stores::kNoLoop;

  // The caller's loops when `borrowed` is not empty (non-null pointers; the
  // caller runs them and keeps them alive), else `threads` loops of its own,
  // each run by a thread started here.
  EventLoops(const std::vector<boost::asio::io_context*>& borrowed, int threads);
  ~EventLoops();

  EventLoops(const EventLoops&) = delete;
  EventLoops& operator=(const EventLoops&) = delete;

  size_t size() const { return loops_.size(); }
  boost::asio::io_context& at(size_t i) { return *loops_[i]; }

  // The loop the calling thread is running, or kNone.
  size_t Current() const;

  // Runs fn(i) for every loop i, on that loop, and waits for it
  // (stores::RunOnEachLoop).
  void RunOnEach(const std::function<void(size_t)>& fn);

  // Own loops: lets them run out of work and joins their threads. Borrowed
  // loops: nothing. Idempotent; never on one of the loops.
  void Join();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

  std::vector<std::unique_ptr<boost::asio::io_context>> owned_;
  std::vector<boost::asio::io_context*> loops_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
};

}  // namespace idem::redis_internal
