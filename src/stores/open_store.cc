// Maps a store URI onto the backend factory that opens it.
#include "idem/open_store.h"

#include <string>

#include "idem/memory_store.h"

namespace idem {
namespace {

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

Result<std::shared_ptr<Store>> OpenStore(std::string_view uri,
                                         const StoreOpenOptions& options) {
  const std::shared_ptr<Clock> clock = options.clock ? options.clock : SystemClock();
  if (uri == "memory:" || uri == "memory") {
    MemoryStoreOptions memory;
    memory.clock = clock;
    return NewMemoryStore(memory);
  }
  // Each backend adds its scheme here: `if (StartsWith(uri, "x:")) ...`.
  (void)StartsWith;
  return InvalidArgument("unknown store URI \"" + std::string(uri) +
                         "\": expected memory:, rocksdb:DIR, redis://, "
                         "redis+cluster:// or postgresql://");
}

}  // namespace idem
