#include "stores/postgres/pg_connection.h"

#include <openssl/ssl.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <utility>
#include <vector>

#include "stores/postgres/pg_client.h"
#include "stores/postgres/pg_session.h"
#include "stores/postgres/pg_wire.h"

namespace idem::pg {
namespace {

using boost::system::error_code;

// Reads per Service() pass before yielding the strand to other work.
constexpr int kMaxReadsPerPass = 64;
// Parameters of one statement, at most (Complete has 7).
constexpr size_t kMaxParams = 16;

Status Broken(std::string_view what, const PGconn* conn) {
  return Unavailable("postgres " + std::string(what) + ": " + ErrorMessage(conn));
}

bool Succeeded(const PGresult* result) {
  const ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  return status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
}

bool Aborted(const PGresult* result) {
  return result && PQresultStatus(result) == PGRES_PIPELINE_ABORTED;
}

}  // namespace

Connection::Connection(Client& client, asio::io_context& io, Role role, size_t index,
                       unsigned lanes)
    : client_(client),
      io_(io),
      role_(role),
      index_(index),
      lanes_(lanes),
      strand_(asio::make_strand(io)),
      timer_(strand_),
      jitter_(static_cast<uint32_t>(index * 7919 +
                                    SteadyClock::now().time_since_epoch().count())) {}

Connection::~Connection() { CloseHandle(); }

void Connection::Start() {
  asio::post(strand_, [this] {
    if (state_ == State::kIdle) Connect();
  });
}

void Connection::Wake() {
  if (wake_posted_.exchange(true, std::memory_order_acq_rel)) return;
  asio::post(strand_, [this] {
    wake_posted_.store(false, std::memory_order_release);
    Service();
  });
}

void Connection::Tick(SteadyClock::time_point now) {
  asio::post(strand_, [this, now] {
    if ((state_ == State::kReady || state_ == State::kSettingUp) && !inflight_.empty() &&
        inflight_.front().command.deadline <= now) {
      Fail(Unavailable("postgres statement timed out"));
    }
  });
}

void Connection::Shutdown() {
  asio::post(strand_, [this] { Close(); });
}

void Connection::Close() {
  std::deque<Entry> carried = Disconnect(State::kClosed);
  timer_.cancel();
  const Status closed = Unavailable("postgres store closed");
  for (auto& entry : carried) entry.command.done(Reply{closed, "", nullptr});
}

// ---- connecting ----------------------------------------------------------

void Connection::Connect() {
  CloseHandle();
  state_ = State::kConnecting;
  ConnectParams params(client_.options().conninfo);
  conn_.reset(PQconnectStartParams(params.keywords.data(), params.values.data(), 1));
  if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD) {
    Fail(Broken("connect", conn_.get()));
    return;
  }
  QuietNotices(conn_.get());
  const uint64_t generation = generation_;
  timer_.expires_after(client_.options().connect_timeout);
  timer_.async_wait([this, generation](error_code ec) {
    if (ec || generation != generation_ || state_ != State::kConnecting) return;
    Fail(Unavailable("postgres connect: timed out"));
  });
  ArmConnectWait(PGRES_POLLING_WRITING);
}

bool Connection::AttachSocket() {
  if (socket_) {
    socket_->release();
    socket_.reset();
  }
  reading_ = writing_ = false;
  const int fd = PQsocket(conn_.get());
  if (fd < 0) return false;
  socket_.emplace(io_);
  error_code ec;
  socket_->assign(fd, ec);
  if (ec) {
    socket_.reset();
    return false;
  }
  return true;
}

