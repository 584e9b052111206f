// Status and Result<T>: errors as values.
//
// Every fallible operation of libidem returns a Status (no value) or a
// Result<T> (a value or a Status). No exception crosses the public API.
// The canonical codes map onto HTTP statuses (HttpStatusFor) so the gateway
// never has to guess. Both types are plain values: copyable, movable, and
// safe to use from any thread as long as one object is not mutated
// concurrently.
#pragma once

#include <cassert>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace idem {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input from the caller (HTTP 400)
  kNotFound,            // no such record (HTTP 404)
  kConflict,            // a concurrent operation holds the key (HTTP 409)
  kMismatch,            // same key, other fingerprint (HTTP 422)
  kFailedPrecondition,  // the record is not in the state the call needs
  kLeaseLost,           // the caller's lease was taken over or is gone
  kDeadlineExceeded,    // a wait or an upstream ran out of time (HTTP 504)
  kResourceExhausted,   // a size or count limit was hit (HTTP 413)
  kUnavailable,         // the store cannot be reached (HTTP 503)
  kDataLoss,            // stored data is corrupt or truncated
  kInternal,            // a bug or an unexpected failure (HTTP 500)
};

// Stable lower-case name of a code, e.g. "lease_lost".
std::string_view StatusCodeName(StatusCode code);

// The HTTP status a code maps to when it reaches a client.
int HttpStatusFor(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "lease_lost: the record is owned by another lease"
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) {
  return {StatusCode::kNotFound, std::move(m)};
}
inline Status Conflict(std::string m) {
  return {StatusCode::kConflict, std::move(m)};
}
inline Status Mismatch(std::string m) {
  return {StatusCode::kMismatch, std::move(m)};
}
inline Status FailedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status LeaseLost(std::string m) {
  return {StatusCode::kLeaseLost, std::move(m)};
}
inline Status DeadlineExceeded(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status ResourceExhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status Unavailable(std::string m) {
  return {StatusCode::kUnavailable, std::move(m)};
}
inline Status DataLoss(std::string m) {
  return {StatusCode::kDataLoss, std::move(m)};
}
inline Status Internal(std::string m) {
  return {StatusCode::kInternal, std::move(m)};
}

// A value of type T, or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "a Result without a value needs an error");
    if (status_.ok()) status_ = Internal("Result built from an ok Status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace idem
