// UpstreamPool: one io thread's keep-alive connections to the upstream.
//
// Each io thread owns one pool and is the only thread that touches it, so
// taking and returning a connection needs no lock. Idle connections the
// upstream has closed meanwhile are noticed (a non-blocking peek) and
// dropped before they are handed out.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <cstddef>
#include <memory>
#include <vector>

namespace idem::gateway {

struct UpstreamConnection {
  explicit UpstreamConnection(const boost::asio::any_io_executor& executor)
      : socket(executor) {}

  boost::asio::ip::tcp::socket socket;
  boost::beast::flat_buffer buffer;  // bytes read past the last response
  bool reused = false;               // came from the pool, not a fresh connect
};

class UpstreamPool {
 public:
  UpstreamPool(boost::asio::any_io_executor executor,
               std::vector<boost::asio::ip::tcp::endpoint> endpoints, size_t max_idle);

  // An idle connection that still looks open, or nullptr.
  std::unique_ptr<UpstreamConnection> TakeIdle();
  // A new, unconnected connection on this pool's executor.
  std::unique_ptr<UpstreamConnection> MakeNew() const;
  // Keeps `connection` for reuse when there is room and nothing is left
  // unread on it; closes it otherwise.
  void Return(std::unique_ptr<UpstreamConnection> connection);
  void Clear() { idle_.clear(); }

  const std::vector<boost::asio::ip::tcp::endpoint>& endpoints() const {
    return endpoints_;
  }

 private:
  boost::asio::any_io_executor executor_;
  std::vector<boost::asio::ip::tcp::endpoint> endpoints_;
  size_t max_idle_;
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;
};

}  // namespace idem::gateway
