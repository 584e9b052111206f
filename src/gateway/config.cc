// The gateway's configuration: TOML parsing (toml++), validation, command
// line overrides, and rendering back to TOML. toml++ throws on syntax
// errors; every public function here catches at its boundary, so no
// exception leaves this file.
#include "gateway/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>

#include "idem/fault_store.h"

namespace idem::gateway {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kSecondMs = 1000;
constexpr int64_t kMinuteMs = 60 * kSecondMs;
constexpr int64_t kHourMs = 60 * kMinuteMs;
constexpr int64_t kDayMs = 24 * kHourMs;

// Bounds, documented in docs/configuration.md.
constexpr milliseconds kMinDuration{1};
constexpr milliseconds kMaxTimeout{kDayMs};
constexpr milliseconds kMaxTtl{365 * kDayMs};
constexpr milliseconds kMinLeaseTtl{100};
constexpr milliseconds kMinSweepInterval{100};
constexpr int64_t kMaxThreads = 1024;
constexpr int64_t kMaxIdleConnections = 65536;
constexpr uint64_t kMaxHeaderSize = 64ull << 20;
constexpr uint64_t kMaxStoredBody = 512ull << 20;
constexpr uint64_t kNoSizeLimit = std::numeric_limits<uint64_t>::max();
constexpr size_t kMaxConfigFileBytes = 16u << 20;

constexpr std::string_view kDurationHint = "(use 500ms, 10s, 5m, 24h)";
constexpr std::string_view kSizeHint = "(use 512, 16KiB, 10MiB, 1GiB)";
constexpr std::string_view kHostPortHint =
    "(use HOST:PORT, e.g. 127.0.0.1:8080, [::1]:8080 or localhost:8080)";

constexpr std::string_view kLogLevels[] = {"trace", "debug", "info",
                                           "warn",  "error", "off"};

// ---------------------------------------------------------------------------
// Text helpers.

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char ToLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLower(a[i]) != ToLower(b[i])) return false;
  }
  return true;
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         EqualsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

// A TOML basic string: quoted, with backslash escapes. Also how messages
// quote values.
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default: {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04X", byte);
          out += escaped;
        } else {
          out += c;
        }
      }
    }
  }
  out += '"';
  return out;
}

std::string Join(const std::vector<std::string_view>& items, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

// "server" + "listen" -> "server.listen"; keys that are not bare TOML keys
// are quoted.
std::string JoinPath(std::string_view prefix, std::string_view key) {
  const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return IsAlpha(c) || IsDigit(c) || c == '_' || c == '-';
  });
  std::string out(prefix);
  if (!out.empty()) out += '.';
  out += bare ? std::string(key) : Quote(key);
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diagonal + (ToLower(a[i - 1]) == ToLower(b[j - 1]) ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// ` (did you mean "listen"?)` for a near miss, else "".
std::string Suggestion(std::string_view key, const std::vector<std::string_view>& known) {
  std::string_view best;
  size_t best_distance = 3;  // at most two edits
  for (const std::string_view candidate : known) {
    const size_t distance = EditDistance(key, candidate);
    if (distance < best_distance && distance < key.size()) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (best.empty()) return "";
  return " (did you mean " + Quote(best) + "?)";
}

// tchar from RFC 9110: the characters of a method or a header name.
bool IsToken(std::string_view text) {
  constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  return !text.empty() && std::all_of(text.begin(), text.end(), [&](char c) {
    return IsAlpha(c) || IsDigit(c) || kSpecials.find(c) != std::string_view::npos;
  });
}

// Parses 1 to 5 decimal digits as a port.
std::optional<uint32_t> ParsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t port = 0;
  for (const char c : text) {
    if (!IsDigit(c)) return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535) return std::nullopt;
  return port;
}

// ---------------------------------------------------------------------------
// Value checks shared by the file and the command line. Each returns a
// message that quotes the value but not the key; callers add the key.

Status CheckHostName(std::string_view host) {
  const bool numeric = std::all_of(host.begin(), host.end(),
                                   [](char c) { return IsDigit(c) || c == '.'; });
  if (numeric) {
    in_addr address{};
    if (inet_pton(AF_INET, std::string(host).c_str(), &address) != 1) {
      return InvalidArgument(Quote(host) + " is not an IPv4 address");
    }
    return Status::Ok();
  }
  if (host.size() > 253) {
    return InvalidArgument("the host name is longer than 253 characters");
  }
  size_t start = 0;
  while (start <= host.size()) {
    size_t end = host.find('.', start);
    if (end == std::string_view::npos) end = host.size();
    const std::string_view label = host.substr(start, end - start);
    const bool valid = !label.empty() && label.size() <= 63 && label.front() != '-' &&
                       label.back() != '-' &&
                       std::all_of(label.begin(), label.end(), [](char c) {
                         return IsAlpha(c) || IsDigit(c) || c == '-' || c == '_';
                       });
    if (!valid) {
      return InvalidArgument(Quote(host) +
                             " is not a host name, an IPv4 address or a bracketed IPv6 "
                             "address");
    }
    start = end + 1;
  }
  return Status::Ok();
}

// host[:port] with host an IPv4 literal, a bracketed IPv6 literal or a host
// name.
Status CheckAuthority(std::string_view text, bool port_required, bool allow_port_zero) {
  std::string_view port;
  bool has_port = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgument("the '[' of an IPv6 address is not closed");
    }
    const std::string host(text.substr(1, close - 1));
    in6_addr address{};
    if (inet_pton(AF_INET6, host.c_str(), &address) != 1) {
      return InvalidArgument(Quote(host) + " is not an IPv6 address");
    }
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return InvalidArgument("unexpected characters after ']'");
      has_port = true;
      port = rest.substr(1);
    }
  } else {
    std::string_view host = text;
    if (const size_t colon = text.rfind(':'); colon != std::string_view::npos) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      has_port = true;
      if (host.find(':') != std::string_view::npos) {
        return InvalidArgument("an IPv6 address needs brackets, e.g. [::1]:8080");
      }
    }
    if (host.empty()) {
      return InvalidArgument("the host is missing (0.0.0.0 listens on all interfaces)");
    }
    if (Status s = CheckHostName(host); !s.ok()) return s;
  }
  if (!has_port) {
    if (port_required) return InvalidArgument("the port is missing");
    return Status::Ok();
  }
  const std::optional<uint32_t> number = ParsePort(port);
  if (!number) return InvalidArgument(Quote(port) + " is not a port (0 to 65535)");
  if (*number == 0 && !allow_port_zero) {
    return InvalidArgument("port 0 cannot be connected to");
  }
  return Status::Ok();
}

Status CheckListen(std::string_view text) {
  if (Status s = CheckAuthority(text, /*port_required=*/true, /*allow_port_zero=*/true);
      !s.ok()) {
    return InvalidArgument(Quote(text) + " is not HOST:PORT: " + s.message() + " " +
                           std::string(kHostPortHint));
  }
  return Status::Ok();
}

