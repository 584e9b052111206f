#include "http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace idem::e2e {
namespace {

using Clock = std::chrono::steady_clock;

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ContainsToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (EqualsIgnoreCase(Trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool HasHeaderNamed(const Headers& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return true;
  }
  return false;
}

// Parses a chunked body starting at buffer[pos]. Returns the position after
// the last chunk's trailer section, 0 when more bytes are needed, or npos on
// a malformed body.
size_t ParseChunked(const std::string& buffer, size_t pos, std::string* body) {
  body->clear();
  for (;;) {
    size_t line_end = buffer.find("\r\n", pos);
    if (line_end == std::string::npos) return 0;
    std::string_view size_text(buffer.data() + pos, line_end - pos);
    size_text = size_text.substr(0, size_text.find(';'));
    size_text = Trim(size_text);
    uint64_t size = 0;
    auto [end, ec] =
        std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (ec != std::errc() || end != size_text.data() + size_text.size() ||
        size_text.empty()) {
      return std::string::npos;
    }
    pos = line_end + 2;
    if (size == 0) {
      // Trailer section: header lines until an empty line.
      for (;;) {
        size_t trailer_end = buffer.find("\r\n", pos);
        if (trailer_end == std::string::npos) return 0;
        bool empty = trailer_end == pos;
        pos = trailer_end + 2;
        if (empty) return pos;
      }
    }
    if (buffer.size() < pos + size + 2) return 0;
    if (buffer.compare(pos + size, 2, "\r\n") != 0) return std::string::npos;
    body->append(buffer, pos, size);
    pos += size + 2;
  }
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string HttpRequest::Serialize() const {
  std::string out = method + " " + target + " HTTP/1.1\r\n";
  if (add_host && !HasHeaderNamed(headers, "Host")) out += "Host: 127.0.0.1\r\n";
  for (const auto& [name, value] : headers) {
    out.append(name).append(": ").append(value).append("\r\n");
  }
  bool body_method = method == "POST" || method == "PUT" || method == "PATCH";
  if (add_content_length && (!body.empty() || body_method) &&
      !HasHeaderNamed(headers, "Content-Length") &&
      !HasHeaderNamed(headers, "Transfer-Encoding")) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += "\r\n";
  out += body;
  return out;
}

HttpRequest Get(std::string target) {
  HttpRequest request;
  request.target = std::move(target);
  return request;
}

HttpRequest Post(std::string target, std::string body, std::string content_type) {
  HttpRequest request;
  request.method = "POST";
  request.target = std::move(target);
  request.body = std::move(body);
  if (!content_type.empty()) request.Header("Content-Type", std::move(content_type));
  return request;
}

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return std::nullopt;
}

std::vector<std::string> HttpResponse::HeaderValues(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) values.push_back(v);
  }
  return values;
}

std::string HttpResponse::Describe() const {
  std::string out;
  if (!error.empty()) out += "[transport error: " + error + "]\n";
  out += raw_head;
  if (body.size() > 2048) {
    out += body.substr(0, 2048) + "... (" + std::to_string(body.size()) + " bytes)";
  } else {
    out += body;
  }
  return out;
}

