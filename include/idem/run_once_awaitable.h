// The coroutine form of run-once functions (see run_once.h), for programs
// built on Boost.Asio's C++20 coroutines:
//
//   boost::asio::awaitable<void> Handle(idem::RunOnce<std::string> once) {
//     idem::Result<std::string> receipt = co_await idem::CallAwaitable(
//         once, "charge-order-42",
//         [&]() -> boost::asio::awaitable<idem::Result<std::string>> {
//           co_return co_await ChargeCardAsync(order);
//         });
//   }
//
// fn is a callable returning boost::asio::awaitable<Result<T>> (or
// awaitable<T>); it is started on the awaiting coroutine's executor only
// when the key has no result yet, and the awaiting coroutine resumes on its
// own executor. A FinalError thrown by the coroutine is stored and replayed;
// other exceptions release the key. Thread-safety as in run_once.h.
// Separate from run_once.h so that users of the blocking form do not pull
// in Asio.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "idem/run_once.h"

namespace idem {

template <typename T, typename C, typename F>
boost::asio::awaitable<Result<T>> CallAwaitable(RunOnce<T, C> once, std::string key,
                                                F fn) {
  auto executor = co_await boost::asio::this_coro::executor;
  auto initiate = [&once, &key, &fn, executor](auto handler) {
    using Handler = decltype(handler);
    auto shared_handler = std::make_shared<Handler>(std::move(handler));
    auto shared_fn = std::make_shared<F>(std::move(fn));
    auto body = [executor, shared_fn](std::function<void(internal::OnceOutcome)> finish) {
      boost::asio::co_spawn(
          executor,
          [shared_fn, finish]() -> boost::asio::awaitable<void> {
            internal::OnceOutcome outcome;
            try {
              outcome = internal::EncodeOutcome<T, C>(Result<T>(co_await (*shared_fn)()));
            } catch (...) {
              outcome = internal::OutcomeOfCurrentException();
            }
            finish(std::move(outcome));
          },
          boost::asio::detached);
    };
    once.core()->RunAsync(
        std::move(key), std::move(body), [shared_handler](Result<std::string> bytes) {
          auto handler_executor = boost::asio::get_associated_executor(*shared_handler);
          boost::asio::post(handler_executor,
                            [shared_handler, result = internal::DecodeResult<T, C>(
                                                 std::move(bytes))]() mutable {
                              (*shared_handler)(std::move(result));
                            });
        });
  };
  co_return co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                                 void(Result<T>)>(
      std::move(initiate), boost::asio::use_awaitable);
}

}  // namespace idem
