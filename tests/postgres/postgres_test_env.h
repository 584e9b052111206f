// Shared pieces of the PostgreSQL store tests: one server for the whole
// program (a gtest Environment), a fresh database per test, and small SQL
// helpers to look at what the store wrote.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "idem/postgres_store.h"
#include "idem/status.h"
#include "postgres/postgres_server.h"

namespace idem::testing {

// The server the Environment started (null if it failed to start).
PostgresServer* SharedPostgres();

// A database no other test uses; its URI.
std::string FreshDatabase();

// Options for a store on `uri` with short time-outs and auto_migrate.
PostgresStoreOptions TestStoreOptions(const std::string& uri,
                                      std::shared_ptr<Clock> clock = nullptr);

// Runs one SQL statement; returns the first column of the first row as
// text ("" for none).
Result<std::string> QuerySql(const std::string& uri, const std::string& sql);

}  // namespace idem::testing
