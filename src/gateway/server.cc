#include "gateway/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <condition_variable>
#include <csignal>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "gateway/address.h"
#include "gateway/admin_api.h"
#include "gateway/callback_bridge.h"
#include "gateway/client_session.h"
#include "gateway/http_wire.h"
#include "gateway/idempotency_filter.h"
#include "gateway/logging.h"
#include "gateway/metrics.h"
#include "gateway/worker.h"
#include "idem/engine.h"

namespace idem::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::milliseconds kDrainPoll{20};
// After the drain time-out, how long cut-off requests get to release their
// leases before the process stops anyway.
constexpr std::chrono::seconds kReleaseGrace{5};
constexpr std::chrono::milliseconds kAcceptBackoff{50};
constexpr uint32_t kAdminHeaderLimit = 16 * 1024;
// Expired records removed per Sweep call, and calls per sweep at most.
constexpr size_t kSweepBatch = 10'000;
constexpr int kMaxSweepBatches = 100;
constexpr uint64_t kAdminBodyLimit = uint64_t{64} * 1024;

Result<std::vector<tcp::endpoint>> Resolve(const HostPort& address,
                                           std::string_view what) {
  asio::io_context io;
  tcp::resolver resolver(io);
  error_code ec;
  const auto results = resolver.resolve(address.host, std::to_string(address.port), ec);
  if (ec || results.empty()) {
    return InvalidArgument(std::string(what) + ": cannot resolve \"" + address.host +
                           "\": " + (ec ? ec.message() : "no address"));
  }
  std::vector<tcp::endpoint> endpoints;
  for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  return endpoints;
}

// A listening socket on the first address `text` resolves to.
Result<std::unique_ptr<tcp::acceptor>> Listen(asio::io_context& io, std::string_view text,
                                              std::string_view what) {
  Result<HostPort> address = ParseHostPort(text);
  if (!address.ok()) {
    return InvalidArgument(std::string(what) + ": " + address.status().message());
  }
  Result<std::vector<tcp::endpoint>> endpoints = Resolve(*address, what);
  if (!endpoints.ok()) return endpoints.status();
  auto acceptor = std::make_unique<tcp::acceptor>(io);
  const tcp::endpoint& endpoint = endpoints->front();
  error_code ec;
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable(std::string(what) + ": cannot listen on " + std::string(text) +
                       ": " + ec.message());
  }
  return acceptor;
}

std::string BoundAddress(const tcp::acceptor& acceptor) {
  const tcp::endpoint local = acceptor.local_endpoint();
  return FormatHostPort(local.address().to_string(), local.port());
}

// A quarter of the shortest time-out, and a sixth of the shortest lease (so
// the lease_ttl / 3 extension is at most half a period late).
// The completion of the server's own coroutines: the one place their
// unexpected failures are logged.
auto LogFailure(std::string_view what) {
  return [what](std::exception_ptr failure) {
    if (!failure) return;
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      spdlog::error("{} failed: {}", what, e.what());
    }
  };
}

