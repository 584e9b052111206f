#include "idem/postgres_inbox.h"

#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <utility>
#include <vector>

#include "idem/run_once.h"
#include "lib/pg_connection.h"

namespace idem {
namespace {

using internal::PgConnection;

constexpr int kSchemaVersion = 1;
// pg_advisory_xact_lock key that serializes migrations ("idem_inb").
constexpr char kMigrationLock[] = "7595447826224570978";

constexpr char kCreateSchemaTable[] =
    "CREATE TABLE IF NOT EXISTS idem_inbox_schema ("
    " version integer PRIMARY KEY,"
    " applied_at timestamptz NOT NULL DEFAULT now())";
constexpr char kCreateInbox[] =
    "CREATE TABLE IF NOT EXISTS idem_inbox ("
    " consumer text NOT NULL,"
    " message_id text NOT NULL,"
    " processed_at timestamptz NOT NULL DEFAULT now(),"
    " expires_at timestamptz NOT NULL,"
    " PRIMARY KEY (consumer, message_id))";
constexpr char kCreateExpiryIndex[] =
    "CREATE INDEX IF NOT EXISTS idem_inbox_expiry ON idem_inbox (consumer, expires_at)";
// Takes the id, or re-takes it when its earlier mark has expired; a row
// comes back only then. A concurrent transaction holding the same id makes
// this wait for its end.
constexpr char kMark[] =
    "INSERT INTO idem_inbox (consumer, message_id, processed_at, expires_at)"
    " VALUES ($1, $2, now(), now() + $3::bigint * interval '1 millisecond')"
    " ON CONFLICT (consumer, message_id) DO UPDATE"
    " SET processed_at = EXCLUDED.processed_at, expires_at = EXCLUDED.expires_at"
    " WHERE idem_inbox.expires_at <= now()"
    " RETURNING message_id";
constexpr char kSweep[] =
    "DELETE FROM idem_inbox WHERE ctid IN ("
    " SELECT ctid FROM idem_inbox WHERE consumer = $1 AND expires_at <= now()"
    " LIMIT $2)";

Status Migrate(PgConnection& conn, bool create) {
  auto run = [&conn](std::string_view sql,
                     const std::vector<PgParam>& params = {}) -> Result<PgRows> {
    return conn.Exec(sql, params);
  };
  if (auto r = run("BEGIN"); !r.ok()) return r.status();
  auto finish = [&](Status status) {
    (void)conn.Exec(status.ok() ? "COMMIT" : "ROLLBACK");
    return status;
  };
  if (create) {
    if (auto r = run("SELECT pg_advisory_xact_lock($1::bigint)", {kMigrationLock});
        !r.ok()) {
      return finish(r.status());
    }
    if (auto r = run(kCreateSchemaTable); !r.ok()) return finish(r.status());
  }
  auto version = run("SELECT coalesce(max(version), 0) FROM idem_inbox_schema");
  if (!version.ok()) {
    return finish(
        FailedPrecondition("the idem_inbox table is missing (open with auto_migrate): " +
                           version.status().message()));
  }
  const int current = static_cast<int>(
      std::strtol(version->rows.at(0).at(0).value_or("0").c_str(), nullptr, 10));
  if (current > kSchemaVersion) {
    return finish(FailedPrecondition(
        "idem_inbox schema version " + std::to_string(current) +
        " is newer than this library's " + std::to_string(kSchemaVersion)));
  }
  if (current == kSchemaVersion) return finish(Status());
  if (!create) return finish(FailedPrecondition("the idem_inbox table is missing"));
  for (const char* sql : {kCreateInbox, kCreateExpiryIndex}) {
    if (auto r = run(sql); !r.ok()) return finish(r.status());
  }
  if (auto r = run("INSERT INTO idem_inbox_schema (version) VALUES ($1)",
                   {std::to_string(kSchemaVersion)});
      !r.ok()) {
    return finish(r.status());
  }
  return finish(Status());
}

// The handler's view of the open transaction; refuses use after Process.
class Transaction final : public PgTransaction {
 public:
  explicit Transaction(PgConnection* conn) : conn_(conn) {}
  Result<PgRows> Exec(std::string_view sql, const std::vector<PgParam>& params) override {
    if (conn_ == nullptr) {
      return FailedPrecondition(
          "the inbox transaction is over; use it only in the handler");
    }
    return conn_->Exec(sql, params);
  }
  void Close() { conn_ = nullptr; }

 private:
  PgConnection* conn_;
};

class Pool {
 public:
  explicit Pool(const PostgresInboxOptions& options) : options_(options) {}

