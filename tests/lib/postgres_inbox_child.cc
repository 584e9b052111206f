// A consumer process for the PostgreSQL inbox crash tests:
//
//   postgres_inbox_child CONNINFO MESSAGE_ID MODE
//
// processes MESSAGE_ID once; the handler inserts one row into `effects`.
// MODE: "ok" prints "processed" or "duplicate" (the ack); "crash-in-handler"
// is killed (SIGKILL) after the handler's INSERT, before COMMIT;
// "crash-before-ack" is killed after COMMIT, before the ack.
#include <signal.h>

#include <iostream>
#include <string>

#include "idem/postgres_inbox.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: postgres_inbox_child CONNINFO MESSAGE_ID MODE\n";
    return 2;
  }
  const std::string mode = argv[3];
  idem::PostgresInboxOptions options;
  options.conninfo = argv[1];
  options.consumer = "crash-test";
  auto inbox = idem::PostgresInbox::Open(options);
  if (!inbox.ok()) {
    std::cerr << inbox.status() << '\n';
    return 2;
  }
  auto outcome = (*inbox)->Process(argv[2], [&](idem::PgTransaction& tx) -> idem::Status {
    auto r =
        tx.Exec("INSERT INTO effects (message_id) VALUES ($1)", {std::string(argv[2])});
    if (!r.ok()) return r.status();
    if (mode == "crash-in-handler") raise(SIGKILL);
    return idem::Status();
  });
  if (mode == "crash-before-ack") raise(SIGKILL);
  if (!outcome.ok()) {
    std::cout << "error: " << outcome.status() << std::endl;
    return 1;
  }
  std::cout << (*outcome == idem::InboxOutcome::kProcessed ? "processed" : "duplicate")
            << std::endl;
  return 0;
}