Status CheckUpstreamUrl(std::string_view url) {
  const auto bad = [&url](std::string_view why) {
    return InvalidArgument(
        Quote(url) + " is not an upstream URL: " + std::string(why) +
        " (use http://HOST[:PORT][/BASE], e.g. http://127.0.0.1:8081)");
  };
  if (StartsWithIgnoreCase(url, "https://")) {
    return InvalidArgument(Quote(url) +
                           ": https upstreams are not supported; idem speaks plain HTTP "
                           "to the upstream (use http://, and TLS in front of the "
                           "upstream if the hop leaves the host)");
  }
  if (url.substr(0, 7) != "http://") {
    // Lower case only, as the server's URL parser (gateway/address.h) reads it.
    return bad(StartsWithIgnoreCase(url, "http://") ? "write the scheme in lower case"
                                                    : "it must start with http://");
  }
  const std::string_view rest = url.substr(7);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return bad("a query or fragment is not allowed");
  }
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view base =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return bad("user info is not allowed");
  }
  if (authority.empty()) return bad("the host is missing");
  if (Status s =
          CheckAuthority(authority, /*port_required=*/false, /*allow_port_zero=*/false);
      !s.ok()) {
    return bad(s.message());
  }
  for (const char c : base) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f) {
      return bad("the base path has a space or a non-ASCII byte");
    }
  }
  return Status::Ok();
}

Status CheckStoreUri(std::string_view uri) {
  // memory:?max_records=N is checked when the store opens.
  if (uri == "memory:" || uri == "memory" || uri.substr(0, 8) == "memory:?") {
    return Status::Ok();
  }
  if (uri.substr(0, 6) == "fault:") {
    Result<std::pair<FaultSpec, std::string>> fault = ParseFaultUri(uri);
    if (!fault.ok()) return InvalidArgument(Quote(uri) + ": " + fault.status().message());
    if (fault->second.substr(0, 6) == "fault:") {
      return InvalidArgument(Quote(uri) + ": a fault: URI cannot wrap another");
    }
    return CheckStoreUri(fault->second);
  }
  const auto after = [&uri](std::string_view prefix) -> std::optional<std::string_view> {
    if (uri.substr(0, prefix.size()) != prefix) return std::nullopt;
    return uri.substr(prefix.size());
  };
  if (const auto dir = after("rocksdb:")) {
    if (dir->empty()) {
      return InvalidArgument("rocksdb: needs a directory, e.g. rocksdb:./idem-data");
    }
    return Status::Ok();
  }
  for (const std::string_view scheme :
       {"redis://", "redis+cluster://", "postgresql://", "postgres://"}) {
    if (const auto rest = after(scheme)) {
      if (rest->empty()) {
        return InvalidArgument(Quote(uri) + ": the address after " + std::string(scheme) +
                               " is missing");
      }
      return Status::Ok();
    }
  }
  return InvalidArgument(
      Quote(uri) +
      " is not a store URI (use memory:, rocksdb:DIR, redis://H:P[/db], "
      "redis+cluster://H:P,H:P or postgresql://...)");
}

// An environment variable's name: a letter or '_', then letters, digits, '_'.
Status CheckEnvName(std::string_view name) {
  const bool ok = !name.empty() && !IsDigit(name.front()) &&
                  std::all_of(name.begin(), name.end(),
                              [](char c) { return IsAlpha(c) || IsDigit(c) || c == '_'; });
  if (!ok) {
    return InvalidArgument(Quote(name) +
                           " is not an environment variable name (letters, digits, '_')");
  }
  return Status::Ok();
}

Status CheckOptionalEnvName(std::string_view name) {
  return name.empty() ? Status::Ok() : CheckEnvName(name);
}

Status CheckKeyId(std::string_view id) {
  const bool ok = !id.empty() && id.size() <= 64 &&
                  std::all_of(id.begin(), id.end(), [](char c) {
                    return IsAlpha(c) || IsDigit(c) || c == '.' || c == '_' || c == '-';
                  });
  if (!ok) {
    return InvalidArgument(Quote(id) + " is not a key id (1 to 64 letters, digits, '.', '_', '-')");
  }
  return Status::Ok();
}

Status CheckLogLevel(std::string_view level) {
  for (const std::string_view known : kLogLevels) {
    if (level == known) return Status::Ok();
  }
  return InvalidArgument(
      Quote(level) + " is not one of: " +
      Join(std::vector<std::string_view>(std::begin(kLogLevels), std::end(kLogLevels)),
           ", "));
}

Status CheckHeaderName(std::string_view name) {
  if (!IsToken(name)) {
    return InvalidArgument(Quote(name) +
                           " is not a header name (letters, digits and !#$%&'*+-.^_`|~)");
  }
  return Status::Ok();
}

Status CheckMethod(std::string_view method) {
  if (!IsToken(method)) return InvalidArgument(Quote(method) + " is not an HTTP method");
  if (std::any_of(method.begin(), method.end(),
                  [](char c) { return c >= 'a' && c <= 'z'; })) {
    std::string upper(method);
    for (char& c : upper) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return InvalidArgument(Quote(method) +
                           " is not upper case (methods are case-sensitive; write " +
                           Quote(upper) + ")");
  }
  return Status::Ok();
}

Status CheckJsonPointer(std::string_view pointer) {
  if (pointer.empty()) {
    return InvalidArgument(
        "\"\" names the whole body; use fingerprint = \"json\" for that");
  }
  if (pointer.front() != '/') {
    return InvalidArgument(
        Quote(pointer) + " is not a JSON pointer (it starts with '/', e.g. \"/amount\")");
  }
  for (size_t i = 0; i < pointer.size(); ++i) {
    if (pointer[i] == '~' &&
        (i + 1 == pointer.size() || (pointer[i + 1] != '0' && pointer[i + 1] != '1'))) {
      return InvalidArgument(Quote(pointer) +
                             " is not a JSON pointer: '~' must be followed by 0 or 1 "
                             "(~0 is '~', ~1 is '/')");
    }
  }
  return Status::Ok();
}

Status CheckStatusRule(std::string_view rule) {
  const Result<StatusPolicy> policy = StatusPolicy::Parse({std::string(rule)});
  return policy.ok() ? Status::Ok() : policy.status();
}

