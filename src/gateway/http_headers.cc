#include "gateway/http_headers.h"

#include <algorithm>

namespace idem::gateway {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool IsHopByHopName(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "connection",        "keep-alive", "proxy-connection",  "te",
      "trailer",           "upgrade",    "transfer-encoding", "proxy-authorization",
      "proxy-authenticate"};
  // Most fields are longer or shorter than every hop-by-hop name; the size
  // test keeps the common case to one comparison.
  if (name.size() < 2 || name.size() > 19) return false;
  return std::any_of(std::begin(kNames), std::end(kNames),
                     [name](std::string_view n) { return EqualsIgnoreCase(n, name); });
}

HopByHopFilter::HopByHopFilter(std::span<const HeaderLine> headers) {
  for (const HeaderLine& h : headers) {
    if (!EqualsIgnoreCase(h.name, "connection")) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const std::string_view token = Trim(rest.substr(0, comma));
      rest =
          comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (token.empty()) continue;
      if (listed_count_ < listed_.size()) {
        listed_[listed_count_++] = token;
      } else {
        more_listed_.push_back(token);
      }
    }
  }
}

bool HopByHopFilter::Drops(std::string_view name) const {
  if (IsHopByHopName(name)) return true;
  for (size_t i = 0; i < listed_count_; ++i) {
    if (EqualsIgnoreCase(listed_[i], name)) return true;
  }
  return std::any_of(more_listed_.begin(), more_listed_.end(),
                     [name](std::string_view n) { return EqualsIgnoreCase(n, name); });
}

StoredHeaders EndToEndHeaders(std::span<const HeaderLine> headers) {
  const HopByHopFilter hop(headers);
  StoredHeaders out;
  out.reserve(headers.size());
  for (const HeaderLine& h : headers) {
    if (hop.Drops(h.name) || EqualsIgnoreCase(h.name, "content-length")) continue;
    out.emplace_back(std::string(h.name), std::string(h.value));
  }
  return out;
}

const HeaderLine* FindHeader(std::span<const HeaderLine> headers, std::string_view name) {
  for (const HeaderLine& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) return &h;
  }
  return nullptr;
}

}  // namespace idem::gateway
