// The only translation unit of the demo upstream that includes Beast.
//
// Responses are formatted by hand into a per-connection buffer that keeps its
// capacity, so a keep-alive connection answers without allocating for the
// response; requests are parsed by Beast.
#include "upstream_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "execution_log.h"
#include "payments.h"
#include "request_target.h"

namespace idem::demo {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr uint64_t kMaxRequestBody = 256ull << 20;
constexpr uint32_t kMaxHeader = 1u << 20;
constexpr uint64_t kMaxBigBytes = 256ull << 20;
constexpr uint64_t kMaxSlowMs = 10ull * 60 * 1000;
constexpr std::string_view kJson = "application/json";
constexpr std::string_view kGarbageBytes = "\x01\x02 this is not HTTP \xff\xfe\r\n\r\n";

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

void AppendNumber(std::string& out, uint64_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  out.append(digits, end);
}

struct Shared {
  explicit Shared(const UpstreamOptions& o) : options(o) {}
  const UpstreamOptions& options;
  ExecutionLog log;
  std::atomic<uint64_t> serial{0};  // numbers executions; never reset
};

using Request = http::request<http::string_body>;

// What the connection does once a request was handled.
enum class After { kWrite, kSlow, kDrop, kGarbage, kStall };

class Connection {
 public:
  Connection(tcp::socket socket, Shared& shared)
      : socket_(std::move(socket)), shared_(shared) {}

  asio::awaitable<void> Run();

 private:
  // Handles `req` without waiting; kSlow leaves the answer to FinishSlow().
  After Handle(const Request& req);
  void FinishSlow(const Request& req);
  bool HandleControl(const Request& req, std::string_view path);
  uint64_t RecordExecution(const Request& req);
  void Respond(const Request& req, unsigned status, std::string_view content_type,
               std::string_view body, std::string_view extra_headers = {});
  asio::awaitable<void> StallUntilClosed();

  tcp::socket socket_;
  Shared& shared_;
  beast::flat_buffer buffer_;
  std::string out_;
  std::string body_;
  std::string extra_;
  uint64_t slow_ms_ = 0;
  uint64_t slow_execution_ = 0;
  RequestSnapshot snapshot_;
  bool keep_alive_ = true;
};

asio::awaitable<void> Connection::Run() {
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxHeader);
    parser.body_limit(kMaxRequestBody);
    auto [ec, n] = co_await http::async_read_header(socket_, buffer_, parser, kTuple);
    if (!ec && parser.get()[http::field::expect] == "100-continue" && !parser.is_done()) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      std::tie(ec, n) =
          co_await asio::async_write(socket_, asio::buffer(kContinue), kTuple);
    }
    if (!ec) {
      std::tie(ec, n) = co_await http::async_read(socket_, buffer_, parser, kTuple);
    }
    if (ec) break;
    const Request& req = parser.get();
    After after = Handle(req);
    if (after == After::kSlow) {
      asio::steady_timer timer(socket_.get_executor());
      timer.expires_after(std::chrono::milliseconds(slow_ms_));
      co_await timer.async_wait(kTuple);
      FinishSlow(req);
      after = After::kWrite;
    }
    if (after == After::kDrop) break;
    if (after == After::kStall) {
      co_await StallUntilClosed();
      break;
    }
    std::string_view bytes =
        after == After::kGarbage ? kGarbageBytes : std::string_view(out_);
    std::tie(ec, n) = co_await asio::async_write(socket_, asio::buffer(bytes), kTuple);
    if (ec || after == After::kGarbage || !keep_alive_) break;
  }
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

asio::awaitable<void> Connection::StallUntilClosed() {
  char sink[512];
  for (;;) {
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(sink), kTuple);
    if (ec) co_return;
  }
}

uint64_t Connection::RecordExecution(const Request& req) {
  uint64_t execution = shared_.serial.fetch_add(1, std::memory_order_relaxed) + 1;
  snapshot_.method.assign(View(req.method_string()));
  snapshot_.target.assign(View(req.target()));
  snapshot_.header_lines.clear();
  for (const auto& field : req) {
    snapshot_.header_lines.append(View(field.name_string()));
    snapshot_.header_lines.append(": ");
    snapshot_.header_lines.append(View(field.value()));
    snapshot_.header_lines.append("\r\n");
  }
  snapshot_.body_bytes = req.body().size();
  auto key = req.find(shared_.options.key_header);
  if (key == req.end()) {
    shared_.log.Record(std::nullopt, snapshot_, ExecutionLog::Execution{});
  } else {
    ExecutionLog::Execution entry{execution, 0};
    std::string_view fence = View(req["Idempotency-Fence"]);
    std::from_chars(fence.data(), fence.data() + fence.size(), entry.fence);
    shared_.log.Record(NormalizeKey(View(key->value())), snapshot_, entry);
  }
  if (shared_.options.verbose) {
    std::fprintf(stderr, "idem-demo-upstream: #%llu %s %s\n",
                 static_cast<unsigned long long>(execution), snapshot_.method.c_str(),
                 snapshot_.target.c_str());
  }
  return execution;
}

