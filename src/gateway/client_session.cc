#include "gateway/client_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <utility>

#include "gateway/callback_bridge.h"
#include "gateway/socket_io.h"

namespace idem::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using tcp = asio::ip::tcp;

// Awaited operations answer (error_code, ...) tuples instead of throwing.
// deferred rather than use_awaitable: an awaitable coroutine co_awaits a
// deferred operation directly, while use_awaitable wraps every operation in
// a coroutine frame of its own (an allocation per read and write).
constexpr auto kTuple = asio::as_tuple(asio::deferred);

// The first read of a request; the parser asks for more when needed.
constexpr size_t kReadSize = 8192;
// Body bytes moved per step when a body is streamed or collected.
constexpr size_t kRelayChunk = 16384;
// Pass-through bodies up to this size are read whole, so a request can be
// sent again when a pooled upstream connection turns out to be closed;
// larger and chunked ones are streamed.
constexpr uint64_t kWholeForwardLimit = uint64_t{64} * 1024;
// A body this small is read and dropped after an early answer, so the
// connection stays usable; a larger one closes the connection instead.
constexpr uint64_t kDiscardLimit = uint64_t{64} * 1024;
constexpr uint32_t kUpstreamHeaderLimit = 64 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

// The peer went away or the session closed the socket: nothing to answer.
bool IsDisconnect(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::operation_aborted ||
         ec == asio::error::bad_descriptor || ec == asio::error::not_connected;
}

template <typename Fields>
void CollectHeaders(const Fields& fields, std::vector<HeaderLine>& out) {
  out.clear();
  for (const auto& field : fields) {
    out.push_back(HeaderLine{field.name_string(), field.value()});
  }
}

// Why a request head is refused (empty when it is fine). Framing: one
// Content-Length (no list), or one Transfer-Encoding that is exactly
// "chunked" and no Content-Length; any other framing can be read two ways
// (the root of request smuggling), and other codings would reach the
// upstream undecoded. Host: exactly one in HTTP/1.1, at most one in 1.0
// (RFC 9112 section 3.2). Target: origin-form, "*" for OPTIONS, or
// absolute-form, which is rewritten to origin-form here so routes match the
// path the upstream will see (an absolute-form target must not slip past a
// route's require_key). Obs-fold needs no check: the parser replaces it with
// a space before anything reads the value (RFC 9112 section 5.2).
std::string_view CheckHead(http::request_parser<http::empty_body>& parser) {
  int lengths = 0;
  int codings = 0;
  int hosts = 0;
  bool list = false;
  bool chunked_only = true;
  auto& request = parser.get();
  for (const auto& field : request) {
    if (field.name() == http::field::content_length) {
      ++lengths;
      list = list || field.value().find(',') != beast::string_view::npos;
    } else if (field.name() == http::field::transfer_encoding) {
      ++codings;
      chunked_only = chunked_only && beast::iequals(field.value(), "chunked");
    } else if (field.name() == http::field::host) {
      ++hosts;
    }
  }
  if (lengths > 1 || list || codings > 1 ||
      (codings == 1 && (lengths > 0 || !chunked_only))) {
    return "The request has conflicting or repeated Content-Length and "
           "Transfer-Encoding fields, or a transfer coding other than chunked.";
  }
  if (hosts > 1 || (hosts == 0 && request.version() >= 11)) {
    return "An HTTP/1.1 request needs exactly one Host field.";
  }
  const std::string_view target = request.target();
  if (target.starts_with('/')) return {};
  if (target == "*" && request.method() == http::verb::options) return {};
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() > scheme.size() &&
        beast::iequals(target.substr(0, scheme.size()), scheme)) {
      const size_t path = target.find_first_of("/?", scheme.size());
      std::string origin_form(path == std::string_view::npos ? "" : target.substr(path));
      if (!origin_form.starts_with('/')) origin_form.insert(0, "/");
      request.target(origin_form);
      return {};
    }
  }
  return "The request target must be a path (origin-form) or an absolute URL.";
}

std::string_view PathOf(std::string_view target) {
  return target.substr(0, target.find('?'));
}

