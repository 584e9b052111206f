// Header fields as the gateway sees them: name/value views, case-insensitive
// names, and the RFC 9110 hop-by-hop rules a proxy applies before it
// forwards, stores or replays a message.
//
// Views only: a HeaderLine points into a message that must outlive it.
// Everything here is pure and thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace idem::gateway {

struct HeaderLine {
  std::string_view name;
  std::string_view value;
};

using StoredHeaders = std::vector<std::pair<std::string, std::string>>;

// ASCII case-insensitive equality. Inline: header names are compared a few
// dozen times per request, and most comparisons end at the size test.
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = a[i];
    const char y = b[i];
    if (x == y) continue;
    if ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z') return false;
  }
  return true;
}

// RFC 9110 section 7.6.1: Connection, Keep-Alive, Proxy-Connection, TE,
// Trailer, Transfer-Encoding, Upgrade, and the proxy credentials
// Proxy-Authorization and Proxy-Authenticate.
bool IsHopByHopName(std::string_view name);

// Decides which fields of one message are hop-by-hop: the fixed list above
// plus every field the message's Connection header names.
class HopByHopFilter {
 public:
  explicit HopByHopFilter(std::span<const HeaderLine> headers);

  bool Drops(std::string_view name) const;

 private:
  // Connection rarely lists more than a couple of names; the array keeps the
  // common case free of allocations.
  std::array<std::string_view, 8> listed_{};
  size_t listed_count_ = 0;
  std::vector<std::string_view> more_listed_;
};

// The fields a response is stored and replayed with: hop-by-hop fields and
// Content-Length (recomputed from the stored body) are left out; order and
// spelling are kept.
StoredHeaders EndToEndHeaders(std::span<const HeaderLine> headers);

// The first value of `name`, or nullptr.
const HeaderLine* FindHeader(std::span<const HeaderLine> headers, std::string_view name);

}  // namespace idem::gateway
