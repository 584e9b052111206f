// The PostgreSQL Store: each call is one prepared statement (pg_schema.cc)
// sent through the pipelined pool (pg_client.h); this file turns the
// statements' rows into the Store's outcomes, retries the statements that
// lost a race, and keeps the local side: waiters, the completed-record
// cache, the optional periodic reaper.
#include "idem/postgres_store.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "stores/common/completed_cache.h"
#include "stores/common/lent_loops.h"
#include "stores/postgres/pg_client.h"
#include "stores/postgres/pg_migrate.h"
#include "stores/postgres/pg_schema.h"
#include "stores/postgres/pg_session.h"
#include "stores/postgres/pg_wire.h"
#include "stores/postgres/record_row.h"
#include "stores/postgres/wait_registry.h"

namespace idem {
namespace {

namespace asio = boost::asio;
using pg::Reply;
using pg::RowReader;

// A statement that lost a race (its snapshot was overtaken by a concurrent
// change, or the server reported a serialization failure or unique
// violation) runs again; after this many tries the caller gets kConflict.
constexpr int kMaxAttempts = 8;
// Reaper batches per periodic run, at most.
constexpr int kMaxSweepBatches = 1000;

std::string Ms(int64_t value) { return pg::Int8Param(value); }

size_t Rows(const Reply& reply) {
  return reply.result ? static_cast<size_t>(PQntuples(reply.result.get())) : 0;
}

// A failure that running the statement again may cure: a race lost to a
// concurrent transaction, or a commit group rolled back by another member.
bool Retryable(const Reply& reply) {
  return reply.group_rolled_back || pg::IsRetryableRace(reply.sqlstate);
}

Status RetriesExhausted(std::string_view what) {
  return Conflict("postgres " + std::string(what) +
                  ": the key kept changing under concurrent calls; try again");
}

// Maps the verdict of an owner-checked statement.
Status VerdictStatus(int32_t verdict) {
  switch (verdict) {
    case pg::kVerdictOk:
      return Status::Ok();
    case pg::kVerdictLeaseLost:
      return LeaseLost("the lease is gone (expired, released, deleted or taken over)");
    case pg::kVerdictCompleted:
      return FailedPrecondition("the record is already completed");
    default:
      return Internal("postgres: unexpected verdict " + std::to_string(verdict));
  }
}

class StoreCore {
 public:
  StoreCore(const PostgresStoreOptions& options, pg::Schema schema)
      : options_(options),
        clock_(options.clock ? options.clock : SystemClock()),
        schema_(std::move(schema)),
        client_(MakeClientOptions()),
        waits_(client_.io()),
        cache_(options.cache_max_bytes),
        timers_(asio::make_strand(client_.io())),
        poll_timer_(timers_),
        sweep_timer_(timers_) {}

  StoreCore(const StoreCore&) = delete;
  StoreCore& operator=(const StoreCore&) = delete;

  Status Open(std::shared_ptr<StoreCore> self) {
    client_.Start(std::move(self));
    asio::post(timers_, [this] {
      ArmPoll();
      if (options_.sweep_interval.count() > 0) ArmSweep();
    });
    // Lent loops may only start running after this returns; the schema
    // check has already reached the server.
    if (client_.on_lent_loops()) return Status::Ok();
    return client_.WaitReady(options_.connect_timeout + options_.statement_timeout);
  }

  // Shutdown must then run on another thread (it waits for the loops).
  bool MustCloseElsewhere() const {
    return client_.on_lent_loops() && client_.OnIoThread();
  }

  void Shutdown() {
    if (closed_.exchange(true)) return;
    asio::post(timers_, [this] {
      poll_timer_.cancel();
      sweep_timer_.cancel();
    });
    for (auto& done : waits_.TakeEverything()) done(Unavailable("postgres store closed"));
    client_.Stop();
  }

  PostgresStoreStats Stats() const {
    PostgresStoreStats stats;
    stats.rows_reaped = rows_reaped_.load(std::memory_order_relaxed);
    stats.reconnects = client_.reconnects();
    stats.notifications = client_.notifications();
    stats.cache_hits = cache_hits_.load(std::memory_order_relaxed);
    stats.begin_retries = begin_retries_.load(std::memory_order_relaxed);
    stats.connections_ready = client_.connections_ready();
    stats.commit_groups = client_.commit_groups();
    stats.durable_writes = client_.durable_writes();
    stats.group_rollbacks = client_.group_rollbacks();
    return stats;
  }

