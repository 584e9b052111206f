// Run-once functions: wrap any callable so that, for a given key, it runs
// at most once and every later call with that key gets the stored result.
//
//   idem::RunOnce<std::string> once(engine, policy);
//   idem::Result<std::string> receipt =
//       once.Call("charge-order-42", [&] { return ChargeCard(order); });
//
// The result is kept in the engine's store (any store: memory, RocksDB,
// Redis, PostgreSQL) as the body of a completed record, encoded by a codec:
// Codec<std::string>, Codec<Bytes> and (in run_once_json.h)
// Codec<boost::json::value> are built in; for other types specialize
// Codec<T> or pass any type with `static std::string Encode(const T&)` and
// `static Result<T> Decode(std::string_view)` (the CodecFor concept).
//
// What happens to failures:
//  * The function returns an error Result or throws: the key is released
//    (Engine::Abandon) and the error returned, so a retry runs it again.
//  * The error is final (thrown as FinalError, or a returned/thrown error
//    that RunOnceOptions::is_final accepts): it is stored like a result,
//    and every later call with the key gets the same error back without
//    running the function.
//  * A duplicate call while the first still runs waits for its result or
//    gets kConflict, by EnginePolicy::in_flight (wait_timeout_ms bounds the
//    wait; a wait that runs out answers kConflict too).
//  * The function ran but its result could not be stored (store down, or
//    the lease was taken over because the process stalled longer than the
//    lease): the store's error is returned, not the result, so that no
//    caller acts on a result that a retry would not replay.
// No exception escapes: exceptions from the function, the key function
// and the codec are caught and turned into a Status (kInternal unless the
// exception is a FinalError).
//
// While the function runs, its lease is extended every lease_ttl_ms / 3 by
// one helper thread per RunOnce (started on first use), so a slow function
// is never taken over by a retry; a crashed process stops extending and a
// retry takes over once the lease lapses.
//
// Thread-safety: RunOnce and OnceFunction are thread-safe and cheap to copy
// (copies share the engine and the helper thread). The blocking Call runs
// the function on the calling thread; CallAsync starts it on the thread
// that completes the engine's Begin (see the store's header) and the
// function must not block there. The coroutine form is in
// run_once_awaitable.h.
#pragma once

#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "idem/engine.h"
#include "idem/status.h"

namespace idem {

// Turns a result into bytes for the store and back.
template <typename C, typename T>
concept CodecFor = requires(const T& value, std::string_view bytes) {
  { C::Encode(value) } -> std::convertible_to<std::string>;
  { C::Decode(bytes) } -> std::same_as<Result<T>>;
};

// The codec RunOnce<T> uses by default. Specialize it for your types.
template <typename T>
struct Codec;

template <>
struct Codec<std::string> {
  static std::string Encode(const std::string& value) { return value; }
  static Result<std::string> Decode(std::string_view bytes) { return std::string(bytes); }
};

using Bytes = std::vector<uint8_t>;

template <>
struct Codec<Bytes> {
  static std::string Encode(const Bytes& value) {
    return std::string(value.begin(), value.end());
  }
  static Result<Bytes> Decode(std::string_view bytes) {
    return Bytes(bytes.begin(), bytes.end());
  }
};

// Thrown by a run-once function (or CallAsync's completion) for an error
// that must stick: it is stored and returned to every later call.
class FinalError : public std::exception {
 public:
  explicit FinalError(Status status)
      : status_(status.ok() ? Internal("FinalError built from an ok Status")
                            : std::move(status)) {}
  const Status& status() const { return status_; }
  const char* what() const noexcept override { return status_.message().c_str(); }

 private:
  Status status_;
};

struct RunOnceOptions {
  // Names the family of keys: the store key is "<scope> <key>", so two
  // RunOnce objects with different scopes never share results.
  // Default: "run-once".
  std::string scope = "run-once";

  // Decides which errors of the function are final (stored and replayed)
  // rather than released. FinalError is always final. Default: none.
  std::function<bool(const Status&)> is_final;

  // Extend the lease every lease_ttl_ms / 3 while the function runs.
  // Default: true.
  bool keep_lease_alive = true;
};

namespace internal {

// What a run-once function produced: encoded bytes, or an error.
struct OnceOutcome {
  Status status;  // ok: `bytes` holds the encoded result
  std::string bytes;
  bool final = false;  // an error that is stored instead of released
};

// Turns the exception in flight into an outcome. Call inside a catch block.
OnceOutcome OutcomeOfCurrentException();

// The type-independent part of RunOnce: the engine calls, the stored
// format and the lease keeper.
class OnceCore : public std::enable_shared_from_this<OnceCore> {
 public:
  OnceCore(std::shared_ptr<Engine> engine, EnginePolicy policy, RunOnceOptions options);
  ~OnceCore();
  OnceCore(const OnceCore&) = delete;
  OnceCore& operator=(const OnceCore&) = delete;

  // Blocking: runs `body` on this thread when the key is free.
  Result<std::string> Run(std::string_view key, const std::function<OnceOutcome()>& body);

