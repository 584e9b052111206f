#include "stores/redis/connection.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstring>
#include <random>
#include <string>
#include <utility>

namespace idem::redis_internal {
namespace {

using std::chrono::milliseconds;

Connection* Self(const redisAsyncContext* ac) {
  return static_cast<Connection*>(ac->data);
}

// Timeouts are checked on a ticker: a tenth of the shortest time-out,
// between 2 and 50 ms.
milliseconds TickFor(const ConnectionOptions& options) {
  const milliseconds shortest =
      std::min(options.connect_timeout, options.command_timeout);
  return std::clamp(shortest / 10, milliseconds(2), milliseconds(50));
}

milliseconds Jitter(milliseconds base) {
  thread_local std::minstd_rand rng(std::random_device{}());
  std::uniform_real_distribution<double> factor(0.8, 1.2);
  return milliseconds(
      static_cast<int64_t>(static_cast<double>(base.count()) * factor(rng)));
}

std::string Millis(milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

}  // namespace

Connection::Connection(boost::asio::io_context& io, std::function<Endpoint()> endpoint,
                       ConnectionOptions options, ReplyHandler* replies,
                       SubscriptionHandler* subscription)
    : io_(io),
      next_endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      replies_(replies),
      subscription_(subscription),
      tick_(TickFor(options_)),
      tick_timer_(io),
      reconnect_timer_(io) {}

Connection::~Connection() {
  state_.store(State::kClosed, std::memory_order_release);
  closing_status_ = Unavailable("the redis store is closed");
  ac_.reset();  // the pointer is cleared before hiredis frees the context
}

Status Connection::last_error() const {
  std::lock_guard lock(error_mutex_);
  return last_error_;
}

void Connection::RecordError(const Status& status) {
  std::lock_guard lock(error_mutex_);
  last_error_ = status;
}

void Connection::SetState(State state) {
  if (state_.load(std::memory_order_acquire) == State::kClosed) return;
  state_.store(state, std::memory_order_release);
}

void Connection::Start() {
  if (state() == State::kClosed) return;
  StartTicker();
  Connect();
}

void Connection::Close() {
  state_.store(State::kClosed, std::memory_order_release);
  tick_timer_.cancel();
  reconnect_timer_.cancel();
  Teardown(Unavailable("the redis store is closed"));
  std::vector<std::unique_ptr<Command>> stranded;
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_closed_ = true;
    stranded.swap(inbox_);
  }
  for (auto& cmd : stranded) cmd->Fail(Unavailable("the redis store is closed"));
}

void Connection::Reset(Status why) { Teardown(std::move(why)); }

// --- Opening and losing the context ----------------------------------------

void Connection::Connect() {
  if (state() == State::kClosed) return;
  endpoint_ = next_endpoint_();
  SetState(State::kConnecting);
  connect_deadline_ = Clock::now() + options_.connect_timeout;
  last_activity_ = Clock::now();
  redisAsyncContext* ac = redisAsyncConnect(endpoint_.host.c_str(), endpoint_.port);
  if (ac == nullptr || ac->err != 0) {
    Status why = Unavailable("cannot connect to redis at " + endpoint_.ToString() + ": " +
                             (ac != nullptr ? ac->c.errstr : "out of memory"));
    if (ac != nullptr) redisAsyncFree(ac);
    ContextGone(std::move(why));
    return;
  }
  ac_.reset(ac);
  Attach(ac);
  if (!ac_) return;
  SendHandshake();
  if (handshake_pending_ == 0) {
    // Nothing to write yet: wait for writability to learn that the
    // non-blocking connect has finished.
    want_write_ = true;
    ArmWrite();
  }
}

void Connection::Attach(redisAsyncContext* ac) {
  ac->data = this;
  ac->ev.data = this;
  ac->ev.addRead = &Connection::AddRead;
  ac->ev.delRead = &Connection::DelRead;
  ac->ev.addWrite = &Connection::AddWrite;
  ac->ev.delWrite = &Connection::DelWrite;
  ac->ev.cleanup = &Connection::Cleanup;
  redisAsyncSetConnectCallback(ac, &Connection::OnConnect);
  redisAsyncSetDisconnectCallback(ac, &Connection::OnDisconnect);
  boost::system::error_code ec;
  socket_.emplace(io_);
  socket_->assign(ac->c.fd, ec);
  if (ec) {
    socket_.reset();
    Teardown(Unavailable("cannot watch the redis socket: " + ec.message()));
  }
}

void Connection::SendHandshake() {
  handshake_pending_ = 0;
  if (!options_.password.empty()) {
    const char* argv[3] = {"AUTH", nullptr, nullptr};
    size_t lens[3] = {4, 0, 0};
    int argc = 1;
    if (!options_.user.empty()) {
      argv[argc] = options_.user.data();
      lens[argc++] = options_.user.size();
    }
    argv[argc] = options_.password.data();
    lens[argc++] = options_.password.size();
    if (SendRaw(&Connection::OnHandshakeReply, nullptr, argc, argv, lens, true)) {
      ++handshake_pending_;
    }
  }
  if (options_.db != 0) {
    const std::string db = std::to_string(options_.db);
    const char* argv[2] = {"SELECT", db.c_str()};
    const size_t lens[2] = {6, db.size()};
    if (SendRaw(&Connection::OnHandshakeReply, nullptr, 2, argv, lens, true)) {
      ++handshake_pending_;
    }
  }
}

void Connection::BecomeReady() {
  SetState(State::kReady);
  attempts_ = 0;
  if (was_ready_ && options_.reconnects != nullptr) {
    options_.reconnects->fetch_add(1, std::memory_order_relaxed);
  }
  was_ready_ = true;
  if (subscription_ != nullptr) Subscribe();
}

void Connection::Subscribe() {
  const char* argv[2] = {"SUBSCRIBE", options_.subscribe_channel.data()};
  const size_t lens[2] = {9, options_.subscribe_channel.size()};
  SendRaw(&Connection::OnSubscriptionReply, nullptr, 2, argv, lens, false);
}

void Connection::Teardown(Status why) {
  if (!ac_) return;
  redisAsyncContext* ac = ac_.release();
  ContextGone(std::move(why));
  // Pending callbacks run with a NULL reply and fail with closing_status_
  // (now, or right after the hiredis callback this is called from).
  redisAsyncFree(ac);
}

void Connection::ContextGone(Status why) {
  closing_status_ = why;
  sent_.clear();
  handshake_pending_ = 0;
  RecordError(why);
  SetState(State::kDown);
  if (replies_ != nullptr) replies_->OnConnectionLost(*this);
  if (subscription_ != nullptr) subscription_->OnSubscriptionLost();
  ScheduleReconnect();
}

void Connection::ScheduleReconnect() {
  if (state() == State::kClosed) return;
  milliseconds delay(0);
  if (attempts_ > 0) {
    const int doublings = std::min(attempts_ - 1, 16);
    delay =
        Jitter(std::min(options_.min_backoff * (1 << doublings), options_.max_backoff));
  }
  ++attempts_;
  reconnect_timer_.expires_after(delay);
  reconnect_timer_.async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) self->Connect();
      });
}

