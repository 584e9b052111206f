// The demo upstream's HTTP/1.1 server: keep-alive, pipelining, one
// io_context per thread, every connection one coroutine. It answers the
// endpoints documented in apps/demo_upstream/README.md.
//
// RunUpstream() blocks until SIGTERM or SIGINT and is called once per process.
#pragma once

#include <cstdint>
#include <string>

namespace idem::demo {

struct UpstreamOptions {
  // Default: "127.0.0.1". Numeric IPv4 or IPv6 address to listen on.
  std::string host = "127.0.0.1";
  // Default: 8081. 0 picks a free port (see port_file).
  uint16_t port = 8081;
  // Default: "" (none). After binding, written atomically with one line
  // "listen=HOST:PORT".
  std::string port_file;
  // Default: 0 (one io thread per core).
  unsigned threads = 0;
  // Default: "Idempotency-Key". The header whose value executions are counted by.
  std::string key_header = "Idempotency-Key";
  // Default: false. Print one line per request to stderr.
  bool verbose = false;
};

// Serves until SIGTERM/SIGINT; returns the process exit code (0 on a signal,
// 1 when the address cannot be bound or the port file cannot be written).
int RunUpstream(const UpstreamOptions& options);

}  // namespace idem::demo