Status CheckRoutePattern(std::string_view pattern) {
  if (pattern.empty()) return InvalidArgument("a route pattern must not be empty");
  if (pattern.front() != '/' && pattern.front() != '*') {
    return InvalidArgument(Quote(pattern) + " must start with '/' (or '*')");
  }
  for (const char c : pattern) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f) {
      return InvalidArgument(Quote(pattern) + " has a space or a control character");
    }
    if (c == '?' || c == '#') {
      return InvalidArgument(
          Quote(pattern) + " has a '?' or '#'; routes match the path without the query");
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Rendering of durations and sizes, in forms the parsers accept.

std::string FormatDuration(milliseconds duration) {
  int64_t ms = duration.count();
  if (ms == 0) return "0s";
  if (ms < 0) return std::to_string(ms) + "ms";  // not valid; never parsed back
  std::string out;
  for (const auto& [unit_ms, name] : {std::pair<int64_t, std::string_view>{kHourMs, "h"},
                                      {kMinuteMs, "m"},
                                      {kSecondMs, "s"},
                                      {1, "ms"}}) {
    if (ms >= unit_ms) {
      out += std::to_string(ms / unit_ms);
      out += name;
      ms %= unit_ms;
    }
  }
  return out;
}

struct SizeUnit {
  std::string_view name;
  uint64_t bytes;
};

constexpr SizeUnit kSizeUnits[] = {
    {"TiB", 1ull << 40},
    {"GiB", 1ull << 30},
    {"MiB", 1ull << 20},
    {"KiB", 1ull << 10},
    {"TB", 1'000'000'000'000},
    {"GB", 1'000'000'000},
    {"MB", 1'000'000},
    {"KB", 1'000},
    {"B", 1},
};

std::string FormatSize(uint64_t bytes) {
  if (bytes == 0) return "0";
  for (const SizeUnit& unit : kSizeUnits) {
    if (unit.bytes > 1 && bytes % unit.bytes == 0) {
      return std::to_string(bytes / unit.bytes) + std::string(unit.name);
    }
  }
  return std::to_string(bytes);
}

int64_t DurationUnitMs(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit == "s") return kSecondMs;
  if (unit == "m") return kMinuteMs;
  if (unit == "h") return kHourMs;
  if (unit == "d") return kDayMs;
  return 0;
}

// ---------------------------------------------------------------------------
// Error collection: every problem in a file is reported, in file order.

class Errors {
 public:
  explicit Errors(std::string_view source) : source_(source) {}

  void Add(uint32_t line, std::string_view path, std::string_view what) {
    std::string message = source_;
    if (line > 0) message += ":" + std::to_string(line);
    message += ": ";
    message += path;
    message += ": ";
    message += what;
    entries_.emplace_back(line, std::move(message));
  }

  size_t count() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  Status ToStatus() {
    std::stable_sort(entries_.begin(), entries_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string message;
    for (const auto& [line, text] : entries_) {
      if (!message.empty()) message += '\n';
      message += text;
    }
    return InvalidArgument(std::move(message));
  }

 private:
  std::string source_;
  std::vector<std::pair<uint32_t, std::string>> entries_;
};

uint32_t LineOf(const toml::node& node) { return node.source().begin.line; }

std::string TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

using Check = Status (*)(std::string_view);

// Typed, validated reads of TOML values; failures are recorded in Errors
// with the key path and the line, and yield nullopt.
class Reader {
 public:
  explicit Reader(Errors& errors) : errors_(errors) {}

  Errors& errors() { return errors_; }

  void Fail(const toml::node& node, std::string_view path, std::string_view what) {
    errors_.Add(LineOf(node), path, what);
  }

  void WrongType(const toml::node& node, std::string_view path,
                 std::string_view expected) {
    Fail(node, path, "expected " + std::string(expected) + ", got " + TypeName(node));
  }

  std::optional<std::string> String(const toml::node& node, std::string_view path,
                                    Check check = nullptr) {
    const auto* text = node.as_string();
    if (text == nullptr) {
      WrongType(node, path, "a string");
      return std::nullopt;
    }
    if (check != nullptr) {
      if (Status s = check(text->get()); !s.ok()) {
        Fail(node, path, s.message());
        return std::nullopt;
      }
    }
    return text->get();
  }

  std::optional<bool> Bool(const toml::node& node, std::string_view path) {
    if (const auto* value = node.as_boolean()) return value->get();
    WrongType(node, path, "a boolean (true or false)");
    return std::nullopt;
  }

  std::optional<int64_t> Integer(const toml::node& node, std::string_view path,
                                 int64_t min, int64_t max) {
    const auto* value = node.as_integer();
    if (value == nullptr) {
      WrongType(node, path, "an integer");
      return std::nullopt;
    }
    if (value->get() < min || value->get() > max) {
      Fail(node, path,
           std::to_string(value->get()) + " is out of range (" + std::to_string(min) +
               " to " + std::to_string(max) + ")");
      return std::nullopt;
    }
    return value->get();
  }

  std::optional<milliseconds> Duration(const toml::node& node, std::string_view path,
                                       milliseconds min, milliseconds max) {
    const auto* text = node.as_string();
    if (text == nullptr) {
      WrongType(node, path, "a duration string such as \"10s\"");
      return std::nullopt;
    }
    const Result<milliseconds> duration = ParseDuration(text->get());
    if (!duration.ok()) {
      Fail(node, path, duration.status().message());
      return std::nullopt;
    }
    const std::string shown = Quote(text->get());
    if (*duration < min) {
      Fail(node, path,
           min == kMinDuration
               ? shown + " must be longer than 0"
               : shown + " is too short (minimum " + FormatDuration(min) + ")");
      return std::nullopt;
    }
    if (*duration > max) {
      Fail(node, path, shown + " is too long (maximum " + FormatDuration(max) + ")");
      return std::nullopt;
    }
    return *duration;
  }

  // A size: a string ("10MiB") or an integer number of bytes; > 0.
  std::optional<uint64_t> Size(const toml::node& node, std::string_view path,
                               uint64_t max) {
    uint64_t bytes = 0;
    std::string shown;
    if (const auto* text = node.as_string()) {
      const Result<uint64_t> size = ParseSize(text->get());
      if (!size.ok()) {
        Fail(node, path, size.status().message());
        return std::nullopt;
      }
      bytes = *size;
      shown = Quote(text->get());
    } else if (const auto* number = node.as_integer()) {
      if (number->get() < 0) {
        Fail(node, path, std::to_string(number->get()) + " is negative");
        return std::nullopt;
      }
      bytes = static_cast<uint64_t>(number->get());
      shown = std::to_string(bytes);
    } else {
      WrongType(node, path, "a size such as \"10MiB\" or a number of bytes");
      return std::nullopt;
    }
    if (bytes == 0) {
      Fail(node, path, shown + " must be more than 0");
      return std::nullopt;
    }
    if (bytes > max) {
      Fail(node, path, shown + " is too large (maximum " + FormatSize(max) + ")");
      return std::nullopt;
    }
    return bytes;
  }

  // An array of strings, each passing `check`; errors name the element
  // (`key[2]`). `unique`: no value twice (compared ignoring case when
  // `ignore_case`).
  std::optional<std::vector<std::string>> Strings(const toml::node& node,
                                                  std::string_view path, Check check,
                                                  bool ignore_case = false) {
    const auto* array = node.as_array();
    if (array == nullptr) {
      WrongType(node, path, "an array of strings");
      return std::nullopt;
    }
    std::vector<std::string> values;
    bool ok = true;
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = (*array)[i];
      const std::string element_path = std::string(path) + "[" + std::to_string(i) + "]";
      std::optional<std::string> value = String(element, element_path, check);
      if (!value) {
        ok = false;
        continue;
      }
      const bool seen =
          std::any_of(values.begin(), values.end(), [&](const std::string& v) {
            return ignore_case ? EqualsIgnoreCase(v, *value) : v == *value;
          });
      if (seen) {
        Fail(element, element_path, Quote(*value) + " is listed twice");
        ok = false;
        continue;
      }
      values.push_back(std::move(*value));
    }
    if (!ok) return std::nullopt;
    return values;
  }

  template <typename E>
  std::optional<E> Enum(const toml::node& node, std::string_view path,
                        std::initializer_list<std::pair<std::string_view, E>> choices) {
    const std::optional<std::string> text = String(node, path);
    if (!text) return std::nullopt;
    std::vector<std::string_view> names;
    for (const auto& [name, choice] : choices) {
      if (*text == name) return choice;
      names.push_back(name);
    }
    Fail(node, path, Quote(*text) + " is not one of: " + Join(names, ", "));
    return std::nullopt;
  }

 private:
  Errors& errors_;
};

// ---------------------------------------------------------------------------
// Tables: one handler per known key.

using Handler = std::function<void(const toml::node&, const std::string&)>;

struct KeyHandler {
  std::string_view key;
  Handler read;
};

using Handlers = std::vector<KeyHandler>;

std::vector<std::string_view> KeysOf(const Handlers& handlers) {
  std::vector<std::string_view> keys;
  for (const KeyHandler& handler : handlers) keys.push_back(handler.key);
  return keys;
}

void ReadTable(const toml::table& table, std::string_view prefix,
               const Handlers& handlers, Reader& reader) {
  for (const auto& [key, node] : table) {
    const std::string path = JoinPath(prefix, key.str());
    const auto handler =
        std::find_if(handlers.begin(), handlers.end(),
                     [&key = key](const KeyHandler& h) { return h.key == key.str(); });
    if (handler != handlers.end()) {
      handler->read(node, path);
      continue;
    }
    const uint32_t line =
        key.source().begin.line > 0 ? key.source().begin.line : LineOf(node);
    reader.errors().Add(line, path,
                        "unknown key" + Suggestion(key.str(), KeysOf(handlers)));
  }
}

Handler DurationInto(Reader& reader, milliseconds& field, milliseconds min,
                     milliseconds max) {
  return [&reader, &field, min, max](const toml::node& node, const std::string& path) {
    if (auto value = reader.Duration(node, path, min, max)) field = *value;
  };
}

Handler DurationMsInto(Reader& reader, int64_t& field, milliseconds min,
                       milliseconds max) {
  return [&reader, &field, min, max](const toml::node& node, const std::string& path) {
    if (auto value = reader.Duration(node, path, min, max)) field = value->count();
  };
}

Handler SizeInto(Reader& reader, uint64_t& field, uint64_t max) {
  return [&reader, &field, max](const toml::node& node, const std::string& path) {
    if (auto value = reader.Size(node, path, max)) field = *value;
  };
}

Handler BoolInto(Reader& reader, bool& field) {
  return [&reader, &field](const toml::node& node, const std::string& path) {
    if (auto value = reader.Bool(node, path)) field = *value;
  };
}

Handler StringInto(Reader& reader, std::string& field, Check check) {
  return [&reader, &field, check](const toml::node& node, const std::string& path) {
    if (auto value = reader.String(node, path, check)) field = std::move(*value);
  };
}

Handler UnsignedInto(Reader& reader, unsigned& field, int64_t max) {
  return [&reader, &field, max](const toml::node& node, const std::string& path) {
    if (auto value = reader.Integer(node, path, 0, max)) {
      field = static_cast<unsigned>(*value);
    }
  };
}

Handler StringsInto(Reader& reader, std::vector<std::string>& field, Check check,
                    bool ignore_case = false) {
  return [&reader, &field, check, ignore_case](const toml::node& node,
                                               const std::string& path) {
    if (auto value = reader.Strings(node, path, check, ignore_case)) {
      field = std::move(*value);
    }
  };
}

Handlers ServerHandlers(ServerConfig& c, Reader& r) {
  return {
      {"listen", StringInto(r, c.listen, CheckListen)},
      {"admin_listen", StringInto(r, c.admin_listen, CheckListen)},
      {"threads", UnsignedInto(r, c.threads, kMaxThreads)},
      {"max_request_body", SizeInto(r, c.max_request_body, kNoSizeLimit)},
      {"max_header_size", SizeInto(r, c.max_header_size, kMaxHeaderSize)},
      {"header_timeout", DurationInto(r, c.header_timeout, kMinDuration, kMaxTimeout)},
      {"body_timeout", DurationInto(r, c.body_timeout, kMinDuration, kMaxTimeout)},
      {"idle_timeout", DurationInto(r, c.idle_timeout, kMinDuration, kMaxTimeout)},
      {"drain_timeout", DurationInto(r, c.drain_timeout, kMinDuration, kMaxTimeout)},
      {"log_level", StringInto(r, c.log_level, CheckLogLevel)},
      {"access_log", BoolInto(r, c.access_log)},
      {"tenant_secret_file", StringInto(r, c.tenant_secret_file, nullptr)},
      {"tenant_secret_env", StringInto(r, c.tenant_secret_env, CheckOptionalEnvName)},
      {"admin_token_file", StringInto(r, c.admin_token_file, nullptr)},
      {"admin_token_env", StringInto(r, c.admin_token_env, CheckOptionalEnvName)},
  };
}

Handlers UpstreamHandlers(UpstreamConfig& c, Reader& r) {
  return {
      {"url", StringInto(r, c.url, CheckUpstreamUrl)},
      {"timeout", DurationInto(r, c.timeout, kMinDuration, kMaxTimeout)},
      {"connect_timeout", DurationInto(r, c.connect_timeout, kMinDuration, kMaxTimeout)},
      {"max_idle_connections",
       UnsignedInto(r, c.max_idle_connections, kMaxIdleConnections)},
  };
}

Handlers StoreHandlers(StoreConfig& c, Reader& r) {
  return {
      {"uri", StringInto(r, c.uri, CheckStoreUri)},
      {"auto_migrate", BoolInto(r, c.auto_migrate)},
      {"sweep_interval",
       DurationInto(r, c.sweep_interval, kMinSweepInterval, kMaxTimeout)},
      {"operation_timeout",
       DurationInto(r, c.operation_timeout, kMinDuration, kMaxTimeout)},
      {"encryption",
       [&r, &c](const toml::node& node, const std::string& path) {
         const toml::table* table = node.as_table();
         if (table == nullptr) {
           r.WrongType(node, path, "a table ([store.encryption])");
           return;
         }
         EncryptionConfig& e = c.encryption;
         ReadTable(*table, path,
                   {{"active_key", StringInto(r, e.active_key, CheckKeyId)},
                    {"keys_file", StringInto(r, e.keys_file, nullptr)},
                    {"keys_env", StringInto(r, e.keys_env, CheckOptionalEnvName)}},
                   r);
         if (table->get("active_key") == nullptr) {
           r.Fail(node, path + ".active_key",
                  "missing; name the key that encrypts new records");
         }
         if (e.keys_file.empty() && e.keys_env.empty()) {
           r.Fail(node, path + ".keys_file",
                  "no keys: set keys_file (a file of ID:KEY lines) or keys_env");
         }
       }},
  };
}

Handlers IdempotencyHandlers(IdempotencyConfig& c, Reader& r) {
  return {
      {"header", StringInto(r, c.header, CheckHeaderName)},
      {"methods", StringsInto(r, c.methods, CheckMethod)},
      {"require_key", BoolInto(r, c.require_key)},
      {"ttl", DurationMsInto(r, c.engine.ttl_ms, kMinDuration, kMaxTtl)},
      {"lease_ttl", DurationMsInto(r, c.engine.lease_ttl_ms, kMinLeaseTtl, kMaxTimeout)},
      {"in_flight",
       [&r, &c](const toml::node& node, const std::string& path) {
         if (auto value = r.Enum<InFlightPolicy>(node, path,
                                                 {{"reject", InFlightPolicy::kReject},
                                                  {"wait", InFlightPolicy::kWait}})) {
           c.engine.in_flight = *value;
         }
       }},
      {"wait_timeout",
       DurationMsInto(r, c.engine.wait_timeout_ms, kMinDuration, kMaxTimeout)},
      {"fingerprint",
       [&r, &c](const toml::node& node, const std::string& path) {
         if (auto value = r.Enum<FingerprintMode>(node, path,
                                                  {{"body", FingerprintMode::kBody},
                                                   {"json", FingerprintMode::kJson},
                                                   {"fields", FingerprintMode::kFields},
                                                   {"none", FingerprintMode::kNone}})) {
           c.fingerprint = *value;
         }
       }},
      {"fields", StringsInto(r, c.fields, CheckJsonPointer)},
      {"tenant_headers",
       StringsInto(r, c.tenant_headers, CheckHeaderName, /*ignore_case=*/true)},
      {"store_statuses", StringsInto(r, c.store_statuses, CheckStatusRule)},
      {"on_server_error",
       [&r, &c](const toml::node& node, const std::string& path) {
         if (auto value =
                 r.Enum<ServerErrorPolicy>(node, path,
                                           {{"release", ServerErrorPolicy::kRelease},
                                            {"store", ServerErrorPolicy::kStore}})) {
           c.on_server_error = *value;
         }
       }},
      {"on_store_error",
       [&r, &c](const toml::node& node, const std::string& path) {
         if (auto value = r.Enum<bool>(node, path, {{"reject", false}, {"pass", true}})) {
           c.on_store_error_pass = *value;
         }
       }},
      {"max_stored_body", SizeInto(r, c.max_stored_body, kMaxStoredBody)},
  };
}

// Derives the engine's policy from the raw settings and checks the rules
// that tie keys together. `table` (may be null) is where the keys were
// written, for line numbers; `line` is the section's own line.
void FinishIdempotency(IdempotencyConfig& c, const toml::table* table,
                       const std::string& path, uint32_t line, Errors& errors) {
  const auto line_of = [&](std::initializer_list<std::string_view> keys) {
    for (const std::string_view key : keys) {
      if (table == nullptr) break;
      if (const toml::node* node = table->get(key)) return LineOf(*node);
    }
    return line;
  };
  Result<StatusPolicy> policy = StatusPolicy::Parse(c.store_statuses);
  if (policy.ok()) {
    c.engine.store_statuses = *policy;
  } else {
    errors.Add(line_of({"store_statuses"}), path + ".store_statuses",
               policy.status().message());
  }
  c.engine.on_server_error = c.on_server_error;
  if (c.fingerprint == FingerprintMode::kFields && c.fields.empty()) {
    errors.Add(line_of({"fields", "fingerprint"}), path + ".fields",
               "fingerprint = \"fields\" needs at least one JSON pointer in fields, e.g. "
               "fields = [\"/amount\"]");
  }
  if (c.engine.wait_timeout_ms > c.engine.ttl_ms) {
    errors.Add(line_of({"wait_timeout", "ttl"}), path + ".wait_timeout",
               "wait_timeout (" + FormatDuration(milliseconds(c.engine.wait_timeout_ms)) +
                   ") must not be longer than ttl (" +
                   FormatDuration(milliseconds(c.engine.ttl_ms)) + ")");
  }
}

void ReadRoutes(const toml::node& node, bool defaults_ok, GatewayConfig& config,
                Reader& reader) {
  const toml::array* routes = node.as_array();
  if (routes == nullptr) {
    reader.WrongType(node, "route", "an array of tables ([[route]])");
    return;
  }
  for (size_t i = 0; i < routes->size(); ++i) {
    const toml::node& item = (*routes)[i];
    const std::string path = "route[" + std::to_string(i) + "]";
    const toml::table* table = item.as_table();
    if (table == nullptr) {
      reader.WrongType(item, path, "a table");
      continue;
    }
    const size_t errors_before = reader.errors().count();
    RouteConfig route;
    route.idempotency = config.idempotency;
    Handlers handlers = IdempotencyHandlers(route.idempotency, reader);
    handlers.push_back({"path", StringInto(reader, route.path, CheckRoutePattern)});
    ReadTable(*table, path, handlers, reader);
    if (table->get("path") == nullptr) {
      reader.errors().Add(LineOf(*table), path + ".path",
                          "missing; every [[route]] needs a path pattern");
    } else if (!route.path.empty()) {
      for (size_t j = 0; j < config.routes.size(); ++j) {
        if (config.routes[j].path == route.path) {
          reader.Fail(*table->get("path"), path + ".path",
                      Quote(route.path) + " is also route[" + std::to_string(j) +
                          "]'s pattern, which always matches first");
        }
      }
    }
    if (defaults_ok && reader.errors().count() == errors_before) {
      FinishIdempotency(route.idempotency, table, path, LineOf(*table), reader.errors());
    }
    config.routes.push_back(std::move(route));
  }
}

// The admin listener reads and purges records: off loopback it needs a
// bearer token.
Status CheckAdminExposure(const ServerConfig& server) {
  if (IsLoopbackListen(server.admin_listen) || !server.admin_token_file.empty() ||
      !server.admin_token_env.empty()) {
    return Status::Ok();
  }
  return InvalidArgument(
      Quote(server.admin_listen) +
      " is not a loopback address; an admin listener reachable from other hosts needs "
      "server.admin_token_file or server.admin_token_env (clients then send "
      "Authorization: Bearer <token>)");
}

// Two listeners cannot share an address (unless the port is chosen by the
// system).
bool SameListener(const ServerConfig& server) {
  return server.listen == server.admin_listen && !server.listen.ends_with(":0");
}

constexpr std::string_view kSections[] = {"server", "upstream", "store", "idempotency"};

// Keys at the top level: the sections and [[route]]. A section's key
// written at the top level gets a hint to the section.
void CheckTopLevel(const toml::table& root, Reader& reader) {
  GatewayConfig scratch;
  Errors scratch_errors("");
  Reader scratch_reader(scratch_errors);
  const std::pair<std::string_view, Handlers> sections[] = {
      {"server", ServerHandlers(scratch.server, scratch_reader)},
      {"upstream", UpstreamHandlers(scratch.upstream, scratch_reader)},
      {"store", StoreHandlers(scratch.store, scratch_reader)},
      {"idempotency", IdempotencyHandlers(scratch.idempotency, scratch_reader)},
  };
  std::vector<std::string_view> known(std::begin(kSections), std::end(kSections));
  known.push_back("route");
  for (const auto& [key, node] : root) {
    if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
    std::string hint = Suggestion(key.str(), known);
    for (const auto& [section, handlers] : sections) {
      if (!hint.empty()) break;
      const auto keys = KeysOf(handlers);
      if (std::find(keys.begin(), keys.end(), key.str()) != keys.end()) {
        hint = " (it belongs in [" + std::string(section) + "])";
      }
    }
    const uint32_t line =
        key.source().begin.line > 0 ? key.source().begin.line : LineOf(node);
    reader.errors().Add(line, JoinPath("", key.str()), "unknown key" + hint);
  }
}

const toml::table* Section(const toml::table& root, std::string_view name,
                           Reader& reader) {
  const toml::node* node = root.get(name);
  if (node == nullptr) return nullptr;
  if (const toml::table* table = node->as_table()) return table;
  reader.WrongType(*node, name, "a table ([" + std::string(name) + "])");
  return nullptr;
}

Result<GatewayConfig> ConfigFromTable(const toml::table& root, std::string_view source) {
  Errors errors(source);
  Reader reader(errors);
  GatewayConfig config;
  CheckTopLevel(root, reader);
  if (const toml::table* t = Section(root, "server", reader)) {
    ReadTable(*t, "server", ServerHandlers(config.server, reader), reader);
  }
  if (const toml::table* t = Section(root, "upstream", reader)) {
    ReadTable(*t, "upstream", UpstreamHandlers(config.upstream, reader), reader);
  }
  if (const toml::table* t = Section(root, "store", reader)) {
    ReadTable(*t, "store", StoreHandlers(config.store, reader), reader);
  }
  const size_t errors_before = errors.count();
  const toml::table* defaults = Section(root, "idempotency", reader);
  if (defaults != nullptr) {
    ReadTable(*defaults, "idempotency", IdempotencyHandlers(config.idempotency, reader),
              reader);
  }
  const bool defaults_ok = errors.count() == errors_before;
  if (defaults_ok) {
    FinishIdempotency(config.idempotency, defaults, "idempotency",
                      defaults != nullptr ? LineOf(*defaults) : 0, errors);
  }
  // Routes start from the finished defaults, wherever [idempotency] is in
  // the file.
  if (const toml::node* routes = root.get("route")) {
    ReadRoutes(*routes, defaults_ok && errors.count() == errors_before, config, reader);
  }
  if (SameListener(config.server)) {
    const toml::table* server = root.get_as<toml::table>("server");
    const toml::node* node = server != nullptr ? server->get("admin_listen") : nullptr;
    errors.Add(node != nullptr ? LineOf(*node) : 0, "server.admin_listen",
               Quote(config.server.admin_listen) +
                   " is also server.listen; the admin listener needs its own address");
  }
  const toml::table* server = root.get_as<toml::table>("server");
  const auto server_line = [server](std::string_view key) -> uint32_t {
    const toml::node* node = server != nullptr ? server->get(key) : nullptr;
    return node != nullptr ? LineOf(*node) : 0;
  };
  for (const auto& [file, env, name] :
       {std::tuple{&config.server.tenant_secret_file, &config.server.tenant_secret_env,
                   std::string_view("tenant_secret")},
        std::tuple{&config.server.admin_token_file, &config.server.admin_token_env,
                   std::string_view("admin_token")}}) {
    if (!file->empty() && !env->empty()) {
      const std::string key = "server." + std::string(name) + "_env";
      errors.Add(server_line(std::string(name) + "_env"), key,
                 "set " + std::string(name) + "_file or " + std::string(name) +
                     "_env, not both");
    }
  }
  if (Status exposed = CheckAdminExposure(config.server); !exposed.ok()) {
    errors.Add(server_line("admin_listen"), "server.admin_listen", exposed.message());
  }
  if (!errors.empty()) return errors.ToStatus();
  return config;
}

// ---------------------------------------------------------------------------
// Rendering.

std::string RenderStrings(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += Quote(values[i]);
  }
  return out + "]";
}

std::string_view BoolText(bool value) { return value ? "true" : "false"; }

void RenderLine(std::string& out, std::string_view key, std::string_view value) {
  out += key;
  out += " = ";
  out += value;
  out += '\n';
}

void RenderIdempotency(std::string& out, const IdempotencyConfig& c) {
  const EnginePolicy& e = c.engine;
  RenderLine(out, "header", Quote(c.header));
  RenderLine(out, "methods", RenderStrings(c.methods));
  RenderLine(out, "require_key", BoolText(c.require_key));
  RenderLine(out, "ttl", Quote(FormatDuration(milliseconds(e.ttl_ms))));
  RenderLine(out, "lease_ttl", Quote(FormatDuration(milliseconds(e.lease_ttl_ms))));
  RenderLine(out, "in_flight",
             e.in_flight == InFlightPolicy::kWait ? "\"wait\"" : "\"reject\"");
  RenderLine(out, "wait_timeout", Quote(FormatDuration(milliseconds(e.wait_timeout_ms))));
  RenderLine(out, "fingerprint", Quote(FingerprintModeName(c.fingerprint)));
  RenderLine(out, "fields", RenderStrings(c.fields));
  RenderLine(out, "tenant_headers", RenderStrings(c.tenant_headers));
  RenderLine(out, "store_statuses", RenderStrings(c.store_statuses));
  RenderLine(
      out, "on_server_error",
      c.on_server_error == ServerErrorPolicy::kStore ? "\"store\"" : "\"release\"");
  RenderLine(out, "on_store_error", c.on_store_error_pass ? "\"pass\"" : "\"reject\"");
  RenderLine(out, "max_stored_body", Quote(FormatSize(c.max_stored_body)));
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API.

const IdempotencyConfig& GatewayConfig::ForPath(std::string_view path) const {
  for (const RouteConfig& route : routes) {
    if (PathMatches(route.path, path)) return route.idempotency;
  }
  return idempotency;
}

bool PathMatches(std::string_view pattern, std::string_view path) {
  // Glob matching with one wildcard: on a mismatch, let the last '*' take
  // one more character. Linear in practice, O(n*m) at worst.
  size_t p = 0;
  size_t s = 0;
  size_t star = std::string_view::npos;
  size_t star_match = 0;
  while (s < path.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_match = s;
    } else if (p < pattern.size() && pattern[p] == path[s]) {
      ++p;
      ++s;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      s = ++star_match;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  const std::string shown = Quote(text);
  const auto not_a_duration = [&shown] {
    return InvalidArgument(shown + " is not a duration " + std::string(kDurationHint));
  };
  const auto too_long = [&shown] {
    return InvalidArgument(shown + " is too long a duration");
  };
  if (text.empty()) return not_a_duration();
  if (text.front() == '-') return InvalidArgument(shown + " is negative");
  __int128 total = 0;
  size_t i = 0;
  while (i < text.size()) {
    // A number: digits, optionally a fraction.
    const size_t number_start = i;
    unsigned __int128 whole = 0;
    while (i < text.size() && IsDigit(text[i])) {
      whole = whole * 10 + static_cast<unsigned>(text[i] - '0');
      if (whole > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max())) {
        return too_long();
      }
      ++i;
    }
    if (i == number_start) return not_a_duration();
    std::string_view fraction;
    if (i < text.size() && text[i] == '.') {
      const size_t fraction_start = ++i;
      while (i < text.size() && IsDigit(text[i])) ++i;
      fraction = text.substr(fraction_start, i - fraction_start);
      if (fraction.empty()) return not_a_duration();
    }
    // A unit: everything up to the next number.
    const size_t unit_start = i;
    while (i < text.size() && !IsDigit(text[i]) && text[i] != '.') ++i;
    const std::string_view unit = text.substr(unit_start, i - unit_start);
    if (unit.empty()) {
      return InvalidArgument(shown + " has no unit " + std::string(kDurationHint));
    }
    const int64_t unit_ms = DurationUnitMs(unit);
    if (unit_ms == 0) {
      if (unit == "us" || unit == "ns" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
        return InvalidArgument(
            shown + ": durations are whole milliseconds; the smallest unit is ms");
      }
      return InvalidArgument(shown + " is not a duration: unknown unit " + Quote(unit) +
                             " " + std::string(kDurationHint));
    }
    __int128 ms = static_cast<__int128>(whole) * unit_ms;
    while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
    if (!fraction.empty()) {
      if (fraction.size() > 18) {
        return InvalidArgument(shown + " is not a whole number of milliseconds");
      }
      __int128 numerator = 0;
      __int128 denominator = 1;
      for (const char c : fraction) {
        numerator = numerator * 10 + (c - '0');
        denominator *= 10;
      }
      numerator *= unit_ms;
      if (numerator % denominator != 0) {
        return InvalidArgument(shown + " is not a whole number of milliseconds");
      }
      ms += numerator / denominator;
    }
    total += ms;
    if (total > std::numeric_limits<int64_t>::max()) return too_long();
  }
  return milliseconds(static_cast<int64_t>(total));
}

Result<uint64_t> ParseSize(std::string_view text) {
  const std::string shown = Quote(text);
  const auto not_a_size = [&shown] {
    return InvalidArgument(shown + " is not a size " + std::string(kSizeHint));
  };
  if (text.empty()) return not_a_size();
  if (text.front() == '-') return InvalidArgument(shown + " is negative");
  uint64_t number = 0;
  size_t i = 0;
  for (; i < text.size() && IsDigit(text[i]); ++i) {
    if (__builtin_mul_overflow(number, uint64_t{10}, &number) ||
        __builtin_add_overflow(number, static_cast<uint64_t>(text[i] - '0'), &number)) {
      return InvalidArgument(shown + " is too large");
    }
  }
  if (i == 0) return not_a_size();
  const std::string_view unit = text.substr(i);
  uint64_t multiplier = unit.empty() ? 1 : 0;
  for (const SizeUnit& known : kSizeUnits) {
    if (!unit.empty() && EqualsIgnoreCase(unit, known.name)) multiplier = known.bytes;
  }
  if (multiplier == 0) {
    if (unit.front() == '.') {
      return InvalidArgument(shown + " is not a size: use a whole number (e.g. 1536KiB)");
    }
    return InvalidArgument(shown + " is not a size: unknown unit " + Quote(unit) +
                           " (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)");
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(number, multiplier, &bytes)) {
    return InvalidArgument(shown + " is too large");
  }
  return bytes;
}

Result<GatewayConfig> ParseConfig(std::string_view toml_text,
                                  std::string_view source_name) {
  try {
    toml::table root;
    try {
      root = toml::parse(toml_text, source_name);
    } catch (const toml::parse_error& error) {
      std::string message(source_name);
      const toml::source_position& where = error.source().begin;
      if (where.line > 0) {
        message += ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
      }
      message += ": TOML syntax error: ";
      message += error.description();
      return InvalidArgument(std::move(message));
    }
    return ConfigFromTable(root, source_name);
  } catch (const std::exception& error) {
    return Internal(std::string(source_name) + ": " + error.what());
  }
}

Result<GatewayConfig> LoadConfigFile(const std::string& path) {
  const auto failure = [&path](int error) {
    const std::string message = path + ": cannot read: " +
                                std::error_code(error, std::generic_category()).message();
    return error == ENOENT ? NotFound(message) : InvalidArgument(message);
  };
  try {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return failure(errno);
    std::string text;
    char buffer[1 << 14];
    while (true) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int error = errno;
        ::close(fd);
        return failure(error);
      }
      if (n == 0) break;
      text.append(buffer, static_cast<size_t>(n));
      if (text.size() > kMaxConfigFileBytes) {
        ::close(fd);
        return InvalidArgument(path + ": larger than " + FormatSize(kMaxConfigFileBytes) +
                               "; not a configuration file");
      }
    }
    ::close(fd);
    return ParseConfig(text, path);
  } catch (const std::exception& error) {
    return Internal(path + ": " + error.what());
  }
}

