// The end-to-end test harness: real `idem` and `idem-demo-upstream`
// processes on loopback ports chosen at run time.
//
//   TempDir   a directory removed with everything in it on destruction
//   Process   a child process with its stdout and stderr in a log file,
//             killed (SIGKILL) on destruction
//   Upstream  idem-demo-upstream, with its counting controls
//   Gateway   `idem serve` with a store URI and TOML configuration text;
//             Stop (SIGTERM), Kill (SIGKILL) and Restart on the same store,
//             so crash tests and several gateways sharing one store can be
//             built from it
//
// Children are started from the calling thread and get SIGKILL when that
// thread exits (PR_SET_PDEATHSIG), so a crashed test leaves no process
// behind: start them from the test's main thread. Objects are not
// thread-safe; the port accessors may be read from any thread.
//
// Binaries: IDEM_BINARY / IDEM_DEMO_UPSTREAM_BINARY from the build, or the
// environment variables of the same names when set.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http_client.h"

namespace idem::e2e {

using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir();  // under $TMPDIR or /tmp
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const {
    return path_ + "/" + std::string(name);
  }

 private:
  std::string path_;
};

// How a process ended.
struct ExitStatus {
  bool exited = false;  // true: `code` is valid; false: killed by `signal`
  int code = 0;
  int signal = 0;
  bool success() const { return exited && code == 0; }
  std::string ToString() const;
};

class Process {
 public:
  Process() = default;
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts argv[0] (a path) with stdin from /dev/null and stdout and stderr
  // appended to `log_path`. False (with `error`) when it cannot be started.
  bool Start(const std::vector<std::string>& argv, const std::string& log_path,
             std::string& error);

  pid_t pid() const { return pid_; }
  // True while the child has not exited (reaps it when it has).
  bool Running();
  bool Signal(int signal);
  // Waits up to `timeout` for the child to exit; nullopt when it did not.
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);
  // SIGKILL and reap; no-op when not running.
  void Kill();
  const std::optional<ExitStatus>& exit_status() const { return exit_status_; }

  const std::string& log_path() const { return log_path_; }
  size_t LogSize() const;
  // The log from byte `offset` on (at most the last `max_bytes` of it).
  std::string LogSince(size_t offset, size_t max_bytes = 64 * 1024) const;

 private:
  void Reap(int wait_status);

  pid_t pid_ = -1;
  std::optional<ExitStatus> exit_status_;
  std::string log_path_;
};

// Reads a port file written as "name=HOST:PORT" lines once every name in
// `names` is present, waiting up to `timeout`; fails early (with the
// process's log in `error`) when `process` exits first.
std::optional<std::map<std::string, uint16_t>> WaitForPortFile(
    const std::string& path, const std::vector<std::string>& names, Process& process,
    std::chrono::milliseconds timeout, std::string& error);

// Polls `condition` every few milliseconds until it is true or `timeout`
// passes; returns its last value. For conditions, never for timing.
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout = 10s);

std::string IdemBinary();
std::string DemoUpstreamBinary();

// What `idem ARGS...` printed (stdout and stderr) and how it ended.
struct CliRun {
  ExitStatus status;
  std::string output;
};
// Runs `idem ARGS...` to its end (at most 60 s; then it is killed and the
// test fails).
CliRun RunIdem(const std::vector<std::string>& args);

// What the upstream saw of one request (GET /_last).
struct SeenRequest {
  std::string method;
  std::string target;
  Headers headers;
  uint64_t body_bytes = 0;
  std::optional<std::string> Header(std::string_view name) const;
  std::vector<std::string> HeaderValues(std::string_view name) const;
  std::string Describe() const;
};

class Upstream {
 public:
  struct Options {
    unsigned threads = 2;
    std::vector<std::string> extra_args;
  };
  // Starts idem-demo-upstream on 127.0.0.1:0; nullptr (with `error`) on failure.
  static std::unique_ptr<Upstream> Start(const Options& options, std::string& error);
  static std::unique_ptr<Upstream> Start(std::string& error) { return Start({}, error); }

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  Process& process() { return process_; }

  // Executions with key `key` (quoted and bare forms are one key), or in total;
  // UINT64_MAX when the upstream does not answer.
  uint64_t Count(std::string_view key);
  uint64_t Total();
  void Reset();
  // The last request with key `key`, or the last request of all.
  std::optional<SeenRequest> Last(std::string_view key);
  std::optional<SeenRequest> Last();
  // One execution of a keyed request: the "execution" number of its response
  // body and its Idempotency-Fence (0 when it had none).
  struct Execution {
    uint64_t serial = 0;
    uint64_t fence = 0;
  };
  // The executions with key `key` in the order the upstream recorded them
  // (GET /_executions); nullopt when the upstream does not answer.
  std::optional<std::vector<Execution>> Executions(std::string_view key);
  // Waits until Count(key) >= n; false on timeout.
  bool WaitForCount(std::string_view key, uint64_t n,
                    std::chrono::milliseconds timeout = 10s);

 private:
  std::optional<SeenRequest> FetchLast(const std::string& target);
  uint64_t FetchNumber(const std::string& target);

  TempDir dir_;
  Process process_;
  uint16_t port_ = 0;
};

struct GatewayOptions {
  // The TOML configuration (DESIGN.md's shape), written to the file given
  // with --config. Listen addresses, upstream and store come from flags.
  std::string config;
  // --store; e.g. "memory:", "rocksdb:" + dir, "redis://127.0.0.1:6379/3".
  std::string store_uri = "memory:";
  // --upstream; e.g. Upstream::url().
  std::string upstream_url;
  std::vector<std::string> extra_args;
  std::chrono::milliseconds start_timeout = 20s;
};

class Gateway {
 public:
  // Starts `idem serve`; nullptr (with `error`, including the gateway's log)
  // when it does not come up.
  static std::unique_ptr<Gateway> Start(GatewayOptions options, std::string& error);
  ~Gateway();

  // Read from any thread: a restart (new ports) may run concurrently.
  uint16_t port() const { return port_.load(); }
  uint16_t admin_port() const { return admin_port_.load(); }
  const GatewayOptions& options() const { return options_; }
  Process& process() { return process_; }

  // Sends `signal` and waits up to `timeout` for the exit.
  std::optional<ExitStatus> Stop(int signal = 15 /*SIGTERM*/,
                                 std::chrono::milliseconds timeout = 30s);
  // SIGKILL: a crash.
  void Kill() { process_.Kill(); }
  // Starts the same configuration again (new ports; same store URI, so a
  // durable store keeps its records). Stops the running process first with
  // SIGKILL. False (with `error`) on failure.
  bool Restart(std::string& error);

  // The log since the last (re)start.
  std::string Log() const;

 private:
  explicit Gateway(GatewayOptions options) : options_(std::move(options)) {}
  bool Launch(std::string& error);

  GatewayOptions options_;
  TempDir dir_;
  Process process_;
  int launches_ = 0;
  std::atomic<uint16_t> port_{0};
  std::atomic<uint16_t> admin_port_{0};
};

}  // namespace idem::e2e
