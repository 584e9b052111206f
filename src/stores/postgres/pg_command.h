// One statement on its way through the connection pool, and its answer.
// Internal to the PostgreSQL store.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "idem/status.h"
#include "stores/postgres/pg_handles.h"
#include "stores/postgres/pg_schema.h"

namespace idem::pg {

using SteadyClock = std::chrono::steady_clock;

// What a statement produced: ok with its result (rows or command status),
// or the reason it failed and the server's SQLSTATE when there was one.
struct Reply {
  Status status;
  std::string sqlstate;
  ResultPtr result;
  // Another statement of its commit group failed, so nothing of this one
  // was committed: it may simply run again.
  bool group_rolled_back = false;
};

struct Command {
  enum class Kind {
    kExecute,  // run `statement` (prepared) with `params`, binary results
    kPrepare,  // prepare `statement` on the connection
    kQuery,    // run `sql` without parameters (connection setup)
  };
  Kind kind = Kind::kExecute;
  const Statement* statement = nullptr;
  std::string sql;
  std::vector<std::string> params;  // binary, in the statement's types
  SteadyClock::time_point deadline;
  std::function<void(Reply)> done;  // runs exactly once
};

// Which pool connections run a command (pg_client.h): durable statements
// the commit connections, everything else the lease connections. (A
// connection's own set-up commands are no lane's.)
enum Lane : size_t { kLeaseLane, kCommitLane, kLaneCount };

inline Lane LaneOf(const Command& command) {
  const bool durable = command.kind == Command::Kind::kExecute &&
                       command.statement != nullptr && command.statement->durable;
  return durable ? kCommitLane : kLeaseLane;
}

}  // namespace idem::pg
