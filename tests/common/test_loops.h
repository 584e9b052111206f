// TestLoops: event loops lent to a store the way `idem serve` lends its io
// threads (StoreOpenOptions::io_contexts): each io_context is run by one
// thread of its own, from construction until destruction. Destroy the
// stores that use them first, or at least before the loops' last handlers
// need them.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "idem/store.h"

namespace idem::testing {

class TestLoops {
 public:
  explicit TestLoops(size_t count = 2) {
    for (size_t i = 0; i < count; ++i) {
      loops_.push_back(std::make_unique<boost::asio::io_context>());
      guards_.push_back(boost::asio::make_work_guard(*loops_.back()));
    }
    for (auto& loop : loops_) threads_.emplace_back([&loop] { loop->run(); });
  }
  ~TestLoops() {
    guards_.clear();
    for (auto& thread : threads_) thread.join();
  }

  TestLoops(const TestLoops&) = delete;
  TestLoops& operator=(const TestLoops&) = delete;

  std::vector<boost::asio::io_context*> pointers() const {
    std::vector<boost::asio::io_context*> pointers;
    for (const auto& loop : loops_) pointers.push_back(loop.get());
    return pointers;
  }

  // Whether the calling thread is one of the loops' threads.
  bool OnALoop() const {
    for (const auto& loop : loops_) {
      if (loop->get_executor().running_in_this_thread()) return true;
    }
    return false;
  }

  // Runs `fn` on loop `i` and waits for it; false if it has not run within
  // `limit` (a loop that is stuck).
  bool RunOn(size_t i, std::function<void()> fn,
             std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto ran = std::make_shared<std::promise<void>>();
    std::future<void> done = ran->get_future();
    boost::asio::post(*loops_.at(i), [fn = std::move(fn), ran] {
      fn();
      ran->set_value();
    });
    return done.wait_for(limit) == std::future_status::ready;
  }

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> loops_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      guards_;
  std::vector<std::thread> threads_;
};

// Hands `store`, the caller's only reference, to a Ping callback that drops
// it while it runs (on one of `loops`, for a store that runs on them).
// nullopt when the callback has not run within 10 s; else whether it ran on
// one of the loops.
inline std::optional<bool> DropInsideACallback(std::shared_ptr<Store> store,
                                               const TestLoops& loops) {
  auto dropped = std::make_shared<std::promise<bool>>();
  std::future<bool> done = dropped->get_future();
  Store* raw = store.get();
  raw->Ping([owned = std::move(store), &loops, dropped](Status) mutable {
    const bool on_a_loop = loops.OnALoop();
    owned.reset();
    dropped->set_value(on_a_loop);
  });
  if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return {};
  return done.get();
}

// Waits, at most 10 s, until the caller holds the only reference to
// `shared` (a store has let go of what its options gave it).
template <typename T>
bool WaitUntilSoleOwner(const std::shared_ptr<T>& shared) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (shared.use_count() > 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return shared.use_count() == 1;
}

}  // namespace idem::testing