void Connection::ArmConnectWait(PostgresPollingStatusType want) {
  // libpq may have moved to another socket (next address or host).
  if (!AttachSocket()) {
    Fail(Broken("connect", conn_.get()));
    return;
  }
  const uint64_t step = ++connect_step_;
  const bool write = want == PGRES_POLLING_WRITING;
  socket_->async_wait(write ? asio::posix::stream_descriptor::wait_write
                            : asio::posix::stream_descriptor::wait_read,
                      asio::bind_executor(strand_, [this, step](error_code ec) {
                        if (ec == asio::error::operation_aborted) return;
                        ContinueConnect(step);
                      }));
  // The reactor reports edges only: if the socket was ready before the wait
  // was queued, go on without it.
  if (SocketReady(write ? POLLOUT : POLLIN)) {
    asio::post(strand_, [this, step] { ContinueConnect(step); });
  }
}

void Connection::ContinueConnect(uint64_t step) {
  if (step != connect_step_ || state_ != State::kConnecting) return;
  ++connect_step_;
  switch (PQconnectPoll(conn_.get())) {
    case PGRES_POLLING_OK:
      Connected();
      return;
    case PGRES_POLLING_READING:
      ArmConnectWait(PGRES_POLLING_READING);
      return;
    case PGRES_POLLING_WRITING:
      ArmConnectWait(PGRES_POLLING_WRITING);
      return;
    default:
      Fail(Broken("connect", conn_.get()));
      return;
  }
}

void Connection::Connected() {
  timer_.cancel();
  if (PQsetnonblocking(conn_.get(), 1) != 0 || PQenterPipelineMode(conn_.get()) != 1 ||
      !AttachSocket()) {
    Fail(Broken("connection setup", conn_.get()));
    return;
  }
  state_ = State::kSettingUp;
  SendSetup();
  Service();
}

// Pool connections: the session's statement_timeout and plan cache mode,
// then every prepared statement. The listener: LISTEN. The last reply makes the
// connection ready; any failure breaks it.
void Connection::SendSetup() {
  const ClientOptions& options = client_.options();
  std::vector<Command> setup;
  if (role_ == Role::kPool) {
    Command timeout;
    timeout.kind = Command::Kind::kQuery;
    timeout.sql =
        "SET statement_timeout = " + std::to_string(options.statement_timeout.count());
    setup.push_back(std::move(timeout));
    // Every statement looks rows up by primary key (or the expiry index):
    // the generic plan is the right one, and planning the CTEs anew on each
    // call (the default for a prepared statement's first runs, and whenever
    // the planner hesitates) costs more than running them.
    Command plan;
    plan.kind = Command::Kind::kQuery;
    plan.sql = "SET plan_cache_mode = force_generic_plan";
    setup.push_back(std::move(plan));
    // The statements are written for READ COMMITTED (a snapshot per
    // statement, ON CONFLICT's row locking), whatever the database's
    // default: a stricter one would only add serialization failures.
    Command isolation;
    isolation.kind = Command::Kind::kQuery;
    isolation.sql = "SET default_transaction_isolation = 'read committed'";
    setup.push_back(std::move(isolation));
    for (const Statement& statement : options.statements) {
      Command prepare;
      prepare.kind = Command::Kind::kPrepare;
      prepare.statement = &statement;
      setup.push_back(std::move(prepare));
    }
  } else {
    Command listen;
    listen.kind = Command::Kind::kQuery;
    listen.sql = "LISTEN " + QuoteIdentifier(options.listen_channel);
    setup.push_back(std::move(listen));
  }
  const uint64_t generation = generation_;
  const auto deadline = SteadyClock::now() + options.connect_timeout;
  for (size_t i = 0; i < setup.size(); ++i) {
    const bool last = i + 1 == setup.size();
    setup[i].deadline = deadline;
    setup[i].done = [this, generation, last](Reply reply) {
      if (generation != generation_) return;
      if (!reply.status.ok()) {
        Fail(reply.status);
        return;
      }
      if (!last) return;
      state_ = State::kReady;
      failures_ = 0;
      ready_.store(true, std::memory_order_release);
      client_.OnReady(*this, role_ == Role::kListener, been_ready_);
      been_ready_ = true;
    };
  }
  for (auto& command : setup) {
    const bool sent = Send(command, /*sync=*/true);
    inflight_.push_back(Entry{std::move(command), nullptr, true});
    if (!sent) {
      Fail(Broken("connection setup", conn_.get()));
      return;
    }
  }
}

