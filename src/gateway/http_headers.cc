#include "gateway/http_headers.h"

#include <algorithm>

namespace idem::gateway {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool IsHopByHopName(std::string_view name) {
  // Dispatch on the length: every field name is then compared with at most
  // two of the nine names, most with none.
  switch (name.size()) {
    case 2:
      return EqualsIgnoreCase(name, "te");
    case 7:
      return EqualsIgnoreCase(name, "trailer") || EqualsIgnoreCase(name, "upgrade");
    case 10:
      return EqualsIgnoreCase(name, "connection") || EqualsIgnoreCase(name, "keep-alive");
    case 16:
      return EqualsIgnoreCase(name, "proxy-connection");
    case 17:
      return EqualsIgnoreCase(name, "transfer-encoding");
    case 18:
      return EqualsIgnoreCase(name, "proxy-authenticate");
    case 19:
      return EqualsIgnoreCase(name, "proxy-authorization");
    default:
      return false;
  }
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
