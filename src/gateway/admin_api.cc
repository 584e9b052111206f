#include "gateway/admin_api.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <utility>

#include "gateway/problem.h"
#include "idem/record_json.h"

namespace idem::gateway {
namespace {

constexpr std::string_view kKeysPrefix = "/keys/";

StoredResponse Text(int status, std::string_view content_type, std::string body) {
  StoredResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", std::string(content_type));
  r.body = std::move(body);
  return r;
}

StoredResponse ProblemOf(ProblemType type, std::string detail = {}) {
  Problem p;
  p.type = type;
  p.detail = std::move(detail);
  if (type == ProblemType::kStoreUnavailable || type == ProblemType::kDraining) {
    p.retry_after_s = 1;
  }
  return ProblemResponse(p);
}

StoredResponse MethodNotAllowed(std::string_view allow) {
  StoredResponse r = ProblemOf(ProblemType::kMethodNotAllowed);
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    const int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
    const int lo = hi >= 0 ? HexValue(text[i + 2]) : -1;
    if (lo < 0) return InvalidArgument("bad percent escape");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

AdminApi::AdminApi(Store& store, const Metrics& metrics,
                   const std::atomic<bool>& draining, std::string token)
    : store_(store), metrics_(metrics), draining_(draining), token_(std::move(token)) {}

bool AdminApi::Authorized(std::string_view authorization) const {
  if (token_.empty()) return true;
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c) != kScheme[i]) return false;
  }
  std::string_view presented = authorization.substr(kScheme.size());
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  while (!presented.empty() && presented.back() == ' ') presented.remove_suffix(1);
  // Digests of both, compared in constant time: neither the token's bytes
  // nor its length leak through timing.
  unsigned char want[SHA256_DIGEST_LENGTH];
  unsigned char got[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token_.data()), token_.size(), want);
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), got);
  return CRYPTO_memcmp(want, got, sizeof want) == 0;
}

void AdminApi::Handle(std::string_view method, std::string_view target,
                      std::string_view authorization, Callback<StoredResponse> done) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path != "/healthz" && !Authorized(authorization)) {
    return done(ProblemOf(ProblemType::kUnauthorized));
  }
  const bool get = method == "GET" || method == "HEAD";
  if (path == "/healthz" || path == "/readyz" || path == "/metrics") {
    if (!get) return done(MethodNotAllowed("GET, HEAD"));
    if (path == "/healthz") return done(Text(200, "text/plain; charset=utf-8", "ok\n"));
    if (path == "/metrics") {
      std::string text = metrics_.RenderPrometheus();
      Metrics::RenderStoreMetrics(text, store_.Metrics());
      return done(Text(200, "text/plain; version=0.0.4; charset=utf-8", std::move(text)));
    }
    if (draining_.load(std::memory_order_relaxed)) {
      return done(ProblemOf(ProblemType::kDraining));
    }
    store_.Ping([done = std::move(done)](Status status) {
      if (!status.ok()) return done(ProblemOf(ProblemType::kStoreUnavailable));
      done(Text(200, "text/plain; charset=utf-8", "ready\n"));
    });
    return;
  }
  if (path.substr(0, kKeysPrefix.size()) != kKeysPrefix ||
      path.size() == kKeysPrefix.size()) {
    return done(ProblemOf(ProblemType::kNotFound));
  }
  Result<std::string> key = PercentDecode(path.substr(kKeysPrefix.size()));
  if (!key.ok()) {
    return done(ProblemOf(ProblemType::kMalformedRequest,
                          "The key in the address has a bad percent escape."));
  }
  if (get) {
    store_.Get(
        std::move(key).value(), [done = std::move(done)](Result<RecordPtr> record) {
          if (record.ok()) {
            return done(Text(200, "application/json", RecordToJson(**record)));
          }
          if (record.status().code() == StatusCode::kNotFound) {
            return done(ProblemOf(ProblemType::kNotFound, "No record has this key."));
          }
          done(ProblemOf(ProblemType::kStoreUnavailable));
        });
    return;
  }
  if (method == "DELETE") {
    store_.Delete(std::move(key).value(), [done = std::move(done)](Status status) {
      if (status.ok()) {
        StoredResponse r;
        r.status = 204;
        return done(std::move(r));
      }
      if (status.code() == StatusCode::kNotFound) {
        return done(ProblemOf(ProblemType::kNotFound, "No record has this key."));
      }
      done(ProblemOf(ProblemType::kStoreUnavailable));
    });
    return;
  }
  done(MethodNotAllowed("GET, HEAD, DELETE"));
}

}  // namespace idem::gateway
