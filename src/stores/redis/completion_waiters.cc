#include "stores/redis/completion_waiters.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <utility>

namespace idem::redis_internal {

using SteadyClock = std::chrono::steady_clock;

struct CompletionWaiters::Waiter {
  Waiter(boost::asio::io_context& io, std::string k, SteadyClock::time_point d,
         bool no_wait, Callback<Result<RecordPtr>> cb)
      : key(std::move(k)),
        deadline(d),
        immediate(no_wait),
        done(std::move(cb)),
        timer(io) {}

  std::string key;
  SteadyClock::time_point deadline;
  bool immediate;  // a zero time-out: answer after the first check
  Callback<Result<RecordPtr>> done;
  boost::asio::steady_timer timer;
  bool checking = false;
  bool recheck = false;
  bool finished = false;
};

CompletionWaiters::CompletionWaiters(boost::asio::io_context& io, WatchFunction watch,
                                     std::chrono::milliseconds poll_interval)
    : io_(io), watch_(std::move(watch)), poll_interval_(poll_interval) {}

CompletionWaiters::~CompletionWaiters() = default;

void CompletionWaiters::Close() {
  closed_ = true;
  std::vector<WaiterPtr> all;
  for (auto& [key, list] : waiters_) all.insert(all.end(), list.begin(), list.end());
  for (const WaiterPtr& waiter : all) {
    Finish(waiter, Unavailable("the redis store is closed"));
  }
}

void CompletionWaiters::Wait(std::string redis_key, std::chrono::milliseconds timeout,
                             Callback<Result<RecordPtr>> done) {
  const bool immediate = timeout.count() <= 0;
  auto waiter = std::make_shared<Waiter>(
      io_, std::move(redis_key),
      SteadyClock::now() + std::max(timeout, decltype(timeout)(0)), immediate,
      std::move(done));
  boost::asio::post(io_, [this, waiter] { Add(waiter); });
}

void CompletionWaiters::Add(const WaiterPtr& waiter) {
  if (closed_) {
    waiter->finished = true;
    waiter->done(Unavailable("the redis store is closed"));
    return;
  }
  waiters_[waiter->key].push_back(waiter);
  Check(waiter);
  if (!waiter->immediate) ArmTimer(waiter);
}

void CompletionWaiters::Check(const WaiterPtr& waiter) {
  if (waiter->finished) return;
  if (waiter->checking) {
    waiter->recheck = true;
    return;
  }
  waiter->checking = true;
  watch_(waiter->key, [this, waiter](Result<WatchResult> result) {
    boost::asio::post(io_, [this, waiter, result = std::move(result)]() mutable {
      OnChecked(waiter, std::move(result));
    });
  });
}

void CompletionWaiters::OnChecked(const WaiterPtr& waiter, Result<WatchResult> result) {
  waiter->checking = false;
  if (waiter->finished) return;
  if (!result.ok()) {
    Finish(waiter, result.status());
    return;
  }
  switch (result->state) {
    case WatchResult::State::kCompleted:
      Finish(waiter, result->record);
      return;
    case WatchResult::State::kGone:
      Finish(waiter, NotFound("the record is gone (released, deleted or expired)"));
      return;
    case WatchResult::State::kInFlight:
      break;
  }
  if (waiter->immediate || SteadyClock::now() >= waiter->deadline) {
    Finish(waiter, DeadlineExceeded("the operation is still in flight"));
    return;
  }
  if (waiter->recheck) {
    waiter->recheck = false;
    Check(waiter);
  }
}

// One timer per waiter, due at the next poll or at the deadline.
void CompletionWaiters::ArmTimer(const WaiterPtr& waiter) {
  const auto due = std::min(waiter->deadline, SteadyClock::now() + poll_interval_);
  waiter->timer.expires_at(due);
  waiter->timer.async_wait([this, waiter](const boost::system::error_code& ec) {
    if (ec || waiter->finished) return;
    if (SteadyClock::now() >= waiter->deadline) {
      Finish(waiter, DeadlineExceeded("the operation is still in flight"));
      return;
    }
    Check(waiter);
    ArmTimer(waiter);
  });
}

void CompletionWaiters::Finish(const WaiterPtr& waiter, Result<RecordPtr> result) {
  if (waiter->finished) return;
  waiter->finished = true;
  waiter->timer.cancel();
  auto it = waiters_.find(waiter->key);
  if (it != waiters_.end()) {
    auto& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), waiter), list.end());
    if (list.empty()) waiters_.erase(it);
  }
  std::exchange(waiter->done, nullptr)(std::move(result));
}

void CompletionWaiters::RecheckAll() {
  // Whatever was published while the subscription was down is lost:
  // look at every record again.
  std::vector<WaiterPtr> all;
  for (auto& [key, list] : waiters_) all.insert(all.end(), list.begin(), list.end());
  for (const WaiterPtr& waiter : all) Check(waiter);
}

void CompletionWaiters::OnKeyChanged(std::string_view redis_key) {
  auto it = waiters_.find(std::string(redis_key));
  if (it == waiters_.end()) return;
  const std::vector<WaiterPtr> list = it->second;
  for (const WaiterPtr& waiter : list) Check(waiter);
}

}  // namespace idem::redis_internal
