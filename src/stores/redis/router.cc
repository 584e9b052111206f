#include "stores/redis/router.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

namespace idem::redis_internal {

// The connections to one server: `per_loop` on each event loop.
class Router::Pool {
 public:
  Pool(EventLoops& loops, const Endpoint& node, const ConnectionOptions& options,
       int per_loop, ReplyHandler* handler)
      : loops_(loops), per_loop_(static_cast<size_t>(std::max(1, per_loop))) {
    for (size_t loop = 0; loop < loops.size(); ++loop) {
      for (size_t i = 0; i < per_loop_; ++i) {
        connections_.push_back(std::make_shared<Connection>(
            loops.at(loop), [node] { return node; }, options, handler, nullptr));
      }
    }
  }

  void Start() {
    for (auto& conn : connections_) {
      boost::asio::post(conn->io(), [conn] { conn->Start(); });
    }
  }

  // Any thread: closes every connection on its own loop.
  void Retire() {
    for (auto& conn : connections_) {
      boost::asio::post(conn->io(), [conn] { conn->Close(); });
    }
  }

  // On loop `loop` (or once nothing runs it): closes the connections there.
  void CloseLoop(size_t loop) {
    for (size_t i = 0; i < per_loop_; ++i) connections_[loop * per_loop_ + i]->Close();
  }

  // A command sent on one of the loops stays on it; one from elsewhere goes
  // to the loops in turn. Within a loop the first ready connection carries
  // every command, so commands leave (and replies come back) in as few
  // system calls as possible; the loop's other connections are warm
  // standbys that take over while it is down, and take the large commands,
  // which would otherwise hold small ones up behind them. Connections that
  // are down are skipped while another is up, on another loop if need be.
  void Send(std::unique_ptr<Command> cmd) {
    const size_t n = connections_.size();
    const size_t here = loops_.Current();
    const size_t loop = here != EventLoops::kNone
                            ? here
                            : next_.fetch_add(1, std::memory_order_relaxed) % loops_.size();
    const size_t first = loop * per_loop_;
    const size_t skip = per_loop_ > 1 && cmd->wire.size() > kLargeCommandBytes ? 1 : 0;
    size_t pick = first;
    for (size_t i = skip; i < n + skip; ++i) {
      const size_t candidate = (first + i) % n;
      if (connections_[candidate]->state() == Connection::State::kReady) {
        pick = candidate;
        break;
      }
    }
    // Inline only to a ready connection: one that is new may not have run
    // its Start yet (posted to its loop when the pool was made, as when
    // commands parked until the first slot map are sent on loop 0), and
    // Post's drain runs after that.
    if (pick / per_loop_ == here &&
        connections_[pick]->state() == Connection::State::kReady) {
      connections_[pick]->Send(std::move(cmd));
    } else {
      connections_[pick]->Post(std::move(cmd));
    }
  }

  bool AllDown() const {
    for (const auto& conn : connections_) {
      const auto state = conn->state();
      if (state == Connection::State::kReady || state == Connection::State::kConnecting) {
        return false;
      }
    }
    return true;
  }

  bool AllClosed() const {
    return std::all_of(connections_.begin(), connections_.end(), [](const auto& conn) {
      return conn->state() == Connection::State::kClosed;
    });
  }

  Status LastError() const {
    for (const auto& conn : connections_) {
      Status error = conn->last_error();
      if (!error.ok() && conn->state() != Connection::State::kReady) return error;
    }
    return Status::Ok();
  }

 private:
  // A command this large goes to a standby connection when one is up.
  static constexpr size_t kLargeCommandBytes = 64 * 1024;

  EventLoops& loops_;
  const size_t per_loop_;
  std::vector<std::shared_ptr<Connection>> connections_;  // per_loop_ per loop, in order
  std::atomic<size_t> next_{0};
};

struct Router::RefreshRound {
  size_t pending = 0;
  bool finished = false;
};

Router::Router(EventLoops& loops, RouterOptions options, Counters& counters)
    : loops_(loops),
      options_(std::move(options)),
      counters_(counters),
      refresh_timer_(loops.at(0)) {}

Router::~Router() = default;

void Router::Start() {
  if (!options_.cluster) {
    std::lock_guard lock(mutex_);
    master_pools_ = {PoolForLocked(options_.servers.front())};
    return;
  }
  RequestRefresh();
  boost::asio::post(loops_.at(0), [this] { ArmRefreshTimer(); });
}

void Router::ArmRefreshTimer() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
  }
  refresh_timer_.expires_after(options_.topology_refresh_interval);
  refresh_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    RequestRefresh();
    ArmRefreshTimer();
  });
}

