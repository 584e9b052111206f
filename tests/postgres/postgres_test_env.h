// Shared pieces of the PostgreSQL store tests: one server for the whole
// program (a gtest Environment) and a fresh database per test; RunSql
// (postgres_server.h) looks at what the store wrote.
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

}  // namespace idem::testing