  std::vector<StoreMetric> Metrics() const {
    using Kind = StoreMetric::Kind;
    const PostgresStoreStats s = Stats();
    const auto n = [](uint64_t value) { return static_cast<double>(value); };
    return {
        {"rows_reaped_total", "Expired rows deleted by the reaper (Sweep).",
         Kind::kCounter, n(s.rows_reaped)},
        {"reconnects_total", "PostgreSQL connections re-established after a loss.",
         Kind::kCounter, n(s.reconnects)},
        {"notifications_total",
         "NOTIFY messages received (completions, releases, deletes).", Kind::kCounter,
         n(s.notifications)},
        {"cache_hits_total",
         "Begin calls answered from the local cache of completed records.",
         Kind::kCounter, n(s.cache_hits)},
        {"begin_retries_total", "Begin statements run again after losing a race.",
         Kind::kCounter, n(s.begin_retries)},
        {"commit_groups_total", "Transactions of durable writes, each one WAL flush.",
         Kind::kCounter, n(s.commit_groups)},
        {"durable_writes_total",
         "Writes that waited for the WAL flush, in commit groups.", Kind::kCounter,
         n(s.durable_writes)},
        {"group_rollbacks_total",
         "Durable writes rolled back by another write of their group, then run again.",
         Kind::kCounter, n(s.group_rollbacks)},
        {"connections_ready", "Pool connections to PostgreSQL usable right now.",
         Kind::kGauge, n(s.connections_ready)},
    };
  }

  // ---- Begin ---------------------------------------------------------------

  void Begin(BeginRequest request, Callback<Result<BeginResult>> done) {
    if (options_.cache_completed) {
      if (RecordPtr cached = cache_.Find(request.key, clock_->NowMs())) {
        cache_hits_.fetch_add(1, std::memory_order_relaxed);
        const BeginOutcome outcome = cached->fingerprint == request.fingerprint
                                         ? BeginOutcome::kCompleted
                                         : BeginOutcome::kMismatch;
        done(BeginResult{outcome, std::move(cached)});
        return;
      }
    }
    RunBegin(std::make_shared<const BeginRequest>(std::move(request)), std::move(done),
             1);
  }

  // Begin is one INSERT ... ON CONFLICT that acquires the key or writes
  // nothing (pg_schema.cc); when it did not acquire, the record is read to
  // say why (Completed, Mismatch, InFlight). The read decides nothing: a
  // record that changed in between makes the Begin run again, then as
  // BeginAnswering, which answers from its own snapshot (callers taking and
  // releasing one key in quick turns would otherwise keep missing it).
  void RunBegin(std::shared_ptr<const BeginRequest> request,
                Callback<Result<BeginResult>> done, int attempt, bool answering = false) {
    const int64_t now = clock_->NowMs();
    const int64_t lease = now + request->lease_ttl_ms;
    const int64_t expires = now + std::max(request->lease_ttl_ms, request->ttl_ms);
    const uint64_t epoch = cache_.epoch();
    Run(answering ? pg::kBeginAnswering : pg::kBegin,
        {request->key, request->fingerprint, request->owner, Ms(now), Ms(lease),
         Ms(expires)},
        [this, request, done = std::move(done), attempt, answering, now, lease, expires,
         epoch](Reply reply) mutable {
          if (!reply.status.ok()) {
            if (Retryable(reply)) {
              RetryBegin(std::move(request), std::move(done), attempt, answering);
            } else {
              done(reply.status);
            }
            return;
          }
          if (answering) {
            bool raced = false;
            Result<BeginResult> result =
                Answered(*request, reply, now, lease, expires, epoch, &raced);
            if (raced) {
              RetryBegin(std::move(request), std::move(done), attempt, answering);
              return;
            }
            done(std::move(result));
            return;
          }
          if (Rows(reply) == 1) {
            RowReader row(reply.result.get(), 0);
            done(Acquired(*request, row, 0, lease, expires));
            return;
          }
          Run(pg::kGet, {request->key, Ms(now)},
              [this, request, done = std::move(done), attempt, now,
               epoch](Reply got) mutable {
                bool raced = false;
                Result<BeginResult> result =
                    Refused(*request, RecordFromGet(got), now, epoch, &raced);
                if (raced) {
                  RetryBegin(std::move(request), std::move(done), attempt,
                             /*answering=*/true);
                  return;
                }
                done(std::move(result));
              });
        });
  }

