// The bytes the gateway writes: request heads for the upstream and response
// heads for clients. Written by hand into a reused string rather than by a
// serializer object, which keeps the hot path to one buffer and no
// allocation once the string has grown. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "gateway/http_headers.h"

namespace idem::gateway {

// How a message body is delimited on the wire.
enum class BodyFraming {
  kNone,           // no body
  kContentLength,  // Content-Length: n
  kChunked,        // Transfer-Encoding: chunked
  kUntilClose,     // read until the connection closes (HTTP/1.0 style)
};

struct UpstreamRequestHead {
  std::string_view method;
  std::string_view base_path;                // the upstream URL's path, "" for none
  std::string_view target;                   // the client's origin-form target
  std::span<const HeaderLine> headers;       // the client's fields
  std::string_view upstream_authority;       // sent as Host
  std::string_view client_address;           // appended to X-Forwarded-For, Forwarded
  uint64_t fence = 0;                        // > 0: sent as Idempotency-Fence
  BodyFraming framing = BodyFraming::kNone;  // kNone, kContentLength or kChunked
  uint64_t content_length = 0;
};

// The request line and fields sent upstream, ending with the empty line.
// Hop-by-hop fields, Content-Length, Expect (the gateway answers 100-continue
// itself) and any client-sent Idempotency-Fence are dropped. Host becomes
// the upstream's authority and the client's Host moves to X-Forwarded-Host
// (and the host= of Forwarded); X-Forwarded-For and Forwarded get the
// client's address appended.
void AppendUpstreamRequestHead(std::string& out, const UpstreamRequestHead& head);

// "HTTP/1.1 201 Created\r\n"
void AppendStatusLine(std::string& out, int status);
void AppendHeaderLine(std::string& out, std::string_view name, std::string_view value);
void AppendDecimal(std::string& out, uint64_t value);
// The chunk-size line of one chunk of `size` bytes.
void AppendChunkHeader(std::string& out, uint64_t size);

// The standard reason phrase, or "" for a status without one.
std::string_view ReasonPhrase(int status);

}  // namespace idem::gateway