  // Asynchronous: starts `body` on Begin's completion thread; `body` calls
  // its argument once with the outcome; `done` runs once at the end.
  void RunAsync(std::string key,
                std::function<void(std::function<void(OnceOutcome)>)> body,
                std::function<void(Result<std::string>)> done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

template <typename T, typename C>
OnceOutcome EncodeOutcome(Result<T> result) {
  if (!result.ok()) return OnceOutcome{result.status(), {}, false};
  try {
    return OnceOutcome{Status(), std::string(C::Encode(*result)), false};
  } catch (...) {
    return OutcomeOfCurrentException();
  }
}

template <typename T, typename C>
Result<T> DecodeResult(Result<std::string> bytes) {
  if (!bytes.ok()) return bytes.status();
  try {
    return C::Decode(*bytes);
  } catch (const std::exception& e) {
    return DataLoss(std::string("run-once codec failed to decode: ") + e.what());
  } catch (...) {
    return DataLoss("run-once codec failed to decode");
  }
}

template <typename Signature>
struct SignatureResult;
template <typename T, typename... Args>
struct SignatureResult<T(Args...)> {
  using type = T;
};

}  // namespace internal

template <typename T, typename C = Codec<T>>
requires CodecFor<C, T>
class RunOnce {
 public:
  RunOnce(std::shared_ptr<Engine> engine, EnginePolicy policy = {},
          RunOnceOptions options = {})
      : core_(std::make_shared<internal::OnceCore>(std::move(engine), policy,
                                                   std::move(options))) {}

  // Runs fn() (returning T or Result<T>) unless `key` already has a result.
  // Errors: fn's error; kConflict (in flight elsewhere); the store's error;
  // kInvalidArgument for an empty key; kDataLoss when a stored result does
  // not decode.
  template <typename F>
  requires std::invocable<F&> Result<T> Call(std::string_view key, F&& fn)
  const {
    auto outcome = core_->Run(key, [&fn]() -> internal::OnceOutcome {
      try {
        return internal::EncodeOutcome<T, C>(Result<T>(fn()));
      } catch (...) {
        return internal::OutcomeOfCurrentException();
      }
    });
    return internal::DecodeResult<T, C>(std::move(outcome));
  }

  // Asynchronous form. fn(finish) starts the work and calls
  // finish(Result<T>) once when it is done (from any thread); done then
  // gets the result, or the stored result without fn running at all.
  template <typename F>
  requires std::invocable<F&, Callback<Result<T>>>
  void CallAsync(std::string key, F fn, Callback<Result<T>> done) const {
    auto shared_fn = std::make_shared<F>(std::move(fn));
    core_->RunAsync(
        std::move(key),
        [shared_fn](std::function<void(internal::OnceOutcome)> finish) {
          auto once = std::make_shared<std::once_flag>();
          auto report = [once, finish](internal::OnceOutcome outcome) {
            std::call_once(*once, [&] { finish(std::move(outcome)); });
          };
          try {
            (*shared_fn)(Callback<Result<T>>([report](Result<T> result) {
              report(internal::EncodeOutcome<T, C>(std::move(result)));
            }));
          } catch (...) {
            report(internal::OutcomeOfCurrentException());
          }
        },
        [done = std::move(done)](Result<std::string> bytes) {
          done(internal::DecodeResult<T, C>(std::move(bytes)));
        });
  }

  const std::shared_ptr<internal::OnceCore>& core() const { return core_; }

 private:
  std::shared_ptr<internal::OnceCore> core_;
};

// A function of arguments that runs at most once per key, the key being
// computed from the arguments:
//
//   OnceFunction<std::string(std::string, int)> charge(
//       RunOnce<std::string>(engine),
//       [](const std::string& order, int cents) {
//         return DeriveKey("order/" + order, "charge",
//                          "{\"cents\":" + std::to_string(cents) + "}");
//       },
//       [](std::string order, int cents) { return Charge(order, cents); });
//   Result<std::string> id = charge("42", 1200);
template <typename Signature,
          typename C = Codec<typename internal::SignatureResult<Signature>::type>>
class OnceFunction;

template <typename T, typename... Args, typename C>
class OnceFunction<T(Args...), C> {
 public:
  using KeyFunction = std::function<Result<std::string>(const Args&...)>;
  using Function = std::function<Result<T>(Args...)>;

  OnceFunction(RunOnce<T, C> runner, KeyFunction key, Function fn)
      : runner_(std::move(runner)), key_(std::move(key)), fn_(std::move(fn)) {}

  Result<T> operator()(Args... args) const {
    Result<std::string> key = Internal("key function did not run");
    try {
      key = key_(args...);
    } catch (...) {
      return internal::OutcomeOfCurrentException().status;
    }
    if (!key.ok()) return key.status();
    return runner_.Call(*key,
                        [&]() -> Result<T> { return fn_(std::forward<Args>(args)...); });
  }

 private:
  RunOnce<T, C> runner_;
  KeyFunction key_;
  Function fn_;
};

}  // namespace idem