// The test controls; true when `path` was one.
bool Connection::HandleControl(const Request& req, std::string_view path) {
  std::string_view target = View(req.target());
  if (path == "/_count") {
    auto key = QueryParam(target, "key");
    uint64_t count = key ? shared_.log.CountFor(*key) : shared_.log.Total();
    std::string body;
    AppendNumber(body, count);
    Respond(req, 200, kJson, body);
    return true;
  }
  if (path == "/_executions") {
    auto key = QueryParam(target, "key");
    if (!key) {
      Respond(req, 400, kJson, R"({"error":"missing ?key="})");
    } else {
      Respond(req, 200, kJson, ExecutionsJson(shared_.log.ExecutionsFor(*key)));
    }
    return true;
  }
  if (path == "/_last") {
    auto key = QueryParam(target, "key");
    auto snapshot = key ? shared_.log.LastFor(*key) : shared_.log.Last();
    if (snapshot) {
      Respond(req, 200, kJson, SnapshotJson(*snapshot));
    } else {
      Respond(req, 404, kJson, R"({"error":"no such request"})");
    }
    return true;
  }
  if (path == "/_reset") {
    if (req.method() != http::verb::post) {
      Respond(req, 405, kJson, R"({"error":"use POST"})", "Allow: POST\r\n");
    } else {
      shared_.log.Reset();
      Respond(req, 200, kJson, R"({"reset":true})");
    }
    return true;
  }
  return false;
}

After Connection::Handle(const Request& req) {
  keep_alive_ = req.keep_alive();
  std::string_view target = View(req.target());
  std::string_view path = PathOf(target);
  if (path.size() > 1 && path[1] == '_' && HandleControl(req, path)) return After::kWrite;

  uint64_t execution = RecordExecution(req);
  Route route = RouteFor(path);
  std::string& body = body_;
  switch (route.endpoint) {
    case Endpoint::kPayments:
      if (req.method() == http::verb::post) {
        PaymentResult payment = CreatePayment(req.body(), execution);
        if (payment.status == 201) {
          extra_.assign("Location: /payments/pay_");
          AppendNumber(extra_, execution);
          extra_.append("\r\n");
        } else {
          extra_.clear();
        }
        Respond(req, payment.status, kJson, payment.body, extra_);
        return After::kWrite;
      }
      break;
    case Endpoint::kStatus: {
      body.assign("{\"status\":");
      AppendNumber(body, route.status);
      body.append(",\"execution\":");
      AppendNumber(body, execution);
      body.push_back('}');
      extra_.assign("X-Demo-Execution: ");
      AppendNumber(extra_, execution);
      extra_.append("\r\n");
      Respond(req, route.status, kJson, body, extra_);
      return After::kWrite;
    }
    case Endpoint::kSlow:
      slow_ms_ = std::min(QueryNumber(target, "ms").value_or(100), kMaxSlowMs);
      slow_execution_ = execution;
      return After::kSlow;
    case Endpoint::kEcho: {
      std::string_view type = View(req[http::field::content_type]);
      Respond(req, 200, type.empty() ? "application/octet-stream" : type, req.body());
      return After::kWrite;
    }
    case Endpoint::kBig: {
      uint64_t bytes =
          std::min(QueryNumber(target, "bytes").value_or(1024), kMaxBigBytes);
      body.resize(bytes);
      for (uint64_t i = 0; i < bytes; ++i) body[i] = static_cast<char>('a' + i % 26);
      Respond(req, 200, "application/octet-stream", body);
      return After::kWrite;
    }
    case Endpoint::kDrop:
      return After::kDrop;
    case Endpoint::kGarbage:
      return After::kGarbage;
    case Endpoint::kStall:
      return After::kStall;
    case Endpoint::kOther:
      break;
  }
  body.assign("{\"ok\":true,\"execution\":");
  AppendNumber(body, execution);
  body.push_back('}');
  Respond(req, 200, kJson, body);
  return After::kWrite;
}

void Connection::FinishSlow(const Request& req) {
  std::string_view target = View(req.target());
  uint64_t status = QueryNumber(target, "status").value_or(200);
  if (status < 200 || status > 599) status = 200;
  body_.assign("{\"slept_ms\":");
  AppendNumber(body_, slow_ms_);
  body_.append(",\"execution\":");
  AppendNumber(body_, slow_execution_);
  body_.push_back('}');
  Respond(req, static_cast<unsigned>(status), kJson, body_);
}

