#include "request_target.h"

#include <charconv>

namespace idem::demo {

std::string_view PathOf(std::string_view target) {
  return target.substr(0, target.find('?'));
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = HexValue(s[i + 1]);
    int lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::optional<std::string_view> RawQueryParam(std::string_view target,
                                              std::string_view name) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<uint64_t> ParseNumber(std::string_view s) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

std::string_view LastSegment(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::optional<std::string> QueryParam(std::string_view target, std::string_view name) {
  auto raw = RawQueryParam(target, name);
  if (!raw) return std::nullopt;
  return PercentDecode(*raw);
}

std::optional<uint64_t> QueryNumber(std::string_view target, std::string_view name) {
  auto raw = RawQueryParam(target, name);
  if (!raw) return std::nullopt;
  return ParseNumber(*raw);
}

Route RouteFor(std::string_view path) {
  std::string_view last = LastSegment(path);
  std::string_view parent = path.substr(0, path.size() - last.size());
  if (!parent.empty()) parent.remove_suffix(1);  // the '/' before `last`
  if (LastSegment(parent) == "status") {
    auto code = ParseNumber(last);
    if (code && *code >= 200 && *code <= 599) {
      return {Endpoint::kStatus, static_cast<unsigned>(*code)};
    }
  }
  if (last == "payments") return {Endpoint::kPayments};
  if (last == "slow") return {Endpoint::kSlow};
  if (last == "echo") return {Endpoint::kEcho};
  if (last == "big") return {Endpoint::kBig};
  if (last == "drop") return {Endpoint::kDrop};
  if (last == "garbage") return {Endpoint::kGarbage};
  if (last == "stall") return {Endpoint::kStall};
  return {};
}

}  // namespace idem::demo
