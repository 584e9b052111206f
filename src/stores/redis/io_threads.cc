#include "stores/redis/io_threads.h"

#include <algorithm>

namespace idem::redis_internal {

IoThreads::IoThreads(int count) {
  const int n = std::max(1, count);
  for (int i = 0; i < n; ++i) {
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.push_back(boost::asio::make_work_guard(*contexts_.back()));
  }
  for (int i = 0; i < n; ++i) {
    boost::asio::io_context* io = contexts_[i].get();
    threads_.emplace_back([io] { io->run(); });
  }
}

IoThreads::~IoThreads() { Join(); }

bool IoThreads::InPool() const {
  const auto self = std::this_thread::get_id();
  return std::any_of(threads_.begin(), threads_.end(),
                     [self](const std::thread& t) { return t.get_id() == self; });
}

void IoThreads::Join() {
  for (auto& guard : guards_) guard.reset();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

}  // namespace idem::redis_internal
