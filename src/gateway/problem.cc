#include "gateway/problem.h"

#include "gateway/json_text.h"

namespace idem::gateway {
namespace {

struct ProblemInfo {
  int status;
  std::string_view slug;
  std::string_view title;
  std::string_view detail;  // used when Problem::detail is empty
};

ProblemInfo Info(ProblemType type) {
  switch (type) {
    case ProblemType::kMissingKey:
      return {400, "missing-key", "Idempotency-Key required",
              "This endpoint requires an Idempotency-Key header."};
    case ProblemType::kInvalidKey:
      return {400, "invalid-key", "Invalid Idempotency-Key",
              "The Idempotency-Key header is not a valid key."};
    case ProblemType::kDuplicateKeyHeader:
      return {400, "duplicate-key-header", "More than one Idempotency-Key",
              "Send exactly one Idempotency-Key header line."};
    case ProblemType::kInvalidJsonBody:
      return {400, "invalid-json-body", "Request body is not valid JSON",
              "This endpoint compares requests by their JSON body, which must be "
              "valid JSON."};
    case ProblemType::kMalformedRequest:
      return {400, "malformed-request", "Malformed request",
              "The request is not valid HTTP/1.1."};
    case ProblemType::kRequestTimeout:
      return {408, "request-timeout", "Request timeout",
              "The request was not received in time."};
    case ProblemType::kRequestInProgress:
      return {409, "request-in-progress", "Request in progress",
              "A request with this Idempotency-Key is still being processed; "
              "retry after the time in Retry-After."};
    case ProblemType::kResponseNotStored:
      return {410, "response-not-stored", "Response not stored",
              "The request with this Idempotency-Key was executed, but its "
              "response was too large to be kept, so it cannot be replayed."};
    case ProblemType::kBodyTooLarge:
      return {413, "body-too-large", "Request body too large",
              "The request body is larger than this gateway accepts."};
    case ProblemType::kKeyMismatch:
      return {422, "key-mismatch", "Idempotency-Key reused",
              "This Idempotency-Key was already used for a different request."};
    case ProblemType::kHeadersTooLarge:
      return {431, "headers-too-large", "Request header fields too large",
              "The request header section is larger than this gateway accepts."};
    case ProblemType::kUpstreamUnreachable:
      return {502, "upstream-unreachable", "Upstream unreachable",
              "The service behind the gateway could not be reached."};
    case ProblemType::kUpstreamBadResponse:
      return {502, "upstream-bad-response", "Bad upstream response",
              "The service behind the gateway sent no valid response."};
    case ProblemType::kStoreUnavailable:
      return {503, "store-unavailable", "Idempotency store unavailable",
              "The request was not executed; retry after the time in Retry-After."};
    case ProblemType::kDraining:
      return {503, "draining", "Shutting down", "The gateway is shutting down."};
    case ProblemType::kUpstreamTimeout:
      return {504, "upstream-timeout", "Upstream timeout",
              "The service behind the gateway did not answer in time."};
    case ProblemType::kNotFound:
      return {404, "not-found", "Not found", "There is nothing at this address."};
    case ProblemType::kMethodNotAllowed:
      return {405, "method-not-allowed", "Method not allowed",
              "This address does not support the request method."};
    case ProblemType::kUnauthorized:
      return {401, "unauthorized", "Unauthorized",
              "This admin listener needs an Authorization: Bearer token."};
  }
  return {500, "internal", "Internal error", "The gateway failed unexpectedly."};
}

}  // namespace

int ProblemStatus(ProblemType type) { return Info(type).status; }
std::string_view ProblemSlug(ProblemType type) { return Info(type).slug; }
std::string_view ProblemTitle(ProblemType type) { return Info(type).title; }

std::string ProblemTypeUri(ProblemType type) {
  return "urn:idem:problem:" + std::string(Info(type).slug);
}

std::string ProblemJson(const Problem& problem) {
  const ProblemInfo info = Info(problem.type);
  std::string out;
  out.reserve(256);
  out.append("{\"type\":");
  AppendJsonString(out, ProblemTypeUri(problem.type));
  out.append(",\"title\":");
  AppendJsonString(out, info.title);
  out.append(",\"status\":");
  out.append(std::to_string(info.status));
  out.append(",\"detail\":");
  AppendJsonString(out, problem.detail.empty() ? info.detail : problem.detail);
  if (problem.original_status != 0) {
    out.append(",\"original_status\":");
    out.append(std::to_string(problem.original_status));
  }
  out.append("}");
  return out;
}

StoredResponse ProblemResponse(const Problem& problem) {
  StoredResponse response;
  response.status = ProblemStatus(problem.type);
  response.headers.emplace_back("Content-Type", "application/problem+json");
  if (problem.retry_after_s > 0) {
    response.headers.emplace_back("Retry-After", std::to_string(problem.retry_after_s));
  }
  if (problem.type == ProblemType::kUnauthorized) {
    response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"idem-admin\"");
  }
  if (problem.type == ProblemType::kMissingKey) {
    response.headers.emplace_back(
        "Link", "<" + ProblemTypeUri(problem.type) + ">; rel=\"describedby\"");
  }
  response.body = ProblemJson(problem);
  return response;
}

}  // namespace idem::gateway
