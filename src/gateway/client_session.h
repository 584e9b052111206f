// ClientSession: one client connection, served by one coroutine on one io
// thread.
//
// The coroutine reads a request, answers it completely, then reads the
// next, so pipelined requests are answered in order. Time-outs are
// deadlines checked by a second, ticking coroutine rather than a timer
// re-armed for every read and write: a request costs no timer work. The
// same tick extends the lease of a request whose upstream is slow. Only the
// owning worker's thread touches a session.
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/coarse_clock.h"
#include "gateway/http_headers.h"
#include "gateway/http_wire.h"
#include "gateway/idempotency_filter.h"
#include "gateway/problem.h"
#include "gateway/worker.h"

namespace idem::gateway {

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  // Serves `socket` on `worker`'s thread until the client leaves.
  static void Start(boost::asio::ip::tcp::socket socket, ServerShared& shared,
                    Worker& worker);

  ClientSession(boost::asio::ip::tcp::socket socket, ServerShared& shared,
                Worker& worker);
  ~ClientSession();

  // Drain hooks, run on the worker's thread: close the connection if it is
  // waiting for a next request; close it whatever it is doing.
  void CloseIfIdle();
  void ForceClose();

 private:
  using Clock = std::chrono::steady_clock;
  using RequestParser =
      boost::beast::http::request_parser<boost::beast::http::empty_body>;
  using WholeRequestParser =
      boost::beast::http::request_parser<boost::beast::http::string_body>;
  using StreamRequestParser =
      boost::beast::http::request_parser<boost::beast::http::buffer_body>;
  using ResponseParser =
      boost::beast::http::response_parser<boost::beast::http::buffer_body>;

  // What the connection is waiting for, which says what a missed deadline
  // means.
  enum class Phase : uint8_t {
    kNone,
    kIdle,
    kClientRead,
    kClientWrite,
    kConnect,
    kUpstream
  };

  // The access-log and metrics facts of the request being served.
  struct RequestFacts {
    Clock::time_point started;
    std::string method;  // copies: the parser that holds the views may be gone
    std::string path;
    int status = 0;
    Outcome outcome = Outcome::kForwarded;
    bool counted = false;  // in idem_requests_total already
    std::string key_tag;
    uint64_t fence = 0;
    Clock::duration upstream{-1};
    Clock::duration store{-1};
  };

  boost::asio::awaitable<void> Run(std::shared_ptr<ClientSession> self);
  boost::asio::awaitable<void> Watchdog(std::shared_ptr<ClientSession> self);
  boost::asio::awaitable<void> Serve();
  boost::asio::awaitable<bool> ServeRequest();

  // The three answers of IdempotencyFilter::Classify.
  boost::asio::awaitable<bool> RespondEarly(RequestParser& parser,
                                            const Problem& problem);
  boost::asio::awaitable<bool> Forward(RequestParser& parser);
  boost::asio::awaitable<bool> Protect(RequestParser& parser,
                                       const Classification& classification);

  // Reading the rest of a request. BufferedBody parses what is already read:
  // success when the body is complete, need_more when ReadBody must read
  // on (or send 100 Continue first), another error when the body is
  // unreadable. ReadBody goes on from that answer; on failure the client has
  // been answered (or is gone) and the connection must close.
  boost::system::error_code BufferedBody(WholeRequestParser& parser);
  boost::asio::awaitable<bool> ReadBody(WholeRequestParser& parser,
                                        boost::system::error_code ec);
  boost::asio::awaitable<bool> RejectUnreadable(boost::system::error_code ec);
  boost::asio::awaitable<bool> Reject(ProblemType type, std::string detail = {});
  boost::asio::awaitable<bool> SendContinue();