bool HasNoBody(int status) {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

double Milliseconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

void ClientSession::Start(tcp::socket socket, ServerShared& shared, Worker& worker) {
  auto session = std::make_shared<ClientSession>(std::move(socket), shared, worker);
  // Run catches and logs its own failures: it must clean up after them. The
  // watchdog only compares times and closes sockets.
  asio::co_spawn(worker.io, session->Run(session), asio::detached);
  asio::co_spawn(worker.io, session->Watchdog(session), asio::detached);
}

ClientSession::ClientSession(tcp::socket socket, ServerShared& shared, Worker& worker)
    : socket_(std::move(socket)),
      shared_(shared),
      worker_(worker),
      tick_timer_(worker.io) {
  error_code ec;
  const tcp::endpoint peer = socket_.remote_endpoint(ec);
  client_address_ = ec ? "unknown" : peer.address().to_string();
  // active_sessions was counted by the acceptor.
  worker_.sessions.insert(this);
  shared_.metrics.ConnectionOpened();
}

ClientSession::~ClientSession() {
  worker_.sessions.erase(this);
  shared_.metrics.ConnectionClosed();
  shared_.active_sessions.fetch_sub(1, std::memory_order_relaxed);
}

void ClientSession::CloseIfIdle() {
  if (idle_) CloseClient();
}

void ClientSession::ForceClose() {
  force_closed_ = true;
  CloseClient();
  if (upstream_ != nullptr) {
    error_code ignored;
    upstream_->socket.close(ignored);
  }
}

void ClientSession::CloseClient() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

asio::awaitable<void> ClientSession::Run(
    [[maybe_unused]] std::shared_ptr<ClientSession> self) {
  // The one place a connection's unexpected failure is logged.
  try {
    co_await Serve();
  } catch (const std::exception& e) {
    spdlog::error("connection from {} failed: {}", client_address_, e.what());
  }
  stopped_ = true;
  tick_timer_.cancel();
  CloseClient();
}

asio::awaitable<void> ClientSession::Watchdog(
    [[maybe_unused]] std::shared_ptr<ClientSession> self) {
  while (!stopped_) {
    tick_timer_.expires_after(shared_.tick);
    co_await tick_timer_.async_wait(kTuple);
    if (stopped_) break;
    const auto now = CoarseClock::now();
    if (now >= deadline_) OnDeadline();
    if (leased_ != nullptr && now >= next_extension_) ExtendLease(now);
  }
}

void ClientSession::KeepLease(const Execution& execution) {
  leased_ = &execution;
  next_extension_ = CoarseClock::now() +
                    std::chrono::milliseconds(execution.route->engine.lease_ttl_ms / 3);
}

void ClientSession::StopKeepingLease() { leased_ = nullptr; }

// The watchdog's second job: while the upstream works, the lease is moved on
// every lease_ttl / 3, so a slow request is not taken over by a retry. The
// answer may come on another thread; it touches no session state.
void ClientSession::ExtendLease(CoarseClock::time_point now) {
  next_extension_ =
      now + std::chrono::milliseconds(leased_->route->engine.lease_ttl_ms / 3);
  shared_.filter.Extend(*leased_, [](Result<int64_t> extended) {
    if (!extended.ok() && extended.status().code() == StatusCode::kLeaseLost) {
      spdlog::warn(
          "the lease of a running request was taken over; its result will not "
          "be stored");
    }
  });
}

void ClientSession::SetDeadline(Phase phase, std::chrono::milliseconds timeout) {
  SetDeadlineAt(phase, CoarseClock::now() + timeout);
}

void ClientSession::SetDeadlineAt(Phase phase, CoarseClock::time_point deadline) {
  phase_ = phase;
  deadline_ = deadline;
}

// Runs on every tick while the deadline stays missed: a cancel that lands
// between two steps of a composed read does not stop it, the next one does.
void ClientSession::OnDeadline() {
  error_code ignored;
  switch (phase_) {
    case Phase::kIdle:
    case Phase::kClientWrite:
      CloseClient();
      break;
    case Phase::kClientRead:
      client_read_timed_out_ = true;
      socket_.cancel(ignored);
      break;
    case Phase::kConnect:
    case Phase::kUpstream:
      upstream_timed_out_ = true;
      if (upstream_ != nullptr) upstream_->socket.close(ignored);
      break;
    case Phase::kNone:
      break;
  }
}

char* ClientSession::RelayBuffer() {
  if (!relay_buffer_) relay_buffer_ = std::make_unique<char[]>(kRelayChunk);
  return relay_buffer_.get();
}

asio::awaitable<void> ClientSession::Serve() {
  const ServerConfig& server = shared_.config.server;
  bool first = true;
  while (!closed_ && !shared_.draining.load(std::memory_order_relaxed)) {
    if (buffer_.size() == 0) {
      SetDeadline(Phase::kIdle, first ? server.header_timeout : server.idle_timeout);
      idle_ = true;
      auto [ec, n] = co_await socket_.async_read_some(buffer_.prepare(kReadSize), kTuple);
      idle_ = false;
      if (ec) co_return;
      buffer_.commit(n);
    }
    first = false;
    if (!co_await ServeRequest()) co_return;
  }
}

asio::awaitable<bool> ClientSession::ServeRequest() {
  const ServerConfig& server = shared_.config.server;
  facts_.started = Clock::now();
  facts_.method.clear();
  facts_.path.clear();
  facts_.status = 0;
  facts_.outcome = Outcome::kRejected;
  facts_.counted = false;
  facts_.key_tag.clear();
  facts_.fence = 0;
  facts_.upstream = Clock::duration(-1);
  facts_.store = Clock::duration(-1);
  keep_alive_ = true;
  http11_ = true;
  head_request_ = false;
  expect_continue_ = false;
  client_read_timed_out_ = false;

  RequestParser parser;
  parser.header_limit(
      static_cast<uint32_t>(std::min<uint64_t>(server.max_header_size, UINT32_MAX)));
  parser.body_limit(server.max_request_body);
  SetDeadline(Phase::kClientRead, server.header_timeout);
  // Serve has read the first bytes; the whole head is usually among them.
  error_code ec = ParseBuffered(parser, buffer_);
  while (ec == http::error::need_more) {
    auto [read_ec, n] = co_await socket_.async_read_some(ReadSpace(buffer_), kTuple);
    buffer_.commit(n);
    ec = ParseAfterRead(parser, buffer_, read_ec);
  }
  if (ec) {
    co_await RejectUnreadable(ec);
    if (facts_.status != 0) RecordRequest();
    co_return false;
  }

  const auto& request = parser.get();
  if (shared_.access_log.enabled()) {
    facts_.method.assign(request.method_string());
    facts_.path.assign(PathOf(request.target()));
  }
  if (const std::string_view refused = CheckHead(parser); !refused.empty()) {
    co_await Reject(ProblemType::kMalformedRequest, std::string(refused));
    RecordRequest();
    co_return false;
  }
  keep_alive_ = request.keep_alive();
  http11_ = request.version() >= 11;
  head_request_ = request.method() == http::verb::head;
  expect_continue_ = beast::iequals(request[http::field::expect], "100-continue");
  CollectHeaders(request, headers_);

  const RequestView view{request.method_string(), request.target(), headers_, {}};
  const Classification classification = shared_.filter.Classify(view);
  facts_.outcome = classification.outcome;
  bool usable = false;
  switch (classification.kind) {
    case Classification::Kind::kRespond:
      usable = co_await RespondEarly(parser, classification.problem);
      break;
    case Classification::Kind::kForward:
      usable = co_await Forward(parser);
      break;
    case Classification::Kind::kProtect:
      usable = co_await Protect(parser, classification);
      break;
  }
  RecordRequest();
  const bool next = usable && keep_alive_ && !closed_;
  co_return next;
}

// Counted as the answer starts, not after it: a client that reads its
// response and then scrapes /metrics must find the request counted.
void ClientSession::CountOutcome() {
  if (facts_.counted) return;
  facts_.counted = true;
  shared_.metrics.CountRequest(facts_.outcome);
}

void ClientSession::RecordRequest() {
  CountOutcome();
  if (!shared_.access_log.enabled()) return;
  AccessEntry entry;
  entry.method = facts_.method;
  entry.path = facts_.path;
  entry.status = facts_.status;
  entry.outcome = facts_.outcome;
  entry.key_tag = facts_.key_tag;
  entry.fence = facts_.fence;
  entry.client = client_address_;
  entry.total_ms = Milliseconds(Clock::now() - facts_.started);
  if (facts_.upstream.count() >= 0) entry.upstream_ms = Milliseconds(facts_.upstream);
  if (facts_.store.count() >= 0) entry.store_ms = Milliseconds(facts_.store);
  shared_.access_log.Write(entry);
}

asio::awaitable<bool> ClientSession::RejectUnreadable(error_code ec) {
  ProblemType type = ProblemType::kMalformedRequest;
  if (client_read_timed_out_) {
    type = ProblemType::kRequestTimeout;
  } else if (ec == http::error::header_limit) {
    type = ProblemType::kHeadersTooLarge;
  } else if (ec == http::error::body_limit) {
    type = ProblemType::kBodyTooLarge;
  } else if (IsDisconnect(ec)) {
    co_return false;
  }
  co_return co_await Reject(type);
}

asio::awaitable<bool> ClientSession::Reject(ProblemType type, std::string detail) {
  keep_alive_ = false;
  facts_.outcome = Outcome::kRejected;
  Problem problem;
  problem.type = type;
  problem.detail = std::move(detail);
  co_await WriteStored(ProblemResponse(problem), false);
  co_return false;
}

asio::awaitable<bool> ClientSession::SendContinue() {
  SetDeadline(Phase::kClientWrite, shared_.config.server.body_timeout);
  auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(kContinue), kTuple);
  co_return !ec;
}

