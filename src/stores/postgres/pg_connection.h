// One non-blocking libpq connection driven by one of the store's event loops.
//
// The connection connects with PQconnectStartParams/PQconnectPoll, waits on
// PQsocket through an asio::posix::stream_descriptor (re-attached at every
// connect step, since libpq may switch sockets while it tries addresses),
// then enters pipeline mode: pool connections prepare every statement and
// pull commands from the Client's queue, each followed by its own Sync so
// every command is its own implicit transaction; the listener connection
// runs LISTEN and hands NOTIFY payloads to the Client.
//
// Commit groups: the durable statements (Statement::durable) a connection
// takes from the queue together are sent after the others and share one
// Sync, hence one transaction and one WAL flush. PostgreSQL lets the
// commits of concurrent backends share a flush, but a pipeline runs its
// transactions one after the other, each waiting for its own flush; this
// is the same grouping within one connection, so a small pool commits as
// many results per flush as there are callers. Nothing of a group is
// answered before its Sync (its commit); if one statement fails, the
// transaction is rolled back and the others are answered
// `group_rolled_back`, to be run again.
//
// asio's epoll reactor is edge-triggered and does not re-check readiness
// for async_wait, so Service() reads until the socket is drained and checks
// readiness again after arming its waits; a spurious wake-up costs one
// PQconsumeInput, a missed one could hang a pipeline.
//
// A broken connection (I/O error, a command past its deadline, failed
// setup) fails the commands it carries with kUnavailable, closes, and
// reconnects after a jittered exponential back-off (at once if it had been
// ready). All state lives on the connection's strand; the public methods
// only post to it and are thread-safe.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <vector>

#include "stores/postgres/pg_command.h"
#include "stores/postgres/pg_handles.h"

namespace idem::pg {

namespace asio = boost::asio;

class Client;

class Connection {
 public:
  enum class Role { kPool, kListener };

  // Runs on `io`. `lanes`: bit 1 << Lane for each lane (pg_command.h) it
  // serves.
  Connection(Client& client, asio::io_context& io, Role role, size_t index,
             unsigned lanes);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  void Start();                            // connect now
  void Wake();                             // look for work and I/O (coalesced)
  void Tick(SteadyClock::time_point now);  // enforce command deadlines
  void Shutdown();                         // fail what it carries; no reconnect
  // Shutdown's work, right now: on the thread that runs `io` (outside the
  // strand only when that is the loop's one thread), or once nothing runs it.
  void Close();

  bool ready() const { return ready_.load(std::memory_order_acquire); }
  bool Serves(Lane lane) const { return (lanes_ & (1u << lane)) != 0; }
  // A commit group is in flight: it takes no durable statement until then.
  bool committing() const { return committing_.load(std::memory_order_acquire); }
  size_t load() const { return load_.load(std::memory_order_relaxed); }

 private:
  enum class State { kIdle, kConnecting, kSettingUp, kReady, kClosed };

  struct Entry {
    Command command;
    ResultPtr result;              // the command's first result
    bool ends_transaction = true;  // a Sync was sent after it
  };

  void Connect();
  void ArmConnectWait(PostgresPollingStatusType want);
  void ContinueConnect(uint64_t step);
  void Connected();
  void SendSetup();
  void Service();
  bool ReadAvailable();
  bool ProcessResults();
  void DeliverTransaction(std::vector<Entry> entries, const PGresult* commit_error);
  void DrainNotifications();
  void Pump();
  bool Send(const Command& command, bool sync);
  void ArmRead();
  void ArmWrite();
  bool SocketReady(short events) const;
  void Fail(const Status& why);
  // Drops the server connection and enters `next`; returns what was in
  // flight, for the caller to answer.
  std::deque<Entry> Disconnect(State next);
  void CloseHandle();
  void ScheduleReconnect(std::chrono::milliseconds delay);
  std::chrono::milliseconds NextBackoff();
  bool AttachSocket();

  Client& client_;
  asio::io_context& io_;
  const Role role_;
  const size_t index_;
  const unsigned lanes_;
  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer timer_;  // connect deadline, then reconnect back-off
  std::optional<asio::posix::stream_descriptor> socket_;
  ConnPtr conn_;
  State state_ = State::kIdle;
  uint64_t generation_ = 0;    // bumped on every close: stale handlers see it
  uint64_t connect_step_ = 0;  // one live continuation per connect step
  std::deque<Entry> inflight_;
  // Leading entries of inflight_ whose results all arrived, and the error
  // of a failed commit (it arrives after the last command's results).
  size_t answered_ = 0;
  ResultPtr commit_error_;
  bool reading_ = false;
  bool writing_ = false;
  bool want_write_ = false;
  int failures_ = 0;  // consecutive failed attempts
  bool been_ready_ = false;
  std::minstd_rand jitter_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> wake_posted_{false};
  std::atomic<size_t> load_{0};
  std::atomic<bool> committing_{false};
};

}  // namespace idem::pg
