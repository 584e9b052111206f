#include "postgres/postgres_test_env.h"

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

}  // namespace idem::testing