error_code ClientSession::BufferedBody(WholeRequestParser& parser) {
  if (parser.is_done()) return {};
  // A client that asked for 100 Continue gets it before the body is read.
  if (expect_continue_) return http::error::need_more;
  parser.eager(true);
  error_code ec = ParseBuffered(parser, buffer_);
  if (!ec && !parser.is_done()) ec = http::error::need_more;
  return ec;
}

asio::awaitable<bool> ClientSession::ReadBody(WholeRequestParser& parser, error_code ec) {
  if (ec == http::error::need_more) {
    if (expect_continue_ && !co_await SendContinue()) co_return false;
    SetDeadline(Phase::kClientRead, shared_.config.server.body_timeout);
    parser.eager(true);
    ec = {};
    while (!ec && !parser.is_done()) {
      ec = ParseBuffered(parser, buffer_);
      while (ec == http::error::need_more) {
        auto [read_ec, n] = co_await socket_.async_read_some(ReadSpace(buffer_), kTuple);
        buffer_.commit(n);
        ec = ParseAfterRead(parser, buffer_, read_ec);
      }
    }
  }
  if (!ec) co_return true;
  co_await RejectUnreadable(ec);
  co_return false;
}

asio::awaitable<bool> ClientSession::RespondEarly(RequestParser& parser,
                                                  const Problem& problem) {
  if (!parser.is_done()) {
    const auto length = parser.content_length();
    if (expect_continue_ || !length || *length > kDiscardLimit) {
      // The body is not read; the client learns that from the close.
      keep_alive_ = false;
    } else {
      WholeRequestParser discard{std::move(parser)};
      SetDeadline(Phase::kClientRead, shared_.config.server.body_timeout);
      auto [ec, n] = co_await http::async_read(socket_, buffer_, discard, kTuple);
      if (ec) keep_alive_ = false;
    }
  }
  co_return co_await WriteStored(ProblemResponse(problem), false);
}