  void RetryBegin(std::shared_ptr<const BeginRequest> request,
                  Callback<Result<BeginResult>> done, int attempt, bool answering) {
    if (attempt >= kMaxAttempts) {
      done(RetriesExhausted("begin"));
      return;
    }
    begin_retries_.fetch_add(1, std::memory_order_relaxed);
    RunBegin(std::move(request), std::move(done), attempt + 1, answering);
  }

  // The new in-flight record: what Begin returned (BeginColumn, from
  // `first`) and what the caller sent.
  static Result<BeginResult> Acquired(const BeginRequest& request, RowReader& row,
                                      int first, int64_t lease, int64_t expires) {
    auto record = std::make_shared<Record>();
    record->key = request.key;
    record->state = RecordState::kInFlight;
    record->fingerprint = request.fingerprint;
    record->owner = request.owner;
    record->fence = static_cast<uint64_t>(row.Int8(first + pg::kBeginFence));
    record->lease_expires_at_ms = lease;
    record->recovery.phase = row.Bytes(first + pg::kBeginRecoveryPhase);
    record->recovery.state = row.Bytes(first + pg::kBeginRecoveryState);
    record->created_at_ms = row.Int8(first + pg::kBeginCreatedAt);
    record->expires_at_ms = expires;
    if (!row.ok()) return DataLoss("postgres begin: malformed answer");
    return BeginResult{BeginOutcome::kAcquired, std::move(record)};
  }

  // BeginAnswering's row: acquired, or the record its snapshot saw.
  Result<BeginResult> Answered(const BeginRequest& request, const Reply& reply,
                               int64_t now, int64_t lease, int64_t expires,
                               uint64_t epoch, bool* raced) {
    if (Rows(reply) != 1) return DataLoss("postgres begin: malformed answer");
    RowReader row(reply.result.get(), 0);
    if (row.Bool(0)) {
      return Acquired(request, row, pg::kAnsweringFirstBeginColumn, lease, expires);
    }
    Result<RecordPtr> record = NotFound("no record for this key");
    if (!row.IsNull(pg::kAnsweringFirstRecordColumn)) {
      record = pg::ReadRecord(row, pg::kAnsweringFirstRecordColumn);
    }
    return Refused(request, std::move(record), now, epoch, raced);
  }

  // Why Begin did not acquire, from the record as it stands (read after
  // the Begin, or from BeginAnswering's snapshot). Sets *raced when it is
  // gone or now takeable: a concurrent change got in between, so the Begin
  // runs again.
  Result<BeginResult> Refused(const BeginRequest& request, Result<RecordPtr> record,
                              int64_t now, uint64_t epoch, bool* raced) {
    if (!record.ok()) {
      if (record.status().code() != StatusCode::kNotFound) return record.status();
      *raced = true;
      return Conflict("postgres begin: raced");
    }
    const RecordPtr& r = *record;
    if (r->IsExpired(now) ||
        (r->LeaseExpired(now) && r->fingerprint == request.fingerprint)) {
      *raced = true;
      return Conflict("postgres begin: raced");
    }
    if (r->fingerprint != request.fingerprint) {
      return BeginResult{BeginOutcome::kMismatch, r};
    }
    if (r->state == RecordState::kCompleted) {
      if (options_.cache_completed) cache_.Insert(r, epoch);
      return BeginResult{BeginOutcome::kCompleted, r};
    }
    return BeginResult{BeginOutcome::kInFlight, r};
  }

  // ---- owner-checked calls -------------------------------------------------

  void Complete(CompleteRequest request, Callback<Status> done) {
    auto shared = std::make_shared<CompleteRequest>(std::move(request));
    RunComplete(std::move(shared), std::move(done), 1);
  }

