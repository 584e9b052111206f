#include "stores/postgres/pg_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <optional>
#include <utility>

#include "stores/common/lent_loops.h"

namespace idem::pg {
namespace {

using boost::system::error_code;

// How often queued commands' deadlines and connections' in-flight
// deadlines are checked: a tenth of the time-out, within [10 ms, 100 ms].
std::chrono::milliseconds TickInterval(std::chrono::milliseconds timeout) {
  return std::clamp(timeout / 10, std::chrono::milliseconds(10),
                    std::chrono::milliseconds(100));
}

void FailAll(std::deque<Command>& commands, const Status& why) {
  for (auto& command : commands) command.done(Reply{why, "", nullptr});
  commands.clear();
}

}  // namespace

Client::Client(ClientOptions options)
    : options_(std::move(options)),
      loops_(options_.loops.empty() ? std::vector<asio::io_context*>{&own_io_}
                                    : options_.loops),
      work_(asio::make_work_guard(own_io_)),
      ticker_strand_(asio::make_strand(io())),
      ticker_(ticker_strand_) {
  const size_t pool_size = std::max<size_t>(1, options_.pool_size);
  // An eighth of the pool commits (at least one), each connection one
  // group at a time: fewer, larger groups cost less CPU per write than
  // more, smaller ones, and wait no longer (docs/stores.md). A pool of one
  // serves both lanes.
  const size_t commit = std::max<size_t>(1, pool_size / 8);
  for (size_t i = 0; i < pool_size; ++i) {
    unsigned lanes = 1u << (i < commit ? kCommitLane : kLeaseLane);
    if (pool_size == 1) lanes = (1u << kLeaseLane) | (1u << kCommitLane);
    pool_.push_back(std::make_unique<Connection>(
        *this, *loops_[i % loops_.size()], Connection::Role::kPool, i, lanes));
  }
  if (!options_.listen_channel.empty()) {
    listener_ = std::make_unique<Connection>(*this, io(), Connection::Role::kListener,
                                             pool_size, /*lanes=*/0u);
  }
}

Client::~Client() { Stop(); }

void Client::Start(std::shared_ptr<void> keep_alive) {
  for (auto& connection : pool_) connection->Start();
  if (listener_) listener_->Start();
  asio::post(ticker_strand_, [this] { ArmTicker(); });
  if (on_lent_loops()) return;
  const size_t threads = std::max<size_t>(1, options_.io_threads);
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this, keep_alive] { own_io_.run(); });
  }
}

Status Client::WaitReady(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_cv_.wait_for(lock, timeout, [this] {
    return (ready_count_.load() > 0 && (!listener_ || listening_)) || down_ || stopped_;
  });
  if (ready_count_.load() > 0) return Status::Ok();
  if (down_) return last_error_;
  if (stopped_) return Unavailable("postgres store closed");
  return Unavailable("postgres connect: timed out");
}

Status Client::Refusal() const {
  if (stopped_) return Unavailable("postgres store closed");
  if (down_ && ready_count_.load() == 0) return last_error_;
  if (queued_ >= std::max<size_t>(1, options_.max_queued)) {
    return Unavailable("postgres store overloaded: too many calls queued");
  }
  return Status::Ok();
}

std::deque<Command> Client::TakeQueuesLocked() {
  std::deque<Command> all;
  for (LaneQueue& lane : lanes_) {
    for (Command& command : lane.commands) all.push_back(std::move(command));
    lane.commands.clear();
  }
  queued_ = 0;
  return all;
}

void Client::Submit(Command command) {
  std::optional<Command> rejected;
  Status refused;
  const Lane lane = LaneOf(command);
  {
    std::lock_guard lock(mutex_);
    refused = Refusal();
    if (refused.ok()) {
      lanes_[lane].commands.push_back(std::move(command));
      ++queued_;
    } else {
      rejected.emplace(std::move(command));
    }
  }
  if (rejected) {
    rejected->done(Reply{std::move(refused), "", nullptr});
    return;
  }
  WakeOne(lane);
}

void Client::Stop() {
  std::deque<Command> orphans;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    orphans = TakeQueuesLocked();
  }
  ready_cv_.notify_all();
  FailAll(orphans, Unavailable("postgres store closed"));
  if (on_lent_loops()) {
    StopOnLentLoops();
    return;
  }
  asio::post(ticker_strand_, [this] { ticker_.cancel(); });
  for (auto& connection : pool_) connection->Shutdown();
  if (listener_) listener_->Shutdown();
  work_.reset();
  const bool on_io_thread = OnIoThread();
  for (auto& thread : threads_) {
    if (!thread.joinable()) continue;
    if (on_io_thread) {
      thread.detach();
    } else {
      thread.join();
    }
  }
}

void Client::StopOnLentLoops() {
  // One lent loop is run by one thread, so a handler on it is serialized
  // with the strands of the connections that live there.
  stores::RunOnEachLoop(loops_, [this](size_t loop) {
    if (loop == 0) {
      ticker_.cancel();
      if (listener_) listener_->Close();
    }
    for (size_t i = loop; i < pool_.size(); i += loops_.size()) pool_[i]->Close();
  });
  // Closing cancelled waits and timers; their handlers (and a strand's
  // handlers queued behind one that was running) still use the
  // connections: a few empty rounds let all of that run before Stop
  // returns and the client may be freed.
  for (int round = 0; round < 3; ++round) stores::RunOnEachLoop(loops_, [](size_t) {});
}

