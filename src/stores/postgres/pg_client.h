// The PostgreSQL store's connection machinery: a bounded pool of pipelined
// connections and one LISTEN connection, on an io_context with threads of
// its own or on event loops the caller lends (ClientOptions::loops).
//
// The pool is split in two lanes, each with its own queue. Durable
// statements (Statement::durable: Complete, Checkpoint, Delete, and the
// lease writes when they are synchronous), whose commits wait for the WAL
// flush, go to the commit connections; everything else (reads, and lease
// writes that commit asynchronously) to the lease connections, so they
// never wait in a pipeline behind somebody's flush. A commit connection has one commit
// group (pg_connection.h) in flight at a time: the durable statements that queue up
// meanwhile leave together as the next group, so the number of WAL flushes follows the
// disk's pace, not the callers' (as in the RocksDB store's group commit). A pool of one
// connection serves both lanes.
//
// Submit() never blocks: a command waits in its queue until a ready
// connection takes it or its deadline passes (kUnavailable). While every
// pool connection is known to be down (the last attempt to connect failed
// and none is ready) commands fail at once, so callers learn of an outage
// without waiting for the time-out. Connections reconnect by themselves.
// Thread-safe.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "stores/postgres/pg_command.h"
#include "stores/postgres/pg_connection.h"
#include "stores/postgres/pg_schema.h"

namespace idem::pg {

struct ClientOptions {
  std::string conninfo;
  size_t pool_size = 8;
  size_t pipeline_depth = 32;
  size_t io_threads = 1;  // for the client's own io_context
  // Lent event loops, each run by one thread (PostgresStoreOptions::
  // io_contexts): pool connection i runs on loops[i % size], the listener
  // and the ticker on loops[0]. Empty: the client's own io_context.
  std::vector<asio::io_context*> loops;
  size_t max_queued = 100'000;
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds statement_timeout{5'000};
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2'000};
  std::vector<Statement> statements;  // prepared on every pool connection
  std::string listen_channel;         // empty: no listener connection
  // Called on an io thread for every NOTIFY on the channel.
  std::function<void(std::string_view payload)> on_notify;
  // Called on an io thread each time the listener (re)starts listening:
  // notifications sent while it was down are lost.
  std::function<void()> on_listener_ready;
  // Called on an io thread when a listening listener loses its connection.
  std::function<void()> on_listener_lost;
};

class Client {
 public:
  explicit Client(ClientOptions options);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // Starts the connections, and the threads of the client's own io_context.
  // `keep_alive` is held by each of those threads until it exits, so
  // whatever owns the client outlives handlers even when the last reference
  // is dropped on an io thread. On lent loops it is not needed: Stop waits
  // until no handler of the client is left.
  void Start(std::shared_ptr<void> keep_alive);

  // Blocks until a pool connection and the listener are ready, the first
  // attempts failed (kUnavailable) or `timeout` passed; ok once a pool
  // connection is ready (the listener may follow later).
  Status WaitReady(std::chrono::milliseconds timeout);

  // Queues a command; `command.done` runs exactly once, on an io thread or,
  // when it fails at once, on the calling thread.
  void Submit(Command command);

  // Fails queued and in-flight commands with kUnavailable and closes the
  // connections. Own io_context: stops its threads (joined, or detached
  // when called on one of them). Lent loops: closes each connection on its
  // loop (directly on a stopped loop) and waits until what that queued has
  // run, so it must not be called on one of them. Idempotent.
  void Stop();

  // The loop of the listener, the ticker and the store's timers.
  asio::io_context& io() { return *loops_.front(); }
  bool on_lent_loops() const { return !options_.loops.empty(); }
  // The calling thread runs one of the client's loops.
  bool OnIoThread() const;
  const ClientOptions& options() const { return options_; }
  SteadyClock::time_point Deadline() const {
    return SteadyClock::now() + options_.statement_timeout;
  }

  uint64_t reconnects() const { return reconnects_.load(std::memory_order_relaxed); }
  uint64_t notifications() const {
    return notifications_.load(std::memory_order_relaxed);
  }
  size_t connections_ready() const {
    return ready_count_.load(std::memory_order_acquire);
  }
  // Transactions of durable statements (commit groups) answered so far,
  // the statements in them, and those of them rolled back by another
  // member's failure.
  uint64_t commit_groups() const {
    return commit_groups_.load(std::memory_order_relaxed);
  }
  uint64_t durable_writes() const {
    return durable_writes_.load(std::memory_order_relaxed);
  }
  uint64_t group_rollbacks() const {
    return group_rollbacks_.load(std::memory_order_relaxed);
  }

  // For Connection (called on its strand). Takes up to `room` commands of
  // `lanes` (bit 1 << Lane each): a share of the queued leases and reads,
  // every queued durable statement.
  void TakeCommands(unsigned lanes, size_t room, std::vector<Command>& out);
  // `again`: the connection had been ready before (a reconnect).
  void OnReady(Connection& connection, bool listener, bool again);
  void OnLost(Connection& connection, bool was_ready, bool listener, const Status& why);
  void OnNotify(std::string_view payload);
  void OnCommitGroup(size_t writes, size_t rolled_back);

 private:
  struct LaneQueue {
    std::deque<Command> commands;
    size_t ready = 0;  // ready connections serving the lane
  };

  // Why a new command cannot be queued now (ok: it can). Holds mutex_.
  Status Refusal() const;
  // Wakes the least loaded ready connection that serves `lane`.
  void WakeOne(Lane lane);
  // Takes every queued command. Holds mutex_.
  std::deque<Command> TakeQueuesLocked();
  void ArmTicker();
  void OnTick();
  void StopOnLentLoops();

  const ClientOptions options_;
  asio::io_context own_io_;  // idle when the loops are lent
  std::vector<asio::io_context*> loops_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::strand<asio::io_context::executor_type> ticker_strand_;
  asio::steady_timer ticker_;
  std::vector<std::unique_ptr<Connection>> pool_;
  std::unique_ptr<Connection> listener_;
  std::vector<std::thread> threads_;

  std::mutex mutex_;
  std::condition_variable ready_cv_;
  LaneQueue lanes_[kLaneCount];
  bool stopped_ = false;
  bool down_ = false;  // the last attempt failed and nothing is ready
  bool listening_ = false;
  Status last_error_;
  size_t queued_ = 0;  // in every lane
  size_t next_wake_ = 0;

  std::atomic<size_t> ready_count_{0};
  std::atomic<uint64_t> reconnects_{0};
  std::atomic<uint64_t> notifications_{0};
  std::atomic<uint64_t> commit_groups_{0};
  std::atomic<uint64_t> durable_writes_{0};
  std::atomic<uint64_t> group_rollbacks_{0};
};

}  // namespace idem::pg
