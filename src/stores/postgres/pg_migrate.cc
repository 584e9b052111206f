#include "stores/postgres/pg_migrate.h"

#include <cstdlib>
#include <string>

#include "idem/postgres_store.h"

namespace idem::pg {
namespace {

Result<int> ReadVersion(Session& session, const Schema& schema) {
  auto exists =
      session.Query("SELECT to_regclass($1) IS NOT NULL", {schema.version_table});
  if (!exists.ok()) return exists.status();
  if (std::string(PQgetvalue(exists->get(), 0, 0)) != "t") return 0;
  auto max =
      session.Query("SELECT coalesce(max(version), 0) FROM " + schema.version_table);
  if (!max.ok()) return max.status();
  return std::atoi(PQgetvalue(max->get(), 0, 0));
}

Status ApplyInTransaction(Session& session, const Schema& schema, int target_version) {
  Status status =
      session.Exec("SELECT pg_advisory_xact_lock(hashtext($1))", {schema.lock_name});
  if (!status.ok()) return status;
  // The schema itself is created only when missing: CREATE SCHEMA IF NOT
  // EXISTS would still demand the CREATE privilege on the database.
  const std::string& namespace_name = schema.quoted_schema;
  auto found = session.Query("SELECT to_regnamespace($1) IS NOT NULL", {namespace_name});
  if (!found.ok()) return found.status();
  if (std::string(PQgetvalue(found->get(), 0, 0)) != "t") {
    status = session.Exec("CREATE SCHEMA " + namespace_name);
    if (!status.ok()) return status;
  }
  status = session.Exec("CREATE TABLE IF NOT EXISTS " + schema.version_table +
                        " (version integer PRIMARY KEY, description text NOT NULL, "
                        "applied_at timestamptz NOT NULL DEFAULT now())");
  if (!status.ok()) return status;
  auto current = ReadVersion(session, schema);
  if (!current.ok()) return current.status();
  const int latest = schema.migrations.back().version;
  if (*current > latest) {
    return FailedPrecondition("postgres schema version " + std::to_string(*current) +
                              " is newer than this idem (" + std::to_string(latest) +
                              ")");
  }
  for (const Migration& migration : schema.migrations) {
    if (migration.version <= *current || migration.version > target_version) continue;
    for (const std::string& sql : migration.statements) {
      status = session.Exec(sql);
      if (!status.ok()) return status;
    }
    status = session.Exec(
        "INSERT INTO " + schema.version_table + " (version, description) VALUES ($1, $2)",
        {std::to_string(migration.version), migration.description});
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

}  // namespace

Result<int> CurrentVersion(Session& session, const Schema& schema) {
  return ReadVersion(session, schema);
}

Status Migrate(Session& session, const Schema& schema, int target_version) {
  Status status = session.Exec("BEGIN");
  if (!status.ok()) return status;
  status = ApplyInTransaction(session, schema, target_version);
  if (!status.ok()) {
    (void)session.Exec("ROLLBACK");
    return status;
  }
  return session.Exec("COMMIT");
}

}  // namespace idem::pg

namespace idem {

Status MigratePostgres(const PostgresStoreOptions& options) {
  auto schema = pg::BuildSchema(options.schema, options.table);
  if (!schema.ok()) return schema.status();
  auto session = pg::Session::Open(options.conninfo, options.connect_timeout,
                                   options.statement_timeout);
  if (!session.ok()) return session.status();
  return pg::Migrate(*session, *schema);
}

Result<int> PostgresSchemaVersion(const PostgresStoreOptions& options) {
  auto schema = pg::BuildSchema(options.schema, options.table);
  if (!schema.ok()) return schema.status();
  auto session = pg::Session::Open(options.conninfo, options.connect_timeout,
                                   options.statement_timeout);
  if (!session.ok()) return session.status();
  return pg::CurrentVersion(*session, *schema);
}

}  // namespace idem