bool Client::OnIoThread() const {
  if (on_lent_loops()) return stores::LoopOfThisThread(loops_) != stores::kNoLoop;
  const auto self = std::this_thread::get_id();
  return std::any_of(threads_.begin(), threads_.end(),
                     [self](const std::thread& t) { return t.get_id() == self; });
}

void Client::TakeCommands(unsigned lanes, size_t room, std::vector<Command>& out) {
  bool more[kLaneCount] = {};
  {
    std::lock_guard lock(mutex_);
    for (size_t l = 0; l < kLaneCount; ++l) {
      LaneQueue& lane = lanes_[l];
      if ((lanes & (1u << l)) == 0 || lane.commands.empty()) continue;
      // Leases: spread a burst over the lane's ready connections rather
      // than piling it all into one pipeline. Durable statements: all that
      // queued up, as one commit group.
      const size_t ready = std::max<size_t>(1, lane.ready);
      const size_t share = l == kCommitLane ? lane.commands.size()
                                            : (lane.commands.size() + ready - 1) / ready;
      const size_t n = std::min({room, share, lane.commands.size()});
      for (size_t i = 0; i < n; ++i) {
        out.push_back(std::move(lane.commands.front()));
        lane.commands.pop_front();
      }
      room -= n;
      queued_ -= n;
      more[l] = !lane.commands.empty();
    }
  }
  for (size_t l = 0; l < kLaneCount; ++l) {
    if (more[l]) WakeOne(static_cast<Lane>(l));
  }
}

void Client::WakeOne(Lane lane) {
  Connection* best = nullptr;
  size_t start = 0;
  {
    std::lock_guard lock(mutex_);
    start = next_wake_++;
  }
  for (size_t i = 0; i < pool_.size(); ++i) {
    Connection* c = pool_[(start + i) % pool_.size()].get();
    if (!c->ready() || !c->Serves(lane)) continue;
    // A connection committing a group takes the next one when it is done.
    if (lane == kCommitLane && c->committing()) continue;
    if (!best || c->load() < best->load()) best = c;
    if (best->load() == 0) break;
  }
  if (best) best->Wake();
}

void Client::OnReady(Connection& connection, bool listener, bool again) {
  if (again) reconnects_.fetch_add(1, std::memory_order_relaxed);
  if (listener) {
    if (options_.on_listener_ready) options_.on_listener_ready();
    {
      std::lock_guard lock(mutex_);
      listening_ = true;
    }
    ready_cv_.notify_all();
    return;
  }
  bool recovered = false;
  {
    std::lock_guard lock(mutex_);
    ready_count_.fetch_add(1);
    for (size_t l = 0; l < kLaneCount; ++l) {
      if (connection.Serves(static_cast<Lane>(l))) ++lanes_[l].ready;
    }
    recovered = down_;
    down_ = false;
  }
  ready_cv_.notify_all();
  if (recovered) spdlog::info("postgres store: connected again");
  connection.Wake();
}

void Client::OnLost(Connection& connection, bool was_ready, bool listener,
                    const Status& why) {
  if (listener) {
    bool was_listening = false;
    {
      std::lock_guard lock(mutex_);
      was_listening = std::exchange(listening_, false);
    }
    if (was_listening && options_.on_listener_lost) options_.on_listener_lost();
    return;
  }
  std::deque<Command> refused;
  bool went_down = false;
  {
    std::lock_guard lock(mutex_);
    if (was_ready) {
      ready_count_.fetch_sub(1);
      for (size_t l = 0; l < kLaneCount; ++l) {
        if (connection.Serves(static_cast<Lane>(l))) --lanes_[l].ready;
      }
    } else if (ready_count_.load() == 0 && !stopped_) {
      went_down = !down_;
      down_ = true;
      last_error_ = why;
      // Nothing can run them before their deadline any more.
      refused = TakeQueuesLocked();
    }
  }
  if (went_down) {
    ready_cv_.notify_all();
    spdlog::warn("postgres store unavailable: {}", why.message());
  }
  FailAll(refused, why);
}

void Client::OnNotify(std::string_view payload) {
  notifications_.fetch_add(1, std::memory_order_relaxed);
  if (options_.on_notify) options_.on_notify(payload);
}

void Client::OnCommitGroup(size_t writes, size_t rolled_back) {
  commit_groups_.fetch_add(1, std::memory_order_relaxed);
  durable_writes_.fetch_add(writes, std::memory_order_relaxed);
  group_rollbacks_.fetch_add(rolled_back, std::memory_order_relaxed);
}

void Client::ArmTicker() {
  ticker_.expires_after(TickInterval(options_.statement_timeout));
  ticker_.async_wait([this](error_code ec) {
    if (!ec) OnTick();
  });
}

void Client::OnTick() {
  const auto now = SteadyClock::now();
  std::deque<Command> expired;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    // Deadlines are submission time + one time-out: a queue is in order.
    for (LaneQueue& lane : lanes_) {
      while (!lane.commands.empty() && lane.commands.front().deadline <= now) {
        expired.push_back(std::move(lane.commands.front()));
        lane.commands.pop_front();
        --queued_;
      }
    }
  }
  FailAll(expired, Unavailable("postgres: no connection answered in time"));
  for (auto& connection : pool_) connection->Tick(now);
  if (listener_) listener_->Tick(now);
  ArmTicker();
}

}  // namespace idem::pg
