// Subscription: the store's one pub/sub connection to its channel, and the
// proof that it still hears the channel.
//
// Scripts publish an event letter and a Redis key (lua_scripts.h): a watched
// flight ended, or a record was deleted. The subscription hands each event
// to its Listener and tells it when it starts and stops hearing: messages
// published while it is not subscribed are lost, which is what the waiters'
// re-check and the completed-record cache's reset are for.
//
// A connection can die without the socket saying so (a half-open TCP
// connection). So when nothing at all was heard for a while the
// subscription publishes a heartbeat on its own channel through a command
// connection; if that (or anything else) is not heard back within the
// command time-out, or the heartbeat cannot be published, the subscriber
// is reset and listening stops until it has subscribed again.
//
// Io thread: everything runs on the io_context it is given; Start may be
// called from any thread (it posts), Close on the io thread or once no
// thread runs the io_context any more.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "idem/status.h"
#include "stores/redis/connection.h"

namespace idem::redis_internal {

class SubscriptionListener {
 public:
  virtual ~SubscriptionListener() = default;
  // true: every message published from now on arrives; false: messages
  // may be lost from now on.
  virtual void OnListening(bool listening) = 0;
  // One event published by a script: its letter and the record's Redis key.
  virtual void OnEvent(char event, std::string_view redis_key) = 0;
};

// Publishes `payload` on the channel through a command connection; the
// callback says whether Redis accepted it (on any thread).
using PublishFunction =
    std::function<void(std::string payload, std::function<void(bool)>)>;

class Subscription final : public SubscriptionHandler {
 public:
  struct Options {
    // Needs subscribe_channel.
    ConnectionOptions connection;
    // Silence for this long triggers a heartbeat.
    std::chrono::milliseconds heartbeat_after{15'000};
    // How long the heartbeat may take to come back.
    std::chrono::milliseconds heartbeat_timeout{1'000};
  };

  Subscription(boost::asio::io_context& io, std::function<Endpoint()> endpoint,
               Options options, PublishFunction publish, SubscriptionListener* listener);
  ~Subscription() override;

  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  void Start();
  void Close();

  // Any thread.
  bool listening() const { return listening_.load(std::memory_order_acquire); }

  // SubscriptionHandler (io thread).
  void OnSubscribed() override;
  void OnSubscriptionLost() override;
  void OnMessage(std::string_view payload) override;

 private:
  void SetListening(bool listening);
  void ArmCheck(std::chrono::milliseconds after);
  void Check();
  void OnHeartbeatSent(uint64_t round, bool accepted);

  boost::asio::io_context& io_;
  const Options options_;
  const PublishFunction publish_;
  SubscriptionListener* const listener_;
  std::shared_ptr<Connection> connection_;
  boost::asio::steady_timer timer_;
  std::atomic<bool> listening_{false};
  // Io thread only.
  bool closed_ = false;
  bool heard_ = false;     // a message arrived since the last check
  uint64_t round_ = 0;     // bumped by every (re)subscription and heartbeat
  bool awaiting_ = false;  // a heartbeat is out; `heard_` must come back
};

}  // namespace idem::redis_internal