asio::awaitable<bool> ClientSession::Forward(RequestParser& parser) {
  const auto length = parser.content_length();
  if (parser.is_done() || (length && *length <= kWholeForwardLimit)) {
    WholeRequestParser whole{std::move(parser)};
    if (const error_code ec = BufferedBody(whole); ec && !co_await ReadBody(whole, ec)) {
      co_return false;
    }
    co_return co_await ForwardWhole(whole.get(), nullptr);
  }
  StreamRequestParser stream{std::move(parser)};
  co_return co_await ForwardStreaming(stream);
}

asio::awaitable<bool> ClientSession::Protect(RequestParser& parser,
                                             const Classification& classification) {
  WholeRequestParser whole{std::move(parser)};
  if (const error_code ec = BufferedBody(whole); ec && !co_await ReadBody(whole, ec)) {
    co_return false;
  }
  const auto& request = whole.get();
  const RequestView view{request.method_string(), request.target(), headers_,
                         request.body()};

  const auto asked = Clock::now();
  CallbackCall<Action> begin([&](Callback<Action> done) {
    shared_.filter.Begin(classification, view, std::move(done));
  });
  if (!begin.ready()) {
    co_await begin.Wait();
  }
  Action& action = begin.value();
  facts_.store = Clock::now() - asked;
  facts_.outcome = action.outcome;
  if (shared_.access_log.enabled() && !action.scope_key.empty()) {
    facts_.key_tag = IdempotencyFilter::KeyTag(action.scope_key);
  }
  switch (action.kind) {
    case Action::Kind::kRespond:
      co_return co_await WriteStored(ProblemResponse(action.problem), false);
    case Action::Kind::kReplay:
      co_return co_await WriteStored(action.record->response, true);
    case Action::Kind::kForward:
      co_return co_await ForwardWhole(request, nullptr);
    case Action::Kind::kExecute: {
      facts_.fence = action.execution.lease.fence;
      const bool usable = co_await ForwardWhole(request, &action.execution);
      StopKeepingLease();  // `action` ends here, whatever path ForwardWhole took
      co_return usable;
    }
  }
  co_return false;
}

asio::awaitable<std::unique_ptr<UpstreamConnection>> ClientSession::ConnectUpstream() {
  auto connection = worker_.pool.MakeNew();
  upstream_ = connection.get();
  upstream_timed_out_ = false;
  SetDeadline(Phase::kConnect, shared_.config.upstream.connect_timeout);
  auto [ec, endpoint] =
      co_await asio::async_connect(connection->socket, worker_.pool.endpoints(), kTuple);
  upstream_ = nullptr;
  if (ec) {
    spdlog::warn("cannot connect to the upstream {}: {}", shared_.upstream.authority,
                 upstream_timed_out_ ? "timed out" : ec.message());
    co_return nullptr;
  }
  connection->socket.set_option(tcp::no_delay(true), ec);
  co_return connection;
}

void ClientSession::NewResponseParser(std::optional<ResponseParser>& parser) const {
  parser.emplace();
  parser->body_limit(boost::none);
  parser->header_limit(kUpstreamHeaderLimit);
  if (head_request_) parser->skip(true);
}

error_code ClientSession::SkipInterimHeads(UpstreamConnection& connection,
                                           std::optional<ResponseParser>& parser,
                                           error_code ec) const {
  for (;;) {
    if (ec) return ec;
    const int status = static_cast<int>(parser->get().result_int());
    if (status >= 200) return {};
    // Upgrade is never forwarded, so 101 is a broken answer; other 1xx
    // (100 Continue, 103 Early Hints) are interim and skipped.
    if (status == 101) return http::error::bad_status;
    NewResponseParser(parser);
    ec = ParseBuffered(*parser, connection.buffer);
  }
}

