// Shared pieces of the RocksDB store tests: opening a store on a
// directory with a manual clock, and sample requests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "idem/clock.h"
#include "idem/rocksdb_store.h"
#include "idem/store.h"

namespace idem::testing {

inline constexpr int64_t kLease = 10'000;
inline constexpr int64_t kTtl = 3'600'000;

inline std::shared_ptr<Store> OpenStoreAt(const std::string& dir,
                                          std::shared_ptr<Clock> clock,
                                          RocksDbStoreOptions options = {}) {
  options.path = dir;
  options.clock = std::move(clock);
  auto store = NewRocksDbStore(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(store).value() : nullptr;
}

inline BeginRequest Req(const std::string& key, const std::string& owner,
                        const std::string& fingerprint = "fp") {
  return BeginRequest{key, fingerprint, owner, kLease, kTtl};
}

inline StoredResponse Response(const std::string& body) {
  StoredResponse response;
  response.status = 200;
  response.headers = {{"Content-Type", "application/json"}};
  response.body = body;
  return response;
}

}  // namespace idem::testing
