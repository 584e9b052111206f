#include "gateway/idempotency_filter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "idem/fingerprint.h"
#include "idem/key.h"

namespace idem::gateway {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Seconds a client is told to wait after the store failed.
constexpr int64_t kStoreRetryAfterSeconds = 1;

std::string_view PathOf(std::string_view target) {
  return target.substr(0, target.find('?'));
}

Classification Respond(ProblemType type, Outcome outcome, std::string detail = {}) {
  Classification c;
  c.kind = Classification::Kind::kRespond;
  c.outcome = outcome;
  c.problem.type = type;
  c.problem.detail = std::move(detail);
  return c;
}

Action RespondAction(ProblemType type, Outcome outcome, std::string scope_key,
                     int64_t retry_after_s = 0) {
  Action a;
  a.kind = Action::Kind::kRespond;
  a.outcome = outcome;
  a.problem.type = type;
  a.problem.retry_after_s = retry_after_s;
  a.scope_key = std::move(scope_key);
  return a;
}

}  // namespace

IdempotencyFilter::IdempotencyFilter(const GatewayConfig& config, Engine& engine,
                                     Metrics& metrics)
    : config_(config), engine_(engine), metrics_(metrics) {}

Classification IdempotencyFilter::Classify(const RequestView& request) const {
  const IdempotencyConfig& route = config_.ForPath(PathOf(request.target));
  const bool covered = std::find(route.methods.begin(), route.methods.end(),
                                 request.method) != route.methods.end();
  if (!covered) return Classification{};

  const HeaderLine* key_line = nullptr;
  for (const HeaderLine& h : request.headers) {
    if (!EqualsIgnoreCase(h.name, route.header)) continue;
    if (key_line != nullptr) {
      return Respond(ProblemType::kDuplicateKeyHeader, Outcome::kInvalidKey);
    }
    key_line = &h;
  }
  if (key_line == nullptr) {
    if (!route.require_key) return Classification{};
    return Respond(ProblemType::kMissingKey, Outcome::kMissingKey);
  }
  Result<std::string> key = ParseIdempotencyKey(key_line->value);
  if (!key.ok()) {
    // ParseIdempotencyKey's messages state the broken rule, never the value.
    return Respond(ProblemType::kInvalidKey, Outcome::kInvalidKey,
                   key.status().message());
  }
  Classification c;
  c.kind = Classification::Kind::kProtect;
  c.outcome = Outcome::kExecuted;
  c.route = &route;
  c.key = std::move(key).value();
  return c;
}

std::string IdempotencyFilter::TenantOf(const IdempotencyConfig& route,
                                        std::span<const HeaderLine> headers,
                                        std::string_view secret) {
  const bool any_present =
      std::any_of(headers.begin(), headers.end(), [&route](const HeaderLine& h) {
        return std::any_of(
            route.tenant_headers.begin(), route.tenant_headers.end(),
            [&h](const std::string& name) { return EqualsIgnoreCase(h.name, name); });
      });
  // The common anonymous case builds no list.
  if (!any_present) return TenantId({}, secret);
  std::vector<std::string> values(route.tenant_headers.size());
  bool any = false;
  for (size_t i = 0; i < route.tenant_headers.size(); ++i) {
    bool seen = false;
    for (const HeaderLine& h : headers) {
      if (!EqualsIgnoreCase(h.name, route.tenant_headers[i])) continue;
      if (seen) values[i].append(", ");
      values[i].append(h.value);
      seen = any = true;
    }
  }
  if (!any) values.clear();
  return TenantId(values, secret);
}

void IdempotencyFilter::Begin(const Classification& classification,
                              const RequestView& request, Callback<Action> done) {
  const IdempotencyConfig& route = *classification.route;
  const HeaderLine* content_type = FindHeader(request.headers, "content-type");
  Result<std::string> fingerprint = ComputeFingerprint(
      route.fingerprint,
      FingerprintInput{request.method, request.target,
                       content_type ? content_type->value : std::string_view(),
                       request.body},
      route.fields);
  if (!fingerprint.ok()) {
    return done(RespondAction(ProblemType::kInvalidJsonBody, Outcome::kInvalidBody, {}));
  }
  std::string scope_key =
      BuildScopeKey(TenantOf(route, request.headers, config_.secrets.tenant_secret),
                    request.method, PathOf(request.target), classification.key);
  std::string engine_key = scope_key;
  const auto started = SteadyClock::now();
  engine_.Begin(
      std::move(engine_key), std::move(fingerprint).value(), route.engine,
      [this, &route, started, scope_key = std::move(scope_key),
       done = std::move(done)](Result<Decision> decision) mutable {
        metrics_.ObserveStore(StoreOp::kBegin, SteadyClock::now() - started);
        if (!decision.ok()) {
          metrics_.CountStoreError(StoreOp::kBegin);
          // kDataLoss: the record exists but cannot be read (an encryption
          // key that is gone, tampering). The request may have run
          // already, so "pass" would run it again: always fail closed.
          const bool pass = route.on_store_error_pass &&
                            decision.status().code() != StatusCode::kDataLoss;
          spdlog::warn("store begin failed ({}): {}",
                       pass ? "forwarding unprotected" : "answering 503",
                       decision.status().ToString());
          if (pass) {
            Action a;
            a.kind = Action::Kind::kForward;
            a.outcome = Outcome::kUnprotected;
            a.scope_key = std::move(scope_key);
            return done(std::move(a));
          }
          return done(RespondAction(ProblemType::kStoreUnavailable, Outcome::kStoreError,
                                    std::move(scope_key), kStoreRetryAfterSeconds));
        }
        Decision& d = decision.value();
        switch (d.kind) {
          case Decision::Kind::kExecute: {
            Action a;
            a.kind = Action::Kind::kExecute;
            a.outcome = Outcome::kExecuted;
            a.execution.lease = std::move(d.lease);
            a.execution.route = &route;
            a.scope_key = std::move(scope_key);
            return done(std::move(a));
          }
          case Decision::Kind::kReplay: {
            Action a;
            a.kind = Action::Kind::kReplay;
            a.outcome = Outcome::kReplayed;
            a.record = std::move(d.record);
            a.scope_key = std::move(scope_key);
            return done(std::move(a));
          }
          case Decision::Kind::kConflict:
            return done(RespondAction(ProblemType::kRequestInProgress, Outcome::kConflict,
                                      std::move(scope_key), d.retry_after_s));
          case Decision::Kind::kMismatch:
            return done(RespondAction(ProblemType::kKeyMismatch, Outcome::kMismatch,
                                      std::move(scope_key)));
        }
      });
}

