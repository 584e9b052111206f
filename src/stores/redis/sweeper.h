// Sweeper: Store::Sweep for Redis.
//
// Redis drops records by their native PEXPIRE on its own; Sweep catches the
// records whose own timestamps say they expired before that (a clock ahead
// of Redis', or a test's manual clock). It walks the keys under the prefix
// with SCAN on every master, resuming where the previous call stopped, and
// runs the Sweep script (delete if expired, atomically) on each key. A call
// ends once it has removed `limit` records or has walked the whole keyspace
// once. Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "idem/status.h"
#include "idem/store.h"
#include "stores/redis/endpoint.h"
#include "stores/redis/router.h"

namespace idem::redis_internal {

// Runs the Sweep script on one Redis key: true when it removed the record.
using SweepKeyFunction =
    std::function<void(const std::string& redis_key, Callback<Result<bool>>)>;

class Sweeper {
 public:
  Sweeper(Router& router, std::string key_prefix, SweepKeyFunction sweep_key);

  void Sweep(size_t limit, Callback<Result<size_t>> done);

 private:
  class Job;
  friend class Job;

  struct Position {
    std::vector<Endpoint> nodes;
    size_t node = 0;
    std::string cursor = "0";
    bool at_start() const { return node == 0 && cursor == "0"; }
  };

  Position Load(const std::vector<Endpoint>& nodes);
  void Save(Position position);

  Router& router_;
  const std::string match_;  // SCAN MATCH pattern for the prefix
  const SweepKeyFunction sweep_key_;
  std::mutex mutex_;
  Position saved_;
};

}  // namespace idem::redis_internal