asio::awaitable<bool> ClientSession::ForwardWhole(
    const http::request<http::string_body>& request, Execution* execution) {
  const std::string_view body = request.body();
  const bool framed = !body.empty() ||
                      FindHeader(headers_, "content-length") != nullptr ||
                      FindHeader(headers_, "transfer-encoding") != nullptr;
  head_.clear();
  AppendUpstreamRequestHead(
      head_, UpstreamRequestHead{
                 request.method_string(), shared_.upstream.base_path, request.target(),
                 headers_, shared_.upstream.authority, client_address_,
                 execution != nullptr ? execution->lease.fence : 0,
                 framed ? BodyFraming::kContentLength : BodyFraming::kNone, body.size()});
  if (execution != nullptr) KeepLease(*execution);
  const std::array<asio::const_buffer, 2> out{asio::buffer(head_),
                                              asio::buffer(body.data(), body.size())};
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<UpstreamConnection> connection = worker_.pool.TakeIdle();
    if (!connection) {
      connection = co_await ConnectUpstream();
    }
    if (!connection) {
      // Nothing was sent, so the upstream did not run the request: the key
      // is released whatever on_server_error says.
      StopKeepingLease();
      if (execution != nullptr) {
        co_await Abandon(*execution);
      }
      facts_.outcome = Outcome::kUpstreamError;
      Problem problem;
      problem.type = ProblemType::kUpstreamUnreachable;
      co_return co_await WriteStored(ProblemResponse(problem), false);
    }
    upstream_ = connection.get();
    upstream_timed_out_ = false;
    SetDeadline(Phase::kUpstream, shared_.config.upstream.timeout);
    const auto sent = Clock::now();
    error_code write_ec;
    if (const auto rest = SendNow(connection->socket, out);
        beast::buffer_bytes(rest) > 0) {
      auto [ec, n] = co_await asio::async_write(connection->socket, rest, kTuple);
      write_ec = ec;
    }
    std::optional<ResponseParser> parser;
    error_code ec = write_ec;
    if (!ec) {
      NewResponseParser(parser);
      ec = SkipInterimHeads(*connection, parser,
                            ParseBuffered(*parser, connection->buffer));
      while (ec == http::error::need_more) {
        auto [read_ec, n] = co_await connection->socket.async_read_some(
            ReadSpace(connection->buffer), kTuple);
        connection->buffer.commit(n);
        ec = SkipInterimHeads(*connection, parser,
                              ParseAfterRead(*parser, connection->buffer, read_ec));
      }
    }
    upstream_ = nullptr;
    if (ec) {
      // A pooled connection the upstream closed just as it was reused is
      // tried once more on a new one, but only when the request provably
      // never arrived (the write failed), or when running it twice is
      // harmless (a safe method): an upstream that read a POST and then
      // dropped the connection may have acted on it.
      const bool unanswered = !parser || !parser->got_some();
      const bool safe_method = request.method() == http::verb::get ||
                               request.method() == http::verb::head ||
                               request.method() == http::verb::options;
      const bool stale =
          connection->reused && attempt == 0 && !upstream_timed_out_ && !force_closed_ &&
          IsDisconnect(ec) &&
          (write_ec || (unanswered && safe_method && execution == nullptr));
      if (stale) continue;
      StopKeepingLease();
      co_return co_await FailUpstream(execution, upstream_timed_out_
                                                     ? ProblemType::kUpstreamTimeout
                                                     : ProblemType::kUpstreamBadResponse);
    }
    facts_.upstream = Clock::now() - sent;
    shared_.metrics.ObserveUpstream(facts_.upstream);
    if (execution != nullptr &&
        IdempotencyFilter::WillStore(*execution->route,
                                     static_cast<int>(parser->get().result_int()))) {
      co_return co_await AnswerStored(std::move(connection), *parser, *execution);
    }
    co_return co_await Answer(std::move(connection), *parser, execution);
  }
}

