// PostgresInbox: the transactional inbox on PostgreSQL.
//
// For consumers whose effects are rows in PostgreSQL. Process runs, on one
// connection:
//
//   BEGIN;
//   INSERT INTO idem_inbox (consumer, message_id, ...) VALUES (...)
//     ON CONFLICT (consumer, message_id) DO UPDATE ... WHERE expired
//     RETURNING message_id;
//   -- only if a row came back: handler(tx), whose tx.Exec runs here too
//   COMMIT;
//
// so the dedupe row and the handler's writes commit together or not at
// all: a crash at any point either leaves both (a redelivery is a
// duplicate) or neither (a redelivery processes the message). A concurrent
// delivery of the same id blocks on the row until the first transaction
// ends, then sees a duplicate (commit) or processes it (rollback). A
// handler error or exception rolls everything back and leaves the message
// unprocessed.
//
//   PostgresInboxOptions options;
//   options.conninfo = "postgresql://app@127.0.0.1/shop";
//   options.consumer = "billing";
//   auto inbox = PostgresInbox::Open(options);
//   auto outcome = (*inbox)->Process(msg.id, [&](PgTransaction& tx) -> Status {
//     return tx.Exec("UPDATE accounts SET balance = balance + $1 WHERE id = $2",
//                    {std::to_string(msg.cents), msg.account}).status();
//   });
//
// The table (schema version 1, created by Open when auto_migrate is set,
// recorded in idem_inbox_schema):
//
//   idem_inbox(consumer text, message_id text, processed_at timestamptz,
//              expires_at timestamptz, PRIMARY KEY (consumer, message_id))
//
// A processed id counts for retention_ms; Sweep deletes expired rows.
//
// Thread-safety: a PostgresInbox is thread-safe; it holds a pool of up to
// pool_size connections and each Process uses one for its transaction. The
// handler runs on the calling thread and may only use its PgTransaction
// during the call. libpq is used in blocking mode: call Process from worker
// threads, not from an event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "idem/inbox.h"
#include "idem/status.h"

namespace idem {

// The rows of one statement, as text (NULL is nullopt).
struct PgRows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  int64_t affected = 0;  // rows inserted, updated or deleted
};

using PgParam = std::optional<std::string>;

// The open transaction a handler writes through.
class PgTransaction {
 public:
  virtual ~PgTransaction() = default;
  // Runs one statement with $1.. parameters passed as text (PQexecParams).
  // A failed statement aborts the transaction; Process then rolls back
  // whatever the handler returns.
  virtual Result<PgRows> Exec(std::string_view sql,
                              const std::vector<PgParam>& params = {}) = 0;
};

struct PostgresInboxOptions {
  // libpq connection string or URI. Default: "" (libpq's environment
  // defaults: PGHOST, PGPORT, ...).
  std::string conninfo;
  // Which consumer processes the messages. Default: "default".
  std::string consumer = "default";
  // How long a processed id is remembered, in milliseconds. Default: 7 days.
  int64_t retention_ms = int64_t{7} * 86'400'000;
  // Create the table (and record its version) if missing. Default: true.
  bool auto_migrate = true;
  // Most connections held open. Default: 4.
  size_t pool_size = 4;
  // Connect time-out in seconds (libpq connect_timeout). Default: 10.
  int connect_timeout_s = 10;
};

class PostgresInbox {
 public:
  virtual ~PostgresInbox() = default;

  // Connects once (and migrates); kUnavailable when the server cannot be
  // reached; kFailedPrecondition when the table's schema version is newer
  // than this library knows.
  static Result<std::unique_ptr<PostgresInbox>> Open(const PostgresInboxOptions& options);

  // kProcessed: the handler ran and its writes committed with the mark.
  // kDuplicate: an earlier delivery committed; the handler did not run.
  // Errors: the handler's, or a failed statement's (rolled back);
  // kInvalidArgument for an empty id; kUnavailable when the connection
  // fails (the outcome of an interrupted COMMIT is unknown: redeliver and
  // the inbox decides).
  virtual Result<InboxOutcome> Process(
      std::string_view message_id,
      const std::function<Status(PgTransaction&)>& handler) = 0;

  // Deletes up to `limit` expired rows of this consumer; returns how many.
  virtual Result<size_t> Sweep(size_t limit) = 0;
};

}  // namespace idem
