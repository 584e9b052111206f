// The socket-free half of Client (include/idem/client.h): URL parsing,
// which answers are retried, Retry-After, back-off with full jitter and
// the retry loop itself, driven by a function that makes one attempt.
// Pure functions, thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "idem/client.h"
#include "idem/status.h"

namespace idem::internal {

struct BaseUrl {
  std::string host;
  std::string port;
  std::string path;  // "" or "/prefix" without a trailing slash
};

Result<BaseUrl> ParseBaseUrl(std::string_view url);

bool IsRetryableStatus(int status);

// Retry-After in delta-seconds; nullopt for anything else (HTTP-date too).
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value);

// min(max_delay, base_delay * 2^(retry - 1)) for retry >= 1.
std::chrono::milliseconds BackoffCap(int retry, std::chrono::milliseconds base_delay,
                                     std::chrono::milliseconds max_delay);

// One attempt: a response (status ok) or why there is none.
struct AttemptResult {
  Status status;
  ClientResponse response;
};

using AttemptFunction = std::function<AttemptResult(
    std::chrono::milliseconds connect_timeout, std::chrono::milliseconds read_timeout)>;

// Runs attempts as ClientOptions say; fills attempts, key and replayed.
Result<ClientResponse> RetryLoop(const ClientOptions& options, const std::string& key,
                                 const AttemptFunction& attempt);

}  // namespace idem::internal