void Router::Close() {
  std::vector<std::unique_ptr<Command>> parked;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    parked.swap(parked_);
  }
  for (auto& cmd : parked) cmd->Fail(Unavailable("the redis store is closed"));
}

void Router::CloseLoop(size_t loop) {
  std::vector<std::shared_ptr<Pool>> pools;
  {
    std::lock_guard lock(mutex_);
    for (auto& [name, pool] : pools_) pools.push_back(pool);
    pools.insert(pools.end(), retired_.begin(), retired_.end());
  }
  for (auto& pool : pools) pool->CloseLoop(loop);
  if (loop == 0) refresh_timer_.cancel();
}

std::shared_ptr<Router::Pool> Router::PoolForLocked(const Endpoint& node) {
  const std::string name = node.ToString();
  auto it = pools_.find(name);
  if (it != pools_.end()) return it->second;
  auto pool = std::make_shared<Pool>(loops_, node, options_.connection,
                                     options_.connections_per_thread, this);
  pools_.emplace(name, pool);
  pool->Start();
  return pool;
}

void Router::Send(std::unique_ptr<Command> cmd) {
  std::unique_lock lock(mutex_);
  if (closed_) {
    lock.unlock();
    cmd->Fail(Unavailable("the redis store is closed"));
    return;
  }
  if (options_.cluster && !topology_) {
    parked_.push_back(std::move(cmd));  // until a slot map arrives
    lock.unlock();
    RequestRefresh();
    return;
  }
  std::shared_ptr<Pool> pool =
      master_pools_[options_.cluster
                        ? topology_->MasterIndexFor(cmd->keyed ? cmd->slot : 0)
                        : 0];
  lock.unlock();
  pool->Send(std::move(cmd));
}

void Router::SendTo(const Endpoint& node, std::unique_ptr<Command> cmd) {
  std::shared_ptr<Pool> pool;
  {
    std::lock_guard lock(mutex_);
    if (!closed_) pool = PoolForLocked(node);
  }
  if (pool) {
    pool->Send(std::move(cmd));
  } else {
    cmd->Fail(Unavailable("the redis store is closed"));
  }
}

void Router::SetTopologyLocked(std::shared_ptr<const Topology> topology) {
  topology_ = std::move(topology);
  master_pools_.clear();
  for (const Endpoint& master : topology_->masters()) {
    master_pools_.push_back(PoolForLocked(master));
  }
}

std::vector<Endpoint> Router::Masters() const {
  if (!options_.cluster) return {options_.servers.front()};
  std::lock_guard lock(mutex_);
  if (!topology_) return {};
  return topology_->masters();
}

void Router::WithMasters(Callback<Result<std::vector<Endpoint>>> done) {
  std::vector<Endpoint> masters = Masters();
  if (!masters.empty()) {
    done(std::move(masters));
    return;
  }
  // A command without a slot waits for the first slot map like any other.
  Send(PlainCommand({"PING"},
                    [this, done = std::move(done)](const redisReply*, Status status) {
                      if (!status.ok()) return done(std::move(status));
                      std::vector<Endpoint> known = Masters();
                      if (known.empty()) {
                        return done(Unavailable("the redis cluster slot map is unknown"));
                      }
                      done(std::move(known));
                    }));
}

std::vector<Endpoint> Router::CandidatesLocked() const {
  std::vector<Endpoint> candidates;
  if (topology_) candidates = topology_->masters();
  for (const Endpoint& seed : options_.servers) {
    if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end()) {
      candidates.push_back(seed);
    }
  }
  return candidates;
}

Endpoint Router::NextSubscriberEndpoint() {
  if (!options_.cluster) return options_.servers.front();
  std::vector<Endpoint> candidates;
  {
    std::lock_guard lock(mutex_);
    candidates = CandidatesLocked();
  }
  return candidates[subscriber_turn_.fetch_add(1, std::memory_order_relaxed) %
                    candidates.size()];
}

Status Router::LastError() const {
  std::lock_guard lock(mutex_);
  for (const auto& [name, pool] : pools_) {
    Status error = pool->LastError();
    if (!error.ok()) return error;
  }
  return topology_error_;
}

// A node that is neither a master nor a seed any more, and that cannot be
// reached (a failed-over master), stops being redialled.
void Router::PruneLocked(std::vector<std::shared_ptr<Pool>>& retired) {
  std::erase_if(retired_, [](const auto& pool) { return pool->AllClosed(); });
  const std::vector<Endpoint> keep = CandidatesLocked();
  for (auto it = pools_.begin(); it != pools_.end();) {
    const bool known = std::any_of(keep.begin(), keep.end(), [&](const Endpoint& node) {
      return node.ToString() == it->first;
    });
    if (!known && it->second->AllDown()) {
      retired.push_back(it->second);
      retired_.push_back(it->second);
      it = pools_.erase(it);
    } else {
      ++it;
    }
  }
}

