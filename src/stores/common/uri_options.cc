#include "stores/common/uri_options.h"

#include <charconv>
#include <cstdint>
#include <utility>

namespace idem::stores {

bool SplitUriQuery(std::string_view query, std::vector<UriOption>& out) {
  out.clear();
  for (bool more = !query.empty(); more;) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    more = amp != std::string_view::npos;
    if (more) query.remove_prefix(amp + 1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return false;
    out.push_back({pair.substr(0, eq), pair.substr(eq + 1)});
  }
  return true;
}

bool ParseUriBool(std::string_view text, bool& out) {
  if (text != "true" && text != "false") return false;
  out = text == "true";
  return true;
}

bool ParseUriCount(std::string_view text, size_t min, size_t max, size_t& out) {
  size_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return false;
  if (value < min || value > max) return false;
  out = value;
  return true;
}

bool ParseUriBytes(std::string_view text, size_t& out) {
  size_t unit = 1;
  for (const auto& [suffix, factor] :
       {std::pair<std::string_view, size_t>{"KiB", size_t{1} << 10},
        {"MiB", size_t{1} << 20},
        {"GiB", size_t{1} << 30}}) {
    if (text.size() > suffix.size() &&
        text.substr(text.size() - suffix.size()) == suffix) {
      unit = factor;
      text.remove_suffix(suffix.size());
      break;
    }
  }
  size_t value = 0;
  if (!ParseUriCount(text, 0, SIZE_MAX / unit, value)) return false;
  out = value * unit;
  return true;
}

}  // namespace idem::stores
