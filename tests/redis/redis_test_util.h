// Small helpers shared by the Redis store tests.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "idem/redis_store.h"
#include "idem/store.h"
#include "redis/redis_server.h"

namespace idem::testing {

using namespace std::chrono_literals;

// Options for a store on `server` with short time-outs, so failure tests
// finish quickly.
inline RedisStoreOptions FastOptions(const RedisServer& server) {
  RedisStoreOptions options;
  options.host = "127.0.0.1";
  options.port = server.port();
  options.connect_timeout = 300ms;
  options.command_timeout = 300ms;
  options.reconnect_min_backoff = 20ms;
  options.reconnect_max_backoff = 200ms;
  return options;
}

inline std::shared_ptr<Store> MustOpen(const RedisStoreOptions& options) {
  auto store = NewRedisStore(options);
  return store.ok() ? *store : nullptr;
}

// Polls `condition` every 20 ms until it holds or `limit` passes.
inline bool WaitUntil(const std::function<bool()>& condition,
                      std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

inline BeginRequest NewBegin(const std::string& key, const std::string& owner,
                             const std::string& fingerprint = "fp") {
  return BeginRequest{key, fingerprint, owner, 10'000, 3'600'000};
}

inline StoredResponse Response(const std::string& body) {
  StoredResponse response;
  response.status = 201;
  response.headers = {{"Content-Type", "text/plain"}};
  response.body = body;
  return response;
}

}  // namespace idem::testing
