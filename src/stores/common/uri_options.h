// Options in the query string of a store URI ("name=value&name=value"):
// the pieces the Redis and PostgreSQL URI parsers share. Hand-written
// rather than with Boost.URL, which Debian's Boost 1.81 ships only as
// sources to compile into the program: our option names and values are
// plain words and numbers, with nothing to unescape.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace idem::stores {

struct UriOption {
  std::string_view name;
  std::string_view value;
};

// Splits a query string into its pairs, in order; false when a pair has no
// '='. An empty query has no pairs.
bool SplitUriQuery(std::string_view query, std::vector<UriOption>& out);

// "true" or "false".
bool ParseUriBool(std::string_view text, bool& out);

// A decimal count in [min, max].
bool ParseUriCount(std::string_view text, size_t min, size_t max, size_t& out);

// Bytes: "N", "NKiB", "NMiB" or "NGiB".
bool ParseUriBytes(std::string_view text, size_t& out);

}  // namespace idem::stores
