// Applying and reading the versioned schema over a Session. Internal to
// the PostgreSQL store (the public entry points are MigratePostgres and
// PostgresSchemaVersion in idem/postgres_store.h).
#pragma once

#include "idem/postgres_store.h"
#include "idem/status.h"
#include "stores/postgres/pg_schema.h"
#include "stores/postgres/pg_session.h"

namespace idem::pg {

// The highest version recorded in the version table; 0 when it is absent.
Result<int> CurrentVersion(Session& session, const Schema& schema);

// Brings the schema to its latest migration (or to `target_version`, for
// tests of upgrades) in one transaction, holding a transaction-scoped
// advisory lock so concurrent migrators queue up.
Status Migrate(Session& session, const Schema& schema,
               int target_version = kPostgresSchemaVersion);

}  // namespace idem::pg
