// RAII owners of libpq's C handles, and the small helpers every file that
// touches them needs. Internal to the PostgreSQL store.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>

namespace idem::pg {

struct ConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct ResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};

using ConnPtr = std::unique_ptr<PGconn, ConnCloser>;
using ResultPtr = std::unique_ptr<PGresult, ResultClearer>;

// libpq's last error for `conn`, without the trailing newline.
inline std::string ErrorMessage(const PGconn* conn) {
  std::string message = conn ? PQerrorMessage(conn) : "out of memory";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  return message.empty() ? "connection failed" : message;
}

// Server notices and asynchronous errors ("terminating connection due to
// administrator command") go to the debug log instead of stderr.
void QuietNotices(PGconn* conn);

}  // namespace idem::pg
