#include "gateway/upstream_pool.h"

#include <sys/socket.h>

#include <cerrno>
#include <utility>

namespace idem::gateway {
namespace {

// True when the peer has neither closed the connection nor sent anything
// unasked (either makes the connection unusable for the next request).
bool LooksOpen(boost::asio::ip::tcp::socket& socket) {
  char byte;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

UpstreamPool::UpstreamPool(boost::asio::any_io_executor executor,
                           std::vector<boost::asio::ip::tcp::endpoint> endpoints,
                           size_t max_idle)
    : executor_(std::move(executor)),
      endpoints_(std::move(endpoints)),
      max_idle_(max_idle) {
  idle_.reserve(max_idle_);
}

std::unique_ptr<UpstreamConnection> UpstreamPool::TakeIdle() {
  while (!idle_.empty()) {
    std::unique_ptr<UpstreamConnection> connection = std::move(idle_.back());
    idle_.pop_back();
    if (LooksOpen(connection->socket)) {
      connection->reused = true;
      return connection;
    }
  }
  return nullptr;
}

std::unique_ptr<UpstreamConnection> UpstreamPool::MakeNew() const {
  return std::make_unique<UpstreamConnection>(executor_);
}

void UpstreamPool::Return(std::unique_ptr<UpstreamConnection> connection) {
  if (idle_.size() >= max_idle_ || connection->buffer.size() != 0 ||
      !connection->socket.is_open()) {
    return;
  }
  idle_.push_back(std::move(connection));
}

}  // namespace idem::gateway
