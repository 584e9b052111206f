#include "lib/client_policy.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <random>
#include <thread>

namespace idem::internal {
namespace {

using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

uint64_t DefaultRandom(uint64_t bound) {
  thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  return std::uniform_int_distribution<uint64_t>(0, bound)(rng);
}

}  // namespace

Result<BaseUrl> ParseBaseUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgument("client URL must start with http:// (got \"" +
                           std::string(url) + "\")");
  }
  url.remove_prefix(kScheme.size());
  const size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : url.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  BaseUrl base{std::string(authority), "80", std::string(path)};
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgument("client URL must not carry credentials");
  }
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument("bad IPv6 host in URL");
    base.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') {
      return InvalidArgument("bad port in URL");
    }
  } else {
    base.host = std::string(authority.substr(0, authority.find(':')));
    const size_t colon = authority.find(':');
    authority = colon == std::string_view::npos ? "" : authority.substr(colon);
  }
  if (!authority.empty()) {
    authority.remove_prefix(1);
    unsigned port = 0;
    auto [end, ec] =
        std::from_chars(authority.data(), authority.data() + authority.size(), port);
    if (ec != std::errc() || end != authority.data() + authority.size() || port == 0 ||
        port > 65535) {
      return InvalidArgument("bad port in URL");
    }
    base.port = std::to_string(port);
  }
  if (base.host.empty()) return InvalidArgument("client URL has no host");
  return base;
}

bool IsRetryableStatus(int status) {
  switch (status) {
    case 408:
    case 409:
    case 425:
    case 429:
      return true;
    case 501:
    case 505:
      return false;
    default:
      return status >= 500 && status <= 599;
  }
}

std::optional<milliseconds> ParseRetryAfter(std::string_view value) {
  value = Trim(value);
  if (value.empty() || value.size() > 9) return std::nullopt;
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc() || end != value.data() + value.size() || seconds < 0) {
    return std::nullopt;
  }
  return milliseconds(seconds * 1000);
}

milliseconds BackoffCap(int retry, milliseconds base_delay, milliseconds max_delay) {
  milliseconds cap = base_delay;
  for (int i = 1; i < retry && cap < max_delay; ++i) cap *= 2;
  return std::min(cap, max_delay);
}

Result<ClientResponse> RetryLoop(const ClientOptions& options, const std::string& key,
                                 const AttemptFunction& attempt) {
  const auto now = options.now ? options.now : [] { return Steady::now(); };
  const auto sleep = options.sleep ? options.sleep : [](milliseconds d) {
    std::this_thread::sleep_for(d);
  };
  const auto random = options.random ? options.random : DefaultRandom;
  const Steady::time_point deadline = now() + options.deadline;
  const int max_attempts = std::max(1, options.max_attempts);

  AttemptResult last{DeadlineExceeded("the deadline passed before the first attempt"),
                     {}};
  int attempts = 0;
  while (attempts < max_attempts) {
    const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - now());
    if (remaining.count() <= 0) {
      if (attempts == 0) break;
      if (!last.status.ok()) last.status = DeadlineExceeded(last.status.message());
      break;
    }
    ++attempts;
    last = attempt(std::min(options.connect_timeout, remaining),
                   std::min(options.read_timeout, remaining));
    if (last.status.code() == StatusCode::kInvalidArgument) break;
    std::optional<milliseconds> delay;
    if (last.status.ok()) {
      if (!IsRetryableStatus(last.response.status)) break;
      if (auto asked = ParseRetryAfter(last.response.Header("Retry-After"))) {
        if (*asked > options.max_retry_after) break;
        delay = *asked;
      }
    }
    if (attempts == max_attempts) break;
    if (!delay) {
      const auto cap = BackoffCap(attempts, options.base_delay, options.max_delay);
      delay =
          milliseconds(static_cast<int64_t>(random(static_cast<uint64_t>(cap.count()))));
    }
    if (now() + *delay >= deadline) break;
    sleep(*delay);
  }
  if (!last.status.ok()) {
    return Status(last.status.code(), last.status.message() + " (after " +
                                          std::to_string(attempts) + " attempts)");
  }
  ClientResponse response = std::move(last.response);
  response.idempotency_key = key;
  response.attempts = attempts;
  response.replayed =
      EqualsIgnoreCase(Trim(response.Header("Idempotent-Replayed")), "true") ||
      Trim(response.Header("Idempotent-Replayed")) == "?1";
  return response;
}

}  // namespace idem::internal

namespace idem {

std::string_view ClientResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (internal::EqualsIgnoreCase(key, name)) return value;
  }
  return {};
}

}  // namespace idem