  // Complete is one owner-checked UPDATE; when it stored nothing, the
  // record is read to say why (lease lost, already completed, or a
  // concurrent change: run again).
  void RunComplete(std::shared_ptr<CompleteRequest> request, Callback<Status> done,
                   int attempt) {
    const int64_t now = clock_->NowMs();
    const int64_t expires = now + request->ttl_ms;
    const StoredResponse& response = request->response;
    const uint64_t epoch = cache_.epoch();
    Run(pg::kComplete,
        {request->key, request->owner, Ms(now), pg::Int4Param(response.status),
         pg::EncodeHeaders(response.headers), response.body, Ms(expires)},
        [this, request, done = std::move(done), attempt, now, expires,
         epoch](Reply reply) mutable {
          if (!reply.status.ok()) {
            if (Retryable(reply) && attempt < kMaxAttempts) {
              RunComplete(std::move(request), std::move(done), attempt + 1);
            } else {
              done(Retried(reply.status, attempt, "complete"));
            }
            return;
          }
          if (Rows(reply) == 1) {
            Completed(std::move(request), reply, expires, epoch, std::move(done));
            return;
          }
          Run(pg::kGet, {request->key, Ms(now)},
              [this, request, done = std::move(done), attempt](Reply got) mutable {
                std::optional<Status> why = NotCompleted(*request, got);
                if (why) {
                  done(std::move(*why));
                } else if (attempt < kMaxAttempts) {
                  RunComplete(std::move(request), std::move(done), attempt + 1);
                } else {
                  done(RetriesExhausted("complete"));
                }
              });
        });
  }

  // The stored record (what Complete returned, CompleteColumn, and what the
  // caller sent) goes to the cache and to local waiters.
  void Completed(std::shared_ptr<CompleteRequest> request, const Reply& reply,
                 int64_t expires, uint64_t epoch, Callback<Status> done) {
    RowReader row(reply.result.get(), 0);
    auto record = std::make_shared<Record>();
    record->key = request->key;
    record->state = RecordState::kCompleted;
    record->fingerprint = row.Bytes(pg::kCompleteFingerprint);
    record->owner = request->owner;
    record->fence = static_cast<uint64_t>(row.Int8(pg::kCompleteFence));
    record->lease_expires_at_ms = row.Int8(pg::kCompleteLeaseExpiresAt);
    record->created_at_ms = row.Int8(pg::kCompleteCreatedAt);
    record->expires_at_ms = expires;
    record->response = std::move(request->response);
    if (row.ok()) {
      RecordPtr completed = std::move(record);
      if (options_.cache_completed) cache_.Insert(completed, epoch);
      WakeLocal(request->key, completed);
    }
    // Stored either way: a malformed answer only keeps it out of the cache.
    done(Status::Ok());
  }

  // Why Complete stored nothing, from the record read after it; nullopt
  // when the caller's lease is still there (a concurrent change got in the
  // way: run again).
  static std::optional<Status> NotCompleted(const CompleteRequest& request,
                                            const Reply& got) {
    if (!got.status.ok()) return got.status;
    const Status lost =
        LeaseLost("the lease is gone (expired, released, deleted or taken over)");
    if (Rows(got) == 0) return lost;
    RowReader row(got.result.get(), 0);
    auto record = pg::ReadRecord(row, 0);
    if (!record.ok()) return record.status();
    if ((*record)->owner != request.owner) return lost;
    if ((*record)->state == RecordState::kCompleted) {
      return FailedPrecondition("the record is already completed");
    }
    return std::nullopt;
  }

  void Release(std::string key, std::string owner, Callback<Status> done) {
    RunOwnerChecked(
        pg::kRelease, std::move(key), std::move(owner), {}, "release",
        [this](const std::string& k, const RowReader&) {
          WakeLocal(k, NotFound("the record was released"));
        },
        [done = std::move(done)](Status status, RowReader*) mutable {
          done(std::move(status));
        });
  }

