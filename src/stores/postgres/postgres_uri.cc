// ParsePostgresUri: idem's own options out of a postgresql:// URI, the rest
// left for libpq.
#include <string>
#include <string_view>
#include <vector>

#include "idem/postgres_store.h"
#include "stores/common/uri_options.h"

namespace idem {
namespace {

Status BadUri(std::string_view uri, std::string_view why) {
  return InvalidArgument("bad postgresql URI \"" + std::string(uri) +
                         "\": " + std::string(why));
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Sets the option if `name` is one of idem's; false if it is libpq's.
Result<bool> TakeIdemOption(std::string_view uri, const stores::UriOption& option,
                            PostgresStoreOptions& options) {
  const auto& [name, value] = option;
  if (name == "sync_leases") {
    if (!stores::ParseUriBool(value, options.sync_leases)) {
      return BadUri(uri, "sync_leases must be true or false");
    }
  } else if (name == "pool_size") {
    if (!stores::ParseUriCount(value, 1, 1000, options.pool_size)) {
      return BadUri(uri, "pool_size must be a whole number from 1 to 1000");
    }
  } else if (name == "cache_completed") {
    if (!stores::ParseUriBool(value, options.cache_completed)) {
      return BadUri(uri, "cache_completed must be true or false");
    }
  } else if (name == "cache_max_bytes") {
    if (!stores::ParseUriBytes(value, options.cache_max_bytes) ||
        options.cache_max_bytes < kMinPostgresCacheBytes) {
      return BadUri(uri, "cache_max_bytes must be a size of at least 1MiB");
    }
  } else {
    return false;
  }
  return true;
}

}  // namespace

Result<PostgresStoreOptions> ParsePostgresUri(std::string_view uri) {
  if (!StartsWith(uri, "postgresql://") && !StartsWith(uri, "postgres://")) {
    return BadUri(uri, "expected postgresql:// or postgres://");
  }
  PostgresStoreOptions options;
  const size_t question = uri.find('?');
  if (question == std::string_view::npos) {
    options.conninfo = std::string(uri);
    return options;
  }
  std::vector<stores::UriOption> pairs;
  if (!stores::SplitUriQuery(uri.substr(question + 1), pairs)) {
    return BadUri(uri, "expected option=value in the query");
  }
  std::string libpq_query;
  for (const stores::UriOption& pair : pairs) {
    Result<bool> taken = TakeIdemOption(uri, pair, options);
    if (!taken.ok()) return taken.status();
    if (*taken) continue;
    libpq_query += libpq_query.empty() ? "?" : "&";
    libpq_query += std::string(pair.name) + "=" + std::string(pair.value);
  }
  options.conninfo = std::string(uri.substr(0, question)) + libpq_query;
  return options;
}

}  // namespace idem
