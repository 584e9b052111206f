#include "stores/rocksdb/task_thread.h"

#include <utility>

#include "stores/rocksdb/thread_name.h"

namespace idem::rocksdb_store {

TaskThread::TaskThread(std::chrono::milliseconds interval, std::function<void()> periodic)
    : interval_(interval), periodic_(std::move(periodic)), thread_([this] { Loop(); }) {}

TaskThread::~TaskThread() { Stop(); }

void TaskThread::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      tasks_.push_back(std::move(task));
      cv_.notify_all();
      return;
    }
  }
  task();
}

void TaskThread::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TaskThread::Loop() {
  NameThisThread("idem-rdb-sweep");
  using Clock = std::chrono::steady_clock;
  const bool periodic = interval_.count() > 0 && periodic_;
  Clock::time_point next = Clock::now() + interval_;
  std::unique_lock lock(mutex_);
  for (;;) {
    const auto ready = [this] { return stopping_ || !tasks_.empty(); };
    if (periodic) {
      cv_.wait_until(lock, next, ready);
    } else {
      cv_.wait(lock, ready);
    }
    if (!tasks_.empty()) {
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
      continue;
    }
    if (stopping_) return;
    if (periodic && Clock::now() >= next) {
      lock.unlock();
      periodic_();
      lock.lock();
      next = Clock::now() + interval_;
    }
  }
}

}  // namespace idem::rocksdb_store
