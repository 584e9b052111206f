#include "stores/redis/subscription.h"

#include <boost/asio/post.hpp>
#include <utility>

#include "stores/redis/lua_scripts.h"

namespace idem::redis_internal {

Subscription::Subscription(boost::asio::io_context& io,
                           std::function<Endpoint()> endpoint, Options options,
                           PublishFunction publish, SubscriptionListener* listener)
    : io_(io),
      options_(std::move(options)),
      publish_(std::move(publish)),
      listener_(listener),
      connection_(std::make_shared<Connection>(io, std::move(endpoint),
                                               options_.connection, nullptr, this)),
      timer_(io) {}

Subscription::~Subscription() = default;

void Subscription::Start() {
  boost::asio::post(io_, [conn = connection_] { conn->Start(); });
}

void Subscription::Close() {
  closed_ = true;
  timer_.cancel();
  connection_->Close();
}

void Subscription::SetListening(bool listening) {
  listening_.store(listening, std::memory_order_release);
  listener_->OnListening(listening);
}

void Subscription::OnSubscribed() {
  ++round_;
  awaiting_ = false;
  heard_ = false;
  SetListening(true);
  ArmCheck(options_.heartbeat_after);
}

void Subscription::OnSubscriptionLost() {
  ++round_;
  awaiting_ = false;
  timer_.cancel();
  SetListening(false);
}

void Subscription::OnMessage(std::string_view payload) {
  heard_ = true;
  if (payload.empty()) return;
  const char event = payload.front();
  if (event == kEventWatchedEnded || event == kEventDeleted) {
    listener_->OnEvent(event, payload.substr(1));
  }
}

void Subscription::ArmCheck(std::chrono::milliseconds after) {
  timer_.expires_after(after);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Check();
  });
}

void Subscription::Check() {
  if (closed_ || !listening()) return;
  if (heard_) {
    heard_ = false;
    awaiting_ = false;
    ArmCheck(options_.heartbeat_after);
    return;
  }
  if (awaiting_) {
    connection_->Reset(Unavailable("the redis subscription did not hear its heartbeat"));
    return;
  }
  awaiting_ = true;
  const uint64_t round = ++round_;
  publish_(std::string(1, kEventHeartbeat), [this, round](bool accepted) {
    boost::asio::post(io_, [this, round, accepted] { OnHeartbeatSent(round, accepted); });
  });
  ArmCheck(options_.heartbeat_timeout);
}

void Subscription::OnHeartbeatSent(uint64_t round, bool accepted) {
  if (closed_ || round != round_ || accepted) return;
  // Unheard of, the subscription may have missed messages: start over.
  connection_->Reset(
      Unavailable("the redis subscription could not publish its heartbeat"));
}

}  // namespace idem::redis_internal
