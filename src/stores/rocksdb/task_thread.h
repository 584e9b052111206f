// TaskThread: one background thread for the store's slow housekeeping
// (Sweep scans the whole key space), so no caller's thread ever runs it.
//
// Runs posted tasks in order, and `periodic` every `interval` when the
// interval is positive. After Stop, Post runs the task on the calling
// thread, so every task runs exactly once. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace idem::rocksdb_store {

class TaskThread {
 public:
  TaskThread(std::chrono::milliseconds interval, std::function<void()> periodic);
  ~TaskThread();

  TaskThread(const TaskThread&) = delete;
  TaskThread& operator=(const TaskThread&) = delete;

  void Post(std::function<void()> task);

  // Runs the posted tasks that are left, then joins. Idempotent.
  void Stop();

 private:
  void Loop();

  const std::chrono::milliseconds interval_;
  const std::function<void()> periodic_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once everything above is ready
};

}  // namespace idem::rocksdb_store