// ---- running -------------------------------------------------------------

void Connection::Service() {
  if (state_ != State::kSettingUp && state_ != State::kReady) return;
  const uint64_t generation = generation_;
  if (!ReadAvailable()) return;
  DrainNotifications();
  if (!ProcessResults() || generation != generation_) return;
  Pump();
  if (generation != generation_) return;
  const int flushed = PQflush(conn_.get());
  if (flushed < 0) {
    Fail(Broken("send", conn_.get()));
    return;
  }
  want_write_ = flushed == 1;
  ArmRead();
  if (want_write_) ArmWrite();
  // Edge-triggered reactor: look once more after arming (see the header).
  if (SocketReady(static_cast<short>(POLLIN | (want_write_ ? POLLOUT : 0)))) Wake();
}

// Reads until the socket (and TLS' own buffer) holds nothing more.
bool Connection::ReadAvailable() {
  for (int i = 0; i < kMaxReadsPerPass; ++i) {
    if (!PQconsumeInput(conn_.get())) {
      Fail(Broken("read", conn_.get()));
      return false;
    }
    if (!SocketReady(POLLIN)) return true;
  }
  Wake();  // more to read: continue after other work on this strand
  return true;
}

bool Connection::SocketReady(short events) const {
  if (!conn_) return false;
  if ((events & POLLIN) && PQsslInUse(conn_.get())) {
    auto* ssl = static_cast<SSL*>(PQsslStruct(conn_.get(), "OpenSSL"));
    if (ssl && SSL_has_pending(ssl)) return true;
  }
  const int fd = PQsocket(conn_.get());
  if (fd < 0) return false;
  pollfd p{fd, events, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (events | POLLERR | POLLHUP)) != 0;
}

void Connection::DrainNotifications() {
  while (PGnotify* notify = PQnotifies(conn_.get())) {
    client_.OnNotify(notify->extra ? notify->extra : "");
    PQfreemem(notify);
  }
}

// Results arrive in order: each command's result(s) and a NULL that ends
// them; if the commit fails (a deferred check, a serialization failure),
// its error and a NULL; then PGRES_PIPELINE_SYNC for the Sync that ended
// the transaction (one command, or a commit group), which completes the
// commands before it.
bool Connection::ProcessResults() {
  const uint64_t generation = generation_;
  while (!inflight_.empty() && !PQisBusy(conn_.get())) {
    ResultPtr result(PQgetResult(conn_.get()));
    const bool commands_done = answered_ > 0 && inflight_[answered_ - 1].ends_transaction;
    bool in_step = true;
    if (!result) {
      // A command's results end (each has at least one), or a commit error's.
      if (commands_done) {
        in_step = commit_error_ != nullptr;
      } else if (answered_ < inflight_.size() && inflight_[answered_].result) {
        ++answered_;
      } else {
        in_step = false;
      }
    } else if (PQresultStatus(result.get()) != PGRES_PIPELINE_SYNC) {
      if (commands_done) {
        if (!commit_error_) commit_error_ = std::move(result);
      } else if (answered_ < inflight_.size() && !inflight_[answered_].result) {
        inflight_[answered_].result = std::move(result);
      }
    } else if (!commands_done) {
      in_step = false;
    } else {
      std::vector<Entry> transaction;
      transaction.reserve(answered_);
      for (size_t i = 0; i < answered_; ++i) {
        transaction.push_back(std::move(inflight_.front()));
        inflight_.pop_front();
      }
      answered_ = 0;
      ResultPtr commit_error = std::move(commit_error_);
      load_.store(inflight_.size(), std::memory_order_relaxed);
      // The commit group is done: Pump (below) takes the next one.
      if (LaneOf(transaction.back().command) == kCommitLane) {
        committing_.store(false, std::memory_order_release);
      }
      DeliverTransaction(std::move(transaction), commit_error.get());
      if (generation != generation_) return false;
    }
    if (!in_step) {
      Fail(Unavailable("postgres pipeline out of step"));
      return false;
    }
  }
  if (PQstatus(conn_.get()) == CONNECTION_BAD) {
    Fail(Broken("connection", conn_.get()));
    return false;
  }
  return true;
}