asio::awaitable<bool> ClientSession::ForwardStreaming(StreamRequestParser& parser) {
  const ServerConfig& server = shared_.config.server;
  std::unique_ptr<UpstreamConnection> connection = worker_.pool.TakeIdle();
  if (!connection) {
    connection = co_await ConnectUpstream();
  }
  if (!connection) {
    keep_alive_ = false;  // the body stays unread
    facts_.outcome = Outcome::kUpstreamError;
    Problem problem;
    problem.type = ProblemType::kUpstreamUnreachable;
    co_return co_await WriteStored(ProblemResponse(problem), false);
  }
  const auto length = parser.content_length();
  const bool chunked = !length.has_value();
  head_.clear();
  AppendUpstreamRequestHead(
      head_,
      UpstreamRequestHead{parser.get().method_string(), shared_.upstream.base_path,
                          parser.get().target(), headers_, shared_.upstream.authority,
                          client_address_, 0,
                          chunked ? BodyFraming::kChunked : BodyFraming::kContentLength,
                          length.value_or(0)});
  upstream_ = connection.get();
  upstream_timed_out_ = false;
  const auto upstream_failed = [&]() -> asio::awaitable<bool> {
    upstream_ = nullptr;
    keep_alive_ = false;
    facts_.outcome = Outcome::kUpstreamError;
    Problem problem;
    problem.type = upstream_timed_out_ ? ProblemType::kUpstreamTimeout
                                       : ProblemType::kUpstreamBadResponse;
    co_return co_await WriteStored(ProblemResponse(problem), false);
  };

  SetDeadline(Phase::kUpstream, shared_.config.upstream.timeout);
  if (const auto rest = SendNow(connection->socket, asio::buffer(head_));
      beast::buffer_bytes(rest) > 0) {
    auto [head_ec, head_n] = co_await asio::async_write(connection->socket, rest, kTuple);
    if (head_ec) {
      co_return co_await upstream_failed();
    }
  }
  if (expect_continue_ && !co_await SendContinue()) co_return false;

  char* chunk = RelayBuffer();
  std::string chunk_head;
  const auto body_deadline = CoarseClock::now() + server.body_timeout;
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = kRelayChunk;
    SetDeadlineAt(Phase::kClientRead, body_deadline);
    error_code ec = ParseBuffered(parser, buffer_);
    while (ec == http::error::need_more) {
      auto [read_ec, n] = co_await socket_.async_read_some(ReadSpace(buffer_), kTuple);
      buffer_.commit(n);
      ec = ParseAfterRead(parser, buffer_, read_ec);
    }
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      upstream_ = nullptr;  // the upstream got half a body: the connection is dropped
      co_return co_await RejectUnreadable(ec);
    }
    const size_t got = kRelayChunk - parser.get().body().size;
    if (got == 0) continue;
    SetDeadline(Phase::kUpstream, shared_.config.upstream.timeout);
    chunk_head.clear();
    if (chunked) AppendChunkHeader(chunk_head, got);
    const std::array<asio::const_buffer, 3> piece{
        asio::buffer(chunk_head), asio::buffer(chunk, got),
        chunked ? asio::buffer("\r\n", 2) : asio::const_buffer()};
    if (const auto rest = SendNow(connection->socket, piece);
        beast::buffer_bytes(rest) > 0) {
      auto [write_ec, written] =
          co_await asio::async_write(connection->socket, rest, kTuple);
      if (write_ec) {
        co_return co_await upstream_failed();
      }
    }
  }
  SetDeadline(Phase::kUpstream, shared_.config.upstream.timeout);
  if (chunked) {
    if (const auto rest = SendNow(connection->socket, asio::buffer(kLastChunk));
        beast::buffer_bytes(rest) > 0) {
      auto [end_ec, end_n] = co_await asio::async_write(connection->socket, rest, kTuple);
      if (end_ec) {
        co_return co_await upstream_failed();
      }
    }
  }
  const auto sent = Clock::now();
  std::optional<ResponseParser> response;
  NewResponseParser(response);
  error_code ec = SkipInterimHeads(*connection, response,
                                   ParseBuffered(*response, connection->buffer));
  while (ec == http::error::need_more) {
    auto [read_ec, n] = co_await connection->socket.async_read_some(
        ReadSpace(connection->buffer), kTuple);
    connection->buffer.commit(n);
    ec = SkipInterimHeads(*connection, response,
                          ParseAfterRead(*response, connection->buffer, read_ec));
  }
  upstream_ = nullptr;
  if (ec) {
    co_return co_await FailUpstream(nullptr, upstream_timed_out_
                                                 ? ProblemType::kUpstreamTimeout
                                                 : ProblemType::kUpstreamBadResponse);
  }
  facts_.upstream = Clock::now() - sent;
  shared_.metrics.ObserveUpstream(facts_.upstream);
  co_return co_await Answer(std::move(connection), *response, nullptr);
}

asio::awaitable<bool> ClientSession::FailUpstream(Execution* execution,
                                                  ProblemType type) {
  facts_.outcome = Outcome::kUpstreamError;
  Problem problem;
  problem.type = type;
  if (execution != nullptr) {
    if (force_closed_) {
      // Cut off by shutdown, not by the upstream: never store that.
      co_await Abandon(*execution);
    } else {
      // The upstream may have run the request; the 5xx policy decides
      // whether a retry runs it again (release) or gets this answer (store).
      const Outcome finished = co_await Complete(*execution, ProblemResponse(problem));
      if (finished == Outcome::kLeaseLost) facts_.outcome = finished;
    }
  }
  co_return co_await WriteStored(ProblemResponse(problem), false);
}

asio::awaitable<bool> ClientSession::Answer(
    std::unique_ptr<UpstreamConnection> connection, ResponseParser& parser,
    Execution* execution) {
  const int status = static_cast<int>(parser.get().result_int());
  CollectHeaders(parser.get(), response_headers_);
  if (execution != nullptr) {
    StopKeepingLease();
    // The policy keeps nothing for this status: Finish releases the key, and
    // the body streams through.
    StoredResponse status_only;
    status_only.status = status;
    facts_.outcome = co_await Complete(*execution, std::move(status_only));
  }
  co_return co_await Relay(std::move(connection), parser, status, {});
}

