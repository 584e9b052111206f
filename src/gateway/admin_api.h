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
// (docs/http.md). With a token configured, everything but /healthz needs
// `Authorization: Bearer <token>` (401 problem+json otherwise; compared in
// constant time). Thread-safe; callbacks run on the store's completion
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
  // `token` empty: no authorization is asked for.
  AdminApi(Store& store, const Metrics& metrics, const std::atomic<bool>& draining,
           std::string token = {});

  // `authorization`: the request's Authorization header value ("" if none).
  void Handle(std::string_view method, std::string_view target,
              std::string_view authorization, Callback<StoredResponse> done);

 private:
  bool Authorized(std::string_view authorization) const;

  Store& store_;
  const Metrics& metrics_;
  const std::atomic<bool>& draining_;
  const std::string token_;
};

// Percent-decodes `text` ('+' stays '+'); kInvalidArgument on a bad escape.
Result<std::string> PercentDecode(std::string_view text);

}  // namespace idem::gateway