Status Connection::FailureFor(const redisAsyncContext* ac) const {
  if (ac != nullptr && ac == ac_.get()) {
    const char* reason = ac->c.errstr[0] != '\0' ? ac->c.errstr : "connection closed";
    return Unavailable(std::string(state() == State::kConnecting
                                       ? "cannot connect to redis at "
                                       : "lost the connection to redis at ") +
                       endpoint_.ToString() + ": " + reason);
  }
  return closing_status_;
}

// --- Commands ----------------------------------------------------------------

bool Connection::SendRaw(redisCallbackFn* fn, void* privdata, int argc, const char** argv,
                         const size_t* lens, bool tracked) {
  if (!ac_) return false;
  if (redisAsyncCommandArgv(ac_.get(), fn, privdata, argc, argv, lens) != REDIS_OK) {
    return false;
  }
  Sent(tracked);
  return true;
}

void Connection::Sent(bool tracked) {
  const auto now = Clock::now();
  if (tracked) sent_.push_back(now);
  last_activity_ = now;
}

void Connection::SendInternal(const char* command) {
  const char* argv[1] = {command};
  const size_t lens[1] = {std::strlen(command)};
  SendRaw(&Connection::OnIgnoredReply, nullptr, 1, argv, lens, true);
}

void Connection::Send(std::unique_ptr<Command> cmd) {
  if (state() == State::kClosed) {
    cmd->Fail(Unavailable("the redis store is closed"));
    return;
  }
  if (!ac_) {
    Status error = last_error();
    cmd->Fail(error.ok()
                  ? Unavailable("not connected to redis at " + endpoint_.ToString())
                  : Unavailable(error.message()));
    return;
  }
  if (cmd->asking) SendInternal("ASKING");
  if (redisAsyncFormattedCommand(ac_.get(), &Connection::OnCommandReply, cmd.get(),
                                 cmd->wire.data(), cmd->wire.size()) != REDIS_OK) {
    cmd->Fail(Unavailable("the connection to redis at " + endpoint_.ToString() +
                          " is closing"));
    return;
  }
  Sent(true);
  (void)cmd.release();  // hiredis holds it until OnCommandReply
}