  // The upstream side.
  boost::asio::awaitable<bool> ForwardWhole(
      const boost::beast::http::request<boost::beast::http::string_body>& request,
      Execution* execution);
  boost::asio::awaitable<bool> ForwardStreaming(StreamRequestParser& parser);
  // A new connection when the pool has none; nullptr when none can be made
  // (502).
  boost::asio::awaitable<std::unique_ptr<UpstreamConnection>> ConnectUpstream();
  // Reading the upstream's response head: a new parser, then the parser's
  // answer to what the connection has buffered or read, passed through
  // SkipInterimHeads, which goes on with a new parser after an interim 1xx
  // head. need_more: read on.
  void NewResponseParser(std::optional<ResponseParser>& parser) const;
  boost::system::error_code SkipInterimHeads(UpstreamConnection& connection,
                                             std::optional<ResponseParser>& parser,
                                             boost::system::error_code ec) const;
  // The upstream's answer when the route's policy does not store it (or the
  // request is not protected); AnswerStored when it does.
  boost::asio::awaitable<bool> Answer(std::unique_ptr<UpstreamConnection> connection,
                                      ResponseParser& parser, Execution* execution);
  boost::asio::awaitable<bool> AnswerStored(
      std::unique_ptr<UpstreamConnection> connection, ResponseParser& parser,
      Execution& execution);
  boost::asio::awaitable<bool> Relay(std::unique_ptr<UpstreamConnection> connection,
                                     ResponseParser& parser, int status,
                                     std::string_view prefix);
  boost::asio::awaitable<bool> FailUpstream(Execution* execution, ProblemType type);

  // Store steps, timed into the request's facts.
  boost::asio::awaitable<Outcome> Complete(Execution& execution, StoredResponse response);
  boost::asio::awaitable<void> Abandon(Execution& execution);

  // Writing to the client.
  boost::asio::awaitable<bool> WriteStored(const StoredResponse& response, bool replayed);
  void BeginHead(int status);
  void EndHead(BodyFraming framing, uint64_t content_length);
  // SendToClient sends what the socket takes at once and returns the rest
  // (everything when the client is gone); SendRest writes that rest, if
  // any, asynchronously, so a coroutine frame is only made when the socket
  // is full. SendRest answers false when the client is gone.
  using ClientBytes =
      boost::beast::buffers_suffix<std::array<boost::asio::const_buffer, 2>>;
  ClientBytes SendToClient(std::string_view head, std::string_view body);
  boost::asio::awaitable<bool> SendRest(ClientBytes rest);

  // Lease extension while the upstream works, driven by the watchdog.
  void KeepLease(const Execution& execution);
  void StopKeepingLease();
  void ExtendLease(CoarseClock::time_point now);

  void SetDeadline(Phase phase, std::chrono::milliseconds timeout);
  void SetDeadlineAt(Phase phase, CoarseClock::time_point deadline);
  void OnDeadline();
  void CloseClient();
  void CountOutcome();
  void RecordRequest();
  void AddStoreTime(Clock::duration spent);
  char* RelayBuffer();

  boost::asio::ip::tcp::socket socket_;
  ServerShared& shared_;
  Worker& worker_;
  boost::beast::flat_buffer buffer_;
  boost::asio::steady_timer tick_timer_;
  std::string client_address_;

  Phase phase_ = Phase::kNone;
  CoarseClock::time_point deadline_ = CoarseClock::time_point::max();
  bool client_read_timed_out_ = false;
  bool upstream_timed_out_ = false;
  bool idle_ = false;
  bool closed_ = false;
  bool force_closed_ = false;
  bool stopped_ = false;
  UpstreamConnection* upstream_ = nullptr;  // what a missed upstream deadline closes
  const Execution* leased_ = nullptr;       // the lease the watchdog extends
  CoarseClock::time_point next_extension_;

  // The current request.
  bool keep_alive_ = true;
  bool http11_ = true;
  bool head_request_ = false;
  bool expect_continue_ = false;
  std::vector<HeaderLine> headers_;           // views into the request
  std::vector<HeaderLine> response_headers_;  // views into the upstream response
  std::string head_;                          // the head being written
  std::unique_ptr<char[]> relay_buffer_;
  RequestFacts facts_;
};

}  // namespace idem::gateway
