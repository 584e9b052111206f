// RedisStore: the Store kept in one Redis server or a Redis Cluster, so that
// several gateways share one view of every key.
//
// Every operation is one Lua script run with EVALSHA (reloaded with EVAL when
// a server answers NOSCRIPT) that touches exactly one key, so each step is
// atomic and cluster-safe. The current time comes from the store's Clock and
// is passed to the script; records keep their own expiry timestamps and
// carry a native PEXPIRE as a backstop. The key layout is documented in
// docs/stores.md ("Redis").
//
// Threading: non-blocking hiredis connections, pipelined, driven by Boost.Asio
// event loops: the caller's (io_contexts; `idem serve` lends its io
// threads) or, by default, a few of the store's own (io_threads). No thread
// per request and no blocking call. A call made on a thread that runs one of
// the caller's loops is carried by that loop's connections and its callback
// runs right there, with no hand-off to another thread; calls from any other
// thread are handed to the loops. Callbacks run on a loop, so they must not
// block (in particular, they must not call a *Sync helper). Thread-safe.
//
// Replays: completed records read from Redis are kept in a local cache
// (cache_completed), so a replay on this gateway needs no round trip. A
// completed record never changes until it expires (judged here, by the
// Clock) or is deleted, and every Delete is published to all stores; the
// cache holds nothing while that channel cannot be heard.
//
// Failure: when Redis is down or slow every call completes with kUnavailable
// within command_timeout (plus one timer tick, at most 50 ms); connections
// come back by themselves, with exponential back-off, and the store keeps
// working without being reopened.
#pragma once

#include <boost/asio/ts/netfwd.hpp>  // boost::asio::io_context, declared
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "idem/clock.h"
#include "idem/status.h"
#include "idem/store.h"

namespace idem {

struct RedisStoreOptions {
  // Single-server mode: where Redis listens. Use an IP address or a name
  // that resolves without a network round trip: hiredis resolves it
  // synchronously on an io thread when (re)connecting.
  // Default: "127.0.0.1" and 6379.
  std::string host = "127.0.0.1";
  int port = 6379;

  // Cluster mode when non-empty: "host:port" seed nodes, asked for the slot
  // map (CLUSTER SLOTS); host and port above are then unused.
  // Default: empty (single server).
  std::vector<std::string> cluster_seeds;

  // AUTH after connecting: `AUTH user password` when user is set (Redis 6
  // ACL), `AUTH password` when only the password is. Default: empty (none).
  std::string user;
  std::string password;

  // Database selected after connecting (single server only; a cluster only
  // has database 0). Default: 0.
  int db = 0;

  // Prepended to every scope key, and to the name of the pub/sub channel
  // that carries completions and deletions ("<prefix>done"). Default: "idem:".
  std::string key_prefix = "idem:";

  // Clock that expiry is judged by. Default: the system clock.
  std::shared_ptr<Clock> clock;

  // How long a TCP connect plus AUTH/SELECT may take. Default: 1 s.
  std::chrono::milliseconds connect_timeout{1000};

  // How long a command may wait for its reply; then the connection is
  // considered stuck, dropped and reopened, and every command on it fails
  // with kUnavailable. Default: 1 s.
  std::chrono::milliseconds command_timeout{1000};

  // A connection with no traffic for this long sends a PING, so a dead peer
  // is noticed before a request needs it (and a server-side `timeout` never
  // closes it). Default: 15 s.
  std::chrono::milliseconds idle_timeout{15'000};

  // Event loops to run the connections on, instead of threads of the
  // store's own. Each loop gets its own connections, so a call made on a
  // thread running one of them needs no other thread; calls from any other
  // thread are handed to the loops in turn. The subscriber, the waiters of
  // WaitForCompletion and the cluster's topology refresh live on the first.
  // The caller runs each loop and keeps it alive until the store has been
  // destroyed, and destroys the store either while every loop still runs
  // (the store closes its connections on them, waiting for that) or once
  // they have stopped for good (io_context::stopped() and no thread inside
  // run() any more: they are closed on the destroying thread). Dropping
  // the last reference on one of these loops (in a callback, say) hands
  // the closing to a helper thread, since a loop cannot wait for itself:
  // keep the loops running until the store has let go of what these
  // options gave it (the `clock`, for one).
  // Default: empty (io_threads loops of the store's own).
  std::vector<boost::asio::io_context*> io_contexts;

  // Event-loop threads owned by the store when io_contexts is empty (1-2 is
  // plenty: hiredis spends microseconds per reply). Default: 1.
  int io_threads = 1;

  // Pipelined connections per event loop, to each server (each master in a
  // cluster). The first that is up carries the loop's commands; the others
  // are standbys that take over while it is down and take commands over
  // 64 KiB. Default: 2.
  int connections_per_thread = 2;

  // Reconnect back-off: the first retry after losing a working connection
  // is immediate, then min, 2×min, ... up to max, with ±20 % jitter.
  // Default: 50 ms and 2 s.
  std::chrono::milliseconds reconnect_min_backoff{50};
  std::chrono::milliseconds reconnect_max_backoff{2000};

  // WaitForCompletion is woken by pub/sub; as a backstop against a lost
  // notification (a subscriber reconnecting) each waiter also re-reads the
  // record this often. Default: 200 ms.
  std::chrono::milliseconds wait_poll_interval{200};

  // Cluster mode: how often the slot map is re-read even without a MOVED
  // reply or a failed connection (both trigger a refresh at once).
  // Default: 30 s.
  std::chrono::milliseconds topology_refresh_interval{30'000};

  // Cluster mode: MOVED/ASK redirections followed per command before it
  // fails with kUnavailable. Default: 5.
  int max_redirects = 5;

  // Keep completed records in a local cache so replays skip Redis. Sound
  // because a completed record never changes until it expires or is
  // deleted: every Delete (admin purge, `idem keys delete`) is published,
  // each store drops its copy, and a store keeps nothing while its
  // subscription is down (records deleted meanwhile would go unnoticed).
  // Records deleted behind idem's back (DEL, FLUSHDB in redis-cli) stay
  // cached until they expire. Default: true.
  bool cache_completed = true;
  // Bytes of records the cache may hold; the least recently used go first,
  // and a record larger than a quarter of this is not cached. At least
  // kMinRedisCacheBytes. Default: 64 MiB.
  size_t cache_max_bytes = size_t{64} << 20;
};

inline constexpr size_t kMinRedisCacheBytes = size_t{1} << 20;

// Parses a store URI into options (every other field keeps its default):
//   redis://[user:password@]host[:port][/db][?option=value&...]
//   redis+cluster://[user:password@]host:port[,host:port...][?option=value&...]
// User and password may be percent-encoded; an IPv6 host is written in
// brackets ("[::1]:6379"); the port defaults to 6379. Options:
// cache_completed=true|false, cache_max_bytes=N (bytes, at least 1 MiB;
// may end in KiB, MiB or GiB). kInvalidArgument for anything else.
Result<RedisStoreOptions> ParseRedisUri(std::string_view uri);

// Opens the store. Connections are made in the background, so this succeeds
// while Redis is still down (calls then fail with kUnavailable until it is
// up; Ping reports it). kInvalidArgument for inconsistent options.
Result<std::shared_ptr<Store>> NewRedisStore(const RedisStoreOptions& options);

}  // namespace idem
