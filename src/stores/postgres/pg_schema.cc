#include "stores/postgres/pg_schema.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "idem/fingerprint.h"
#include "stores/postgres/pg_wire.h"

namespace idem::pg {
namespace {

constexpr std::string_view kColumns =
    "key, state, fingerprint, owner, fence, lease_expires_at_ms, recovery_phase, "
    "recovery_state, response_status, response_headers, response_body, "
    "created_at_ms, expires_at_ms";

// Replaces each {name} in `sql` with its value, in one pass (values are
// never scanned again, so a quoted name holding braces stays as it is).
std::string Fill(std::string_view sql,
                 const std::vector<std::pair<std::string_view, std::string>>& values) {
  std::string out;
  while (!sql.empty()) {
    const size_t open = sql.find('{');
    const size_t close = open == std::string_view::npos ? open : sql.find('}', open);
    if (close == std::string_view::npos) break;
    out += sql.substr(0, open);
    const std::string_view name = sql.substr(open + 1, close - open - 1);
    auto it = std::find_if(values.begin(), values.end(),
                           [name](const auto& v) { return v.first == name; });
    out +=
        it != values.end() ? it->second : std::string(sql.substr(open, close - open + 1));
    sql.remove_prefix(close + 1);
  }
  out += sql;
  return out;
}

// Columns of the row `alias` in kColumns order ("r.key, r.state, ...").
std::string Prefixed(std::string_view alias) {
  std::string out;
  std::string_view rest = kColumns;
  while (!rest.empty()) {
    const size_t comma = rest.find(", ");
    out += std::string(alias) + "." + std::string(rest.substr(0, comma));
    if (comma == std::string_view::npos) break;
    out += ", ";
    rest.remove_prefix(comma + 2);
  }
  return out;
}

// pg_notify with a payload of one event letter and the hex SHA-256 of the
// key (payloads are text and bounded; keys are bytes and are not).
std::string Notify(const std::string& channel, char event) {
  return "pg_notify(" + QuoteLiteral(channel) + ", '" + std::string(1, event) +
         "' || encode(sha256(key), 'hex'))";
}

// Appended to the RETURNING list of a write whose commit need not wait for
// the WAL flush: run for every row the statement writes, it makes that
// transaction's commit asynchronous (synchronous_commit is read at commit;
// is_local = true confines it to this transaction). docs/stores.md
// "Durability" says what a crash of PostgreSQL can then lose.
constexpr std::string_view kAsyncCommit =
    ", set_config('synchronous_commit', 'off', true) AS async_commit";

// For the lease writes (Begin, Extend, Release).
std::string LeaseCommit(bool sync_leases) {
  return sync_leases ? "" : std::string(kAsyncCommit);
}

// `lease_commit`: LeaseCommit() for the lease writes, "" for the others.
std::vector<std::pair<std::string_view, std::string>> OwnerChecked(
    const std::string& t, const std::string& channel, std::string lease_commit = "") {
  return {
      {"cur", Fill("cur AS (SELECT state, owner FROM {t} "
                   "WHERE key = $1 AND expires_at_ms > $3)",
                   {{"t", t}})},
      {"owned", "key = $1 AND owner = $2 AND state = 1 AND expires_at_ms > $3"},
      {"verdict",
       "WHEN NOT EXISTS (SELECT 1 FROM cur WHERE owner = $2) THEN 1 "
       "WHEN EXISTS (SELECT 1 FROM cur WHERE state = 2) THEN 2 ELSE 3 END"},
      {"t", t},
      {"notify_c", Notify(channel, 'c')},
      {"notify_r", Notify(channel, 'r')},
      {"lease_commit", std::move(lease_commit)},
  };
}

// $1 key, $2 fingerprint, $3 owner, $4 now, $5 lease expiry, $6 expiry.
// One row (BeginColumn) when it acquired the key: a new record, a fresh one
// over an expired row, or a takeover of a lapsed lease (fence + 1, the
// recovery point kept). No row otherwise. The NOT EXISTS guard keeps a
// live record (a replay, a duplicate in flight) from reaching ON CONFLICT,
// which would lock its row: it then writes nothing and needs no
// transaction id.
std::string BeginSql(const std::string& t, bool sync_leases) {
  return Fill(R"sql(
INSERT INTO {t} AS r ({columns})
SELECT $1, 1, $2, $3, 1, $5, ''::bytea, ''::bytea, 0, ''::bytea, ''::bytea, $4, $6
WHERE NOT EXISTS (
  SELECT 1 FROM {t} AS live WHERE live.key = $1 AND live.expires_at_ms > $4
    AND NOT (live.state = 1 AND live.lease_expires_at_ms <= $4 AND live.fingerprint = $2))
ON CONFLICT (key) DO UPDATE SET
  state = 1,
  fingerprint = EXCLUDED.fingerprint,
  owner = EXCLUDED.owner,
  fence = CASE WHEN {fresh} THEN 1 ELSE r.fence + 1 END,
  lease_expires_at_ms = EXCLUDED.lease_expires_at_ms,
  recovery_phase = CASE WHEN {fresh} THEN ''::bytea ELSE r.recovery_phase END,
  recovery_state = CASE WHEN {fresh} THEN ''::bytea ELSE r.recovery_state END,
  response_status = 0, response_headers = ''::bytea, response_body = ''::bytea,
  created_at_ms = CASE WHEN {fresh} THEN EXCLUDED.created_at_ms ELSE r.created_at_ms END,
  expires_at_ms = EXCLUDED.expires_at_ms,
  watched = r.watched AND NOT {fresh}
WHERE {fresh}
   OR (r.state = 1 AND r.lease_expires_at_ms <= $4 AND r.fingerprint = EXCLUDED.fingerprint)
RETURNING r.fence, r.recovery_phase, r.recovery_state, r.created_at_ms{lease_commit})sql",
              {{"t", t},
               {"columns", std::string(kColumns)},
               {"fresh", "r.expires_at_ms <= $4"},
               {"lease_commit", LeaseCommit(sync_leases)}});
}

// Begin that also answers when it does not acquire: one row, `acquired`,
// the BeginColumns when it did, else the record as the statement's
// snapshot saw it (NULLs when it saw none: a concurrent Begin inserted the
// key since). Costlier (the executor initialises the outer query on every
// call), so it is the fallback: for a Begin whose read after the plain
// Begin lost a race (the record changed in between), as happens when
// several callers take and release one key in quick turns.
std::string BeginAnsweringSql(const std::string& t, bool sync_leases) {
  std::string insert = BeginSql(t, sync_leases);
  insert.erase(0, insert.find_first_not_of('\n'));
  return Fill(R"sql(
WITH ins AS ({insert})
SELECT ins.fence IS NOT NULL AS acquired, ins.fence, ins.recovery_phase,
  ins.recovery_state, ins.created_at_ms, {cur_columns}
FROM (SELECT 1) AS one LEFT JOIN ins ON true
LEFT JOIN {t} AS cur ON ins.fence IS NULL AND cur.key = $1)sql",
              {{"t", t}, {"insert", insert}, {"cur_columns", Prefixed("cur")}});
}