  Result<std::unique_ptr<PgConnection>> Take() {
    {
      std::unique_lock lock(mutex_);
      returned_.wait(lock,
                     [this] { return !idle_.empty() || open_ < options_.pool_size; });
      if (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        return conn;
      }
      ++open_;
    }
    auto conn = PgConnection::Connect(options_.conninfo, options_.connect_timeout_s);
    if (!conn.ok()) Forget();
    return conn;
  }

  // Keeps a connection that is healthy and outside a transaction.
  void Give(std::unique_ptr<PgConnection> conn) {
    if (!conn->healthy() || conn->transaction_status() != PQTRANS_IDLE) {
      conn.reset();
      return Forget();
    }
    {
      std::lock_guard lock(mutex_);
      idle_.push_back(std::move(conn));
    }
    returned_.notify_one();
  }

 private:
  void Forget() {
    {
      std::lock_guard lock(mutex_);
      --open_;
    }
    returned_.notify_one();
  }

  const PostgresInboxOptions options_;
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  size_t open_ = 0;
};

class PostgresInboxImpl final : public PostgresInbox {
 public:
  explicit PostgresInboxImpl(const PostgresInboxOptions& options)
      : options_(options), pool_(options) {}

  Status Init() {
    auto conn = pool_.Take();
    if (!conn.ok()) return conn.status();
    Status migrated = Migrate(**conn, options_.auto_migrate);
    pool_.Give(std::move(*conn));
    return migrated;
  }

  Result<InboxOutcome> Process(
      std::string_view message_id,
      const std::function<Status(PgTransaction&)>& handler) override {
    if (message_id.empty()) return InvalidArgument("message id is empty");
    auto conn = pool_.Take();
    if (!conn.ok()) return conn.status();
    Result<InboxOutcome> outcome = ProcessOn(**conn, message_id, handler);
    pool_.Give(std::move(*conn));
    return outcome;
  }

  Result<size_t> Sweep(size_t limit) override {
    auto conn = pool_.Take();
    if (!conn.ok()) return conn.status();
    auto rows = (*conn)->Exec(kSweep, {options_.consumer, std::to_string(limit)});
    pool_.Give(std::move(*conn));
    if (!rows.ok()) return rows.status();
    return static_cast<size_t>(rows->affected);
  }

 private:
  Result<InboxOutcome> ProcessOn(PgConnection& conn, std::string_view message_id,
                                 const std::function<Status(PgTransaction&)>& handler) {
    if (auto begun = conn.Exec("BEGIN"); !begun.ok()) return begun.status();
    auto rollback = [&conn](Status status) -> Result<InboxOutcome> {
      (void)conn.Exec("ROLLBACK");
      return status;
    };
    auto marked = conn.Exec(kMark, {options_.consumer, std::string(message_id),
                                    std::to_string(options_.retention_ms)});
    if (!marked.ok()) return rollback(marked.status());
    if (marked->rows.empty()) {
      if (auto ended = conn.Exec("COMMIT"); !ended.ok()) return ended.status();
      return InboxOutcome::kDuplicate;
    }

    Transaction tx(&conn);
    Status handled;
    try {
      handled = handler(tx);
    } catch (...) {
      handled = internal::OutcomeOfCurrentException().status;
    }
    tx.Close();
    if (!handled.ok()) return rollback(handled);
    switch (conn.transaction_status()) {
      case PQTRANS_INTRANS:
        break;
      case PQTRANS_INERROR:
        return rollback(Internal(
            "a statement of the handler failed; the transaction was rolled back"));
      default:
        return rollback(FailedPrecondition(
            "the handler ended the inbox transaction itself (COMMIT or ROLLBACK)"));
    }
    auto committed = conn.Exec("COMMIT");
    if (!committed.ok()) return committed.status();
    if (conn.last_command() != "COMMIT") {
      return Internal("postgresql answered " + conn.last_command() + " to COMMIT");
    }
    return InboxOutcome::kProcessed;
  }

  const PostgresInboxOptions options_;
  Pool pool_;
};

}  // namespace

Result<std::unique_ptr<PostgresInbox>> PostgresInbox::Open(
    const PostgresInboxOptions& options) {
  if (options.consumer.empty()) return InvalidArgument("consumer is empty");
  if (options.pool_size == 0) return InvalidArgument("pool_size is 0");
  if (options.retention_ms <= 0) return InvalidArgument("retention_ms must be positive");
  auto inbox = std::make_unique<PostgresInboxImpl>(options);
  if (Status s = inbox->Init(); !s.ok()) return s;
  return std::unique_ptr<PostgresInbox>(std::move(inbox));
}

}  // namespace idem
