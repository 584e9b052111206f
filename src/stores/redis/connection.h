// Connection: one non-blocking hiredis connection driven by one Boost.Asio
// io_context (hiredis' event hooks mapped onto async_wait on the socket).
//
// It pipelines: commands are appended to hiredis' output buffer and flushed
// once per turn of the event loop, and replies come back in order. It owns
// its redisAsyncContext (RAII) until hiredis drops the context itself, and
// it keeps itself healthy:
//   - connect (with AUTH and SELECT) must finish within connect_timeout;
//   - the oldest unanswered command must be answered within
//     command_timeout, or the connection is dropped and every command on it
//     fails with kUnavailable (replies are ordered, so a late head means the
//     connection is stuck);
//   - an idle connection sends PING every idle_timeout;
//   - a lost connection is reopened, at once and then with exponential
//     back-off; while it is down, commands fail fast with kUnavailable.
// A connection with a subscribe_channel is a subscriber: it SUBSCRIBEs once
// ready and reports messages instead of carrying commands.
//
// Threading: Start, Send and Close run on the io thread (post to io());
// Post hands a command over from any other thread; state() and
// last_error() may be read from any thread.
#pragma once

#include <hiredis/async.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "idem/status.h"
#include "stores/redis/command.h"
#include "stores/redis/endpoint.h"

namespace idem::redis_internal {

struct ConnectionOptions {
  std::string user;
  std::string password;
  int db = 0;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{1000};
  std::chrono::milliseconds idle_timeout{15'000};
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{2000};
  // Non-empty: this connection only subscribes to this channel.
  std::string subscribe_channel;
  // Counts connections that were ready, were lost and are ready again
  // (optional; shared by every connection of a store).
  std::atomic<uint64_t>* reconnects = nullptr;
};

class Connection;

// Receives the replies of a command connection (on its io thread).
class ReplyHandler {
 public:
  virtual ~ReplyHandler() = default;
  // `reply` is never null; the handler finishes the command or sends it
  // again (NOSCRIPT, MOVED, ASK).
  virtual void OnReply(Connection& conn, std::unique_ptr<Command> cmd,
                       const redisReply* reply) = 0;
  // The connection was lost or could not be opened; it will retry.
  virtual void OnConnectionLost(Connection& conn) = 0;
};

// Receives what a subscriber connection hears (on its io thread).
class SubscriptionHandler {
 public:
  virtual ~SubscriptionHandler() = default;
  // The subscription is live: every message published from now on arrives.
  virtual void OnSubscribed() = 0;
  // The connection is gone (it reconnects by itself): messages published
  // from now on until the next OnSubscribed are lost.
  virtual void OnSubscriptionLost() = 0;
  virtual void OnMessage(std::string_view payload) = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class State { kConnecting, kReady, kDown, kClosed };

  // `endpoint` is asked where to connect before every attempt. Exactly one
  // of `replies` and `subscription` is set, matching subscribe_channel.
  Connection(boost::asio::io_context& io, std::function<Endpoint()> endpoint,
             ConnectionOptions options, ReplyHandler* replies,
             SubscriptionHandler* subscription);
  ~Connection();

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  boost::asio::io_context& io() { return io_; }

  // Io thread: opens the connection (and keeps it open until Close).
  void Start();
  // Io thread: sends `cmd`, or fails it at once when the connection is down.
  void Send(std::unique_ptr<Command> cmd);
  // Any thread: Send on the io thread. Commands handed over while the io
  // thread is busy wait in an inbox and are sent together; Close fails
  // those it finds there, so no command is ever stranded in a loop's queue.
  void Post(std::unique_ptr<Command> cmd);
  // Io thread, or any thread once no thread runs io() any more: fails every
  // pending command and stops for good.
  void Close();
  // Io thread: drops the connection (failing its commands with `why`) and
  // opens a new one.
  void Reset(Status why);
  // Io thread: the server this connection talks to now.
  const Endpoint& endpoint() const { return endpoint_; }

  State state() const { return state_.load(std::memory_order_acquire); }
  // Why the connection last failed (ok if it never did).
  Status last_error() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct ContextFree {
    void operator()(redisAsyncContext* ac) const { redisAsyncFree(ac); }
  };
  using ContextPtr = std::unique_ptr<redisAsyncContext, ContextFree>;

  // hiredis callbacks (ac->data is the Connection).
  static void OnConnect(const redisAsyncContext* ac, int status);
  static void OnDisconnect(const redisAsyncContext* ac, int status);
  static void OnCommandReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnHandshakeReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnIgnoredReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnSubscriptionReply(redisAsyncContext* ac, void* reply, void* privdata);
  // hiredis event hooks (ev.data is the Connection).
  static void AddRead(void* self);
  static void DelRead(void* self);
  static void AddWrite(void* self);
  static void DelWrite(void* self);
  static void Cleanup(void* self);

  void Connect();
  void Attach(redisAsyncContext* ac);
  void SendHandshake();
  void BecomeReady();
  void Subscribe();
  bool SendRaw(redisCallbackFn* fn, void* privdata, int argc, const char** argv,
               const size_t* lens, bool tracked);
  // Notes a command handed to hiredis (tracked: it has a reply to wait for).
  void Sent(bool tracked);
  void SendInternal(const char* command);
  void DrainInbox();
  void Teardown(Status why);
  void ContextGone(Status why);
  void ScheduleReconnect();
  void ArmRead();
  void ArmWrite();
  void ScheduleFlush();
  void OnReadable(const boost::system::error_code& ec, uint64_t generation);
  void OnWritable(const boost::system::error_code& ec, uint64_t generation);
  void Flush(uint64_t generation);
  void DetachSocket();
  void StartTicker();
  void Tick();
  Status FailureFor(const redisAsyncContext* ac) const;
  void SetState(State state);
  void RecordError(const Status& status);

  boost::asio::io_context& io_;
  const std::function<Endpoint()> next_endpoint_;
  const ConnectionOptions options_;
  ReplyHandler* const replies_;
  SubscriptionHandler* const subscription_;
  const std::chrono::milliseconds tick_;

  Endpoint endpoint_;
  ContextPtr ac_;
  // Why this side dropped the context: given to the commands hiredis fails.
  Status closing_status_;
  std::optional<boost::asio::posix::stream_descriptor> socket_;
  uint64_t generation_ = 0;  // bumped whenever the socket goes away
  bool want_read_ = false;
  bool want_write_ = false;
  bool read_armed_ = false;
  bool write_armed_ = false;
  bool flush_posted_ = false;

  int handshake_pending_ = 0;
  std::deque<Clock::time_point> sent_;  // send time of each unanswered command
  Clock::time_point connect_deadline_;
  Clock::time_point last_activity_;
  int attempts_ = 0;  // failed attempts since the last ready connection
  bool was_ready_ = false;

  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer reconnect_timer_;
  bool ticking_ = false;

  std::mutex inbox_mutex_;
  std::vector<std::unique_ptr<Command>> inbox_;  // handed over by Post
  bool inbox_closed_ = false;

  std::atomic<State> state_{State::kDown};
  mutable std::mutex error_mutex_;
  Status last_error_;
};

}  // namespace idem::redis_internal