std::chrono::milliseconds TickFor(const GatewayConfig& config) {
  auto tick = std::min({config.server.header_timeout, config.server.body_timeout,
                        config.server.idle_timeout, config.upstream.timeout,
                        config.upstream.connect_timeout}) /
              4;
  int64_t shortest_lease_ms = config.idempotency.engine.lease_ttl_ms;
  for (const RouteConfig& route : config.routes) {
    shortest_lease_ms =
        std::min(shortest_lease_ms, route.idempotency.engine.lease_ttl_ms);
  }
  tick = std::min(tick, std::chrono::milliseconds(shortest_lease_ms / 6));
  return std::clamp(tick, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

}  // namespace

struct Server::Impl {
  // Members are listed so that, destroyed bottom-up, the store goes first
  // (its pending callbacks may still resume coroutines, which need the
  // workers), then the workers (whose coroutines touch `shared`), then the
  // rest.
  GatewayConfig config;
  Metrics metrics;
  std::unique_ptr<AccessLog> access_log;
  std::unique_ptr<ServerShared> shared;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<tcp::acceptor> admin_acceptor;
  std::optional<asio::signal_set> signals;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<IdempotencyFilter> filter;
  std::unique_ptr<AdminApi> admin;
  BoundAddresses addresses;

  // The sweeper: a plain thread, because a store's Sweep may scan for a
  // while and must not hold up an io thread.
  std::thread sweeper;
  std::mutex sweep_mutex;
  std::condition_variable sweep_wake;
  bool sweep_stop = false;
  std::atomic<bool> sweeper_done{false};

  explicit Impl(GatewayConfig c) : config(std::move(c)) {}
  ~Impl() {
    StopSweeper();
    // The store may run on the workers' io_contexts. Stopped (as they are
    // once Run has returned), they tell it that nothing runs them any more:
    // it closes its connections right here instead of waiting for them.
    for (auto& worker : workers) worker->io.stop();
    // The store first, explicitly: see above.
    admin.reset();
    filter.reset();
    engine.reset();
    signals.reset();
    admin_acceptor.reset();
    acceptor.reset();
    guards.clear();
    workers.clear();
  }

  Status Init(const StoreFactory& open_store);
  Worker& main_worker() { return *workers.front(); }
  void BeginDrain();
  void ForEachSession(void (ClientSession::*action)());
  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> AdminAcceptLoop();
  asio::awaitable<void> ServeAdmin(tcp::socket socket);
  asio::awaitable<void> DrainMonitor();
  void StopWorkers();
  void SweepUntilStopped();
  bool SweepStopRequested();
  void RequestSweeperStop();
  void StopSweeper();
};

Status Server::Impl::Init(const StoreFactory& open_store) {
  Result<UpstreamUrl> upstream = ParseUpstreamUrl(config.upstream.url);
  if (!upstream.ok()) {
    return InvalidArgument("upstream.url: " + upstream.status().message());
  }
  Result<std::vector<tcp::endpoint>> upstream_endpoints =
      Resolve(upstream->address, "upstream.url");
  if (!upstream_endpoints.ok()) return upstream_endpoints.status();

  unsigned threads = config.server.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) {
    workers.push_back(std::make_unique<Worker>(*upstream_endpoints,
                                               config.upstream.max_idle_connections));
  }
  std::vector<asio::io_context*> loops;
  for (auto& worker : workers) loops.push_back(&worker->io);
  Result<std::shared_ptr<Store>> store = open_store(loops);
  if (!store.ok()) return store.status();

  Result<std::unique_ptr<tcp::acceptor>> listen =
      Listen(main_worker().io, config.server.listen, "server.listen");
  if (!listen.ok()) return listen.status();
  acceptor = std::move(listen).value();
  Result<std::unique_ptr<tcp::acceptor>> admin_listen =
      Listen(main_worker().io, config.server.admin_listen, "server.admin_listen");
  if (!admin_listen.ok()) return admin_listen.status();
  admin_acceptor = std::move(admin_listen).value();
  addresses.listen = BoundAddress(*acceptor);
  addresses.admin = BoundAddress(*admin_acceptor);

  engine = std::make_unique<Engine>(std::move(store).value());
  filter = std::make_unique<IdempotencyFilter>(config, *engine, metrics);
  access_log =
      std::make_unique<AccessLog>(config.server.access_log, config.server.log_level);
  shared.reset(new ServerShared{config, std::move(upstream).value(), *filter, metrics,
                                *access_log, TickFor(config)});
  admin = std::make_unique<AdminApi>(engine->store(), metrics, shared->draining,
                                     config.secrets.admin_token);
  return Status::Ok();
}

