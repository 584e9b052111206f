// The PostgreSQL transactional inbox against a real server (the
// PostgresServer fixture of tests/postgres): deliveries of one message
// (repeated, concurrent, after a consumer was killed) change the database
// once, counted in an `effects` table without a unique constraint.
#include "idem/postgres_inbox.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "idem/open_store.h"
#include "lib/store_scenarios.h"
#include "lib/subprocess.h"
#include "postgres/postgres_server.h"

namespace idem {
namespace {

using namespace std::chrono_literals;

class PostgresInboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = testing::PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  // A fresh database per test, with the effects table.
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    const std::string name =
        "inbox_" + std::to_string(++databases_) + "_" +
        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())
            .substr(0, 30);
    ASSERT_TRUE(server_->CreateDatabase(name).ok());
    uri_ = server_->Uri(name);
    Sql("CREATE TABLE effects (id bigserial PRIMARY KEY, message_id text NOT NULL)");
  }

  std::string Sql(const std::string& statement) {
    PGconn* conn = PQconnectdb(uri_.c_str());
    std::string value;
    if (PQstatus(conn) == CONNECTION_OK) {
      PGresult* r = PQexec(conn, statement.c_str());
      if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        value = PQgetvalue(r, 0, 0);
      } else if (PQresultStatus(r) != PGRES_COMMAND_OK &&
                 PQresultStatus(r) != PGRES_TUPLES_OK) {
        ADD_FAILURE() << statement << ": " << PQresultErrorMessage(r);
      }
      PQclear(r);
    } else {
      ADD_FAILURE() << PQerrorMessage(conn);
    }
    PQfinish(conn);
    return value;
  }

  int Effects(const std::string& message_id) {
    return std::stoi(
        Sql("SELECT count(*) FROM effects WHERE message_id = '" + message_id + "'"));
  }

  std::unique_ptr<PostgresInbox> Open(PostgresInboxOptions options = {}) {
    options.conninfo = uri_;
    if (options.consumer == "default") options.consumer = "crash-test";
    auto inbox = PostgresInbox::Open(options);
    EXPECT_TRUE(inbox.ok()) << inbox.status();
    return inbox.ok() ? std::move(*inbox) : nullptr;
  }

  static std::function<Status(PgTransaction&)> InsertEffect(const std::string& id) {
    return [id](PgTransaction& tx) {
      return tx.Exec("INSERT INTO effects (message_id) VALUES ($1)", {id}).status();
    };
  }

  static testing::PostgresServer* server_;
  static int databases_;
  std::string uri_;
};

testing::PostgresServer* PostgresInboxTest::server_ = nullptr;
int PostgresInboxTest::databases_ = 0;

TEST_F(PostgresInboxTest, AMessageDeliveredFiveTimesChangesTheDatabaseOnce) {
  auto inbox = Open();
  ASSERT_NE(inbox, nullptr);
  for (int delivery = 0; delivery < 5; ++delivery) {
    auto outcome = inbox->Process("msg-1", InsertEffect("msg-1"));
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(*outcome,
              delivery == 0 ? InboxOutcome::kProcessed : InboxOutcome::kDuplicate);
  }
  EXPECT_EQ(Effects("msg-1"), 1);
  EXPECT_EQ(Sql("SELECT count(*) FROM idem_inbox"), "1");
}

