// A small blocking HTTP/1.1 client over raw loopback sockets, for end-to-end
// tests. It sends exactly the bytes it is given (so tests can send malformed,
// partial or pipelined requests) and parses responses without Beast, so a
// bug shared by the gateway's parser and the test's cannot hide.
//
// Not thread-safe: one HttpConnection per thread. Every read has a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace idem::e2e {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  Headers headers;
  std::string body;
  // Adds "Host: 127.0.0.1" unless a Host header is given.
  bool add_host = true;
  // Adds Content-Length for a non-empty body (or any POST/PUT/PATCH) unless a
  // Content-Length or Transfer-Encoding header is given.
  bool add_content_length = true;

  HttpRequest& Header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  // The request as it goes on the wire.
  std::string Serialize() const;
};

// Shorthands.
HttpRequest Get(std::string target);
HttpRequest Post(std::string target, std::string body,
                 std::string content_type = "application/json");

struct HttpResponse {
  // Non-empty when no complete response was read (connection refused,
  // closed, timed out, unparsable); then the fields below are partial.
  std::string error;
  int status = 0;
  std::string reason;
  std::string version;  // "HTTP/1.1"
  Headers headers;      // in wire order, names as sent
  std::string body;     // de-chunked
  bool chunked = false;
  // The status line and header section exactly as received (with CRLFs).
  std::string raw_head;

  bool ok() const { return error.empty(); }
  // First value of a header (case-insensitive name).
  std::optional<std::string> Header(std::string_view name) const;
  std::vector<std::string> HeaderValues(std::string_view name) const;
  bool HasHeader(std::string_view name) const { return Header(name).has_value(); }
  // Status line, headers and body, for failure messages.
  std::string Describe() const;
};

// Parses one response from the front of `buffer`. Returns kNeedMore when
// more bytes are needed (with `eof`, a close-delimited body is complete at
// the end of the buffer), kDone (the consumed bytes are removed from
// `buffer`; 1xx responses are skipped) or kError (`out->error` says why).
// `head_request`: the response to a HEAD, which has no body.
enum class ParseResult { kNeedMore, kDone, kError };
ParseResult ParseResponse(std::string& buffer, bool eof, bool head_request,
                          HttpResponse* out);

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

class HttpConnection {
 public:
  HttpConnection() = default;
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Connects to 127.0.0.1:port. False (see error()) when refused.
  bool Connect(uint16_t port);
  bool connected() const { return fd_ >= 0; }
  void Close();

  // Writes all of `bytes`. False when the peer is gone.
  bool SendRaw(std::string_view bytes);
  bool Send(const HttpRequest& request) { return SendRaw(request.Serialize()); }

  // Reads one response within `timeout`.
  HttpResponse Read(std::chrono::milliseconds timeout = std::chrono::seconds(15),
                    bool head_request = false);

  // Sends and reads one response.
  HttpResponse RoundTrip(const HttpRequest& request,
                         std::chrono::milliseconds timeout = std::chrono::seconds(15));

  // Waits up to `timeout` for the peer to close the connection; bytes that
  // arrive meanwhile are kept for Read(). True when it closed (EOF or reset).
  bool WaitForClose(std::chrono::milliseconds timeout);

  // Bytes received but not yet parsed.
  const std::string& pending() const { return buffer_; }
  const std::string& error() const { return error_; }

 private:
  // Reads more bytes until `deadline`; false on timeout or error, and sets
  // eof_ when the peer closed.
  bool Fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  bool eof_ = false;
  std::string buffer_;
  std::string error_;
};

// One request on a fresh connection to 127.0.0.1:port.
HttpResponse Fetch(uint16_t port, const HttpRequest& request,
                   std::chrono::milliseconds timeout = std::chrono::seconds(15));

// "%XX"-encodes everything but unreserved characters (RFC 3986).
std::string UrlEncode(std::string_view text);

}  // namespace idem::e2e
