// CallbackRunner: the threads that run the callbacks of durable writes, so
// a slow callback never holds up the next WAL sync.
//
// Tasks run in the order posted when there is one thread. With zero
// threads, and after Stop, Post runs the task on the calling thread, so
// every task runs exactly once. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace idem::rocksdb_store {

class CallbackRunner {
 public:
  explicit CallbackRunner(size_t threads);
  ~CallbackRunner();

  CallbackRunner(const CallbackRunner&) = delete;
  CallbackRunner& operator=(const CallbackRunner&) = delete;

  void Post(std::function<void()> task);

  // Runs what is queued, then joins the threads. Idempotent.
  void Stop();

 private:
  void Loop();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace idem::rocksdb_store
