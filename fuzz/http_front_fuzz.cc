// Fuzz target: the gateway's HTTP front without sockets. Bytes from a
// client go through a Beast request parser with the gateway's header and
// body limits, then the gateway's request handling: route matching, key
// parsing and classification, fingerprints, the engine on a memory store,
// the request head sent upstream and the stored response. Up to four
// pipelined requests per input.
//
// Property: a response the route stores is replayed unchanged to the same
// request; one it does not store leaves the key free for a new execution.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_check.h"
#include "gateway/config.h"
#include "gateway/http_headers.h"
#include "gateway/http_wire.h"
#include "gateway/idempotency_filter.h"
#include "gateway/metrics.h"
#include "idem/engine.h"
#include "idem/memory_store.h"

namespace {

namespace http = boost::beast::http;
using namespace idem;
using namespace idem::gateway;

// The end-to-end suite's configuration, one route per policy.
constexpr std::string_view kConfig = R"toml(
[server]
max_request_body = "64KiB"
max_header_size = "8KiB"

[idempotency]
max_stored_body = "32KiB"
tenant_headers = ["Authorization", "X-Tenant"]

[[route]]
path = "/payments*"
require_key = true

[[route]]
path = "/json/*"
fingerprint = "json"

[[route]]
path = "/fields/*"
fingerprint = "fields"
fields = ["/amount", "/items/0/sku"]

[[route]]
path = "/none/*"
fingerprint = "none"
methods = ["POST", "DELETE"]

[[route]]
path = "/stored5xx/*"
on_server_error = "store"
)toml";

struct Front {
  GatewayConfig config = ParseConfig(kConfig, "fuzz").value();
  Metrics metrics;
  Engine engine{NewMemoryStore()};
  IdempotencyFilter filter{config, engine, metrics};
};

Front& TheFront() {
  static Front* front = new Front();
  return *front;
}

Action BeginNow(Front& front, const Classification& c, const RequestView& view) {
  Action action;
  bool called = false;
  // The memory store answers inline.
  front.filter.Begin(c, view, [&](Action a) {
    action = std::move(a);
    called = true;
  });
  FUZZ_CHECK(called);
  return action;
}

void Handle(Front& front, const http::request<http::string_body>& request) {
  std::vector<HeaderLine> headers;
  for (const auto& field : request) headers.push_back({field.name_string(), field.value()});
  const RequestView view{request.method_string(), request.target(), headers,
                         request.body()};

  std::string head;
  AppendUpstreamRequestHead(
      head, UpstreamRequestHead{view.method, "/base", view.target, headers,
                                "127.0.0.1:8081", "127.0.0.1", 1,
                                BodyFraming::kContentLength, view.body.size()});
  FUZZ_CHECK(head.size() >= 4 && head.substr(head.size() - 4) == "\r\n\r\n");

  const Classification c = front.filter.Classify(view);
  if (c.kind != Classification::Kind::kProtect) return;
  FUZZ_CHECK(c.route != nullptr);
  const Action first = BeginNow(front, c, view);
  if (first.kind != Action::Kind::kExecute) return;
  FUZZ_CHECK(first.execution.lease.fence >= 1);

  // The "upstream" answers with a status picked from the body and echoes
  // the request's end-to-end fields.
  constexpr int kStatuses[] = {200, 201, 204, 400, 404, 409, 500, 503};
  const int status = kStatuses[view.body.size() % std::size(kStatuses)];
  StoredResponse response{status, EndToEndHeaders(headers), std::string(view.body)};
  const bool stored = IdempotencyFilter::WillStore(*c.route, status);
  Outcome outcome = Outcome::kRejected;
  front.filter.Complete(first.execution, response, [&](Outcome o) { outcome = o; });
  FUZZ_CHECK(outcome == Outcome::kExecuted);

  const Action second = BeginNow(front, c, view);
  if (stored) {
    FUZZ_CHECK(second.kind == Action::Kind::kReplay);
    FUZZ_CHECK(second.record != nullptr && second.record->response == response);
  } else {
    FUZZ_CHECK(second.kind == Action::Kind::kExecute);
    front.filter.Abandon(second.execution, [](const Status&) {});
  }
  // Keeps the store small over millions of runs.
  front.engine.store().Delete(first.scope_key, [](const Status&) {});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Front& front = TheFront();
  boost::asio::const_buffer rest(data, size);
  for (int i = 0; i < 4 && rest.size() > 0; ++i) {
    http::request_parser<http::string_body> parser;
    parser.eager(true);
    parser.header_limit(static_cast<uint32_t>(front.config.server.max_header_size));
    parser.body_limit(front.config.server.max_request_body);
    boost::system::error_code ec;
    while (!parser.is_done() && rest.size() > 0) {
      const size_t used = parser.put(rest, ec);
      rest += used;
      if (ec == http::error::need_more) {
        ec = {};
        if (used == 0) break;
        continue;
      }
      if (ec) return 0;  // the gateway answers 400, 413 or 431 and closes
    }
    if (!parser.is_done()) {
      parser.put_eof(ec);
      if (ec || !parser.is_done()) return 0;
    }
    Handle(front, parser.get());
  }
  return 0;
}
