// Router: sends each Command to the right connection.
//
// Single-server mode: one pool of connections (connections_per_thread on
// each event loop) to the server. Cluster mode: one such pool per
// master; the slot map comes from CLUSTER SLOTS, asked of the known masters
// and the seeds, at start, every topology_refresh_interval, after a MOVED
// reply and after a lost connection. Commands sent before the first map
// arrives wait for it (or fail with it). MOVED updates the slot at once and
// retries; ASK retries once on the named node behind ASKING; NOSCRIPT
// retries on the same connection with EVAL, which also caches the script.
//
// A command sent from a thread that runs one of the loops goes out on that
// loop's connections, directly; one from any other thread is handed to the
// loops in turn. Thread-safe. Replies (and so Command callbacks) run on the
// loop of the connection that carried the command.
#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "idem/store.h"
#include "stores/redis/cluster_slots.h"
#include "stores/redis/command.h"
#include "stores/redis/connection.h"
#include "stores/redis/counters.h"
#include "stores/redis/endpoint.h"
#include "stores/redis/event_loops.h"

namespace idem::redis_internal {

struct RouterOptions {
  bool cluster = false;
  // Single mode: the server (exactly one). Cluster mode: the seeds.
  std::vector<Endpoint> servers;
  ConnectionOptions connection;
  int connections_per_thread = 2;
  std::chrono::milliseconds topology_refresh_interval{30'000};
  int max_redirects = 5;
};

class Router final : public ReplyHandler {
 public:
  // `counters` (script reloads, redirections) outlives the router.
  Router(EventLoops& loops, RouterOptions options, Counters& counters);
  ~Router() override;

  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Opens the connections (and, for a cluster, asks for the slot map).
  void Start();
  // Fails what waits for a slot map and every later command; then
  // CloseLoop on each loop closes the connections.
  void Close();
  // On loop `loop` (or once nothing runs it): closes its connections, and on
  // loop 0 stops the topology refresh.
  void CloseLoop(size_t loop);

  // A keyed command goes to the master of its slot; any other command to
  // the single server (or, in a cluster, to the master of slot 0).
  void Send(std::unique_ptr<Command> cmd);
  // Sends to one node, whatever the slot map says.
  void SendTo(const Endpoint& node, std::unique_ptr<Command> cmd);

  bool cluster() const { return options_.cluster; }
  // The masters to talk to (the single server; empty before a cluster's
  // first slot map).
  std::vector<Endpoint> Masters() const;
  // Calls `done` with the masters once there is a slot map (at once in
  // single mode), or with the error that kept it from arriving.
  void WithMasters(Callback<Result<std::vector<Endpoint>>> done);
  // Where a subscriber should connect next: the single server, or in turn
  // each known master and seed.
  Endpoint NextSubscriberEndpoint();
  // The most recent connection or topology error, for messages.
  Status LastError() const;

  void RequestRefresh();

  // ReplyHandler (io threads).
  void OnReply(Connection& conn, std::unique_ptr<Command> cmd,
               const redisReply* reply) override;
  void OnConnectionLost(Connection& conn) override;

 private:
  class Pool;
  struct RefreshRound;

  std::shared_ptr<Pool> PoolForLocked(const Endpoint& node);
  void SetTopologyLocked(std::shared_ptr<const Topology> topology);
  std::vector<Endpoint> CandidatesLocked() const;
  void PruneLocked(std::vector<std::shared_ptr<Pool>>& retired);
  void OnSlots(const std::shared_ptr<RefreshRound>& round, const Endpoint& asked,
               const redisReply* reply, const Status& status);
  void ArmRefreshTimer();

  EventLoops& loops_;
  const RouterOptions options_;
  Counters& counters_;

  mutable std::mutex mutex_;
  bool closed_ = false;
  std::shared_ptr<const Topology> topology_;
  // The pool of each of topology_->masters(), in that order; in single mode
  // the one pool.
  std::vector<std::shared_ptr<Pool>> master_pools_;
  std::map<std::string, std::shared_ptr<Pool>> pools_;  // by Endpoint::ToString()
  // Pools dropped by PruneLocked until their connections have closed.
  std::vector<std::shared_ptr<Pool>> retired_;
  std::vector<std::unique_ptr<Command>> parked_;        // waiting for a slot map
  bool refreshing_ = false;
  bool refresh_again_ = false;
  Status topology_error_;

  boost::asio::steady_timer refresh_timer_;  // on loop 0
  std::atomic<size_t> subscriber_turn_{0};
};

}  // namespace idem::redis_internal