asio::awaitable<bool> ClientSession::AnswerStored(
    std::unique_ptr<UpstreamConnection> connection, ResponseParser& parser,
    Execution& execution) {
  const int status = static_cast<int>(parser.get().result_int());
  CollectHeaders(parser.get(), response_headers_);
  const uint64_t limit = execution.route->max_stored_body;
  const auto length = parser.content_length();
  bool too_large = length && *length > limit;
  std::string body;
  if (!too_large) {
    if (length) body.reserve(*length);
    char* chunk = RelayBuffer();
    upstream_ = connection.get();
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = kRelayChunk;
      SetDeadline(Phase::kUpstream, shared_.config.upstream.timeout);
      error_code ec = ParseBuffered(parser, connection->buffer);
      while (ec == http::error::need_more) {
        auto [read_ec, n] = co_await connection->socket.async_read_some(
            ReadSpace(connection->buffer), kTuple);
        connection->buffer.commit(n);
        ec = ParseAfterRead(parser, connection->buffer, read_ec);
      }
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        upstream_ = nullptr;
        StopKeepingLease();
        co_return co_await FailUpstream(
            &execution, upstream_timed_out_ ? ProblemType::kUpstreamTimeout
                                            : ProblemType::kUpstreamBadResponse);
      }
      body.append(chunk, kRelayChunk - parser.get().body().size);
      if (body.size() > limit) {
        too_large = true;
        break;
      }
    }
    upstream_ = nullptr;
  }
  StopKeepingLease();
  if (too_large) {
    // Stored first, so a retry never runs the request again; then the real
    // response streams to this client.
    const auto asked = Clock::now();
    facts_.outcome = co_await AwaitCallback<Outcome>([&](Callback<Outcome> done) {
      shared_.filter.CompleteNotStored(execution, status, std::move(done));
    });
    AddStoreTime(Clock::now() - asked);
    co_return co_await Relay(std::move(connection), parser, status, body);
  }
  if (parser.keep_alive()) worker_.pool.Return(std::move(connection));

  StoredResponse response{status, EndToEndHeaders(response_headers_), std::move(body)};
  // The client gets exactly what a replay sends, minus Idempotent-Replayed.
  // The head is laid out, and the body kept, before the response moves into
  // the store.
  BeginHead(status);
  for (const auto& [name, value] : response.headers) AppendHeaderLine(head_, name, value);
  const bool no_body = HasNoBody(status);
  EndHead(no_body ? BodyFraming::kNone : BodyFraming::kContentLength,
          response.body.size());
  const std::string sent_body = no_body || head_request_ ? std::string() : response.body;
  const auto asked = Clock::now();
  CallbackCall<Outcome> complete([&](Callback<Outcome> done) {
    shared_.filter.Complete(execution, std::move(response), std::move(done));
  });
  if (!complete.ready()) {
    co_await complete.Wait();
  }
  facts_.outcome = complete.value();
  AddStoreTime(Clock::now() - asked);
  facts_.status = status;
  CountOutcome();
  if (const ClientBytes rest = SendToClient(head_, sent_body);
      beast::buffer_bytes(rest) > 0) {
    co_return co_await SendRest(rest);
  }
  co_return true;
}

void ClientSession::AddStoreTime(Clock::duration spent) {
  facts_.store = facts_.store.count() < 0 ? spent : facts_.store + spent;
}

