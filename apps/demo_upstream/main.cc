// idem-demo-upstream: the bundled demo "payments" service and the counting
// upstream used by idem's end-to-end tests and benchmarks.
//
//   idem-demo-upstream [--listen 127.0.0.1:8081] [--port-file F] [--threads N]
//                      [--key-header Idempotency-Key] [--verbose]
//
// Endpoints (full list and formats in apps/demo_upstream/README.md):
//   POST /payments           201 {"id":"pay_<n>","amount":..,"currency":..,
//                            "status":"succeeded","execution":<n>}; bad JSON 400
//   /status/NNN              answers NNN with a small JSON body
//   /slow?ms=N[&status=S]    answers 200 (or S) after N ms (a timer, not the thread)
//   /echo                    answers the request body with its content type
//   /big?bytes=N             answers N bytes
//   /drop                    closes the connection without answering
//   /garbage                 writes bytes that are not HTTP, then closes
//   /stall                   never answers; waits until the client closes
//   anything else            200 {"ok":true,"execution":<n>}
// The behaviour comes from the end of the path ("/wait/slow" acts as "/slow").
// Test controls (not counted as executions):
//   GET  /_count[?key=K]     executions with Idempotency-Key K, or in total
//   GET  /_last[?key=K]      the headers of the last request with key K (or any)
//   GET  /_executions?key=K  [{"execution":N,"fence":F},...]: each execution of K
//                            (the "execution" of its response body, its
//                            Idempotency-Fence or 0), in the order recorded
//   POST /_reset             forget every count and snapshot
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <string>

#include "upstream_server.h"

namespace {

// Splits "HOST:PORT" ("[::1]:80" for IPv6). Returns false when malformed.
bool SplitHostPort(const std::string& text, std::string& host, uint16_t& port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const char* first = text.data() + colon + 1;
  const char* last = text.data() + text.size();
  auto [end, ec] = std::from_chars(first, last, port);
  return ec == std::errc() && end == last && first != last;
}

}  // namespace

int main(int argc, char** argv) {
  idem::demo::UpstreamOptions options;
  std::string listen = "127.0.0.1:8081";
  CLI::App app{"idem demo upstream: a payments service that counts executions"};
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--port-file", options.port_file,
                 "after binding, write 'listen=HOST:PORT' to this file");
  app.add_option("--threads", options.threads, "io threads (0: one per core)")
      ->capture_default_str();
  app.add_option("--key-header", options.key_header,
                 "header whose values executions are counted by")
      ->capture_default_str();
  app.add_flag("--verbose", options.verbose, "log every request to stderr");
  CLI11_PARSE(app, argc, argv);
  if (!SplitHostPort(listen, options.host, options.port)) {
    std::fprintf(stderr, "idem-demo-upstream: --listen: \"%s\" is not HOST:PORT\n",
                 listen.c_str());
    return 2;
  }
  return idem::demo::RunUpstream(options);
}
