// PgConnection: one blocking libpq connection (RAII for PGconn and
// PGresult) and the error mapping of the PostgreSQL inbox. Not
// thread-safe: one thread uses a connection at a time.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "idem/postgres_inbox.h"
#include "idem/status.h"

namespace idem::internal {

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

class PgConnection {
 public:
  // Connects; kUnavailable with libpq's message when it cannot.
  static Result<std::unique_ptr<PgConnection>> Connect(const std::string& conninfo,
                                                       int connect_timeout_s);

  // One statement with text parameters. Errors carry the SQLSTATE:
  // connection failures and shutdowns are kUnavailable, serialization
  // failures and deadlocks kConflict, anything else kInternal.
  Result<PgRows> Exec(std::string_view sql, const std::vector<PgParam>& params = {});

  // The command tag of the last Exec ("COMMIT", "ROLLBACK", "INSERT 0 1").
  const std::string& last_command() const { return last_command_; }

  bool healthy() const { return PQstatus(conn_.get()) == CONNECTION_OK; }
  PGTransactionStatusType transaction_status() const {
    return PQtransactionStatus(conn_.get());
  }

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}

  std::unique_ptr<PGconn, PgConnDeleter> conn_;
  std::string last_command_;
};

}  // namespace idem::internal
