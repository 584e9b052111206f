#include "gateway/address.h"

#include <charconv>

namespace idem::gateway {
namespace {

Result<uint16_t> ParsePort(std::string_view text, std::string_view whole) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      value > 65535) {
    return InvalidArgument("\"" + std::string(whole) + "\" has no valid port (0-65535)");
  }
  return static_cast<uint16_t>(value);
}

}  // namespace

Result<HostPort> ParseHostPort(std::string_view text) {
  HostPort out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() ||
        text[close + 1] != ':') {
      return InvalidArgument("\"" + std::string(text) + "\" is not [IPV6]:PORT");
    }
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0 ||
        text.substr(0, colon).find(':') != std::string_view::npos) {
      return InvalidArgument("\"" + std::string(text) + "\" is not HOST:PORT");
    }
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (out.host.empty()) {
    return InvalidArgument("\"" + std::string(text) + "\" has an empty host");
  }
  Result<uint16_t> parsed = ParsePort(port, text);
  if (!parsed.ok()) return parsed.status();
  out.port = *parsed;
  return out;
}

std::string FormatHostPort(std::string_view host, uint16_t port) {
  std::string out;
  const bool v6 = host.find(':') != std::string_view::npos;
  if (v6) out.push_back('[');
  out.append(host);
  if (v6) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port));
  return out;
}

Result<UpstreamUrl> ParseUpstreamUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgument("upstream URL \"" + std::string(url) +
                           "\" must start with http:// (https is not supported)");
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  UpstreamUrl out;
  out.base_path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  if (out.base_path.find_first_of("?#") != std::string::npos) {
    return InvalidArgument("upstream URL \"" + std::string(url) +
                           "\" must not have a query or fragment");
  }
  if (authority.empty() || authority.find('@') != std::string_view::npos) {
    return InvalidArgument("upstream URL \"" + std::string(url) +
                           "\" needs a host (and no user info)");
  }
  const bool has_port =
      authority.back() != ']' && authority.rfind(':') != std::string_view::npos;
  Result<HostPort> address =
      ParseHostPort(has_port ? std::string(authority) : std::string(authority) + ":80");
  if (!address.ok()) {
    return InvalidArgument("upstream URL \"" + std::string(url) +
                           "\": " + address.status().message());
  }
  out.address = std::move(address).value();
  out.authority = std::string(authority);
  return out;
}

}  // namespace idem::gateway