  void Extend(std::string key, std::string owner, int64_t lease_ttl_ms,
              Callback<Result<int64_t>> done) {
    const int64_t lease = clock_->NowMs() + lease_ttl_ms;
    RunOwnerChecked(pg::kExtend, std::move(key), std::move(owner), {Ms(lease)}, "extend",
                    nullptr,
                    [done = std::move(done)](Status status, RowReader* row) mutable {
                      if (!status.ok()) {
                        done(std::move(status));
                        return;
                      }
                      const int64_t expires = row->Int8(1);
                      if (!row->ok()) {
                        done(DataLoss("postgres extend: malformed answer"));
                        return;
                      }
                      done(expires);
                    });
  }

  void Checkpoint(CheckpointRequest request, Callback<Status> done) {
    RunOwnerChecked(
        pg::kCheckpoint, std::move(request.key), std::move(request.owner),
        {std::move(request.recovery.phase), std::move(request.recovery.state)},
        "checkpoint", nullptr,
        [done = std::move(done)](Status status, RowReader*) mutable {
          done(std::move(status));
        });
  }

  // Release, Extend and Checkpoint: ($1 key, $2 owner, $3 now, extra...),
  // first column the verdict. `on_ok` runs before `done` on success.
  using OnOk = std::function<void(const std::string& key, const RowReader& row)>;
  using OnDone = std::function<void(Status, RowReader*)>;

  void RunOwnerChecked(pg::StatementId id, std::string key, std::string owner,
                       std::vector<std::string> extra, std::string_view what, OnOk on_ok,
                       OnDone done, int attempt = 1) {
    std::vector<std::string> params = {key, owner, Ms(clock_->NowMs())};
    for (const auto& value : extra) params.push_back(value);
    Run(id, std::move(params),
        [this, id, key = std::move(key), owner = std::move(owner),
         extra = std::move(extra), what, on_ok = std::move(on_ok), done = std::move(done),
         attempt](Reply reply) mutable {
          if (ShouldRetry(reply, attempt)) {
            RunOwnerChecked(id, std::move(key), std::move(owner), std::move(extra), what,
                            std::move(on_ok), std::move(done), attempt + 1);
            return;
          }
          if (!reply.status.ok()) {
            done(Retried(reply.status, attempt, what), nullptr);
            return;
          }
          RowReader row(reply.result.get(), 0);
          const int32_t verdict = Rows(reply) == 1 ? row.Int4(0) : -1;
          if (!row.ok()) {
            done(DataLoss("postgres " + std::string(what) + ": malformed answer"),
                 nullptr);
            return;
          }
          const Status status = VerdictStatus(verdict);
          if (status.ok() && on_ok) on_ok(key, row);
          done(status, &row);
        });
  }

  // A verdict "raced" or a retryable server error: run again while
  // attempts remain.
  bool ShouldRetry(const Reply& reply, int attempt) {
    if (attempt >= kMaxAttempts) return false;
    if (!reply.status.ok()) return Retryable(reply);
    if (Rows(reply) != 1) return false;
    RowReader row(reply.result.get(), 0);
    return row.Int4(0) == pg::kVerdictRaced;
  }

  static Status Retried(const Status& status, int attempt, std::string_view what) {
    if (attempt >= kMaxAttempts && status.code() == StatusCode::kConflict) {
      return RetriesExhausted(what);
    }
    return status;
  }

  // ---- reads and admin -----------------------------------------------------

  void Get(std::string key, Callback<Result<RecordPtr>> done) {
    Run(pg::kGet, {std::move(key), Ms(clock_->NowMs())},
        [done = std::move(done)](Reply reply) mutable { done(RecordFromGet(reply)); });
  }

  static Result<RecordPtr> RecordFromGet(const Reply& reply) {
    if (!reply.status.ok()) return reply.status;
    if (Rows(reply) == 0) return NotFound("no record for this key");
    RowReader row(reply.result.get(), 0);
    return pg::ReadRecord(row, 0);
  }

