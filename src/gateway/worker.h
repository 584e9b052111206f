// What the server's io threads share, and what each one owns.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <unordered_set>
#include <vector>

#include "gateway/address.h"
#include "gateway/config.h"
#include "gateway/idempotency_filter.h"
#include "gateway/logging.h"
#include "gateway/metrics.h"
#include "gateway/upstream_pool.h"

namespace idem::gateway {

class ClientSession;

// Shared by every connection of one server. Read-only after start but for
// the atomics.
struct ServerShared {
  const GatewayConfig& config;
  UpstreamUrl upstream;
  IdempotencyFilter& filter;
  Metrics& metrics;
  AccessLog& access_log;
  // How often a connection checks its deadline: a fraction of the shortest
  // time-out, so time-outs fire at most a tick late, without re-arming a
  // timer for every read and write.
  std::chrono::milliseconds tick{1000};
  std::atomic<bool> draining{false};
  std::atomic<int> active_sessions{0};
};

// One io thread: its io_context, upstream pool and open connections. Only
// that thread touches `sessions` and `pool`.
struct Worker {
  Worker(const std::vector<boost::asio::ip::tcp::endpoint>& upstream_endpoints,
         size_t max_idle_upstream)
      : pool(io.get_executor(), upstream_endpoints, max_idle_upstream) {}

  std::unordered_set<ClientSession*> sessions;  // first: outlives the io_context
  boost::asio::io_context io{1};
  UpstreamPool pool;
};

}  // namespace idem::gateway