void Connection::Respond(const Request& req, unsigned status,
                         std::string_view content_type, std::string_view body,
                         std::string_view extra_headers) {
  std::string_view target = View(req.target());
  bool hop = target.find("hop=1") != std::string_view::npos;
  bool no_body = status == 204 || status == 304;
  out_.assign("HTTP/1.1 ");
  AppendNumber(out_, status);
  out_.push_back(' ');
  std::string_view reason = View(http::obsolete_reason(http::int_to_status(status)));
  out_.append(reason.empty() || reason.front() == '<' ? "Status" : reason);
  out_.append("\r\n");
  if (!no_body) {
    out_.append("Content-Type: ");
    out_.append(content_type);
    out_.append("\r\nContent-Length: ");
    AppendNumber(out_, body.size());
    out_.append("\r\n");
  }
  out_.append(extra_headers);
  if (hop) out_.append("Keep-Alive: timeout=5\r\nX-Hop: 1\r\n");
  if (!keep_alive_) {
    out_.append(hop ? "Connection: close, X-Hop\r\n" : "Connection: close\r\n");
  } else if (hop) {
    out_.append("Connection: X-Hop\r\n");
  } else if (req.version() == 10) {
    out_.append("Connection: keep-alive\r\n");
  }
  out_.append("\r\n");
  if (!no_body && req.method() != http::verb::head) out_.append(body);
}

asio::awaitable<void> Serve(tcp::socket socket, Shared& shared) {
  Connection connection(std::move(socket), shared);
  co_await connection.Run();
}

using Contexts = std::vector<std::unique_ptr<asio::io_context>>;

asio::awaitable<void> Accept(tcp::acceptor& acceptor, Contexts& contexts,
                             Shared& shared) {
  size_t next = 0;
  for (;;) {
    asio::io_context& context = *contexts[next++ % contexts.size()];
    auto [ec, socket] = co_await acceptor.async_accept(context, kTuple);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors or similar: back off instead of spinning.
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(kTuple);
      continue;
    }
    asio::co_spawn(context, Serve(std::move(socket), shared), asio::detached);
  }
}

bool WritePortFile(const std::string& path, const tcp::endpoint& endpoint) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    std::string address = endpoint.address().to_string();
    if (endpoint.address().is_v6()) address = "[" + address + "]";
    out << "listen=" << address << ':' << endpoint.port() << '\n';
    out.flush();
    if (!out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

int RunUpstream(const UpstreamOptions& options) {
  Shared shared(options);
  unsigned threads = options.threads != 0
                         ? options.threads
                         : std::max(1u, std::thread::hardware_concurrency());
  Contexts contexts;
  for (unsigned i = 0; i < threads; ++i) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
  }

  boost::system::error_code ec;
  auto address = asio::ip::make_address(options.host, ec);
  if (ec) {
    std::fprintf(stderr, "idem-demo-upstream: \"%s\" is not an IP address\n",
                 options.host.c_str());
    return 1;
  }
  tcp::endpoint endpoint(address, options.port);
  tcp::acceptor acceptor(*contexts[0]);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "idem-demo-upstream: cannot listen on %s:%u: %s\n",
                 options.host.c_str(), static_cast<unsigned>(options.port),
                 ec.message().c_str());
    return 1;
  }
  tcp::endpoint bound = acceptor.local_endpoint();
  // Signals are caught before the port file tells anyone we are up: a
  // SIGTERM right after it must stop us cleanly, not kill us.
  asio::signal_set signals(*contexts[0], SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    for (auto& context : contexts) context->stop();
  });
  if (!options.port_file.empty() && !WritePortFile(options.port_file, bound)) {
    std::fprintf(stderr, "idem-demo-upstream: cannot write %s\n",
                 options.port_file.c_str());
    return 1;
  }
  std::fprintf(stderr, "idem-demo-upstream: listening on %s:%u with %u thread(s)\n",
               bound.address().to_string().c_str(), static_cast<unsigned>(bound.port()),
               threads);

  asio::co_spawn(*contexts[0], Accept(acceptor, contexts, shared), asio::detached);

  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads; ++i) {
    guards.push_back(asio::make_work_guard(*contexts[i]));
    workers.emplace_back([&context = *contexts[i]] { context.run(); });
  }
  contexts[0]->run();
  for (auto& context : contexts) context->stop();
  for (auto& worker : workers) worker.join();
  std::fprintf(stderr, "idem-demo-upstream: stopped\n");
  return 0;
}

}  // namespace idem::demo
