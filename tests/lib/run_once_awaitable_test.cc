#include "idem/run_once_awaitable.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "idem/memory_store.h"

namespace idem {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(RunOnceAwaitableTest, ConcurrentCoroutinesRunTheFunctionOnce) {
  EnginePolicy policy;
  policy.in_flight = InFlightPolicy::kWait;
  policy.wait_timeout_ms = 10'000;
  RunOnce<std::string> once(std::make_shared<Engine>(NewMemoryStore()), policy);
  asio::io_context io;
  int runs = 0;
  std::vector<std::string> results;
  for (int i = 0; i < 8; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          Result<std::string> r = co_await CallAwaitable(
              once, "k", [&]() -> asio::awaitable<Result<std::string>> {
                ++runs;
                asio::steady_timer timer(co_await asio::this_coro::executor, 30ms);
                co_await timer.async_wait(asio::use_awaitable);
                co_return std::string("awaited");
              });
          results.push_back(r.ok() ? *r : r.status().ToString());
        },
        asio::detached);
  }
  io.run_for(10s);
  EXPECT_EQ(runs, 1);
  ASSERT_EQ(results.size(), 8u);
  for (const auto& r : results) EXPECT_EQ(r, "awaited");
}

TEST(RunOnceAwaitableTest, ExceptionsReleaseAndFinalErrorsStick) {
  RunOnce<std::string> once(std::make_shared<Engine>(NewMemoryStore()));
  asio::io_context io;
  int runs = 0;
  std::vector<Status> statuses;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto failing = [&]() -> asio::awaitable<Result<std::string>> {
          if (++runs == 1) throw std::runtime_error("transient");
          throw FinalError(InvalidArgument("declined"));
          co_return std::string("never");
        };
        for (int i = 0; i < 3; ++i) {
          statuses.push_back((co_await CallAwaitable(once, "k", failing)).status());
        }
      },
      asio::detached);
  io.run_for(10s);
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_EQ(statuses[0].code(), StatusCode::kInternal);
  EXPECT_EQ(statuses[1], InvalidArgument("declined"));
  EXPECT_EQ(statuses[2], InvalidArgument("declined"));
  EXPECT_EQ(runs, 2);
}

}  // namespace
}  // namespace idem