void Connection::Post(std::unique_ptr<Command> cmd) {
  bool first = false;
  {
    std::lock_guard lock(inbox_mutex_);
    if (!inbox_closed_) {
      inbox_.push_back(std::move(cmd));
      first = inbox_.size() == 1;  // later ones ride on the drain already posted
    }
  }
  if (cmd) {
    cmd->Fail(Unavailable("the redis store is closed"));
    return;
  }
  if (first) boost::asio::post(io_, [self = shared_from_this()] { self->DrainInbox(); });
}

void Connection::DrainInbox() {
  std::vector<std::unique_ptr<Command>> batch;
  {
    std::lock_guard lock(inbox_mutex_);
    batch.swap(inbox_);
  }
  for (auto& cmd : batch) Send(std::move(cmd));
}

// --- hiredis callbacks -------------------------------------------------------

void Connection::OnConnect(const redisAsyncContext* ac, int status) {
  // On failure hiredis frees the context right after this callback, and
  // Cleanup reports it; nothing may free it from in here.
  if (status != REDIS_OK) return;
  Connection* self = Self(ac);
  redisEnableKeepAlive(const_cast<redisContext*>(&ac->c));
  if (self->handshake_pending_ == 0) self->BecomeReady();
}

void Connection::OnDisconnect(const redisAsyncContext*, int) {
  // Cleanup, which hiredis runs just before this, has done the bookkeeping.
}

void Connection::OnCommandReply(redisAsyncContext* ac, void* reply, void* privdata) {
  Connection* self = Self(ac);
  std::unique_ptr<Command> cmd(static_cast<Command*>(privdata));
  if (reply == nullptr) {
    cmd->Fail(self->FailureFor(ac));
    return;
  }
  if (!self->sent_.empty()) self->sent_.pop_front();
  self->last_activity_ = Clock::now();
  self->replies_->OnReply(*self, std::move(cmd), static_cast<const redisReply*>(reply));
}

void Connection::OnHandshakeReply(redisAsyncContext* ac, void* reply, void*) {
  if (reply == nullptr) return;
  Connection* self = Self(ac);
  if (!self->sent_.empty()) self->sent_.pop_front();
  const auto* r = static_cast<const redisReply*>(reply);
  if (r->type == REDIS_REPLY_ERROR) {
    self->Teardown(Unavailable("redis at " + self->endpoint_.ToString() +
                               " refused AUTH/SELECT: " + std::string(r->str, r->len)));
    return;
  }
  if (--self->handshake_pending_ == 0 && (ac->c.flags & REDIS_CONNECTED) != 0) {
    self->BecomeReady();
  }
}

void Connection::OnIgnoredReply(redisAsyncContext* ac, void* reply, void*) {
  if (reply == nullptr) return;
  Connection* self = Self(ac);
  if (!self->sent_.empty()) self->sent_.pop_front();
  self->last_activity_ = Clock::now();
}

void Connection::OnSubscriptionReply(redisAsyncContext* ac, void* reply, void*) {
  Connection* self = Self(ac);
  const auto* r = static_cast<const redisReply*>(reply);
  if (r == nullptr || self->subscription_ == nullptr) return;
  self->last_activity_ = Clock::now();
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
      r->element[0]->type != REDIS_REPLY_STRING) {
    return;
  }
  const std::string_view kind(r->element[0]->str, r->element[0]->len);
  if (kind == "message" && r->element[2]->type == REDIS_REPLY_STRING) {
    self->subscription_->OnMessage(
        std::string_view(r->element[2]->str, r->element[2]->len));
  } else if (kind == "subscribe") {
    self->subscription_->OnSubscribed();
  }
}

// --- Event hooks: hiredis asks for readiness, Asio waits for it ---------------

void Connection::AddRead(void* self) {
  auto* conn = static_cast<Connection*>(self);
  conn->want_read_ = true;
  conn->ArmRead();
}

void Connection::DelRead(void* self) {
  static_cast<Connection*>(self)->want_read_ = false;
}

