// Helpers that read the path and query of a request target such as
// "/slow?ms=200" without allocating unless a value must be decoded.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace idem::demo {

// The part of `target` before '?'.
std::string_view PathOf(std::string_view target);

// The decoded value of query parameter `name` ("%2F" -> "/"; '+' is kept as
// is), or nullopt when absent or badly encoded.
std::optional<std::string> QueryParam(std::string_view target, std::string_view name);

// Query parameter `name` as an unsigned number, or nullopt when absent or not
// a number.
std::optional<uint64_t> QueryNumber(std::string_view target, std::string_view name);

// The behaviour endpoint a path asks for. The behaviour comes from the end of
// the path, so "/wait/slow" behaves like "/slow" and tests may put a gateway
// route prefix in front.
enum class Endpoint {
  kPayments,
  kStatus,
  kSlow,
  kEcho,
  kBig,
  kDrop,
  kGarbage,
  kStall,
  kOther
};
struct Route {
  Endpoint endpoint = Endpoint::kOther;
  unsigned status = 0;  // for kStatus
};
Route RouteFor(std::string_view path);

}  // namespace idem::demo
