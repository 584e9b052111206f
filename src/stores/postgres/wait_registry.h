// The callers waiting, in this process, for in-flight records to finish.
//
// Each waiter has a deadline timer on the store's io_context that fails it
// with kDeadlineExceeded. Per key the registry also coordinates re-reads of
// the record (one at a time; a wake-up that arrives during a read asks for
// one more, so no completion slips between a read and a notification).
// NOTIFY payloads name keys by hash, hence the hash index. Callbacks are
// returned to the caller, never run under the lock. Thread-safe.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "idem/store.h"

namespace idem::pg {

class WaitRegistry {
 public:
  using Done = Callback<Result<RecordPtr>>;

  explicit WaitRegistry(boost::asio::io_context& io) : io_(io) {}
  WaitRegistry(const WaitRegistry&) = delete;
  WaitRegistry& operator=(const WaitRegistry&) = delete;

  // Registers `done` until `timeout` passes.
  void Add(const std::string& key, std::chrono::milliseconds timeout, Done done);

  // Removes every waiter of `key` (their timers are cancelled).
  std::vector<Done> TakeAll(const std::string& key);
  // Removes every waiter (shutdown).
  std::vector<Done> TakeEverything();

  std::vector<std::string> Keys();
  std::optional<std::string> KeyForHash(std::string_view hex_sha256);

  // True when the caller should read the record now; false when a read is
  // already running (it will be repeated) or nobody waits on the key.
  bool StartCheck(const std::string& key);
  // Ends a read; true when another one is needed.
  bool FinishCheck(const std::string& key);

 private:
  struct Waiter {
    uint64_t id;
    Done done;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  struct KeyWaiters {
    std::string hash;
    std::vector<Waiter> waiters;
    bool checking = false;
    bool recheck = false;
  };

  void Expire(const std::string& key, uint64_t id);
  void DropIfIdle(std::map<std::string, KeyWaiters>::iterator it);

  boost::asio::io_context& io_;
  std::mutex mutex_;
  std::map<std::string, KeyWaiters> keys_;
  std::unordered_map<std::string, std::string> key_by_hash_;
  uint64_t next_id_ = 1;
};

}  // namespace idem::pg
