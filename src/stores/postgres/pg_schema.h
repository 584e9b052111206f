// The SQL of the PostgreSQL store: the versioned migrations that create its
// table, and the prepared statements every Store call runs, built once
// for a configured schema and table name. Pure, thread-safe. Internal to
// the PostgreSQL store; docs/stores.md explains each statement.
#pragma once

#include <libpq-fe.h>

#include <string>
#include <string_view>
#include <vector>

#include "idem/status.h"

namespace idem::pg {

// One prepared statement: its name on the connection, text and parameter
// types (every parameter and result travels in binary).
struct Statement {
  std::string name;
  std::string sql;
  std::vector<Oid> param_types;
  // A write whose commit waits for the WAL flush (Complete, Checkpoint,
  // Delete; Begin, Extend, Release with sync_leases). Durable statements run on the
  // commit connections, and those queued together share one transaction, hence one flush
  // (a commit group, see pg_client.h). So they must answer outcomes as rows, never as
  // errors, and their callers must run them again when the group is rolled
  // back (Reply::group_rolled_back).
  bool durable = false;
};

// Indexes into Schema::statements.
enum StatementId : size_t {
  kBegin,
  kBeginAnswering,
  kComplete,
  kRelease,
  kExtend,
  kCheckpoint,
  kGet,
  kWatch,
  kDelete,
  kSweep,
  kPing,
  kStatementCount,
};

// Verdicts of the other owner-checked statements (their first column).
enum Verdict : int32_t {
  kVerdictOk = 0,
  kVerdictLeaseLost = 1,  // gone, expired or owned by another lease
  kVerdictCompleted = 2,  // the caller's record is already completed
  kVerdictRaced = 3,      // a concurrent change: run the statement again
};

// The record columns, in the order Get and Watch return them.
inline constexpr int kRecordColumnCount = 13;

// What Begin returns when it acquired the key (nothing when it did not).
// BeginAnswering returns one row: `acquired` (bool), these four columns
// from kAnsweringFirstBeginColumn on, then the record (kRecordColumnCount
// columns from kAnsweringFirstRecordColumn on) when it did not acquire.
enum BeginColumn : int {
  kBeginFence,
  kBeginRecoveryPhase,
  kBeginRecoveryState,
  kBeginCreatedAt,
  kBeginColumnCount,
};
inline constexpr int kAnsweringFirstBeginColumn = 1;
inline constexpr int kAnsweringFirstRecordColumn = 1 + kBeginColumnCount;

// What Complete returns when it stored the response (nothing when the
// caller does not own the live in-flight record).
enum CompleteColumn : int {
  kCompleteFingerprint,
  kCompleteFence,
  kCompleteLeaseExpiresAt,
  kCompleteCreatedAt,
};

struct Migration {
  int version;
  std::string description;
  std::vector<std::string> statements;
};

struct Schema {
  std::string quoted_schema;          // "schema"
  std::string qualified_table;        // "schema"."table"
  std::string version_table;          // "schema"."table_schema_version"
  std::string lock_name;              // advisory lock for migrations
  std::string channel;                // NOTIFY channel
  std::vector<Statement> statements;  // by StatementId
  std::vector<Migration> migrations;  // ascending versions, 1..latest
};

// kInvalidArgument for an empty or NUL-carrying schema or table name.
// `sync_leases`: the lease writes (Begin, Extend, Release) commit
// synchronously too, as durable statements; otherwise with
// synchronous_commit = off.
Result<Schema> BuildSchema(std::string_view schema, std::string_view table,
                           bool sync_leases = false);

}  // namespace idem::pg
