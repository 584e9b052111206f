#include "gateway/callback_bridge.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace idem::gateway {
namespace {

namespace asio = boost::asio;

// Runs `body` as a coroutine on a one-thread io_context and returns what
// it produced, checking it resumed on the io thread.
template <typename Body>
int RunOnIoThread(Body body) {
  asio::io_context io;
  int result = -1;
  bool on_io_thread = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        result = co_await body();
        on_io_thread = io.get_executor().running_in_this_thread();
      },
      asio::detached);
  io.run();
  EXPECT_TRUE(on_io_thread);
  return result;
}

TEST(AwaitCallbackTest, InlineCallbackNeedsNoSuspension) {
  EXPECT_EQ(RunOnIoThread([]() -> asio::awaitable<int> {
              co_return co_await AwaitCallback<int>([](Callback<int> done) { done(7); });
            }),
            7);
}

// The callback threads are joined on the io thread: done() may still be
// waking the io_context when the coroutine resumes, so they must finish
// before RunOnIoThread destroys it (ThreadSanitizer saw that race).
TEST(AwaitCallbackTest, CallbackOnAnotherThreadResumesOnTheIoThread) {
  std::thread other;
  EXPECT_EQ(RunOnIoThread([&]() -> asio::awaitable<int> {
              const int value = co_await AwaitCallback<int>([&](Callback<int> done) {
                other = std::thread([done] {
                  std::this_thread::sleep_for(std::chrono::milliseconds(20));
                  done(42);
                });
              });
              other.join();
              co_return value;
            }),
            42);
}

TEST(AwaitCallbackTest, ManyRacingCallbacksEachResumeOnce) {
  std::vector<std::thread> threads;
  int sum = RunOnIoThread([&]() -> asio::awaitable<int> {
    int total = 0;
    for (int i = 0; i < 200; ++i) {
      total += co_await AwaitCallback<int>(
          [&](Callback<int> done) { threads.emplace_back([done] { done(1); }); });
    }
    for (auto& t : threads) t.join();
    co_return total;
  });
  EXPECT_EQ(sum, 200);
}

// Many coroutines on two io threads, their callbacks run inline or later on
// a third thread, in every interleaving. Each must resume exactly once with
// its own value; a double resume or a lost reference shows up as a crash or
// a wrong value here (this caught a GCC 12 miscompilation of lambda
// captures in co_await expressions).
TEST(AwaitCallbackTest, ConcurrentCoroutinesWithForeignCallbacks) {
  struct Payload {
    std::string text;
    std::shared_ptr<int> tag;
  };
  asio::io_context first(1);
  asio::io_context second(1);
  std::mutex mutex;
  std::vector<Callback<Payload>> pending;
  std::atomic<bool> stop{false};
  std::atomic<int> finished{0};
  std::atomic<int> wrong{0};
  std::thread deliverer([&] {
    while (!stop) {
      std::vector<Callback<Payload>> batch;
      {
        std::lock_guard lock(mutex);
        batch.swap(pending);
      }
      for (auto& done : batch) {
        done(Payload{"delivered later, long enough to allocate",
                     std::make_shared<int>(2)});
      }
      if (batch.empty()) std::this_thread::yield();
    }
  });
  const auto work = [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 300; ++i) {
      const bool inline_answer = i % 3 == 0;
      Payload p = co_await AwaitCallback<Payload>([&](Callback<Payload> done) {
        if (inline_answer) return done(Payload{"inline", std::make_shared<int>(1)});
        std::lock_guard lock(mutex);
        pending.push_back(std::move(done));
      });
      if (p.tag == nullptr || *p.tag != (inline_answer ? 1 : 2)) ++wrong;
    }
    ++finished;
  };
  for (int k = 0; k < 25; ++k) {
    asio::co_spawn(first, work(), asio::detached);
    asio::co_spawn(second, work(), asio::detached);
  }
  std::thread other([&] { second.run(); });
  first.run();
  other.join();
  stop = true;
  deliverer.join();
  EXPECT_EQ(finished, 50);
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace idem::gateway