// Answers the commands of one transaction. It committed only if every
// command succeeded and so did the commit; otherwise nothing of it did.
void Connection::DeliverTransaction(std::vector<Entry> entries,
                                    const PGresult* commit_error) {
  const bool failed_command =
      std::any_of(entries.begin(), entries.end(), [](const Entry& e) {
        return !Succeeded(e.result.get()) && !Aborted(e.result.get());
      });
  std::vector<Reply> replies(entries.size());
  size_t rolled_back = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    // The commit's error, if any, is every command's.
    const PGresult* result = commit_error ? commit_error : entries[i].result.get();
    Reply& reply = replies[i];
    if (Succeeded(result) && !failed_command) {
      reply.result = std::move(entries[i].result);
    } else if (Succeeded(result) || Aborted(result)) {
      reply.status = Conflict("postgres: rolled back with its commit group");
      reply.group_rolled_back = true;
      ++rolled_back;
    } else {
      reply.sqlstate = SqlState(result);
      reply.status = StatusFromError(reply.sqlstate,
                                     result ? PQresultErrorMessage(result) : "no result",
                                     "statement");
    }
  }
  if (LaneOf(entries.back().command) == kCommitLane) {
    client_.OnCommitGroup(entries.size(), rolled_back);
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    entries[i].command.done(std::move(replies[i]));
  }
}

void Connection::Pump() {
  if (state_ != State::kReady || role_ != Role::kPool) return;
  const size_t depth = std::max<size_t>(1, client_.options().pipeline_depth);
  if (inflight_.size() >= depth) return;
  std::vector<Command> batch;
  unsigned lanes = lanes_;
  if (committing()) lanes &= ~(1u << kCommitLane);
  client_.TakeCommands(lanes, depth - inflight_.size(), batch);
  // Leases and reads first, each its own transaction; then the durable
  // statements, one commit group, so that (on a connection serving both
  // lanes) no lease waits behind their WAL flush.
  const auto grouped = [](const Command& c) { return LaneOf(c) == kCommitLane; };
  const auto group = std::stable_partition(
      batch.begin(), batch.end(), [&grouped](const Command& c) { return !grouped(c); });
  // A group's statements lock their rows until its commit: taken in key
  // order (every statement's first parameter is its key), two groups never
  // wait for each other in a cycle.
  std::stable_sort(group, batch.end(), [](const Command& a, const Command& b) {
    return a.params.front() < b.params.front();
  });
  for (size_t i = 0; i < batch.size(); ++i) {
    const bool sync = !grouped(batch[i]) || i + 1 == batch.size();
    if (!Send(batch[i], sync)) {
      for (size_t j = i; j < batch.size(); ++j) {
        inflight_.push_back(Entry{std::move(batch[j]), nullptr, true});
      }
      Fail(Broken("send", conn_.get()));
      return;
    }
    inflight_.push_back(Entry{std::move(batch[i]), nullptr, sync});
    if (grouped(inflight_.back().command)) {
      committing_.store(true, std::memory_order_release);
    }
  }
  load_.store(inflight_.size(), std::memory_order_relaxed);
}

