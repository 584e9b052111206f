// Client: an HTTP/1.1 client that retries safely with an Idempotency-Key.
//
// Each Send is one logical operation: it gets a fresh UUIDv7 key (or the
// caller's), and every retry of it sends that same key, so a server behind
// idem (or any server that honours the IETF Idempotency-Key draft)
// executes it once however often it is retried:
//
//   auto client = Client::Create("http://127.0.0.1:8080");
//   ClientRequest request;
//   request.target = "/payments";
//   request.body = R"({"amount":1200})";
//   auto r = client->Send(request);   // POST, fresh key, retried with it
//   if (r.ok()) std::cout << r->status << (r->replayed ? " (replay)" : "");
//
// Retried: connection failures (refused, reset, closed before a full
// response, time-outs), 408, 409 (the first attempt is still running),
// 425, 429, 500, 502, 503, 504 and other 5xx except 501 and 505. Not
// retried: 1xx-4xx otherwise, notably 400 and 422 (the request itself is
// wrong or the key was reused for another payload), and 501/505.
//
// Waits between attempts use exponential back-off with full jitter: before
// retry n (n = 1, 2, ...) the client sleeps a uniformly random time in
// [0, min(max_delay, base_delay * 2^(n-1))]. A Retry-After header in
// seconds (the HTTP-date form is ignored) replaces that wait with exactly
// the time the server asked for; one longer than max_retry_after, or past
// the deadline, ends the retries. Retries stop after max_attempts
// attempts, or when the next wait would pass the deadline; the last answer
// is returned then (a response, whatever its status, or the connection
// error). Each attempt opens its own connection; its connect and read
// time-outs are cut to the time left before the deadline.
//
// Plain http:// only (put TLS in a local proxy). Thread-safety: a Client
// is immutable after Create and may be used from many threads at once;
// Send blocks the calling thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "idem/status.h"

namespace idem {

struct ClientOptions {
  // Header that carries the key. Default: "Idempotency-Key".
  std::string key_header = "Idempotency-Key";
  // Send the key as an RFC 8941 string ("key"), as the IETF draft says;
  // false sends it bare (key), as Stripe-style servers expect. Both are the
  // same key to idem. Default: true.
  bool quote_key = true;
  // Back-off cap of the first retry; doubles per retry. Default: 100 ms.
  std::chrono::milliseconds base_delay{100};
  // Largest back-off cap. Default: 10 s.
  std::chrono::milliseconds max_delay{10'000};
  // Attempts in all, the first included; 1 disables retries. Default: 5.
  int max_attempts = 5;
  // Time budget of one Send, waits included. Default: 60 s.
  std::chrono::milliseconds deadline{60'000};
  // Time to connect, per attempt. Default: 5 s.
  std::chrono::milliseconds connect_timeout{5'000};
  // Time to send the request and read the whole response, per attempt.
  // Default: 30 s.
  std::chrono::milliseconds read_timeout{30'000};
  // Longest Retry-After honoured; longer ends the retries. Default: 60 s.
  std::chrono::milliseconds max_retry_after{60'000};
  // Largest response body read; larger fails the attempt. Default: 8 MiB.
  size_t max_response_body = size_t{8} << 20;
  // User-Agent header. Default: "idem-client/0.1".
  std::string user_agent = "idem-client/0.1";

  // Waits between attempts. Default: std::this_thread::sleep_for.
  std::function<void(std::chrono::milliseconds)> sleep;
  // Clock the deadline is measured by. Default: std::chrono::steady_clock.
  std::function<std::chrono::steady_clock::time_point()> now;
  // Uniform random integer in [0, bound] for the jitter. Default: a
  // thread-local std::mt19937_64 seeded from std::random_device.
  std::function<uint64_t(uint64_t bound)> random;
};

struct ClientRequest {
  std::string method = "POST";
  std::string target = "/";  // path and query, appended to the base URL's path
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Content-Type when a body is sent. Default: JSON.
  std::string content_type = "application/json";
  // The operation's key; empty: a fresh NewUuidV7().
  std::string idempotency_key;
};

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string idempotency_key;  // the key every attempt sent
  int attempts = 0;             // attempts made, the first included
  bool replayed = false;        // the server sent Idempotent-Replayed: true

  // The first header with this name (case-insensitive), or "".
  std::string_view Header(std::string_view name) const;
};

class Client {
 public:
  // `base_url`: "http://host[:port][/path]". kInvalidArgument otherwise.
  static Result<Client> Create(std::string_view base_url, ClientOptions options = {});

  // Sends the request, retrying as the header comment says. The response
  // of the last attempt, whatever its status; an error only when the last
  // attempt got no response (kUnavailable, kDeadlineExceeded; the message
  // says how many attempts were made) or the request is malformed
  // (kInvalidArgument).
  Result<ClientResponse> Send(ClientRequest request) const;

 private:
  Client(std::string host, std::string port, std::string base_path,
         ClientOptions options);

  std::string host_;
  std::string port_;
  std::string base_path_;
  ClientOptions options_;
};

}  // namespace idem
