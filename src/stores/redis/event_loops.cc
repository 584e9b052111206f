#include "stores/redis/event_loops.h"

#include <algorithm>

#include "stores/common/lent_loops.h"

namespace idem::redis_internal {

EventLoops::EventLoops(const std::vector<boost::asio::io_context*>& borrowed,
                       int threads)
    : loops_(borrowed) {
  if (!borrowed.empty()) return;
  const int n = std::max(1, threads);
  for (int i = 0; i < n; ++i) {
    owned_.push_back(std::make_unique<boost::asio::io_context>(1));
    loops_.push_back(owned_.back().get());
    guards_.push_back(boost::asio::make_work_guard(*loops_.back()));
  }
  for (boost::asio::io_context* io : loops_) {
    threads_.emplace_back([io] { io->run(); });
  }
}

EventLoops::~EventLoops() { Join(); }

size_t EventLoops::Current() const {
  // A thread usually runs the same loop from one call to the next: try it
  // first, so a store with many loops does not test each one per call.
  thread_local const EventLoops* last_owner = nullptr;
  thread_local size_t last_index = 0;
  if (last_owner == this && last_index < loops_.size() &&
      loops_[last_index]->get_executor().running_in_this_thread()) {
    return last_index;
  }
  const size_t found = stores::LoopOfThisThread(loops_);
  if (found != kNone) {
    last_owner = this;
    last_index = found;
  }
  return found;
}

void EventLoops::RunOnEach(const std::function<void(size_t)>& fn) {
  stores::RunOnEachLoop(loops_, fn);
}

void EventLoops::Join() {
  for (auto& guard : guards_) guard.reset();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

}  // namespace idem::redis_internal
