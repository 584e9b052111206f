#include "gateway/http_wire.h"

#include <charconv>
#include <cstring>
#include <utility>

namespace idem::gateway {

void AppendDecimal(std::string& out, uint64_t value) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, static_cast<size_t>(end - digits));
}

void AppendChunkHeader(std::string& out, uint64_t size) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, size, 16).ptr;
  out.append(digits, static_cast<size_t>(end - digits));
  out.append("\r\n");
}

void AppendHeaderLine(std::string& out, std::string_view name, std::string_view value) {
  // One resize and two copies instead of four appends: every header line
  // of every proxied message comes through here.
  const size_t at = out.size();
  out.resize(at + name.size() + value.size() + 4);
  char* p = out.data() + at;
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  *p++ = ':';
  *p++ = ' ';
  if (!value.empty()) std::memcpy(p, value.data(), value.size());  // data() may be null
  p += value.size();
  *p++ = '\r';
  *p = '\n';
}

void AppendStatusLine(std::string& out, int status) {
  out.append("HTTP/1.1 ");
  AppendDecimal(out, static_cast<uint64_t>(status));
  out.push_back(' ');
  out.append(ReasonPhrase(status));
  out.append("\r\n");
}

void AppendUpstreamRequestHead(std::string& out, const UpstreamRequestHead& head) {
  out.append(head.method);
  out.push_back(' ');
  std::string_view base = head.base_path;
  if (!base.empty() && base.back() == '/' && !head.target.empty() &&
      head.target.front() == '/') {
    base.remove_suffix(1);
  }
  out.append(base);
  out.append(head.target);
  out.append(" HTTP/1.1\r\n");

  const HopByHopFilter hop(head.headers);
  std::string_view client_host;
  bool has_forwarded_host = false;
  bool has_forwarded_for = false;
  bool has_forwarded = false;
  for (const HeaderLine& h : head.headers) {
    if (hop.Drops(h.name) || EqualsIgnoreCase(h.name, "content-length") ||
        EqualsIgnoreCase(h.name, "expect") ||
        EqualsIgnoreCase(h.name, "idempotency-fence")) {
      continue;
    }
    if (EqualsIgnoreCase(h.name, "x-forwarded-for")) {
      has_forwarded_for = true;
      continue;
    }
    if (EqualsIgnoreCase(h.name, "forwarded")) {
      has_forwarded = true;
      continue;
    }
    if (EqualsIgnoreCase(h.name, "host")) {
      client_host = h.value;
      continue;
    }
    if (EqualsIgnoreCase(h.name, "x-forwarded-host")) has_forwarded_host = true;
    AppendHeaderLine(out, h.name, h.value);
  }
  // The upstream is addressed as its URL names it (as nginx does by
  // default); the name the client used travels in X-Forwarded-Host.
  AppendHeaderLine(out, "Host", head.upstream_authority);
  if (!client_host.empty() && !has_forwarded_host) {
    AppendHeaderLine(out, "X-Forwarded-Host", client_host);
  }

  // Earlier proxies' entries come first, ours last (RFC 7239 section 4).
  out.append("X-Forwarded-For: ");
  for (const HeaderLine& h : head.headers) {
    if (!has_forwarded_for) break;
    if (!EqualsIgnoreCase(h.name, "x-forwarded-for")) continue;
    out.append(h.value);
    out.append(", ");
  }
  out.append(head.client_address);
  out.append("\r\nForwarded: ");
  for (const HeaderLine& h : head.headers) {
    if (!has_forwarded) break;
    if (!EqualsIgnoreCase(h.name, "forwarded")) continue;
    out.append(h.value);
    out.append(", ");
  }
  // An IPv6 address is a quoted "[...]" node (RFC 7239 section 6).
  const bool v6 = head.client_address.find(':') != std::string_view::npos;
  out.append(v6 ? "for=\"[" : "for=");
  out.append(head.client_address);
  out.append(v6 ? "]\"" : "");
  if (!client_host.empty()) {
    // A quoted-string: a host with a port is not an RFC 7230 token.
    out.append(";host=\"");
    size_t run = 0;  // where the characters not copied yet start
    for (size_t i = 0; i < client_host.size(); ++i) {
      if (client_host[i] != '"' && client_host[i] != '\\') continue;
      out.append(client_host.substr(run, i - run));
      out.push_back('\\');
      run = i;  // the escaped character starts the next run
    }
    out.append(client_host.substr(run));
    out.push_back('"');
  }
  out.append(";proto=http\r\n");

  if (head.fence > 0) {
    out.append("Idempotency-Fence: ");
    AppendDecimal(out, head.fence);
    out.append("\r\n");
  }
  switch (head.framing) {
    case BodyFraming::kContentLength:
      out.append("Content-Length: ");
      AppendDecimal(out, head.content_length);
      out.append("\r\n");
      break;
    case BodyFraming::kChunked:
      out.append("Transfer-Encoding: chunked\r\n");
      break;
    case BodyFraming::kNone:
    case BodyFraming::kUntilClose:
      break;
  }
  out.append("\r\n");
}

std::string_view ReasonPhrase(int status) {
  static constexpr std::pair<int, std::string_view> kReasons[] = {
      {100, "Continue"},
      {101, "Switching Protocols"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {203, "Non-Authoritative Information"},
      {204, "No Content"},
      {205, "Reset Content"},
      {206, "Partial Content"},
      {300, "Multiple Choices"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {303, "See Other"},
      {304, "Not Modified"},
      {307, "Temporary Redirect"},
      {308, "Permanent Redirect"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {402, "Payment Required"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {406, "Not Acceptable"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {410, "Gone"},
      {411, "Length Required"},
      {412, "Precondition Failed"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {415, "Unsupported Media Type"},
      {416, "Range Not Satisfiable"},
      {417, "Expectation Failed"},
      {421, "Misdirected Request"},
      {422, "Unprocessable Content"},
      {423, "Locked"},
      {424, "Failed Dependency"},
      {425, "Too Early"},
      {426, "Upgrade Required"},
      {428, "Precondition Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {451, "Unavailable For Legal Reasons"},
      {500, "Internal Server Error"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
  };
  for (const auto& [code, reason] : kReasons) {
    if (code == status) return reason;
  }
  return "";
}

}  // namespace idem::gateway
