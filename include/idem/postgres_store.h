// The PostgreSQL store: durable state shared by every gateway that points
// at the same database, inspectable with SQL.
//
// Records live in one table keyed by scope key (bytea), one column per
// field, with an index on expiry; its layout is versioned
// (`<table>_schema_version`) and created or upgraded by MigratePostgres
// (`idem migrate`), or at open with `auto_migrate`. Every Store call is one
// SQL statement (Begin included: an INSERT ... ON CONFLICT with the takeover
// branch; when it acquires nothing, a read says why), sent on a small pool
// of non-blocking libpq connections in pipeline mode. Writes that must
// survive a crash (results, and leases unless sync_leases is off) queued
// at the same time share one transaction and one WAL flush. Completions,
// releases and deletes of watched flights NOTIFY a channel that one
// LISTEN connection per store turns into wake-ups for local waiters, so
// `in_flight = "wait"` works across gateways; a slow fallback poll covers
// notifications lost while that connection was down.
//
// Times are the injected Clock's milliseconds, sent as statement
// parameters (bigint), never the server's now(): expiry is judged exactly
// as the memory store judges it, and tests can move time by hand.
//
// Threading: non-blocking libpq connections (PQsocket, waited on with
// asio::posix::stream_descriptor) driven by Boost.Asio event loops: the
// caller's (io_contexts; `idem serve` lends its io threads, and each
// connection then lives on one of them) or, by default, an io_context of
// the store's own run by `io_threads` threads. Callbacks run on those
// loops; keep them short and never block in them on another call to the
// same store (no *Sync helper there). All methods are thread-safe.
//
// Failure: when PostgreSQL cannot be reached, calls fail with kUnavailable
// within `statement_timeout` (at once while every connection is known to
// be down), never hang, and the store reconnects by itself with back-off.
#pragma once

#include <boost/asio/ts/netfwd.hpp>  // boost::asio::io_context, declared
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "idem/clock.h"
#include "idem/status.h"
#include "idem/store.h"

namespace idem {

// The schema version this build reads and writes.
inline constexpr int kPostgresSchemaVersion = 2;

struct PostgresStoreOptions {
  // A libpq connection string: a URI (`postgresql://user:pass@host:5432/db`)
  // or `key=value` pairs. Every libpq setting passes through unchanged,
  // TLS included (`?sslmode=verify-full&sslrootcert=/etc/ca.pem`).
  // Default: "" (libpq's defaults and the PG* environment variables).
  std::string conninfo;

  // Clock that expiry is judged by. Default: the system clock.
  std::shared_ptr<Clock> clock;

  // Connections that run statements (one more is opened for LISTEN), each
  // a server backend: an eighth of them (at least one) run the durable
  // writes in commit groups, the others leases and reads; a pool of one
  // does both. Default: 8.
  size_t pool_size = 8;

  // Statements in flight at once on one connection (pipeline mode).
  // Default: 32.
  size_t pipeline_depth = 32;

  // Threads that run the store's own io_context, when io_contexts is
  // empty. Default: 1.
  size_t io_threads = 1;

  // Event loops to run the connections on instead of threads of the
  // store's own: connection i on io_contexts[i % size], the LISTEN
  // connection, the timers and the waiters on the first. Each must be run
  // by exactly one thread. The store does not wait for a connection when
  // it opens (the caller may start its loops afterwards; the schema check
  // has already reached the server). The caller keeps each loop alive
  // until the store has been destroyed, and destroys the store either
  // while every loop still runs (it closes its connections on them and
  // waits for that) or once they have stopped for good (stopped(), and no
  // thread inside run() any more: they are closed on the destroying
  // thread). Dropping the last reference on one of these loops (in a
  // callback, say) hands the closing to a helper thread, since a loop
  // cannot wait for itself: keep the loops running until the store has let
  // go of what these options gave it (the `clock`, for one). Default:
  // empty (the store's own).
  std::vector<boost::asio::io_context*> io_contexts;