namespace {

constexpr size_t kMaxSecretBytes = 64u << 10;
constexpr size_t kMinSecretBytes = 16;

// A secret from a file (its contents) or an environment variable (its
// value), trailing white space removed. Messages name where, never what.
Result<std::string> ReadSecret(const std::string& file, const std::string& env,
                               std::string_view key) {
  std::string value;
  if (!env.empty()) {
    const char* text = std::getenv(env.c_str());
    if (text == nullptr || *text == '\0') {
      return InvalidArgument(std::string(key) + "_env: the environment variable " + env +
                             " is not set or empty");
    }
    value = text;
  } else {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      return InvalidArgument(std::string(key) + "_file: cannot read " + file + ": " +
                             std::error_code(error, std::generic_category()).message());
    }
    char buffer[4096];
    while (true) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      value.append(buffer, static_cast<size_t>(n));
      if (value.size() > kMaxSecretBytes) break;
    }
    ::close(fd);
    if (value.size() > kMaxSecretBytes) {
      return InvalidArgument(std::string(key) + "_file: " + file + " is larger than 64KiB");
    }
  }
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r' ||
                            value.back() == ' ' || value.back() == '\t')) {
    value.pop_back();
  }
  return value;
}

}  // namespace

bool IsLoopbackListen(std::string_view host_port) {
  std::string_view host = host_port;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') - 1);
    in6_addr address{};
    return inet_pton(AF_INET6, std::string(host).c_str(), &address) == 1 &&
           IN6_IS_ADDR_LOOPBACK(&address);
  }
  host = host.substr(0, host.rfind(':'));
  if (EqualsIgnoreCase(host, "localhost")) return true;
  in_addr address{};
  return inet_pton(AF_INET, std::string(host).c_str(), &address) == 1 &&
         (ntohl(address.s_addr) >> 24) == 127;
}