void Router::RequestRefresh() {
  if (!options_.cluster) return;
  std::vector<Endpoint> candidates;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    if (refreshing_) {
      refresh_again_ = true;
      return;
    }
    refreshing_ = true;
    candidates = CandidatesLocked();
  }
  auto round = std::make_shared<RefreshRound>();
  round->pending = candidates.size();
  for (const Endpoint& node : candidates) {
    SendTo(node,
           PlainCommand({"CLUSTER", "SLOTS"},
                        [this, round, node](const redisReply* reply, Status status) {
                          OnSlots(round, node, reply, status);
                        }));
  }
}

namespace {

Result<std::shared_ptr<const Topology>> ReadSlots(const redisReply* reply,
                                                  const Status& status,
                                                  const Endpoint& asked) {
  if (!status.ok()) return status;
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReplyStatus(reply);
  auto ranges = ParseClusterSlots(reply, asked);
  if (!ranges.ok()) return ranges.status();
  return Topology::FromRanges(*ranges);
}

}  // namespace

void Router::OnSlots(const std::shared_ptr<RefreshRound>& round, const Endpoint& asked,
                     const redisReply* reply, const Status& status) {
  const Result<std::shared_ptr<const Topology>> topology =
      ReadSlots(reply, status, asked);
  std::vector<std::unique_ptr<Command>> parked;
  std::vector<std::shared_ptr<Pool>> retired;
  bool again = false;
  Status failure;
  {
    std::lock_guard lock(mutex_);
    if (round->finished) return;
    if (closed_) {
      // No new connections after Close: they would never be closed.
      round->finished = true;
      refreshing_ = false;
      return;
    }
    if (topology.ok()) {
      round->finished = true;
      SetTopologyLocked(*topology);
      topology_error_ = Status::Ok();
      PruneLocked(retired);
    } else {
      topology_error_ = topology.status();
      if (--round->pending > 0) return;
      round->finished = true;
      failure = Unavailable("no redis cluster node answered CLUSTER SLOTS; last error: " +
                            topology.status().message());
    }
    refreshing_ = false;
    again = refresh_again_ && topology.ok();
    refresh_again_ = false;
    parked.swap(parked_);
  }
  for (auto& pool : retired) pool->Retire();
  for (auto& cmd : parked) {
    if (failure.ok()) {
      Send(std::move(cmd));
    } else {
      cmd->Fail(failure);
    }
  }
  if (again) RequestRefresh();
}

void Router::OnReply(Connection& conn, std::unique_ptr<Command> cmd,
                     const redisReply* reply) {
  if (reply->type == REDIS_REPLY_ERROR) {
    if (cmd->script != nullptr && !cmd->eval && IsErrorWithPrefix(reply, "NOSCRIPT")) {
      cmd->UseEval(true);  // EVAL runs it and caches it on this server
      counters_.script_reloads.fetch_add(1, std::memory_order_relaxed);
      conn.Send(std::move(cmd));
      return;
    }
    if (options_.cluster && cmd->keyed) {
      auto redirect =
          ParseRedirect(std::string_view(reply->str, reply->len), conn.endpoint());
      if (redirect) {
        if (++cmd->redirects > options_.max_redirects) {
          cmd->Fail(Unavailable("redis cluster: too many redirections (last: " +
                                std::string(reply->str, reply->len) + ")"));
          return;
        }
        cmd->UseEval(false);
        counters_.redirections.fetch_add(1, std::memory_order_relaxed);
        if (redirect->kind == Redirect::Kind::kAsk) {
          cmd->asking = true;
          SendTo(redirect->to, std::move(cmd));
          return;
        }
        cmd->asking = false;
        {
          std::lock_guard lock(mutex_);
          if (topology_)
            SetTopologyLocked(topology_->WithSlot(redirect->slot, redirect->to));
        }
        RequestRefresh();
        Send(std::move(cmd));
        return;
      }
      if (IsErrorWithPrefix(reply, "CLUSTERDOWN") ||
          IsErrorWithPrefix(reply, "READONLY")) {
        RequestRefresh();
      }
    }
  }
  cmd->Finish(reply);
}

void Router::OnConnectionLost(Connection&) {
  if (options_.cluster) RequestRefresh();
}

}  // namespace idem::redis_internal
