// The socket half of Client: one attempt with Boost.Beast. The only
// translation unit of the client that includes Beast.
#include "idem/client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <utility>

#include "idem/keys.h"
#include "lib/client_policy.h"

namespace idem {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

// RFC 8941 sf-string: quotes and backslashes escaped.
std::string QuotedKey(std::string_view key) {
  std::string out = "\"";
  for (char c : key) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string Describe(std::string_view step, const beast::error_code& ec) {
  if (ec == beast::error::timeout) return std::string(step) + ": timed out";
  return std::string(step) + ": " + ec.message();
}

// Runs the io_context until the operation just started completes.
void RunOne(asio::io_context& io) {
  io.restart();
  io.run();
}

internal::AttemptResult Attempt(const std::string& host, const std::string& port,
                                const http::request<http::string_body>& request,
                                milliseconds connect_timeout, milliseconds read_timeout,
                                size_t max_body) {
  asio::io_context io;
  tcp::resolver resolver(io);
  beast::error_code ec;
  const auto endpoints = resolver.resolve(host, port, ec);
  if (ec) return {Unavailable(Describe("resolve " + host, ec)), {}};

  beast::tcp_stream stream(io);
  stream.expires_after(connect_timeout);
  stream.async_connect(
      endpoints, [&ec](const beast::error_code& e, const tcp::endpoint&) { ec = e; });
  RunOne(io);
  if (ec) return {Unavailable(Describe("connect to " + host + ":" + port, ec)), {}};

  stream.expires_after(read_timeout);
  http::async_write(stream, request,
                    [&ec](const beast::error_code& e, size_t) { ec = e; });
  RunOne(io);
  if (ec) return {Unavailable(Describe("send request", ec)), {}};

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_body);
  http::async_read(stream, buffer, parser,
                   [&ec](const beast::error_code& e, size_t) { ec = e; });
  RunOne(io);
  if (ec) return {Unavailable(Describe("read response", ec)), {}};

  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);

  const auto& message = parser.get();
  internal::AttemptResult result;
  result.response.status = static_cast<int>(message.result_int());
  for (const auto& field : message) {
    result.response.headers.emplace_back(std::string(field.name_string()),
                                         std::string(field.value()));
  }
  result.response.body = message.body();
  return result;
}

}  // namespace

Client::Client(std::string host, std::string port, std::string base_path,
               ClientOptions options)
    : host_(std::move(host)),
      port_(std::move(port)),
      base_path_(std::move(base_path)),
      options_(std::move(options)) {}

Result<Client> Client::Create(std::string_view base_url, ClientOptions options) {
  auto url = internal::ParseBaseUrl(base_url);
  if (!url.ok()) return url.status();
  if (options.key_header.empty()) return InvalidArgument("key_header is empty");
  return Client(std::move(url->host), std::move(url->port), std::move(url->path),
                std::move(options));
}

Result<ClientResponse> Client::Send(ClientRequest request) const {
  if (request.method.empty()) return InvalidArgument("request method is empty");
  if (request.target.empty() || request.target.front() != '/') {
    return InvalidArgument("request target must start with /");
  }
  const std::string key =
      request.idempotency_key.empty() ? NewUuidV7() : request.idempotency_key;

  http::request<http::string_body> message;
  message.version(11);
  message.method_string(request.method);
  message.target(base_path_ + request.target);
  const bool v6 = host_.find(':') != std::string::npos;
  message.set(http::field::host,
              (v6 ? "[" + host_ + "]" : host_) + (port_ == "80" ? "" : ":" + port_));
  message.set(http::field::user_agent, options_.user_agent);
  message.set(options_.key_header, options_.quote_key ? QuotedKey(key) : key);
  for (const auto& [name, value] : request.headers) message.insert(name, value);
  if (!request.body.empty()) {
    message.set(http::field::content_type, request.content_type);
    message.body() = std::move(request.body);
  }
  message.keep_alive(false);
  message.prepare_payload();

  return internal::RetryLoop(
      options_, key, [&](milliseconds connect_timeout, milliseconds read_timeout) {
        return Attempt(host_, port_, message, connect_timeout, read_timeout,
                       options_.max_response_body);
      });
}

}  // namespace idem
