#include "stores/rocksdb/callback_runner.h"

#include <utility>

#include "stores/rocksdb/thread_name.h"

namespace idem::rocksdb_store {

CallbackRunner::CallbackRunner(size_t threads) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

CallbackRunner::~CallbackRunner() { Stop(); }

void CallbackRunner::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && !threads_.empty()) {
      tasks_.push_back(std::move(task));
      cv_.notify_one();
      return;
    }
  }
  task();
}

void CallbackRunner::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void CallbackRunner::Loop() {
  NameThisThread("idem-rdb-cb");
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping, and everything has run
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
}

}  // namespace idem::rocksdb_store
