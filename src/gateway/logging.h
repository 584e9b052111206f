// Logging: diagnostics on stderr (spdlog's default logger) and the access
// log, one JSON object per line on stdout.
//
// Access lines are formatted on the request's thread into a small buffer
// and written by spdlog's background thread, so a slow terminal or disk
// never stalls an io thread for long. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "gateway/metrics.h"
#include "idem/status.h"

namespace spdlog {
class logger;
}

namespace idem::gateway {

// Sets spdlog's default logger to stderr at `level` (trace, debug, info,
// warn, error, off). kInvalidArgument for another level name.
Status SetUpLogging(std::string_view level);

struct AccessEntry {
  std::string_view method;
  std::string_view path;  // without the query, which may hold secrets
  int status = 0;         // 0: no response was sent (connection lost)
  Outcome outcome = Outcome::kForwarded;
  std::string_view key_tag;  // IdempotencyFilter::KeyTag, or empty
  uint64_t fence = 0;        // 0: no lease
  std::string_view client;   // client address
  double total_ms = 0;
  double upstream_ms = -1;  // < 0: the upstream was not asked
  double store_ms = -1;     // < 0: the store was not asked
};

class AccessLog {
 public:
  // Lines go to stdout at info level, so `level` above info silences them,
  // as does enabled = false.
  AccessLog(bool enabled, std::string_view level);
  ~AccessLog();

  bool enabled() const { return logger_ != nullptr; }
  void Write(const AccessEntry& entry);
  // Blocks until every queued line is written.
  void Flush();

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace idem::gateway