ParseResult ParseResponse(std::string& buffer, bool eof, bool head_request,
                          HttpResponse* out) {
  for (;;) {
    size_t head_end = buffer.find("\r\n\r\n");
    if (head_end == std::string::npos) {
      if (eof) {
        out->error = buffer.empty() ? "connection closed before a response"
                                    : "connection closed inside the response head";
        return ParseResult::kError;
      }
      return ParseResult::kNeedMore;
    }
    HttpResponse response;
    response.raw_head = buffer.substr(0, head_end + 4);
    std::string_view head(response.raw_head);
    size_t line_end = head.find("\r\n");
    std::string_view status_line = head.substr(0, line_end);
    // "HTTP/1.1 200 OK"
    size_t sp1 = status_line.find(' ');
    if (sp1 == std::string_view::npos || status_line.substr(0, 5) != "HTTP/") {
      out->error = "not an HTTP status line: " + std::string(status_line.substr(0, 80));
      return ParseResult::kError;
    }
    response.version = std::string(status_line.substr(0, sp1));
    std::string_view rest = status_line.substr(sp1 + 1);
    size_t sp2 = rest.find(' ');
    std::string_view code = rest.substr(0, sp2);
    auto [end, ec] =
        std::from_chars(code.data(), code.data() + code.size(), response.status);
    if (ec != std::errc() || end != code.data() + code.size() || code.size() != 3) {
      out->error = "bad status code in: " + std::string(status_line);
      return ParseResult::kError;
    }
    if (sp2 != std::string_view::npos) {
      response.reason = std::string(rest.substr(sp2 + 1));
    }
    std::string_view lines;
    if (head_end > line_end) lines = head.substr(line_end + 2, head_end - line_end - 2);
    while (!lines.empty()) {
      size_t eol = lines.find("\r\n");
      std::string_view line = lines.substr(0, eol);
      size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        out->error = "bad header line: " + std::string(line.substr(0, 80));
        return ParseResult::kError;
      }
      response.headers.emplace_back(std::string(line.substr(0, colon)),
                                    std::string(Trim(line.substr(colon + 1))));
      if (eol == std::string_view::npos) break;
      lines.remove_prefix(eol + 2);
    }
    size_t body_start = head_end + 4;
    if (response.status >= 100 && response.status < 200) {
      buffer.erase(0, body_start);  // interim response: skip it
      continue;
    }
    bool no_body = head_request || response.status == 204 || response.status == 304;
    auto transfer_encoding = response.Header("Transfer-Encoding");
    auto content_length = response.Header("Content-Length");
    size_t consumed = body_start;
    if (no_body) {
      // nothing
    } else if (transfer_encoding && ContainsToken(*transfer_encoding, "chunked")) {
      response.chunked = true;
      size_t after = ParseChunked(buffer, body_start, &response.body);
      if (after == std::string::npos) {
        out->error = "malformed chunked body";
        return ParseResult::kError;
      }
      if (after == 0) {
        if (eof) {
          *out = std::move(response);
          out->error = "connection closed inside a chunked body";
          return ParseResult::kError;
        }
        return ParseResult::kNeedMore;
      }
      consumed = after;
    } else if (content_length) {
      uint64_t length = 0;
      std::string_view text = *content_length;
      auto [cl_end, cl_ec] =
          std::from_chars(text.data(), text.data() + text.size(), length);
      if (cl_ec != std::errc() || cl_end != text.data() + text.size()) {
        out->error = "bad Content-Length: " + std::string(text);
        return ParseResult::kError;
      }
      if (buffer.size() < body_start + length) {
        if (eof) {
          response.body = buffer.substr(body_start);
          *out = std::move(response);
          out->error = "connection closed inside the body";
          return ParseResult::kError;
        }
        return ParseResult::kNeedMore;
      }
      response.body = buffer.substr(body_start, length);
      consumed = body_start + length;
    } else {
      if (!eof) return ParseResult::kNeedMore;  // delimited by close
      response.body = buffer.substr(body_start);
      consumed = buffer.size();
    }
    buffer.erase(0, consumed);
    *out = std::move(response);
    return ParseResult::kDone;
  }
}

HttpConnection::~HttpConnection() { Close(); }

void HttpConnection::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  eof_ = false;
  buffer_.clear();
}

bool HttpConnection::Connect(uint16_t port) {
  Close();
  error_.clear();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    error_ = "connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return true;
}

bool HttpConnection::SendRaw(std::string_view bytes) {
  if (fd_ < 0) {
    error_ = "not connected";
    return false;
  }
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = std::string("send: ") + std::strerror(errno);
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool HttpConnection::Fill(Clock::time_point deadline) {
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      error_ = "timed out";
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) continue;  // the deadline check above ends the loop
    if (ready < 0) {
      error_ = std::string("poll: ") + std::strerror(errno);
      return false;
    }
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // A reset counts as the peer closing.
      error_ = std::string("recv: ") + std::strerror(errno);
      eof_ = true;
      return true;
    }
    if (n == 0) {
      eof_ = true;
      return true;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }
}

HttpResponse HttpConnection::Read(std::chrono::milliseconds timeout, bool head_request) {
  HttpResponse response;
  if (fd_ < 0) {
    response.error = "not connected";
    return response;
  }
  auto deadline = Clock::now() + timeout;
  for (;;) {
    ParseResult result = ParseResponse(buffer_, eof_, head_request, &response);
    if (result == ParseResult::kDone) return response;
    if (result == ParseResult::kError) return response;
    if (!Fill(deadline)) {
      response.error = "reading a response: " + error_;
      return response;
    }
  }
}

HttpResponse HttpConnection::RoundTrip(const HttpRequest& request,
                                       std::chrono::milliseconds timeout) {
  if (!Send(request)) {
    HttpResponse response;
    response.error = error_;
    return response;
  }
  return Read(timeout, request.method == "HEAD");
}

bool HttpConnection::WaitForClose(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return true;
  auto deadline = Clock::now() + timeout;
  while (!eof_) {
    if (!Fill(deadline)) return false;
  }
  return true;
}

HttpResponse Fetch(uint16_t port, const HttpRequest& request,
                   std::chrono::milliseconds timeout) {
  HttpConnection connection;
  if (!connection.Connect(port)) {
    HttpResponse response;
    response.error = connection.error();
    return response;
  }
  return connection.RoundTrip(request, timeout);
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace idem::e2e
