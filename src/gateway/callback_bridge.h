// CallbackCall and AwaitCallback: await a callback-style call (the Store and
// Engine API) from an Asio coroutine.
//
// The coroutine always resumes on its own executor. A callback that runs
// inline, before the call returns (the memory store), costs no suspension
// at all; one that runs later on another thread (a network store, a timed
// wait) resumes the coroutine through asio::post to its executor. Which
// side arrives second does the resuming; an atomic flag decides.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "idem/store.h"

namespace idem::gateway {
namespace internal {

// A parked coroutine's completion handler, type-erased (Asio 1.26's
// any_completion_handler cannot be move-assigned without recursing).
class Resumer {
 public:
  virtual ~Resumer() = default;
  // Posted even when already on the right thread: a completion handler must
  // not run inside the operation that started it.
  virtual void Post() = 0;
};

template <typename Handler>
class HandlerResumer final : public Resumer {
 public:
  HandlerResumer(Handler handler, boost::asio::any_io_executor executor)
      : handler_(std::move(handler)), executor_(std::move(executor)) {}
  void Post() override {
    boost::asio::post(
        executor_, [handler = std::move(handler_)]() mutable { std::move(handler)(); });
  }

 private:
  Handler handler_;
  boost::asio::any_io_executor executor_;
};

template <typename T>
class Rendezvous {
 public:
  // The callback's side; any thread.
  void Deliver(T&& value) {
    value_.emplace(std::move(value));
    if (flags_.fetch_or(kValue, std::memory_order_acq_rel) & kParked) resumer_->Post();
  }

  bool Ready() const { return flags_.load(std::memory_order_acquire) & kValue; }

  // The coroutine's side, once it has suspended.
  void Park(std::unique_ptr<Resumer> resumer) {
    resumer_ = std::move(resumer);
    if (flags_.fetch_or(kParked, std::memory_order_acq_rel) & kValue) resumer_->Post();
  }

  T& Value() { return *value_; }

 private:
  static constexpr uint8_t kValue = 1;
  static constexpr uint8_t kParked = 2;

  std::atomic<uint8_t> flags_{0};
  std::optional<T> value_;
  std::unique_ptr<Resumer> resumer_;
};

// Suspends the calling coroutine until `rendezvous` has its value. The
// lambda must be built here, outside any coroutine: GCC 12 destroys a lambda
// temporary that captures by copy inside a co_await expression once too
// often (the shared_ptr it copied loses a reference).
template <typename T>
auto UntilDelivered(const std::shared_ptr<Rendezvous<T>>& rendezvous) {
  return boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void()>(
      [rendezvous](auto handler) {
        auto executor = boost::asio::get_associated_executor(handler);
        rendezvous->Park(std::make_unique<HandlerResumer<decltype(handler)>>(
            std::move(handler), std::move(executor)));
      },
      boost::asio::use_awaitable);
}

}  // namespace internal

// A callback-style call started at construction. When its callback ran
// before the call returned (the memory store), ready() is true at once and
// value() has it without suspending the coroutine, and without the
// coroutine frame a call to AwaitCallback costs; otherwise co_await Wait()
// first. `start` is called with a Callback<T> and must arrange for it to run
// exactly once, e.g. [&](auto done) { engine.Begin(..., std::move(done)); }.
template <typename T>
class CallbackCall {
 public:
  template <typename Start>
  explicit CallbackCall(Start start)
      : rendezvous_(std::make_shared<internal::Rendezvous<T>>()) {
    // Taking T&& spares a move: Callback<T> already holds the value.
    start(Callback<T>([rendezvous = rendezvous_](T&& value) {
      rendezvous->Deliver(std::move(value));
    }));
  }

  bool ready() const { return rendezvous_->Ready(); }
  // Resumes the awaiting coroutine, on its own executor, once the value came.
  auto Wait() const { return internal::UntilDelivered(rendezvous_); }
  // Once ready; valid as long as this object.
  T& value() { return rendezvous_->Value(); }

 private:
  std::shared_ptr<internal::Rendezvous<T>> rendezvous_;
};

// The same as one awaitable, for paths where a coroutine frame does not
// matter.
template <typename T, typename Start>
boost::asio::awaitable<T> AwaitCallback(Start start) {
  CallbackCall<T> call(std::move(start));
  if (!call.ready()) {
    co_await call.Wait();
  }
  co_return std::move(call.value());
}

}  // namespace idem::gateway