  void Delete(std::string key, Callback<Status> done, int attempt = 1) {
    Run(pg::kDelete, {key, Ms(clock_->NowMs())},
        [this, key, done = std::move(done), attempt](Reply reply) mutable {
          if (!reply.status.ok() && reply.group_rolled_back && attempt < kMaxAttempts) {
            Delete(std::move(key), std::move(done), attempt + 1);
            return;
          }
          if (!reply.status.ok()) {
            done(Retried(reply.status, attempt, "delete"));
            return;
          }
          if (options_.cache_completed) cache_.Erase(key);
          RowReader row(reply.result.get(), 0);
          if (Rows(reply) == 0 || !row.Bool(0)) {
            done(NotFound("no record for this key"));
            return;
          }
          WakeLocal(key, NotFound("the record was deleted"));
          done(Status::Ok());
        });
  }

  void Sweep(size_t limit, Callback<Result<size_t>> done) {
    SweepBatches(limit, 0, std::numeric_limits<int>::max(), std::move(done));
  }

  // Deletes expired rows in batches of at most sweep_batch until `limit`
  // rows are gone, a batch comes back short, or `batches` ran.
  void SweepBatches(size_t limit, size_t removed, int batches,
                    Callback<Result<size_t>> done) {
    const size_t batch =
        std::min(limit - removed, std::max<size_t>(1, options_.sweep_batch));
    if (batch == 0 || batches <= 0) {
      done(removed);
      return;
    }
    Run(pg::kSweep, {Ms(clock_->NowMs()), Ms(static_cast<int64_t>(batch))},
        [this, limit, removed, batches, batch,
         done = std::move(done)](Reply reply) mutable {
          if (!reply.status.ok()) {
            if (removed > 0) {
              done(removed);
            } else {
              done(reply.status);
            }
            return;
          }
          RowReader row(reply.result.get(), 0);
          const int64_t count = Rows(reply) == 1 ? row.Int8(0) : 0;
          const size_t n = count > 0 ? static_cast<size_t>(count) : 0;
          rows_reaped_.fetch_add(n, std::memory_order_relaxed);
          if (n < batch) {
            done(removed + n);
            return;
          }
          SweepBatches(limit, removed + n, batches - 1, std::move(done));
        });
  }

  void Ping(Callback<Status> done) {
    Run(pg::kPing, {},
        [done = std::move(done)](Reply reply) mutable { done(std::move(reply.status)); });
  }

  // ---- waiting -------------------------------------------------------------

  void WaitForCompletion(std::string key, std::chrono::milliseconds timeout,
                         Callback<Result<RecordPtr>> done) {
    if (timeout.count() <= 0) {
      Get(std::move(key), [done = std::move(done)](Result<RecordPtr> record) mutable {
        if (record.ok() && (*record)->state != RecordState::kCompleted) {
          done(DeadlineExceeded("the operation is still in flight"));
          return;
        }
        done(std::move(record));
      });
      return;
    }
    // Registered before the first read, so a completion between the read
    // and the registration still wakes it.
    waits_.Add(key, timeout, std::move(done));
    Check(key);
  }

  // Reads the record for its waiters (marking it watched, so its Complete
  // or Release will NOTIFY): completed or gone ends their wait, a failure
  // is handed to them, still in flight keeps them waiting.
  void Check(const std::string& key) {
    if (!waits_.StartCheck(key)) return;
    const uint64_t epoch = cache_.epoch();
    Run(pg::kWatch, {key, Ms(clock_->NowMs())}, [this, key, epoch](Reply reply) {
      bool raced = false;
      Result<RecordPtr> record = RecordFromWatch(reply, &raced);
      if (!record.ok() || (*record)->state == RecordState::kCompleted) {
        if (record.ok() && options_.cache_completed) cache_.Insert(*record, epoch);
        WakeLocal(key, record);
      }
      if (waits_.FinishCheck(key) || raced) Check(key);
    });
  }

  // The watch statement's answer: (marked, watched, record...). An
  // in-flight row that was unwatched in the snapshot yet not marked by this
  // statement changed concurrently (*raced: read again).
  static Result<RecordPtr> RecordFromWatch(const Reply& reply, bool* raced) {
    if (!reply.status.ok()) return reply.status;
    if (Rows(reply) == 0) return NotFound("no record for this key");
    RowReader row(reply.result.get(), 0);
    const bool marked = row.Bool(0);
    const bool watched = row.Bool(1);
    auto record = pg::ReadRecord(row, 2);
    if (record.ok() && (*record)->state == RecordState::kInFlight && !marked &&
        !watched) {
      *raced = true;
    }
    return record;
  }

