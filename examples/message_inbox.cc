// message_inbox: consume an at-least-once queue without doubling effects.
//
//   message_inbox [STORE_URI]     (default: memory:)
//
// A queue redelivers messages (a consumer crashed before its ack, a
// producer retried a publish). Inbox::Process runs the handler once per
// message id; redeliveries are reported as duplicates and simply acked.
// A failing handler leaves the message unprocessed for the next delivery.
// Exits 0 when every payment was applied exactly once.
#include <deque>
#include <iostream>
#include <map>
#include <string>

#include "idem/inbox.h"
#include "idem/open_store.h"

namespace {

struct Message {
  std::string id;
  std::string account;
  int cents;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string uri = argc > 1 ? argv[1] : "memory:";
  auto store = idem::OpenStore(uri);
  if (!store.ok()) {
    std::cerr << "cannot open " << uri << ": " << store.status() << '\n';
    return 2;
  }
  idem::InboxOptions options;
  options.consumer = "ledger";
  idem::Inbox inbox(std::make_shared<idem::Engine>(*store), options);

  // m1 and m2 arrive twice; the first delivery of m3 meets a failing
  // database and is delivered again.
  std::deque<Message> queue = {{"m1", "alice", 500}, {"m2", "bob", 700},
                               {"m1", "alice", 500}, {"m3", "alice", 100},
                               {"m2", "bob", 700},   {"m3", "alice", 100}};
  std::map<std::string, int> balance;
  bool database_down_once = true;
  int acked = 0;
  int processed = 0;
  int duplicates = 0;
  while (!queue.empty()) {
    Message msg = queue.front();
    queue.pop_front();
    auto outcome = inbox.Process(msg.id, [&]() -> idem::Status {
      if (msg.id == "m3" && database_down_once) {
        database_down_once = false;
        return idem::Unavailable("database down");
      }
      balance[msg.account] += msg.cents;
      return idem::Status();
    });
    if (!outcome.ok()) {
      std::cout << msg.id << ": not processed (" << outcome.status()
                << "), left for redelivery\n";
      continue;  // no ack: the queue delivers it again
    }
    const bool dup = *outcome == idem::InboxOutcome::kDuplicate;
    std::cout << msg.id << ": " << (dup ? "duplicate, acked" : "processed, acked")
              << '\n';
    (dup ? duplicates : processed)++;
    ++acked;
  }
  std::cout << "processed " << processed << ", duplicates " << duplicates << ", alice "
            << balance["alice"] << ", bob " << balance["bob"] << '\n';
  const bool ok = processed == 3 && duplicates == 2 && balance["alice"] == 600 &&
                  balance["bob"] == 700 && acked == 5;
  std::cout << (ok ? "message_inbox: ok\n" : "message_inbox: FAILED\n");
  return ok ? 0 : 1;
}
