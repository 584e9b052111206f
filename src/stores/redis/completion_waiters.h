// CompletionWaiters: WaitForCompletion across processes.
//
// A waiter first runs the Watch script, which either answers at once
// (completed, or gone) or marks the in-flight record as watched (field "w").
// The script that ends a watched flight (Complete, Release, Delete, expiry)
// PUBLISHes the record's Redis key on the store's channel; the store's
// Subscription hears it and calls OnKeyChanged, which re-checks the local
// waiters of that key. Because a notification can be lost (the subscriber
// reconnecting), each waiter also re-checks every poll interval, and all of
// them re-check when the subscription comes back (RecheckAll). A waiter ends
// with the completed record, kNotFound (gone), kDeadlineExceeded, or the
// error of a check.
//
// Every waiter lives on one io thread, the subscription's; Wait may be
// called from any thread and its callback runs on that io thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "idem/record.h"
#include "idem/status.h"
#include "idem/store.h"
#include "stores/redis/replies.h"

namespace idem::redis_internal {

// Runs the Watch script for a Redis key; the callback may run on any thread.
using WatchFunction =
    std::function<void(const std::string& redis_key, Callback<Result<WatchResult>>)>;

class CompletionWaiters {
 public:
  CompletionWaiters(boost::asio::io_context& io, WatchFunction watch,
                    std::chrono::milliseconds poll_interval);
  ~CompletionWaiters();

  CompletionWaiters(const CompletionWaiters&) = delete;
  CompletionWaiters& operator=(const CompletionWaiters&) = delete;

  // Io thread (or once no thread runs it any more): fails every waiter
  // with kUnavailable, and every later one.
  void Close();

  void Wait(std::string redis_key, std::chrono::milliseconds timeout,
            Callback<Result<RecordPtr>> done);

  // Io thread: the subscription is back (every waiter looks again), or the
  // record under `redis_key` changed.
  void RecheckAll();
  void OnKeyChanged(std::string_view redis_key);

 private:
  struct Waiter;
  using WaiterPtr = std::shared_ptr<Waiter>;

  void Add(const WaiterPtr& waiter);
  void Check(const WaiterPtr& waiter);
  void OnChecked(const WaiterPtr& waiter, Result<WatchResult> result);
  void ArmTimer(const WaiterPtr& waiter);
  void Finish(const WaiterPtr& waiter, Result<RecordPtr> result);

  boost::asio::io_context& io_;
  const WatchFunction watch_;
  const std::chrono::milliseconds poll_interval_;

  // Io thread only.
  bool closed_ = false;
  std::unordered_map<std::string, std::vector<WaiterPtr>> waiters_;
};

}  // namespace idem::redis_internal
