// Parsing the addresses the configuration names: listen addresses
// ("127.0.0.1:8080", "[::1]:8080", "localhost:0") and the upstream URL
// ("http://127.0.0.1:8081/base"). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "idem/status.h"

namespace idem::gateway {

struct HostPort {
  std::string host;  // without IPv6 brackets
  uint16_t port = 0;
};

// "HOST:PORT" or "[V6]:PORT"; port 0 asks for an ephemeral port.
Result<HostPort> ParseHostPort(std::string_view text);

// "HOST:PORT", bracketing IPv6 hosts.
std::string FormatHostPort(std::string_view host, uint16_t port);

struct UpstreamUrl {
  HostPort address;
  std::string authority;  // "host:port" as the URL wrote it, for Host
  std::string base_path;  // prefixed to every forwarded target; "" for none
};

// http://HOST[:PORT][/PATH]; https and other schemes are refused.
Result<UpstreamUrl> ParseUpstreamUrl(std::string_view url);

}  // namespace idem::gateway
