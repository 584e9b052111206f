// The versioned schema: created from nothing, idempotent, recorded in the
// version table, upgraded from an older version with the records kept,
// refused when missing or older (without auto_migrate) or newer than this
// build.
#include <gtest/gtest.h>

#include "idem/open_store.h"
#include "idem/postgres_store.h"
#include "postgres/postgres_test_env.h"
#include "stores/postgres/pg_migrate.h"
#include "stores/postgres/pg_session.h"

namespace idem::testing {
namespace {

TEST(PostgresMigration, CreatesTheSchemaOnceAndRecordsItsVersion) {
  const std::string uri = FreshDatabase();
  PostgresStoreOptions options = TestStoreOptions(uri);
  auto before = PostgresSchemaVersion(options);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(*before, 0);

  ASSERT_TRUE(MigratePostgres(options).ok());
  ASSERT_TRUE(MigratePostgres(options).ok());  // idempotent

  auto after = PostgresSchemaVersion(options);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, kPostgresSchemaVersion);
  EXPECT_EQ(*RunSql(uri, "SELECT count(*) FROM idem_records_schema_version"),
            std::to_string(kPostgresSchemaVersion));
  EXPECT_EQ(*RunSql(uri,
                    "SELECT count(*) FROM pg_indexes WHERE tablename = "
                    "'idem_records' AND indexdef LIKE '%expires_at_ms%'"),
            "1");
}

TEST(PostgresMigration, UpgradesVersionOneKeepingItsRecords) {
  const std::string uri = FreshDatabase();
  PostgresStoreOptions options = TestStoreOptions(uri);
  {
    auto schema = pg::BuildSchema(options.schema, options.table);
    auto session =
        pg::Session::Open(uri, options.connect_timeout, options.statement_timeout);
    ASSERT_TRUE(schema.ok() && session.ok());
    ASSERT_TRUE(pg::Migrate(*session, *schema, /*target_version=*/1).ok());
  }
  ASSERT_EQ(*PostgresSchemaVersion(options), 1);
  const std::string check_count =
      "SELECT count(*) FROM pg_constraint WHERE conrelid = 'idem_records'::regclass "
      "AND contype = 'c'";
  EXPECT_EQ(*RunSql(uri, check_count), "1");
  // A completed record written at version 1.
  ASSERT_TRUE(RunSql(uri,
                     "INSERT INTO idem_records (key, state, fingerprint, owner, fence, "
                     "lease_expires_at_ms, response_status, response_body, "
                     "created_at_ms, expires_at_ms) VALUES ('old', 2, 'fp', 'o', 3, 1, "
                     "201, 'kept', 1, 9000000000000)")
                  .ok());

  options.auto_migrate = false;
  auto refused = NewPostgresStore(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("version 1"), std::string::npos)
      << refused.status();

  ASSERT_TRUE(MigratePostgres(options).ok());
  EXPECT_EQ(*PostgresSchemaVersion(options), kPostgresSchemaVersion);
  EXPECT_EQ(*RunSql(uri, check_count), "0");
  auto store = NewPostgresStore(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto replay = BeginSync(**store, BeginRequest{"old", "fp", "new", 10'000, 60'000});
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->outcome, BeginOutcome::kCompleted);
  EXPECT_EQ(replay->record->fence, 3u);
  EXPECT_EQ(replay->record->response.body, "kept");
}

TEST(PostgresMigration, ConcurrentMigratorsAgree) {
  const std::string uri = FreshDatabase();
  PostgresStoreOptions options = TestStoreOptions(uri);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (!MigratePostgres(options).ok()) failures.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(*RunSql(uri, "SELECT count(*) FROM idem_records_schema_version"),
            std::to_string(kPostgresSchemaVersion));
}

TEST(PostgresMigration, OtherSchemaAndTableNames) {
  const std::string uri = FreshDatabase();
  PostgresStoreOptions options = TestStoreOptions(uri);
  options.schema = "Idem Keys";
  options.table = "records\"v1";
  auto store = NewPostgresStore(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto begun = BeginSync(**store, BeginRequest{"k", "fp", "owner", 10'000, 60'000});
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_EQ(begun->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(*RunSql(uri, "SELECT count(*) FROM \"Idem Keys\".\"records\"\"v1\""), "1");
}

TEST(PostgresMigration, StoreRefusesAMissingSchemaWithoutAutoMigrate) {
  const std::string uri = FreshDatabase();
  PostgresStoreOptions options = TestStoreOptions(uri);
  options.auto_migrate = false;
  auto store = NewPostgresStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("idem migrate"), std::string::npos);

  ASSERT_TRUE(MigratePostgres(options).ok());
  EXPECT_TRUE(NewPostgresStore(options).ok());
}

TEST(PostgresMigration, NewerSchemaIsRefused) {
  const std::string uri = FreshDatabase();
  PostgresStoreOptions options = TestStoreOptions(uri);
  ASSERT_TRUE(MigratePostgres(options).ok());
  ASSERT_TRUE(RunSql(uri,
                     "INSERT INTO idem_records_schema_version (version, "
                     "description) VALUES (99, 'from the future')")
                  .ok());
  EXPECT_EQ(MigratePostgres(options).code(), StatusCode::kFailedPrecondition);
  options.auto_migrate = false;
  EXPECT_EQ(NewPostgresStore(options).status().code(), StatusCode::kFailedPrecondition);
}

TEST(PostgresMigration, OpenStoreHonoursAutoMigrate) {
  const std::string uri = FreshDatabase();
  StoreOpenOptions open;
  open.auto_migrate = false;
  EXPECT_EQ(OpenStore(uri, open).status().code(), StatusCode::kFailedPrecondition);
  open.auto_migrate = true;
  auto store = OpenStore(uri, open);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(PingSync(**store).ok());
  EXPECT_TRUE(GetPostgresStoreStats(**store).ok());
  // The other spelling of the scheme, and a URI with libpq parameters.
  EXPECT_TRUE(OpenStore("postgres" + uri.substr(std::string("postgresql").size()) +
                            "?application_name=idem-test&sslmode=disable",
                        open)
                  .ok());
}

TEST(PostgresMigration, UnreachableServerIsUnavailableQuickly) {
  PostgresStoreOptions options = TestStoreOptions("postgresql://idem@127.0.0.1:1/x");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(NewPostgresStore(options).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(MigratePostgres(options).code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
}  // namespace idem::testing