// $1 key, $2 owner, $3 now, $4 status, $5 headers, $6 body, $7 expiry.
// One row (CompleteColumn) when it stored the response; no row when the
// caller does not own a live in-flight record (the caller reads the row
// to say why).
std::string CompleteSql(const std::string& t, const std::string& channel) {
  return Fill(R"sql(
UPDATE {t} SET state = 2, response_status = $4, response_headers = $5,
  response_body = $6, recovery_phase = ''::bytea, recovery_state = ''::bytea,
  expires_at_ms = $7
WHERE {owned}
RETURNING fingerprint, fence, lease_expires_at_ms, created_at_ms,
  CASE WHEN watched THEN {notify_c} END AS notified)sql",
              OwnerChecked(t, channel));
}

std::string ReleaseSql(const std::string& t, const std::string& channel,
                       bool sync_leases) {
  return Fill(R"sql(
WITH {cur},
del AS (
  DELETE FROM {t} WHERE {owned}
  RETURNING CASE WHEN watched THEN {notify_r} END AS notified{lease_commit})
SELECT CASE WHEN EXISTS (SELECT 1 FROM del) THEN 0 {verdict} AS verdict)sql",
              OwnerChecked(t, channel, LeaseCommit(sync_leases)));
}

// $4 new lease expiry.
std::string ExtendSql(const std::string& t, bool sync_leases) {
  return Fill(R"sql(
WITH {cur},
upd AS (
  UPDATE {t} SET lease_expires_at_ms = $4, expires_at_ms = GREATEST(expires_at_ms, $4)
  WHERE {owned}
  RETURNING lease_expires_at_ms{lease_commit})
SELECT CASE WHEN upd.lease_expires_at_ms IS NOT NULL THEN 0 {verdict} AS verdict,
  upd.lease_expires_at_ms
FROM (SELECT 1) AS one LEFT JOIN upd ON true)sql",
              OwnerChecked(t, "", LeaseCommit(sync_leases)));
}