asio::awaitable<void> Server::Impl::AcceptLoop() {
  size_t next = 0;
  asio::steady_timer backoff(main_worker().io);
  while (acceptor->is_open()) {
    Worker& worker = *workers[next++ % workers.size()];
    auto [ec, socket] = co_await acceptor->async_accept(worker.io, kTuple);
    if (ec) {
      if (!acceptor->is_open() || ec == asio::error::operation_aborted) break;
      spdlog::warn("accept failed: {}", ec.message());
      // Out of descriptors: give connections time to close.
      backoff.expires_after(kAcceptBackoff);
      co_await backoff.async_wait(kTuple);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    // Counted here, not on the worker, so the drain also waits for a
    // connection still on its way to its thread.
    shared->active_sessions.fetch_add(1, std::memory_order_relaxed);
    asio::post(worker.io,
               [socket = tcp::socket(std::move(socket)), this, &worker]() mutable {
                 ClientSession::Start(std::move(socket), *shared, worker);
               });
  }
}

asio::awaitable<void> Server::Impl::AdminAcceptLoop() {
  while (admin_acceptor->is_open()) {
    auto [ec, socket] = co_await admin_acceptor->async_accept(kTuple);
    if (ec) {
      if (!admin_acceptor->is_open() || ec == asio::error::operation_aborted) break;
      continue;
    }
    asio::co_spawn(main_worker().io, ServeAdmin(std::move(socket)),
                   LogFailure("an admin connection"));
  }
}

asio::awaitable<void> Server::Impl::ServeAdmin(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  std::string head;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kAdminHeaderLimit);
    parser.body_limit(kAdminBodyLimit);
    stream.expires_after(config.server.idle_timeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
    if (ec) break;
    const auto& request = parser.get();
    const StoredResponse response =
        co_await AwaitCallback<StoredResponse>([&](Callback<StoredResponse> done) {
          admin->Handle(request.method_string(), request.target(),
                        request[http::field::authorization], std::move(done));
        });
    const bool keep_alive = request.keep_alive() && !shared->draining.load();
    head.clear();
    AppendStatusLine(head, response.status);
    for (const auto& [name, value] : response.headers) {
      AppendHeaderLine(head, name, value);
    }
    if (response.status != 204) {
      head.append("Content-Length: ");
      AppendDecimal(head, response.body.size());
      head.append("\r\n");
    }
    head.append(keep_alive ? "\r\n" : "Connection: close\r\n\r\n");
    const bool with_body = request.method() != http::verb::head && response.status != 204;
    const std::array<asio::const_buffer, 2> pieces{
        asio::buffer(head),
        with_body ? asio::buffer(response.body) : asio::const_buffer()};
    stream.expires_after(config.server.body_timeout);
    auto [write_ec, written] = co_await asio::async_write(stream, pieces, kTuple);
    if (write_ec || !keep_alive) break;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

void Server::Impl::ForEachSession(void (ClientSession::*action)()) {
  for (auto& worker : workers) {
    asio::post(worker->io, [w = worker.get(), action] {
      // Copied: an action may end a session, which leaves the set.
      const std::vector<ClientSession*> sessions(w->sessions.begin(), w->sessions.end());
      for (ClientSession* session : sessions) (session->*action)();
    });
  }
}

void Server::Impl::BeginDrain() {
  if (shared->draining.exchange(true)) return;
  spdlog::info("draining: {} connection(s) open, waiting up to {} ms",
               shared->active_sessions.load(), config.server.drain_timeout.count());
  error_code ignored;
  acceptor->close(ignored);
  ForEachSession(&ClientSession::CloseIfIdle);
  asio::co_spawn(main_worker().io, DrainMonitor(), LogFailure("the drain"));
}

asio::awaitable<void> Server::Impl::DrainMonitor() {
  asio::steady_timer timer(main_worker().io);
  const auto wait_until = [&](Clock::time_point until) -> asio::awaitable<void> {
    while (shared->active_sessions.load() > 0 && Clock::now() < until) {
      timer.expires_after(kDrainPoll);
      co_await timer.async_wait(kTuple);
    }
  };
  co_await wait_until(Clock::now() + config.server.drain_timeout);
  if (shared->active_sessions.load() > 0) {
    spdlog::warn("drain time-out: cutting off {} connection(s), releasing their leases",
                 shared->active_sessions.load());
    ForEachSession(&ClientSession::ForceClose);
    co_await wait_until(Clock::now() + kReleaseGrace);
  }
  // A sweep in progress may need the io threads (a store running on them)
  // to finish: the sweeper stops first.
  RequestSweeperStop();
  while (!sweeper_done.load()) {
    timer.expires_after(kDrainPoll);
    co_await timer.async_wait(kTuple);
  }
  spdlog::info("drained; stopping");
  StopWorkers();
}

void Server::Impl::SweepUntilStopped() {
  std::unique_lock lock(sweep_mutex);
  for (;;) {
    sweep_wake.wait_for(lock, config.store.sweep_interval, [this] { return sweep_stop; });
    if (sweep_stop) break;
    lock.unlock();
    size_t removed = 0;
    for (int batch = 0; batch < kMaxSweepBatches && !SweepStopRequested(); ++batch) {
      Result<size_t> swept = SweepSync(engine->store(), kSweepBatch);
      if (!swept.ok()) {
        spdlog::warn("sweeping expired records failed: {}", swept.status().ToString());
        break;
      }
      removed += *swept;
      if (*swept < kSweepBatch) break;
    }
    if (removed > 0) spdlog::debug("swept {} expired record(s)", removed);
    lock.lock();
  }
  sweeper_done.store(true);
}

bool Server::Impl::SweepStopRequested() {
  std::lock_guard lock(sweep_mutex);
  return sweep_stop;
}

void Server::Impl::RequestSweeperStop() {
  {
    std::lock_guard lock(sweep_mutex);
    sweep_stop = true;
  }
  sweep_wake.notify_all();
}

void Server::Impl::StopSweeper() {
  RequestSweeperStop();
  if (sweeper.joinable()) sweeper.join();
}

void Server::Impl::StopWorkers() {
  error_code ignored;
  admin_acceptor->close(ignored);
  if (signals) signals->cancel(ignored);
  guards.clear();
  for (auto& worker : workers) worker->io.stop();
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::Create(GatewayConfig config,
                                               const StoreFactory& open_store) {
  auto impl = std::make_unique<Impl>(std::move(config));
  Status status = impl->Init(open_store);
  if (!status.ok()) return status;
  // Signals are caught from here on, before anyone learns our ports (the
  // port file), so a SIGTERM sent right after start-up still drains.
  std::signal(SIGPIPE, SIG_IGN);
  Impl& ready = *impl;
  ready.signals.emplace(ready.main_worker().io, SIGINT, SIGTERM);
  ready.signals->async_wait([&ready](const error_code& ec, int signal_number) {
    if (ec) return;
    spdlog::info("received signal {}", signal_number);
    ready.BeginDrain();
  });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

const BoundAddresses& Server::addresses() const { return impl_->addresses; }

Status Server::Run() {
  Impl& impl = *impl_;
  for (auto& worker : impl.workers) {
    impl.guards.push_back(asio::make_work_guard(worker->io));
  }
  asio::co_spawn(impl.main_worker().io, impl.AcceptLoop(), LogFailure("the listener"));
  asio::co_spawn(impl.main_worker().io, impl.AdminAcceptLoop(),
                 LogFailure("the admin listener"));
  spdlog::info("serving on {} (admin {}) with {} thread(s), upstream {}",
               impl.addresses.listen, impl.addresses.admin, impl.workers.size(),
               impl.config.upstream.url);

  impl.sweeper = std::thread([&impl] { impl.SweepUntilStopped(); });
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl.workers.size(); ++i) {
    threads.emplace_back([worker = impl.workers[i].get()] { worker->io.run(); });
  }
  impl.main_worker().io.run();
  for (std::thread& t : threads) t.join();
  impl.StopSweeper();
  impl.access_log->Flush();
  return Status::Ok();
}

void Server::RequestStop() {
  Impl& impl = *impl_;
  asio::post(impl.main_worker().io, [&impl] { impl.BeginDrain(); });
}

}  // namespace idem::gateway
