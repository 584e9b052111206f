// RedisServer and RedisCluster: real `redis-server` processes (Debian's) for
// tests and benchmarks, on loopback ports chosen at run time, each in its own
// temporary directory, with persistence off unless asked for.
//
// A server dies with its owner: the destructor stops it (SIGTERM, then
// SIGKILL) and removes its directory, and the child also gets SIGKILL if the
// thread that started it exits first (PR_SET_PDEATHSIG), so a crashed test
// leaves no server behind. Start servers from a long-lived thread (the main
// thread or a gtest Environment). Not thread-safe: one thread drives a server.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "idem/status.h"

namespace idem::testing {

// A free loopback TCP port: binds port 0, reads the port, closes.
Result<int> PickFreePort();

struct RedisServerOptions {
  // --cluster-enabled yes, with the cluster bus on a second free port.
  bool cluster_enabled = false;
  // --appendonly yes with this appendfsync policy ("always", "everysec",
  // "no"); empty: --appendonly no.
  std::string appendfsync;
  // --requirepass.
  std::string password;
  std::vector<std::string> extra_args;
};

// A decoded reply of the test client.
struct RedisReply {
  enum class Type { kString, kStatus, kInteger, kNil, kError, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisReply> elements;
};

class RedisServer {
 public:
  // Starts a server on a free port (retrying on a port collision) and waits
  // until it answers PING.
  static Result<std::unique_ptr<RedisServer>> Start(RedisServerOptions options = {});
  ~RedisServer();

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string uri() const { return "redis://" + address(); }
  const std::string& dir() const { return dir_; }
  bool running() const { return pid_ > 0; }

  // SIGTERM, then SIGKILL if it has not exited within 5 s.
  Status Stop();
  // SIGKILL: the server dies without saving anything.
  Status Kill();
  // Starts the stopped server again on the same port and directory.
  Status Restart();
  // SIGSTOP / SIGCONT: a server that accepts connections but never answers.
  Status Pause();
  Status Resume();

  // One command over a fresh blocking connection (2 s time-out).
  Result<RedisReply> Command(const std::vector<std::string>& args) const;

 private:
  RedisServer(RedisServerOptions options, std::string dir, int port, int bus_port);
  Status Launch();
  Status WaitUntilReady();

  RedisServerOptions options_;
  std::string dir_;
  int port_;
  int bus_port_;
  pid_t pid_ = -1;
};

class RedisCluster {
 public:
  // `masters` cluster-enabled servers joined with `redis-cli --cluster
  // create ... --cluster-replicas 0`; returns once every node reports
  // cluster_state:ok and agrees on the slot map.
  static Result<std::unique_ptr<RedisCluster>> Start(int masters = 3);

  const std::vector<std::unique_ptr<RedisServer>>& nodes() const { return nodes_; }
  // "127.0.0.1:p1,127.0.0.1:p2,..."
  std::string seeds() const;
  std::string uri() const { return "redis+cluster://" + seeds(); }

  // The node that serves `slot` now (asks the first node).
  Result<RedisServer*> MasterOf(int slot) const;

  // Moves `slot` to `target` the way redis-cli --cluster reshard does:
  // SETSLOT IMPORTING / MIGRATING, MIGRATE the keys in batches, SETSLOT
  // NODE on every node. `between_steps` (optional) runs after each step, so
  // a test can act while the slot is half-moved.
  Status MigrateSlot(int slot, RedisServer& target,
                     const std::function<void()>& between_steps = {});

 private:
  RedisCluster() = default;
  Status WaitUntilHealthy(std::chrono::seconds limit) const;

  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

// Runs a program with arguments, waits at most `limit`, and returns its
// exit status; its output goes to `log_path`.
Result<int> RunProgram(const std::vector<std::string>& argv, const std::string& log_path,
                       std::chrono::seconds limit);

}  // namespace idem::testing