asio::awaitable<bool> ClientSession::Relay(std::unique_ptr<UpstreamConnection> connection,
                                           ResponseParser& parser, int status,
                                           std::string_view prefix) {
  const HopByHopFilter hop(response_headers_);
  BeginHead(status);
  for (const HeaderLine& h : response_headers_) {
    if (hop.Drops(h.name) || EqualsIgnoreCase(h.name, "content-length")) continue;
    AppendHeaderLine(head_, h.name, h.value);
  }
  const auto length = parser.content_length();
  BodyFraming framing = BodyFraming::kNone;
  if (head_request_ || HasNoBody(status)) {
    // HEAD: the length the body would have had, as the upstream said it.
    if (head_request_ && length) {
      head_.append("Content-Length: ");
      AppendDecimal(head_, *length);
      head_.append("\r\n");
    }
  } else if (length) {
    framing = BodyFraming::kContentLength;
  } else {
    framing = http11_ ? BodyFraming::kChunked : BodyFraming::kUntilClose;
  }
  EndHead(framing, length.value_or(0));
  facts_.status = status;
  CountOutcome();

  const bool chunked = framing == BodyFraming::kChunked;
  std::string chunk_head;
  const auto write_piece = [&](std::string_view head,
                               std::string_view data) -> asio::awaitable<bool> {
    chunk_head.clear();
    if (chunked && !data.empty()) AppendChunkHeader(chunk_head, data.size());
    const std::array<asio::const_buffer, 4> pieces{
        asio::buffer(head.data(), head.size()), asio::buffer(chunk_head),
        asio::buffer(data.data(), data.size()),
        chunked && !data.empty() ? asio::buffer("\r\n", 2) : asio::const_buffer()};
    SetDeadline(Phase::kClientWrite, shared_.config.server.body_timeout);
    const auto rest = SendNow(socket_, pieces);
    if (beast::buffer_bytes(rest) == 0) co_return true;
    auto [ec, n] = co_await asio::async_write(socket_, rest, kTuple);
    co_return !ec;
  };

  if (!co_await write_piece(head_, framing == BodyFraming::kNone ? "" : prefix)) {
    co_return false;
  }
  if (framing != BodyFraming::kNone || !parser.is_done()) {
    char* chunk = RelayBuffer();
    upstream_ = connection.get();
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = kRelayChunk;
      SetDeadline(Phase::kUpstream, shared_.config.upstream.timeout);
      error_code ec = ParseBuffered(parser, connection->buffer);
      while (ec == http::error::need_more) {
        auto [read_ec, n] = co_await connection->socket.async_read_some(
            ReadSpace(connection->buffer), kTuple);
        connection->buffer.commit(n);
        ec = ParseAfterRead(parser, connection->buffer, read_ec);
      }
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        // The head is out: a truncated body, signalled by closing, is all
        // that is left to say.
        upstream_ = nullptr;
        co_return false;
      }
      const size_t got = kRelayChunk - parser.get().body().size;
      if (got > 0 && framing != BodyFraming::kNone &&
          !co_await write_piece({}, std::string_view(chunk, got))) {
        upstream_ = nullptr;
        co_return false;
      }
    }
    upstream_ = nullptr;
    if (chunked && !co_await write_piece(kLastChunk, {})) co_return false;
  }
  if (parser.keep_alive()) worker_.pool.Return(std::move(connection));
  co_return true;
}

asio::awaitable<Outcome> ClientSession::Complete(Execution& execution,
                                                 StoredResponse response) {
  const auto asked = Clock::now();
  CallbackCall<Outcome> complete([&](Callback<Outcome> done) {
    shared_.filter.Complete(execution, std::move(response), std::move(done));
  });
  if (!complete.ready()) {
    co_await complete.Wait();
  }
  AddStoreTime(Clock::now() - asked);
  co_return complete.value();
}

asio::awaitable<void> ClientSession::Abandon(Execution& execution) {
  const auto asked = Clock::now();
  // A failed release is logged and counted by the filter; the lease then
  // simply runs out.
  [[maybe_unused]] const Status released = co_await AwaitCallback<Status>(
      [&](Callback<Status> done) { shared_.filter.Abandon(execution, std::move(done)); });
  AddStoreTime(Clock::now() - asked);
}

void ClientSession::BeginHead(int status) {
  head_.clear();
  AppendStatusLine(head_, status);
}

void ClientSession::EndHead(BodyFraming framing, uint64_t content_length) {
  switch (framing) {
    case BodyFraming::kContentLength:
      head_.append("Content-Length: ");
      AppendDecimal(head_, content_length);
      head_.append("\r\n");
      break;
    case BodyFraming::kChunked:
      head_.append("Transfer-Encoding: chunked\r\n");
      break;
    case BodyFraming::kUntilClose:
      keep_alive_ = false;
      break;
    case BodyFraming::kNone:
      break;
  }
  if (shared_.draining.load(std::memory_order_relaxed)) keep_alive_ = false;
  if (!keep_alive_) {
    head_.append("Connection: close\r\n");
  } else if (!http11_) {
    head_.append("Connection: keep-alive\r\n");
  }
  head_.append("\r\n");
}

asio::awaitable<bool> ClientSession::WriteStored(const StoredResponse& response,
                                                 bool replayed) {
  BeginHead(response.status);
  for (const auto& [name, value] : response.headers) AppendHeaderLine(head_, name, value);
  if (replayed) head_.append("Idempotent-Replayed: true\r\n");
  const bool no_body = HasNoBody(response.status);
  EndHead(no_body ? BodyFraming::kNone : BodyFraming::kContentLength,
          response.body.size());
  facts_.status = response.status;
  CountOutcome();
  if (const ClientBytes rest =
          SendToClient(head_, no_body || head_request_ ? std::string_view()
                                                       : std::string_view(response.body));
      beast::buffer_bytes(rest) > 0) {
    co_return co_await SendRest(rest);
  }
  co_return true;
}

ClientSession::ClientBytes ClientSession::SendToClient(std::string_view head,
                                                       std::string_view body) {
  const std::array<asio::const_buffer, 2> pieces{asio::buffer(head.data(), head.size()),
                                                 asio::buffer(body.data(), body.size())};
  if (closed_) return ClientBytes(pieces);
  SetDeadline(Phase::kClientWrite, shared_.config.server.body_timeout);
  return SendNow(socket_, pieces);
}

asio::awaitable<bool> ClientSession::SendRest(ClientBytes rest) {
  if (closed_) co_return false;
  auto [ec, n] = co_await asio::async_write(socket_, rest, kTuple);
  co_return !ec;
}

}  // namespace idem::gateway