  void WakeLocal(const std::string& key, const Result<RecordPtr>& outcome) {
    for (auto& done : waits_.TakeAll(key)) done(outcome);
  }

  void OnNotify(std::string_view payload) {
    if (payload.size() < 2) return;
    const char event = payload[0];
    const std::string_view hash = payload.substr(1);
    if (event == 'd' && options_.cache_completed) cache_.EraseByHash(hash);
    if (auto key = waits_.KeyForHash(hash)) Check(*key);
  }

  // Notifications sent while the listener was away are lost: the cache
  // starts empty again (a record may have been deleted meanwhile) and every
  // awaited key is read again.
  void OnListenerReady() {
    cache_.SetListening(options_.cache_completed);
    for (const auto& key : waits_.Keys()) Check(key);
  }

  // Without a listener, deletes elsewhere go unheard: stop caching.
  void OnListenerLost() { cache_.SetListening(false); }

 private:
  pg::ClientOptions MakeClientOptions() {
    pg::ClientOptions c;
    c.conninfo = options_.conninfo;
    c.pool_size = options_.pool_size;
    c.pipeline_depth = options_.pipeline_depth;
    c.io_threads = options_.io_threads;
    c.loops = options_.io_contexts;
    c.max_queued = options_.max_queued;
    c.connect_timeout = options_.connect_timeout;
    c.statement_timeout = options_.statement_timeout;
    c.backoff_initial = options_.reconnect_backoff_initial;
    c.backoff_max = options_.reconnect_backoff_max;
    c.statements = schema_.statements;
    c.listen_channel = schema_.channel;
    c.on_notify = [this](std::string_view payload) { OnNotify(payload); };
    c.on_listener_ready = [this] { OnListenerReady(); };
    c.on_listener_lost = [this] { OnListenerLost(); };
    return c;
  }

  void Run(pg::StatementId id, std::vector<std::string> params,
           std::function<void(Reply)> done) {
    pg::Command command;
    command.kind = pg::Command::Kind::kExecute;
    command.statement = &client_.options().statements[id];
    command.params = std::move(params);
    command.deadline = client_.Deadline();
    command.done = std::move(done);
    client_.Submit(std::move(command));
  }

  void ArmPoll() {
    poll_timer_.expires_after(
        std::max(options_.wait_poll_interval, std::chrono::milliseconds(10)));
    poll_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || closed_.load()) return;
      for (const auto& key : waits_.Keys()) Check(key);
      ArmPoll();
    });
  }

  void ArmSweep() {
    sweep_timer_.expires_after(options_.sweep_interval);
    sweep_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || closed_.load()) return;
      SweepBatches(std::numeric_limits<size_t>::max(), 0, kMaxSweepBatches,
                   [this](Result<size_t>) {
                     asio::post(timers_, [this] {
                       if (!closed_.load()) ArmSweep();
                     });
                   });
    });
  }

  const PostgresStoreOptions options_;
  const std::shared_ptr<Clock> clock_;
  const pg::Schema schema_;
  pg::Client client_;  // before everything that holds io objects
  pg::WaitRegistry waits_;
  stores::CompletedCache cache_;
  asio::strand<asio::io_context::executor_type> timers_;
  asio::steady_timer poll_timer_;
  asio::steady_timer sweep_timer_;
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> rows_reaped_{0};
  std::atomic<uint64_t> cache_hits_{0};
  std::atomic<uint64_t> begin_retries_{0};
};

// The handle users hold. On its own io_context the core lives on while its
// threads still run (they keep a reference); on lent loops Shutdown waits
// until no handler uses it. Either way dropping the last handle inside a
// callback is safe.
class PostgresStore final : public Store {
 public:
  explicit PostgresStore(std::shared_ptr<StoreCore> core) : core_(std::move(core)) {}
  ~PostgresStore() override {
    const bool on_its_loop = core_->MustCloseElsewhere();
    stores::ShutdownOffItsLoops(std::move(core_), on_its_loop);
  }

