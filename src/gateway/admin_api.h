// AdminApi: what the admin listener answers, without sockets.
//
//   GET  /healthz        200 "ok": the process is up
//   GET  /readyz         200 "ready" when the store answers a ping and the
//                        gateway is not draining; 503 problem+json otherwise
//   GET  /metrics        Prometheus text format
//   GET  /keys/<key>     the record of one scope key as JSON, the shape
//                        `idem keys get` prints (idem/record_json.h); 404 if none
//   DELETE /keys/<key>   purges the record (204; 404 if none)
//
// <key> is the percent-encoded scope key, "<tenant> <METHOD> <path> <key>"
// (docs/http.md). Thread-safe; callbacks run on the store's completion
// thread (inline for the memory store).
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "gateway/metrics.h"
#include "idem/record.h"
#include "idem/status.h"
#include "idem/store.h"

namespace idem::gateway {

class AdminApi {
 public:
  AdminApi(Store& store, const Metrics& metrics, const std::atomic<bool>& draining);

  void Handle(std::string_view method, std::string_view target,
              Callback<StoredResponse> done);

 private:
  Store& store_;
  const Metrics& metrics_;
  const std::atomic<bool>& draining_;
};

// Percent-decodes `text` ('+' stays '+'); kInvalidArgument on a bad escape.
Result<std::string> PercentDecode(std::string_view text);

}  // namespace idem::gateway
