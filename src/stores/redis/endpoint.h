// Endpoint: the host and port of one Redis server.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace idem::redis_internal {

struct Endpoint {
  std::string host;
  int port = 0;

  // "host:port", with an IPv6 host in brackets.
  std::string ToString() const;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// Parses "host:port" or "[v6]:port"; nullopt when malformed.
std::optional<Endpoint> ParseEndpoint(std::string_view text);

}  // namespace idem::redis_internal
