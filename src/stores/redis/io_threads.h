// IoThreads: the store's own event loops, one Boost.Asio io_context per
// thread, so everything bound to one context (a connection, its timers) runs
// on one thread and needs no lock.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>
#include <vector>

namespace idem::redis_internal {

class IoThreads {
 public:
  explicit IoThreads(int count);
  ~IoThreads();

  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  size_t size() const { return contexts_.size(); }
  boost::asio::io_context& at(size_t i) { return *contexts_[i]; }

  // Whether the calling thread is one of these loops.
  bool InPool() const;

  // Lets every loop run out of work (pending handlers still run) and joins
  // the threads. Idempotent; never call it from one of the loops.
  void Join();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
};

}  // namespace idem::redis_internal
