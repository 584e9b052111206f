#include "stores/postgres/pg_session.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "stores/postgres/pg_wire.h"

namespace idem::pg {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Waits until the socket is readable (or writable), the deadline passes
// (false) or poll fails (false).
bool WaitSocket(PGconn* conn, bool for_write, SteadyClock::time_point deadline) {
  const int fd = PQsocket(conn);
  if (fd < 0) return false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - SteadyClock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    const int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

ConnectParams::ConnectParams(const std::string& conninfo) : conninfo_(conninfo) {
  keywords = {"application_name",
              "keepalives",
              "keepalives_idle",
              "keepalives_interval",
              "keepalives_count",
              "dbname",
              nullptr};
  values = {"idem", "1", "30", "10", "3", conninfo_.c_str(), nullptr};
}

Result<Session> Session::Open(const std::string& conninfo,
                              std::chrono::milliseconds connect_timeout,
                              std::chrono::milliseconds statement_timeout) {
  const auto deadline = SteadyClock::now() + connect_timeout;
  ConnectParams params(conninfo);
  ConnPtr conn(PQconnectStartParams(params.keywords.data(), params.values.data(), 1));
  if (!conn || PQstatus(conn.get()) == CONNECTION_BAD) {
    return Unavailable("postgres connect: " + ErrorMessage(conn.get()));
  }
  QuietNotices(conn.get());
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (state != PGRES_POLLING_OK) {
    if (state == PGRES_POLLING_FAILED) {
      return Unavailable("postgres connect: " + ErrorMessage(conn.get()));
    }
    if (!WaitSocket(conn.get(), state == PGRES_POLLING_WRITING, deadline)) {
      return Unavailable("postgres connect: timed out");
    }
    state = PQconnectPoll(conn.get());
  }
  if (PQsetnonblocking(conn.get(), 1) != 0) {
    return Unavailable("postgres connect: " + ErrorMessage(conn.get()));
  }
  Session session(std::move(conn), statement_timeout);
  Status status = session.Exec("SELECT set_config('statement_timeout', $1, false)",
                               {std::to_string(statement_timeout.count())});
  if (!status.ok()) return status;
  return session;
}

Result<ResultPtr> Session::Query(std::string_view sql,
                                 const std::vector<std::string>& params) {
  PGconn* conn = conn_.get();
  // A little beyond the server's own statement_timeout, which answers first.
  const auto deadline = SteadyClock::now() + statement_timeout_ + std::chrono::seconds(1);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  const std::string text(sql);
  if (!PQsendQueryParams(conn, text.c_str(), static_cast<int>(values.size()), nullptr,
                         values.data(), nullptr, nullptr, 0)) {
    return Unavailable("postgres: " + ErrorMessage(conn));
  }
  for (;;) {
    const int flushed = PQflush(conn);
    if (flushed == 0) break;
    if (flushed < 0 || !WaitSocket(conn, true, deadline)) {
      return Unavailable("postgres: could not send the statement");
    }
  }
  ResultPtr last;
  for (;;) {
    while (PQisBusy(conn)) {
      if (!WaitSocket(conn, false, deadline)) return Unavailable("postgres: timed out");
      if (!PQconsumeInput(conn)) return Unavailable("postgres: " + ErrorMessage(conn));
    }
    ResultPtr result(PQgetResult(conn));
    if (!result) break;
    if (!last || PQresultStatus(last.get()) != PGRES_FATAL_ERROR) {
      last = std::move(result);
    }
  }
  if (!last) return Unavailable("postgres: " + ErrorMessage(conn));
  const ExecStatusType status = PQresultStatus(last.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    return StatusFromError(SqlState(last.get()), PQresultErrorMessage(last.get()),
                           "statement");
  }
  return last;
}

Status Session::Exec(std::string_view sql, const std::vector<std::string>& params) {
  auto result = Query(sql, params);
  return result.ok() ? Status::Ok() : result.status();
}

}  // namespace idem::pg
