// postgres_inbox: the transactional inbox on PostgreSQL.
//
//   postgres_inbox CONNINFO
//   e.g. postgres_inbox postgresql://app@127.0.0.1:5432/shop
//
// Applies payments from an at-least-once queue to a ledger table. The
// inbox's dedupe row and the handler's INSERT commit in one transaction on
// the same connection, so a redelivered message is a duplicate and a crash
// anywhere leaves either both or neither. A failing handler rolls back and
// the message stays unprocessed for the next delivery.
// Creates the tables it needs (idem_inbox via auto_migrate, and
// example_ledger on its own connection). Each run uses fresh message ids,
// so it can be re-run.
// Exits 0 when every payment is in the ledger exactly once.
#include "idem/postgres_inbox.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "idem/keys.h"

namespace {

struct Message {
  std::string id;
  std::string account;
  int cents;
};

// The application's own connection, for its schema and its reports.
struct PgConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using PgConn = std::unique_ptr<PGconn, PgConnCloser>;

// One statement; its first value, or "" (and a message) on failure.
std::string QueryOne(PGconn* conn, const std::string& sql) {
  PGresult* result = PQexec(conn, sql.c_str());
  std::string value;
  const ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_TUPLES_OK && PQntuples(result) > 0) {
    value = PQgetvalue(result, 0, 0);
  } else if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::cerr << PQresultErrorMessage(result);
  }
  PQclear(result);
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: postgres_inbox CONNINFO\n";
    return 2;
  }
  idem::PostgresInboxOptions options;
  options.conninfo = argv[1];
  options.consumer = "ledger-example";
  auto inbox = idem::PostgresInbox::Open(options);
  if (!inbox.ok()) {
    std::cerr << "cannot open the inbox: " << inbox.status() << '\n';
    return 2;
  }
  PgConn app(PQconnectdb(argv[1]));
  if (PQstatus(app.get()) != CONNECTION_OK) {
    std::cerr << "cannot connect: " << PQerrorMessage(app.get());
    return 2;
  }
  QueryOne(app.get(),
           "CREATE TABLE IF NOT EXISTS example_ledger ("
           " id bigserial PRIMARY KEY, message_id text NOT NULL,"
           " account text NOT NULL, cents integer NOT NULL)");
  const std::string run = idem::NewUuidV7();

  // m1 and m2 are delivered twice; m3 first meets a handler error.
  const std::vector<Message> deliveries = {
      {run + "/m1", "alice", 500}, {run + "/m2", "bob", 700},
      {run + "/m1", "alice", 500}, {run + "/m3", "alice", 100},
      {run + "/m2", "bob", 700},   {run + "/m3", "alice", 100}};
  bool fail_once = true;
  int processed = 0;
  int duplicates = 0;
  for (const Message& msg : deliveries) {
    auto outcome =
        (*inbox)->Process(msg.id, [&](idem::PgTransaction& tx) -> idem::Status {
          auto inserted = tx.Exec(
              "INSERT INTO example_ledger (message_id, account, cents) VALUES ($1, $2, "
              "$3)",
              {msg.id, msg.account, std::to_string(msg.cents)});
          if (!inserted.ok()) return inserted.status();
          if (msg.id == run + "/m3" && fail_once) {
            fail_once = false;  // the INSERT above is rolled back with the mark
            return idem::Unavailable("the fraud check timed out");
          }
          return idem::Status();
        });
    if (!outcome.ok()) {
      std::cout << "not processed (" << outcome.status() << "), left for redelivery\n";
      continue;
    }
    const bool dup = *outcome == idem::InboxOutcome::kDuplicate;
    std::cout << msg.id.substr(run.size() + 1) << ": "
              << (dup ? "duplicate" : "processed") << '\n';
    (dup ? duplicates : processed)++;
  }

  const int rows = std::atoi(
      QueryOne(app.get(), "SELECT count(*) FROM example_ledger WHERE message_id LIKE '" +
                              run + "/%'")
          .c_str());
  std::cout << "processed " << processed << ", duplicates " << duplicates
            << ", ledger rows " << rows << '\n';
  const bool ok = processed == 3 && duplicates == 2 && rows == 3;
  std::cout << (ok ? "postgres_inbox: ok\n" : "postgres_inbox: FAILED\n");
  return ok ? 0 : 1;
}
