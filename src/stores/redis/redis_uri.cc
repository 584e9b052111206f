// ParseRedisUri: redis:// and redis+cluster:// URIs into RedisStoreOptions.
#include <charconv>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "idem/redis_store.h"
#include "stores/common/uri_options.h"

namespace idem {
namespace {

constexpr std::string_view kSingleScheme = "redis://";
constexpr std::string_view kClusterScheme = "redis+cluster://";
constexpr int kDefaultPort = 6379;

Status BadUri(std::string_view uri, std::string_view why) {
  return InvalidArgument("bad redis URI \"" + std::string(uri) +
                         "\": " + std::string(why));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Undoes %XX escapes; false on a malformed escape.
bool PercentDecode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

bool ParseInt(std::string_view text, int min, int max, int& out) {
  if (text.empty()) return false;
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return false;
  if (value < min || value > max) return false;
  out = value;
  return true;
}

// "host", "host:port", "[v6]" or "[v6]:port".
bool ParseHostPort(std::string_view text, std::string& host, int& port) {
  port = kDefaultPort;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port_text = rest.substr(1);
      if (port_text.empty()) return false;
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon != std::string_view::npos) {
      host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
      if (port_text.empty()) return false;
    } else {
      host = std::string(text);
    }
    if (host.find(':') != std::string::npos) return false;  // v6 needs []
  }
  if (host.empty()) return false;
  if (!port_text.empty() && !ParseInt(port_text, 1, 65535, port)) return false;
  return true;
}

// The query string: option=value pairs joined by '&'.
Status ParseQuery(std::string_view uri, std::string_view query,
                  RedisStoreOptions& options) {
  std::vector<stores::UriOption> pairs;
  if (!stores::SplitUriQuery(query, pairs)) return BadUri(uri, "expected option=value");
  for (const auto& [name, value] : pairs) {
    if (name == "cache_completed") {
      if (!stores::ParseUriBool(value, options.cache_completed)) {
        return BadUri(uri, "cache_completed must be true or false");
      }
    } else if (name == "cache_max_bytes") {
      if (!stores::ParseUriBytes(value, options.cache_max_bytes) ||
          options.cache_max_bytes < kMinRedisCacheBytes) {
        return BadUri(uri, "cache_max_bytes must be a size of at least 1MiB");
      }
    } else {
      return BadUri(uri, "unknown option \"" + std::string(name) +
                             "\" (known: cache_completed, cache_max_bytes)");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<RedisStoreOptions> ParseRedisUri(std::string_view uri) {
  RedisStoreOptions options;
  std::string_view rest;
  bool cluster = false;
  if (uri.substr(0, kClusterScheme.size()) == kClusterScheme) {
    cluster = true;
    rest = uri.substr(kClusterScheme.size());
  } else if (uri.substr(0, kSingleScheme.size()) == kSingleScheme) {
    rest = uri.substr(kSingleScheme.size());
  } else {
    return BadUri(uri, "expected redis:// or redis+cluster://");
  }
  if (rest.find('#') != std::string_view::npos) {
    return BadUri(uri, "fragments are not supported");
  }
  if (const size_t question = rest.find('?'); question != std::string_view::npos) {
    Status query = ParseQuery(uri, rest.substr(question + 1), options);
    if (!query.ok()) return query;
    rest = rest.substr(0, question);
  }

  // Credentials: everything before the last '@' (a password may hold '@'
  // only percent-encoded, but be lenient about the split).
  const size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = userinfo.find(':');
    std::string_view user = userinfo.substr(0, colon);
    std::string_view password =
        colon == std::string_view::npos ? std::string_view() : userinfo.substr(colon + 1);
    if (colon == std::string_view::npos) {
      // "redis://secret@host": a lone token is the password, as redis-cli
      // and most clients read it.
      password = user;
      user = {};
    }
    if (!PercentDecode(user, options.user) ||
        !PercentDecode(password, options.password)) {
      return BadUri(uri, "malformed percent-escape in the credentials");
    }
    if (options.password.empty() && !options.user.empty()) {
      return BadUri(uri, "a user needs a password");
    }
  }

  // Path: "/db" (single) or nothing.
  std::string_view hosts = rest;
  std::string_view path;
  const size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    hosts = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }
  if (!path.empty()) {
    if (!ParseInt(path, 0, 1'000'000, options.db)) {
      return BadUri(uri, "the path must be a database number");
    }
    if (cluster && options.db != 0) {
      return BadUri(uri, "a Redis Cluster only has database 0");
    }
  }

  if (hosts.empty()) return BadUri(uri, "no host");
  if (!cluster) {
    if (hosts.find(',') != std::string_view::npos) {
      return BadUri(uri, "several hosts need redis+cluster://");
    }
    if (!ParseHostPort(hosts, options.host, options.port)) {
      return BadUri(uri, "expected host[:port]");
    }
    return options;
  }
  while (!hosts.empty()) {
    const size_t comma = hosts.find(',');
    std::string_view one = hosts.substr(0, comma);
    hosts =
        comma == std::string_view::npos ? std::string_view() : hosts.substr(comma + 1);
    std::string host;
    int port = 0;
    if (!ParseHostPort(one, host, port)) {
      return BadUri(uri, "expected host:port[,host:port...]");
    }
    const bool v6 = host.find(':') != std::string::npos;
    options.cluster_seeds.push_back((v6 ? "[" + host + "]" : host) + ":" +
                                    std::to_string(port));
    if (comma != std::string_view::npos && hosts.empty()) {
      return BadUri(uri, "empty seed after ','");
    }
  }
  return options;
}

}  // namespace idem
