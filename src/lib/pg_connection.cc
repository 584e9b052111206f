#include "lib/pg_connection.h"

#include <cstdlib>
#include <utility>

namespace idem::internal {
namespace {

std::string Trimmed(const char* message) {
  std::string text = message == nullptr ? "" : message;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

Status ErrorOf(PGconn* conn, const PGresult* result) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string sqlstate = state ? state : "";
  std::string message =
      Trimmed(result ? PQresultErrorMessage(result) : PQerrorMessage(conn));
  if (message.empty()) message = Trimmed(PQerrorMessage(conn));
  if (!sqlstate.empty()) message = "[" + sqlstate + "] " + message;
  if (PQstatus(conn) != CONNECTION_OK || sqlstate.rfind("08", 0) == 0 ||
      sqlstate.rfind("57P", 0) == 0) {
    return Unavailable("postgresql: " + message);
  }
  if (sqlstate == "40001" || sqlstate == "40P01") {
    return Conflict("postgresql: " + message);
  }
  return Internal("postgresql: " + message);
}

}  // namespace

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& conninfo,
                                                            int connect_timeout_s) {
  const std::string timeout = std::to_string(connect_timeout_s);
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {conninfo.c_str(), timeout.c_str(), "idem-inbox", nullptr};
  // expand_dbname = 1: `dbname` may be a full connection string or URI.
  PGconn* raw = PQconnectdbParams(keys, values, 1);
  if (raw == nullptr) return Unavailable("postgresql: out of memory");
  std::unique_ptr<PgConnection> conn(new PgConnection(raw));
  if (PQstatus(raw) != CONNECTION_OK) {
    return Unavailable("postgresql: cannot connect: " + Trimmed(PQerrorMessage(raw)));
  }
  return conn;
}

Result<PgRows> PgConnection::Exec(std::string_view sql,
                                  const std::vector<PgParam>& params) {
  const std::string statement(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const PgParam& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResultPtr result(PQexecParams(conn_.get(), statement.c_str(),
                                  static_cast<int>(values.size()), nullptr, values.data(),
                                  nullptr, nullptr, 0));
  last_command_.clear();
  if (!result) return ErrorOf(conn_.get(), nullptr);
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return ErrorOf(conn_.get(), result.get());
  }
  last_command_ = PQcmdStatus(result.get());
  PgRows rows;
  const int fields = PQnfields(result.get());
  for (int f = 0; f < fields; ++f) rows.columns.emplace_back(PQfname(result.get(), f));
  const int tuples = PQntuples(result.get());
  rows.rows.reserve(static_cast<size_t>(tuples));
  for (int t = 0; t < tuples; ++t) {
    auto& row = rows.rows.emplace_back();
    for (int f = 0; f < fields; ++f) {
      if (PQgetisnull(result.get(), t, f)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(
            std::string(PQgetvalue(result.get(), t, f),
                        static_cast<size_t>(PQgetlength(result.get(), t, f))));
      }
    }
  }
  const char* affected = PQcmdTuples(result.get());
  rows.affected = (affected && *affected) ? std::strtoll(affected, nullptr, 10) : 0;
  return rows;
}

}  // namespace idem::internal
