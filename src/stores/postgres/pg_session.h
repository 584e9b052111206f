// A blocking PostgreSQL connection whose every step has a deadline, for
// the one-off work around the store: migrations, the schema check at open,
// and the admin command. It drives libpq's non-blocking API with poll(2),
// so a server that stops answering costs at most the time-out, never a
// hang. Not thread-safe: one thread uses a session at a time.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "idem/status.h"
#include "stores/postgres/pg_handles.h"

namespace idem::pg {

// The keyword/value arrays for PQconnectStartParams: idem's defaults
// (application name, TCP keep-alives) first, so anything in `conninfo`
// (expanded as the dbname entry) overrides them.
struct ConnectParams {
  explicit ConnectParams(const std::string& conninfo);
  ConnectParams(const ConnectParams&) = delete;
  ConnectParams& operator=(const ConnectParams&) = delete;

  std::vector<const char*> keywords;
  std::vector<const char*> values;

 private:
  std::string conninfo_;
};

class Session {
 public:
  // kUnavailable when the server cannot be reached within connect_timeout.
  static Result<Session> Open(const std::string& conninfo,
                              std::chrono::milliseconds connect_timeout,
                              std::chrono::milliseconds statement_timeout);

  // Runs one statement with text parameters; returns its result (rows or
  // command status). Errors map through StatusFromError.
  Result<ResultPtr> Query(std::string_view sql,
                          const std::vector<std::string>& params = {});
  Status Exec(std::string_view sql, const std::vector<std::string>& params = {});

 private:
  Session(ConnPtr conn, std::chrono::milliseconds statement_timeout)
      : conn_(std::move(conn)), statement_timeout_(statement_timeout) {}

  ConnPtr conn_;
  std::chrono::milliseconds statement_timeout_;
};

}  // namespace idem::pg