bool IdempotencyFilter::WillStore(const IdempotencyConfig& route, int status) {
  if (status >= 500) return route.engine.on_server_error == ServerErrorPolicy::kStore;
  return route.engine.store_statuses.ShouldStore(status);
}

void IdempotencyFilter::Complete(const Execution& execution, StoredResponse response,
                                 Callback<Outcome> done) {
  const auto started = SteadyClock::now();
  engine_.Finish(execution.lease, std::move(response), execution.route->engine,
                 [this, started, done = std::move(done)](Result<FinishOutcome> finished) {
                   metrics_.ObserveStore(StoreOp::kFinish, SteadyClock::now() - started);
                   if (finished.ok()) return done(Outcome::kExecuted);
                   if (finished.status().code() == StatusCode::kLeaseLost) {
                     return done(Outcome::kLeaseLost);
                   }
                   metrics_.CountStoreError(StoreOp::kFinish);
                   spdlog::error("store finish failed, the response is not stored: {}",
                                 finished.status().ToString());
                   done(Outcome::kExecuted);
                 });
}

StoredResponse IdempotencyFilter::NotStoredMarker(int original_status) {
  Problem problem;
  problem.type = ProblemType::kResponseNotStored;
  problem.original_status = original_status;
  return ProblemResponse(problem);
}

void IdempotencyFilter::CompleteNotStored(const Execution& execution, int original_status,
                                          Callback<Outcome> done) {
  // Straight to the store: the marker's own status (410) must stick whatever
  // the route's store_statuses say.
  const auto started = SteadyClock::now();
  engine_.store().Complete(
      CompleteRequest{execution.lease.key, execution.lease.owner,
                      NotStoredMarker(original_status), execution.route->engine.ttl_ms},
      [this, started, done = std::move(done)](Status status) {
        metrics_.ObserveStore(StoreOp::kFinish, SteadyClock::now() - started);
        if (status.ok()) return done(Outcome::kExecuted);
        if (status.code() == StatusCode::kLeaseLost) return done(Outcome::kLeaseLost);
        metrics_.CountStoreError(StoreOp::kFinish);
        spdlog::error("store finish failed, the not-stored marker is missing: {}",
                      status.ToString());
        done(Outcome::kExecuted);
      });
}

void IdempotencyFilter::Abandon(const Execution& execution, Callback<Status> done) {
  const auto started = SteadyClock::now();
  engine_.Abandon(execution.lease, [this, started,
                                    done = std::move(done)](Status status) {
    metrics_.ObserveStore(StoreOp::kAbandon, SteadyClock::now() - started);
    if (!status.ok() && status.code() != StatusCode::kLeaseLost) {
      metrics_.CountStoreError(StoreOp::kAbandon);
      spdlog::warn("store release failed, the key stays locked until its lease ends: {}",
                   status.ToString());
    }
    done(std::move(status));
  });
}

void IdempotencyFilter::Extend(const Execution& execution,
                               Callback<Result<int64_t>> done) {
  const auto started = SteadyClock::now();
  engine_.Extend(
      execution.lease, execution.route->engine,
      [this, started, done = std::move(done)](Result<int64_t> extended) {
        metrics_.ObserveStore(StoreOp::kExtend, SteadyClock::now() - started);
        if (!extended.ok() && extended.status().code() != StatusCode::kLeaseLost) {
          metrics_.CountStoreError(StoreOp::kExtend);
        }
        done(std::move(extended));
      });
}

std::string IdempotencyFilter::KeyTag(std::string_view scope_key) {
  std::string tag = HexEncode(Sha256(scope_key));
  tag.resize(16);
  return tag;
}

}  // namespace idem::gateway