  // How long opening one connection may take. Default: 5 s.
  std::chrono::milliseconds connect_timeout{5'000};

  // How long a call may take from submission to answer, waiting for a
  // connection included; also set as the server's statement_timeout.
  // Past it the call fails with kUnavailable. Default: 5 s.
  std::chrono::milliseconds statement_timeout{5'000};

  // Delay before reconnecting a failed connection; doubles per failed
  // attempt (with jitter) up to `reconnect_backoff_max`. Default: 50 ms.
  std::chrono::milliseconds reconnect_backoff_initial{50};
  // Default: 2 s.
  std::chrono::milliseconds reconnect_backoff_max{2'000};

  // Where the records live. Default: "public".
  std::string schema = "public";
  // Default: "idem_records".
  std::string table = "idem_records";

  // Create or upgrade the schema when the store opens (advisory-locked, so
  // gateways starting together are safe). Otherwise the store refuses to
  // open on a schema older than kPostgresSchemaVersion. Default: false.
  bool auto_migrate = false;

  // Commit leases (Begin, Extend, Release) durably, like results: they
  // wait for the WAL flush, sharing commit groups (and flushes) with the
  // results queued at the same time. Off, they commit with
  // synchronous_commit = off and do not wait, but a crash of PostgreSQL
  // alone (not a clean stop) may lose those of the last moments while the
  // gateways live on: the key may then run again before its lease_ttl has
  // passed, and the first execution's response reaches its client without
  // being stored (lease_lost), so a retry runs it again. Unlike the RocksDB
  // store's sync_leases, where only a machine crash loses a lease and takes
  // the gateway, and the request, with it. docs/stores.md "Durability".
  // Completions, checkpoints and deletes always wait for the flush.
  // Default: true.
  bool sync_leases = true;

  // Keep completed records in a local cache so replays skip the database:
  // a completed record never changes until it expires or is deleted, and a
  // delete on any gateway is broadcast with NOTIFY. Default: true.
  bool cache_completed = true;
  // Bytes of responses the cache may hold (least recently used go first).
  // Default: 64 MiB.
  size_t cache_max_bytes = 64u << 20;

  // How often waiters re-read their record in case a NOTIFY was lost.
  // Default: 1 s.
  std::chrono::milliseconds wait_poll_interval{1'000};

  // Rows one reaper statement deletes at most (short locks). Default: 500.
  size_t sweep_batch = 500;
  // Run the reaper inside the store this often (0: never; the gateway and
  // `idem gc` call Sweep themselves). Default: 0.
  std::chrono::milliseconds sweep_interval{0};

  // Calls waiting for a free connection; more fail with kUnavailable.
  // Default: 100000.
  size_t max_queued = 100'000;
};

// Counters for metrics. A snapshot; read it as often as you like.
struct PostgresStoreStats {
  uint64_t rows_reaped = 0;      // rows deleted by Sweep (any caller)
  uint64_t reconnects = 0;       // connections re-established after a loss
  uint64_t notifications = 0;    // NOTIFY messages received
  uint64_t cache_hits = 0;       // Begin answered from the local cache
  uint64_t begin_retries = 0;    // Begin re-run after losing a race
  size_t connections_ready = 0;  // pool connections usable right now
  // Transactions of durable writes (Complete, Checkpoint, Delete, and the
  // lease writes with sync_leases), each one WAL flush to wait for; the
  // writes they carried; and the writes rolled back because another write
  // of their group failed (then run again).
  uint64_t commit_groups = 0;
  uint64_t durable_writes = 0;
  uint64_t group_rollbacks = 0;
};

// Least cache_max_bytes a postgresql:// URI may ask for.
inline constexpr size_t kMinPostgresCacheBytes = size_t{1} << 20;

// Reads a postgresql:// (or postgres://) store URI, as `idem serve --store`
// takes it. These query options are idem's own and are taken out of it:
//   sync_leases=true|false          PostgresStoreOptions::sync_leases
//   pool_size=N (1 to 1000)         PostgresStoreOptions::pool_size
//   cache_completed=true|false      PostgresStoreOptions::cache_completed
//   cache_max_bytes=N[KiB|MiB|GiB]  at least 1MiB
// Everything else (host, port, dbname, user, password, sslmode, ...) is
// libpq's and stays in `conninfo` as written; libpq reads it when the store
// connects, and refuses what it does not know then. kInvalidArgument for
// another scheme or a bad value of one of idem's options.
Result<PostgresStoreOptions> ParsePostgresUri(std::string_view uri);

// Opens the store: checks (or, with auto_migrate, applies) the schema and,
// on loops of its own, waits for the first pool connection. kUnavailable when PostgreSQL cannot
// be reached within connect_timeout; kFailedPrecondition when the schema
// is missing or older than this build and auto_migrate is off;
// kInvalidArgument for bad options.
Result<std::shared_ptr<Store>> NewPostgresStore(const PostgresStoreOptions& options);

// The counters of a store opened by NewPostgresStore (or OpenStore with a
// postgresql:// URI); kInvalidArgument for any other store.
Result<PostgresStoreStats> GetPostgresStoreStats(const Store& store);

// Creates or upgrades the schema named by options.schema / options.table
// to kPostgresSchemaVersion, in one transaction under an advisory lock.
// Idempotent. Uses conninfo, connect_timeout and statement_timeout.
// kFailedPrecondition when the database holds a newer version.
Status MigratePostgres(const PostgresStoreOptions& options);

// The schema version applied to the database (0: none yet).
Result<int> PostgresSchemaVersion(const PostgresStoreOptions& options);

}  // namespace idem