// $4 phase, $5 state.
std::string CheckpointSql(const std::string& t) {
  return Fill(R"sql(
WITH {cur},
upd AS (
  UPDATE {t} SET recovery_phase = $4, recovery_state = $5
  WHERE {owned}
  RETURNING 1)
SELECT CASE WHEN EXISTS (SELECT 1 FROM upd) THEN 0 {verdict} AS verdict)sql",
              OwnerChecked(t, ""));
}

// $1 key, $2 now.
std::string GetSql(const std::string& t) {
  return Fill("SELECT {columns} FROM {t} WHERE key = $1 AND expires_at_ms > $2",
              {{"t", t}, {"columns", std::string(kColumns)}});
}

// $1 key, $2 now. The read of a waiter: marks a live in-flight row
// watched (so its Complete or Release will NOTIFY), then answers the row.
// `marked` is true when this statement set the mark. A row in flight and
// unwatched in the snapshot that this statement did not mark was changed
// concurrently: the caller reads again. The mark never waits for the
// flush: losing it in a crash only costs its waiters the fallback poll.
std::string WatchSql(const std::string& t) {
  return Fill(R"sql(
WITH mark AS (
  UPDATE {t} SET watched = true
  WHERE key = $1 AND state = 1 AND expires_at_ms > $2 AND NOT watched
  RETURNING {columns}{async_commit})
SELECT true AS marked, false AS watched, {columns} FROM mark
UNION ALL
SELECT false, watched, {columns} FROM {t}
WHERE key = $1 AND expires_at_ms > $2 AND NOT EXISTS (SELECT 1 FROM mark))sql",
              {{"t", t},
               {"columns", std::string(kColumns)},
               {"async_commit", std::string(kAsyncCommit)}});
}

// $1 key, $2 now: an expired row goes too, but answers "not live".
std::string DeleteSql(const std::string& t, const std::string& channel) {
  return Fill(R"sql(
WITH del AS (
  DELETE FROM {t} WHERE key = $1
  RETURNING expires_at_ms > $2 AS live, {notify_d} AS notified)
SELECT live FROM del)sql",
              {{"t", t}, {"notify_d", Notify(channel, 'd')}});
}

// $1 now, $2 batch. Locks a small batch of expired rows, skipping rows
// another reaper or a Begin holds, and deletes them; the expiry is checked
// again on the row version the lock saw. Its commit never waits for the
// flush: a deletion lost in a crash of PostgreSQL leaves an expired row,
// which reads as absent and is reaped again.
std::string SweepSql(const std::string& t) {
  return Fill(R"sql(
WITH doomed AS (
  SELECT key FROM {t} WHERE expires_at_ms <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED),
del AS (
  DELETE FROM {t} AS r USING doomed
  WHERE r.key = doomed.key AND r.expires_at_ms <= $1
  RETURNING 1{async_commit})
SELECT count(*) FROM del)sql",
              {{"t", t}, {"async_commit", std::string(kAsyncCommit)}});
}