Result<std::optional<EncryptionKeys>> LoadEncryptionKeys(const EncryptionConfig& e) {
  if (!e.enabled()) return std::optional<EncryptionKeys>();
  EncryptionKeys keys;
  keys.active_id = e.active_key;
  for (const auto& [file, env] :
       {std::pair{e.keys_file, std::string()}, std::pair{std::string(), e.keys_env}}) {
    if (file.empty() && env.empty()) continue;
    Result<std::string> text = ReadSecret(file, env, "store.encryption.keys");
    if (!text.ok()) return text.status();
    Result<std::vector<EncryptionKey>> parsed = ParseEncryptionKeys(*text);
    if (!parsed.ok()) {
      return InvalidArgument("store.encryption: " + (file.empty() ? env : file) + ": " +
                             parsed.status().message());
    }
    for (EncryptionKey& key : *parsed) keys.keys.push_back(std::move(key));
  }
  if (Status checked = CheckEncryptionKeys(keys); !checked.ok()) {
    return InvalidArgument("store.encryption: " + checked.message());
  }
  return std::optional<EncryptionKeys>(std::move(keys));
}

Status LoadSecrets(GatewayConfig& config) {
  const ServerConfig& server = config.server;
  Secrets secrets;
  if (!server.tenant_secret_file.empty() || !server.tenant_secret_env.empty()) {
    Result<std::string> secret = ReadSecret(server.tenant_secret_file,
                                            server.tenant_secret_env, "server.tenant_secret");
    if (!secret.ok()) return secret.status();
    if (secret->size() < kMinSecretBytes) {
      return InvalidArgument("server.tenant_secret: the secret is shorter than 16 bytes");
    }
    secrets.tenant_secret = std::move(secret).value();
  }
  if (!server.admin_token_file.empty() || !server.admin_token_env.empty()) {
    Result<std::string> token = ReadSecret(server.admin_token_file, server.admin_token_env,
                                           "server.admin_token");
    if (!token.ok()) return token.status();
    if (token->size() < kMinSecretBytes) {
      return InvalidArgument("server.admin_token: the token is shorter than 16 characters");
    }
    for (const char c : *token) {
      if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
        return InvalidArgument(
            "server.admin_token: the token must be printable ASCII without spaces");
      }
    }
    secrets.admin_token = std::move(token).value();
  }
  Result<std::optional<EncryptionKeys>> keys = LoadEncryptionKeys(config.store.encryption);
  if (!keys.ok()) return keys.status();
  secrets.encryption = std::move(keys).value();
  config.secrets = std::move(secrets);
  return Status::Ok();
}