  void Begin(BeginRequest request, Callback<Result<BeginResult>> done) override {
    core_->Begin(std::move(request), std::move(done));
  }
  void Complete(CompleteRequest request, Callback<Status> done) override {
    core_->Complete(std::move(request), std::move(done));
  }
  void Release(std::string key, std::string owner, Callback<Status> done) override {
    core_->Release(std::move(key), std::move(owner), std::move(done));
  }
  void Extend(std::string key, std::string owner, int64_t lease_ttl_ms,
              Callback<Result<int64_t>> done) override {
    core_->Extend(std::move(key), std::move(owner), lease_ttl_ms, std::move(done));
  }
  void Checkpoint(CheckpointRequest request, Callback<Status> done) override {
    core_->Checkpoint(std::move(request), std::move(done));
  }
  void Get(std::string key, Callback<Result<RecordPtr>> done) override {
    core_->Get(std::move(key), std::move(done));
  }
  void Delete(std::string key, Callback<Status> done) override {
    core_->Delete(std::move(key), std::move(done));
  }
  void Sweep(size_t limit, Callback<Result<size_t>> done) override {
    core_->Sweep(limit, std::move(done));
  }
  void WaitForCompletion(std::string key, std::chrono::milliseconds timeout,
                         Callback<Result<RecordPtr>> done) override {
    core_->WaitForCompletion(std::move(key), timeout, std::move(done));
  }
  void Ping(Callback<Status> done) override { core_->Ping(std::move(done)); }

  std::vector<StoreMetric> Metrics() const override { return core_->Metrics(); }

  PostgresStoreStats Stats() const { return core_->Stats(); }

 private:
  std::shared_ptr<StoreCore> core_;
};

Status ValidateOptions(const PostgresStoreOptions& options) {
  if (options.pool_size == 0 || options.pipeline_depth == 0 || options.io_threads == 0) {
    return InvalidArgument(
        "postgres pool_size, pipeline_depth and io_threads must be > 0");
  }
  if (std::find(options.io_contexts.begin(), options.io_contexts.end(), nullptr) !=
      options.io_contexts.end()) {
    return InvalidArgument("postgres io_contexts must not hold a null pointer");
  }
  if (options.connect_timeout.count() <= 0 || options.statement_timeout.count() <= 0) {
    return InvalidArgument("postgres time-outs must be positive");
  }
  if (options.sweep_batch == 0) {
    return InvalidArgument("postgres sweep_batch must be > 0");
  }
  return Status::Ok();
}

// Applies the migrations (auto_migrate) or insists they were applied.
Status CheckSchema(const PostgresStoreOptions& options, const pg::Schema& schema) {
  auto session = pg::Session::Open(options.conninfo, options.connect_timeout,
                                   options.statement_timeout);
  if (!session.ok()) return session.status();
  if (options.auto_migrate) return pg::Migrate(*session, schema);
  auto version = pg::CurrentVersion(*session, schema);
  if (!version.ok()) return version.status();
  if (*version != kPostgresSchemaVersion) {
    return FailedPrecondition(
        "postgres schema " + schema.qualified_table + " is at version " +
        std::to_string(*version) + ", this idem needs " +
        std::to_string(kPostgresSchemaVersion) +
        ": run `idem migrate --store <uri>` or set store.auto_migrate = true");
  }
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<Store>> NewPostgresStore(const PostgresStoreOptions& options) {
  if (Status status = ValidateOptions(options); !status.ok()) return status;
  auto schema = pg::BuildSchema(options.schema, options.table, options.sync_leases);
  if (!schema.ok()) return schema.status();
  if (Status status = CheckSchema(options, *schema); !status.ok()) return status;
  auto core = std::make_shared<StoreCore>(options, std::move(*schema));
  auto store = std::make_shared<PostgresStore>(core);
  if (Status status = core->Open(core); !status.ok()) return status;
  return std::shared_ptr<Store>(std::move(store));
}

Result<PostgresStoreStats> GetPostgresStoreStats(const Store& store) {
  const auto* postgres = dynamic_cast<const PostgresStore*>(&store);
  if (!postgres) return InvalidArgument("not a PostgreSQL store");
  return postgres->Stats();
}

}  // namespace idem
