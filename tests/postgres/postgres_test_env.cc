#include "postgres/postgres_test_env.h"

#include <libpq-fe.h>

#include <atomic>

namespace idem::testing {
namespace {

std::unique_ptr<PostgresServer>& Server() {
  static std::unique_ptr<PostgresServer> server;
  return server;
}

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    Server() = std::move(server).value();
  }
  void TearDown() override { Server().reset(); }
};

[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

}  // namespace

PostgresServer* SharedPostgres() { return Server().get(); }

std::string FreshDatabase() {
  static std::atomic<int> next{0};
  PostgresServer* server = SharedPostgres();
  if (!server) return "";
  const std::string name = "t" + std::to_string(next.fetch_add(1));
  Status created = server->CreateDatabase(name);
  EXPECT_TRUE(created.ok()) << created;
  return server->Uri(name);
}

PostgresStoreOptions TestStoreOptions(const std::string& uri,
                                      std::shared_ptr<Clock> clock) {
  PostgresStoreOptions options;
  options.conninfo = uri;
  options.clock = std::move(clock);
  options.auto_migrate = true;
  options.connect_timeout = std::chrono::milliseconds(2'000);
  options.statement_timeout = std::chrono::milliseconds(2'000);
  options.reconnect_backoff_initial = std::chrono::milliseconds(20);
  options.reconnect_backoff_max = std::chrono::milliseconds(200);
  return options;
}

Result<std::string> QuerySql(const std::string& uri, const std::string& sql) {
  const std::string conninfo = uri + "?connect_timeout=5";
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string error = PQerrorMessage(conn);
    PQfinish(conn);
    return Unavailable(error);
  }
  PGresult* result = PQexec(conn, sql.c_str());
  Result<std::string> out = std::string();
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    out = Internal(PQresultErrorMessage(result));
  } else if (PQntuples(result) > 0 && PQnfields(result) > 0) {
    out = std::string(PQgetvalue(result, 0, 0));
  }
  PQclear(result);
  PQfinish(conn);
  return out;
}

}  // namespace idem::testing