Result<GatewayConfig> ApplyOverrides(GatewayConfig config,
                                     const ConfigOverrides& overrides) {
  try {
    Errors errors("command line");
    const auto apply = [&errors](const std::optional<std::string>& value,
                                 std::string_view flag, Check check, std::string& field) {
      if (!value) return;
      if (Status s = check(*value); !s.ok()) {
        errors.Add(0, flag, s.message());
        return;
      }
      field = *value;
    };
    apply(overrides.listen, "--listen", CheckListen, config.server.listen);
    apply(overrides.admin_listen, "--admin-listen", CheckListen,
          config.server.admin_listen);
    apply(overrides.upstream, "--upstream", CheckUpstreamUrl, config.upstream.url);
    apply(overrides.store, "--store", CheckStoreUri, config.store.uri);
    apply(overrides.log_level, "--log-level", CheckLogLevel, config.server.log_level);
    if (errors.empty() && overrides.admin_listen) {
      if (Status exposed = CheckAdminExposure(config.server); !exposed.ok()) {
        errors.Add(0, "--admin-listen", exposed.message());
      }
    }
    if (errors.empty() && (overrides.listen || overrides.admin_listen) &&
        SameListener(config.server)) {
      errors.Add(0, overrides.admin_listen ? "--admin-listen" : "--listen",
                 Quote(config.server.listen) +
                     " is both server.listen and server.admin_listen; the admin listener "
                     "needs its own address");
    }
    if (!errors.empty()) return errors.ToStatus();
    return config;
  } catch (const std::exception& error) {
    return Internal(std::string("command line: ") + error.what());
  }
}