std::vector<Migration> Migrations(const std::string& t, std::string_view table) {
  Migration v1;
  v1.version = 1;
  v1.description = "records table keyed by scope key, index on expiry";
  v1.statements = {
      Fill(R"sql(
CREATE TABLE {t} (
  key bytea PRIMARY KEY,
  state smallint NOT NULL CHECK (state IN (1, 2)),
  fingerprint bytea NOT NULL,
  owner bytea NOT NULL,
  fence bigint NOT NULL,
  lease_expires_at_ms bigint NOT NULL,
  recovery_phase bytea NOT NULL DEFAULT ''::bytea,
  recovery_state bytea NOT NULL DEFAULT ''::bytea,
  response_status integer NOT NULL DEFAULT 0,
  response_headers bytea NOT NULL DEFAULT ''::bytea,
  response_body bytea NOT NULL DEFAULT ''::bytea,
  created_at_ms bigint NOT NULL,
  expires_at_ms bigint NOT NULL,
  watched boolean NOT NULL DEFAULT false))sql",
           {{"t", t}}),
      Fill(
          "CREATE INDEX {index} ON {t} (expires_at_ms)",
          {{"t", t}, {"index", QuoteIdentifier(std::string(table) + "_expires_at_idx")}}),
      Fill("COMMENT ON TABLE {t} IS 'idem idempotency records (docs/stores.md); "
           "times are ms since the Unix epoch'",
           {{"t", t}}),
  };
  // PostgreSQL 15 parses and plans a table's CHECK expressions anew for
  // every INSERT and UPDATE statement: a tenth of the cost of a Begin or a
  // Complete. Every statement writes a literal state and every read
  // validates it (record_row.cc), so the check bought nothing.
  Migration v2;
  v2.version = 2;
  v2.description = "drop the CHECK on state (re-planned by every write)";
  v2.statements = {
      Fill("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {check}",
           {{"t", t}, {"check", QuoteIdentifier(std::string(table) + "_state_check")}}),
  };
  return {v1, v2};
}

bool ValidName(std::string_view name) {
  return !name.empty() && name.size() <= 63 && name.find('\0') == std::string_view::npos;
}

}  // namespace

Result<Schema> BuildSchema(std::string_view schema, std::string_view table,
                           bool sync_leases) {
  if (!ValidName(schema) || !ValidName(table)) {
    return InvalidArgument(
        "postgres schema and table names must be 1 to 63 bytes without NUL");
  }
  if (table.size() + std::string_view("_schema_version").size() > 63) {
    return InvalidArgument("postgres table name too long (at most 48 bytes)");
  }
  Schema s;
  s.quoted_schema = QuoteIdentifier(schema);
  s.qualified_table = s.quoted_schema + "." + QuoteIdentifier(table);
  s.version_table = QuoteIdentifier(schema) + "." +
                    QuoteIdentifier(std::string(table) + "_schema_version");
  const std::string full_name = std::string(schema) + "." + std::string(table);
  s.lock_name = "idem:" + full_name;
  s.channel = "idem:" + full_name;
  if (s.channel.size() > 63) {
    s.channel = "idem:" + HexEncode(Sha256(full_name)).substr(0, 32);
  }

  const std::string& t = s.qualified_table;
  const auto bytea = kByteaOid;
  const auto int8 = kInt8Oid;
  s.statements.resize(kStatementCount);
  // Synchronous leases wait for the flush like results do, so they join
  // the commit groups.
  s.statements[kBegin] = {"idem_begin",
                          BeginSql(t, sync_leases),
                          {bytea, bytea, bytea, int8, int8, int8},
                          sync_leases};
  s.statements[kComplete] = {"idem_complete",
                             CompleteSql(t, s.channel),
                             {bytea, bytea, int8, kInt4Oid, bytea, bytea, int8},
                             /*durable=*/true};
  s.statements[kBeginAnswering] = {"idem_begin_answering",
                                   BeginAnsweringSql(t, sync_leases),
                                   {bytea, bytea, bytea, int8, int8, int8},
                                   sync_leases};
  s.statements[kRelease] = {"idem_release",
                            ReleaseSql(t, s.channel, sync_leases),
                            {bytea, bytea, int8},
                            sync_leases};
  s.statements[kExtend] = {
      "idem_extend", ExtendSql(t, sync_leases), {bytea, bytea, int8, int8}, sync_leases};
  s.statements[kCheckpoint] = {"idem_checkpoint",
                               CheckpointSql(t),
                               {bytea, bytea, int8, bytea, bytea},
                               /*durable=*/true};
  s.statements[kGet] = {"idem_get", GetSql(t), {bytea, int8}};
  s.statements[kWatch] = {"idem_watch", WatchSql(t), {bytea, int8}};
  s.statements[kDelete] = {
      "idem_delete", DeleteSql(t, s.channel), {bytea, int8}, /*durable=*/true};
  s.statements[kSweep] = {"idem_sweep", SweepSql(t), {int8, int8}};
  s.statements[kPing] = {"idem_ping", "SELECT 1", {}};
  s.migrations = Migrations(t, table);
  return s;
}

}  // namespace idem::pg