void Connection::AddWrite(void* self) {
  auto* conn = static_cast<Connection*>(self);
  conn->want_write_ = true;
  conn->ScheduleFlush();
}

void Connection::DelWrite(void* self) {
  static_cast<Connection*>(self)->want_write_ = false;
}

void Connection::Cleanup(void* self) {
  auto* conn = static_cast<Connection*>(self);
  conn->DetachSocket();
  if (conn->ac_) {
    // hiredis is freeing the current context by itself (EOF, I/O error,
    // failed connect): the pointer is about to dangle.
    Status why = conn->FailureFor(conn->ac_.get());
    (void)conn->ac_.release();
    conn->ContextGone(std::move(why));
  }
}

void Connection::DetachSocket() {
  ++generation_;
  want_read_ = want_write_ = false;
  read_armed_ = write_armed_ = flush_posted_ = false;
  if (socket_) {
    // Cancels the waits and hands the descriptor back: hiredis closes it.
    (void)socket_->release();
    socket_.reset();
  }
}

void Connection::ArmRead() {
  if (read_armed_ || !socket_) return;
  read_armed_ = true;
  socket_->async_wait(
      boost::asio::posix::stream_descriptor::wait_read,
      [self = shared_from_this(), gen = generation_](
          const boost::system::error_code& ec) { self->OnReadable(ec, gen); });
}

void Connection::ArmWrite() {
  if (write_armed_ || !socket_) return;
  write_armed_ = true;
  socket_->async_wait(
      boost::asio::posix::stream_descriptor::wait_write,
      [self = shared_from_this(), gen = generation_](
          const boost::system::error_code& ec) { self->OnWritable(ec, gen); });
}

// Commands queued during one turn of the loop go out in one write, without
// waiting for the reactor to report a (nearly always) writable socket.
void Connection::ScheduleFlush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  boost::asio::post(io_,
                    [self = shared_from_this(), gen = generation_] { self->Flush(gen); });
}

void Connection::Flush(uint64_t generation) {
  if (generation != generation_) return;
  flush_posted_ = false;
  if (!want_write_ || !ac_) return;
  if ((ac_->c.flags & REDIS_CONNECTED) == 0) {
    ArmWrite();  // the connect is still in progress
    return;
  }
  redisAsyncHandleWrite(ac_.get());
  if (generation == generation_ && want_write_) ArmWrite();
}

void Connection::OnReadable(const boost::system::error_code& ec, uint64_t generation) {
  if (generation != generation_) return;
  read_armed_ = false;
  if (ec) {
    if (ec != boost::asio::error::operation_aborted) {
      Teardown(Unavailable("redis socket error: " + ec.message()));
    }
    return;
  }
  if (!want_read_ || !ac_) return;
  redisAsyncHandleRead(ac_.get());
  if (generation == generation_ && want_read_) ArmRead();
}

void Connection::OnWritable(const boost::system::error_code& ec, uint64_t generation) {
  if (generation != generation_) return;
  write_armed_ = false;
  if (ec) {
    if (ec != boost::asio::error::operation_aborted) {
      Teardown(Unavailable("redis socket error: " + ec.message()));
    }
    return;
  }
  if (!want_write_ || !ac_) return;
  redisAsyncHandleWrite(ac_.get());
  if (generation == generation_ && want_write_) ArmWrite();
}

// --- Time-outs ---------------------------------------------------------------

void Connection::StartTicker() {
  if (ticking_) return;
  ticking_ = true;
  tick_timer_.expires_after(tick_);
  tick_timer_.async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) {
        self->ticking_ = false;
        if (ec || self->state() == State::kClosed) return;
        self->Tick();
        self->StartTicker();
      });
}

void Connection::Tick() {
  const auto now = Clock::now();
  if (state() == State::kConnecting && ac_ && now >= connect_deadline_) {
    Teardown(Unavailable("connecting to redis at " + endpoint_.ToString() +
                         " took longer than " + Millis(options_.connect_timeout)));
  } else if (!sent_.empty() && now - sent_.front() >= options_.command_timeout) {
    Teardown(Unavailable("redis at " + endpoint_.ToString() + " did not answer within " +
                         Millis(options_.command_timeout)));
  } else if (state() == State::kReady && replies_ != nullptr && sent_.empty() &&
             now - last_activity_ >= options_.idle_timeout) {
    SendInternal("PING");
  }
}

}  // namespace idem::redis_internal