TEST_F(PostgresInboxTest, ConcurrentDeliveriesChangeTheDatabaseOnce) {
  PostgresInboxOptions options;
  options.pool_size = 8;
  auto inbox = Open(options);
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> processed{0};
  std::atomic<int> duplicates{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int delivery = 0; delivery < 5; ++delivery) {
        auto outcome = inbox->Process("msg-1", [](PgTransaction& tx) -> Status {
          auto slow = tx.Exec("SELECT pg_sleep(0.05)");  // widen the race
          if (!slow.ok()) return slow.status();
          return tx.Exec("INSERT INTO effects (message_id) VALUES ('msg-1')").status();
        });
        if (!outcome.ok()) {
          ++errors;
        } else {
          (*outcome == InboxOutcome::kProcessed ? processed : duplicates)++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(processed.load(), 1);
  EXPECT_EQ(duplicates.load(), 39);
  EXPECT_EQ(Effects("msg-1"), 1);
}

TEST_F(PostgresInboxTest, KilledConsumersNeitherLoseNorDoubleTheEffect) {
  libtest::TempDir dir;
  auto child = [&](const std::string& mode) {
    return libtest::RunChild({IDEM_POSTGRES_INBOX_CHILD, uri_, "msg-1", mode},
                             dir.File("child.log"), 60s);
  };
  // Killed inside the handler, before COMMIT: nothing is kept.
  auto killed = child("crash-in-handler");
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(killed->signal, 9) << libtest::ReadFileOrEmpty(dir.File("child.log"));
  EXPECT_EQ(Effects("msg-1"), 0);

  // Redelivered, committed, killed before the ack.
  auto unacked = child("crash-before-ack");
  ASSERT_TRUE(unacked.ok());
  EXPECT_EQ(unacked->signal, 9);
  EXPECT_EQ(Effects("msg-1"), 1);

  // Redelivered again: a duplicate, acked this time.
  auto acked = child("ok");
  ASSERT_TRUE(acked.ok() && acked->Success())
      << libtest::ReadFileOrEmpty(dir.File("child.log"));
  EXPECT_NE(libtest::ReadFileOrEmpty(dir.File("child.log")).find("duplicate"),
            std::string::npos);

  // Two more deliveries in this process: five in all, one effect.
  auto inbox = Open();
  ASSERT_NE(inbox, nullptr);
  EXPECT_EQ(*inbox->Process("msg-1", InsertEffect("msg-1")), InboxOutcome::kDuplicate);
  EXPECT_EQ(*inbox->Process("msg-1", InsertEffect("msg-1")), InboxOutcome::kDuplicate);
  EXPECT_EQ(Effects("msg-1"), 1);
}

TEST_F(PostgresInboxTest, HandlerErrorRollsBackAndLeavesTheMessageUnprocessed) {
  auto inbox = Open();
  ASSERT_NE(inbox, nullptr);
  auto failing = [](PgTransaction& tx) -> Status {
    auto r = tx.Exec("INSERT INTO effects (message_id) VALUES ('m')");
    if (!r.ok()) return r.status();
    return Unavailable("downstream check failed");
  };
  EXPECT_EQ(inbox->Process("m", failing).status().code(), StatusCode::kUnavailable);
  auto throwing = [](PgTransaction& tx) -> Status {
    (void)tx.Exec("INSERT INTO effects (message_id) VALUES ('m')");
    throw std::runtime_error("handler bug");
  };
  EXPECT_EQ(inbox->Process("m", throwing).status().code(), StatusCode::kInternal);
  EXPECT_EQ(Effects("m"), 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM idem_inbox"), "0");
  EXPECT_EQ(*inbox->Process("m", InsertEffect("m")), InboxOutcome::kProcessed);
  EXPECT_EQ(Effects("m"), 1);
}

TEST_F(PostgresInboxTest, AFailedStatementRollsBackEvenIfTheHandlerIgnoresIt) {
  auto inbox = Open();
  ASSERT_NE(inbox, nullptr);
  auto sloppy = [](PgTransaction& tx) -> Status {
    (void)tx.Exec("INSERT INTO effects (message_id) VALUES ('m')");
    (void)tx.Exec("INSERT INTO no_such_table VALUES (1)");
    return Status();
  };
  EXPECT_FALSE(inbox->Process("m", sloppy).ok());
  EXPECT_EQ(Effects("m"), 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM idem_inbox"), "0");
}

TEST_F(PostgresInboxTest, AHandlerThatEndsTheTransactionIsRefused) {
  auto inbox = Open();
  ASSERT_NE(inbox, nullptr);
  auto rogue = [](PgTransaction& tx) -> Status { return tx.Exec("ROLLBACK").status(); };
  EXPECT_EQ(inbox->Process("m", rogue).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(*inbox->Process("m", InsertEffect("m")), InboxOutcome::kProcessed);
  EXPECT_EQ(Effects("m"), 1);
}

TEST_F(PostgresInboxTest, ExpiredMarksAreSweptAndTheIdMayRunAgain) {
  PostgresInboxOptions options;
  options.retention_ms = 1;
  auto inbox = Open(options);
  ASSERT_NE(inbox, nullptr);
  EXPECT_EQ(*inbox->Process("m", InsertEffect("m")), InboxOutcome::kProcessed);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(*inbox->Process("m", InsertEffect("m")), InboxOutcome::kProcessed);
  std::this_thread::sleep_for(20ms);
  auto swept = inbox->Sweep(100);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(*swept, 1u);
  EXPECT_EQ(Sql("SELECT count(*) FROM idem_inbox"), "0");
}

TEST_F(PostgresInboxTest, ConsumersHaveSeparateInboxes) {
  PostgresInboxOptions billing;
  billing.consumer = "billing";
  PostgresInboxOptions email;
  email.consumer = "email";
  auto a = Open(billing);
  auto b = Open(email);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a->Process("m", InsertEffect("m")), InboxOutcome::kProcessed);
  EXPECT_EQ(*b->Process("m", InsertEffect("m")), InboxOutcome::kProcessed);
  EXPECT_EQ(*a->Process("m", InsertEffect("m")), InboxOutcome::kDuplicate);
  EXPECT_EQ(Effects("m"), 2);
}

TEST_F(PostgresInboxTest, SchemaIsVersioned) {
  PostgresInboxOptions manual;
  manual.conninfo = uri_;
  manual.auto_migrate = false;
  EXPECT_EQ(PostgresInbox::Open(manual).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_NE(Open(), nullptr);  // migrates to version 1
  EXPECT_EQ(Sql("SELECT max(version) FROM idem_inbox_schema"), "1");
  EXPECT_TRUE(PostgresInbox::Open(manual).ok());  // now present
  ASSERT_NE(Open(), nullptr);                     // migrating again is a no-op
  Sql("INSERT INTO idem_inbox_schema (version) VALUES (2)");
  auto newer = PostgresInbox::Open(manual);
  EXPECT_EQ(newer.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(PostgresInboxTest, UnreachableServerIsUnavailable) {
  PostgresInboxOptions options;
  options.conninfo = "postgresql://idem@127.0.0.1:1/postgres";
  options.connect_timeout_s = 2;
  EXPECT_EQ(PostgresInbox::Open(options).status().code(), StatusCode::kUnavailable);
}

TEST_F(PostgresInboxTest, ExampleProgramRuns) {
  libtest::TempDir dir;
  auto run = libtest::RunChild({IDEM_EXAMPLE_POSTGRES_INBOX, uri_}, dir.File("out"), 60s);
  const std::string out = libtest::ReadFileOrEmpty(dir.File("out"));
  ASSERT_TRUE(run.ok() && run->Success()) << out;
  EXPECT_NE(out.find("processed 3, duplicates 2, ledger rows 3"), std::string::npos)
      << out;
}

TEST_F(PostgresInboxTest, LibraryScenariosOnThePostgresStore) {
  StoreOpenOptions options;
  options.auto_migrate = true;
  auto store = OpenStore(uri_, options);
  ASSERT_TRUE(store.ok()) << store.status();
  libtest::AllLibraryScenarios(*store);
}

}  // namespace
}  // namespace idem