std::string RenderConfig(const GatewayConfig& config) {
  const ServerConfig& s = config.server;
  const UpstreamConfig& u = config.upstream;
  const StoreConfig& st = config.store;
  std::string out =
      "# The effective configuration of idem: the file, the command line and the\n"
      "# defaults combined. Every key is shown; see docs/configuration.md.\n";
  out += "\n[server]\n";
  RenderLine(out, "listen", Quote(s.listen));
  RenderLine(out, "admin_listen", Quote(s.admin_listen));
  RenderLine(out, "threads", std::to_string(s.threads));
  RenderLine(out, "max_request_body", Quote(FormatSize(s.max_request_body)));
  RenderLine(out, "max_header_size", Quote(FormatSize(s.max_header_size)));
  RenderLine(out, "header_timeout", Quote(FormatDuration(s.header_timeout)));
  RenderLine(out, "body_timeout", Quote(FormatDuration(s.body_timeout)));
  RenderLine(out, "idle_timeout", Quote(FormatDuration(s.idle_timeout)));
  RenderLine(out, "drain_timeout", Quote(FormatDuration(s.drain_timeout)));
  RenderLine(out, "log_level", Quote(s.log_level));
  RenderLine(out, "access_log", BoolText(s.access_log));
  RenderLine(out, "tenant_secret_file", Quote(s.tenant_secret_file));
  RenderLine(out, "tenant_secret_env", Quote(s.tenant_secret_env));
  RenderLine(out, "admin_token_file", Quote(s.admin_token_file));
  RenderLine(out, "admin_token_env", Quote(s.admin_token_env));
  out += "\n[upstream]\n";
  RenderLine(out, "url", Quote(u.url));
  RenderLine(out, "timeout", Quote(FormatDuration(u.timeout)));
  RenderLine(out, "connect_timeout", Quote(FormatDuration(u.connect_timeout)));
  RenderLine(out, "max_idle_connections", std::to_string(u.max_idle_connections));
  out += "\n[store]\n";
  RenderLine(out, "uri", Quote(st.uri));
  RenderLine(out, "auto_migrate", BoolText(st.auto_migrate));
  RenderLine(out, "sweep_interval", Quote(FormatDuration(st.sweep_interval)));
  RenderLine(out, "operation_timeout", Quote(FormatDuration(st.operation_timeout)));
  if (st.encryption.enabled()) {
    out += "\n[store.encryption]\n";
    RenderLine(out, "active_key", Quote(st.encryption.active_key));
    RenderLine(out, "keys_file", Quote(st.encryption.keys_file));
    RenderLine(out, "keys_env", Quote(st.encryption.keys_env));
  }
  out += "\n[idempotency]\n";
  RenderIdempotency(out, config.idempotency);
  for (const RouteConfig& route : config.routes) {
    out += "\n[[route]]\n";
    RenderLine(out, "path", Quote(route.path));
    RenderIdempotency(out, route.idempotency);
  }
  return out;
}

}  // namespace idem::gateway