// Sends one command, and a Sync after it when `sync` (ending its
// transaction).
bool Connection::Send(const Command& command, bool sync) {
  PGconn* conn = conn_.get();
  int sent = 0;
  switch (command.kind) {
    case Command::Kind::kExecute: {
      const size_t n = std::min(command.params.size(), kMaxParams);
      std::array<const char*, kMaxParams> values{};
      std::array<int, kMaxParams> lengths{};
      std::array<int, kMaxParams> formats{};
      for (size_t i = 0; i < n; ++i) {
        values[i] = command.params[i].data();
        lengths[i] = static_cast<int>(command.params[i].size());
        formats[i] = 1;
      }
      sent =
          PQsendQueryPrepared(conn, command.statement->name.c_str(), static_cast<int>(n),
                              values.data(), lengths.data(), formats.data(), 1);
      break;
    }
    case Command::Kind::kPrepare: {
      const Statement& s = *command.statement;
      sent = PQsendPrepare(conn, s.name.c_str(), s.sql.c_str(),
                           static_cast<int>(s.param_types.size()), s.param_types.data());
      break;
    }
    case Command::Kind::kQuery:
      sent = PQsendQueryParams(conn, command.sql.c_str(), 0, nullptr, nullptr, nullptr,
                               nullptr, 0);
      break;
  }
  return sent == 1 && (!sync || PQpipelineSync(conn) == 1);
}

void Connection::ArmRead() {
  if (reading_ || !socket_) return;
  reading_ = true;
  const uint64_t generation = generation_;
  socket_->async_wait(asio::posix::stream_descriptor::wait_read,
                      asio::bind_executor(strand_, [this, generation](error_code ec) {
                        if (generation != generation_) return;
                        reading_ = false;
                        if (ec == asio::error::operation_aborted) return;
                        Service();
                      }));
}

void Connection::ArmWrite() {
  if (writing_ || !socket_) return;
  writing_ = true;
  const uint64_t generation = generation_;
  socket_->async_wait(asio::posix::stream_descriptor::wait_write,
                      asio::bind_executor(strand_, [this, generation](error_code ec) {
                        if (generation != generation_) return;
                        writing_ = false;
                        if (ec == asio::error::operation_aborted) return;
                        Service();
                      }));
}

std::deque<Connection::Entry> Connection::Disconnect(State next) {
  std::deque<Entry> carried = std::move(inflight_);
  inflight_.clear();
  CloseHandle();
  state_ = next;
  ready_.store(false, std::memory_order_release);
  load_.store(0, std::memory_order_relaxed);
  return carried;
}

// ---- failure -------------------------------------------------------------

void Connection::Fail(const Status& why) {
  if (state_ == State::kClosed) return;
  const bool was_ready = state_ == State::kReady;
  std::deque<Entry> carried = Disconnect(State::kIdle);
  client_.OnLost(*this, was_ready, role_ == Role::kListener, why);
  for (auto& entry : carried) entry.command.done(Reply{why, "", nullptr});
  if (was_ready) {
    failures_ = 0;
    ScheduleReconnect(std::chrono::milliseconds(0));
  } else {
    ++failures_;
    ScheduleReconnect(NextBackoff());
  }
}

std::chrono::milliseconds Connection::NextBackoff() {
  const ClientOptions& options = client_.options();
  int64_t delay = std::max<int64_t>(1, options.backoff_initial.count());
  for (int i = 1; i < failures_ && delay < options.backoff_max.count(); ++i) delay *= 2;
  delay = std::min<int64_t>(delay, std::max<int64_t>(1, options.backoff_max.count()));
  // Full range jitter over the upper half, so a fleet does not reconnect
  // in lockstep.
  std::uniform_int_distribution<int64_t> spread(delay / 2, delay);
  return std::chrono::milliseconds(spread(jitter_));
}

void Connection::ScheduleReconnect(std::chrono::milliseconds delay) {
  const uint64_t generation = generation_;
  timer_.expires_after(delay);
  timer_.async_wait([this, generation](error_code ec) {
    if (ec || generation != generation_ || state_ != State::kIdle) return;
    Connect();
  });
}

void Connection::CloseHandle() {
  ++generation_;
  ++connect_step_;
  if (socket_) {
    socket_->release();  // libpq owns the descriptor and closes it
    socket_.reset();
  }
  reading_ = writing_ = want_write_ = false;
  answered_ = 0;
  commit_error_.reset();
  committing_.store(false, std::memory_order_release);
  conn_.reset();
}

}  // namespace idem::pg
