// The requests of the kill -9 test, shared by the writer process
// (test_main.cc --write-until-killed) and the test that checks the
// directory after the kill (crash_test.cc).
#pragma once

#include <cstdint>
#include <string>

#include "idem/store.h"

namespace idem::testing {

inline constexpr int64_t kCrashLeaseMs = 3'600'000;  // outlives the test
inline constexpr int64_t kCrashTtlMs = 86'400'000;

inline std::string CrashKey(int thread, int i) {
  return "tenant POST /crash " + std::to_string(thread) + "-" + std::to_string(i);
}

inline BeginRequest CrashBegin(const std::string& key) {
  return BeginRequest{key, "fp:" + key, "writer", kCrashLeaseMs, kCrashTtlMs};
}

inline StoredResponse CrashResponse(const std::string& key) {
  StoredResponse response;
  response.status = 201;
  response.headers = {{"Content-Type", "text/plain"}};
  response.body = "result of " + key;
  return response;
}

inline CompleteRequest CrashComplete(const std::string& key) {
  return CompleteRequest{key, "writer", CrashResponse(key), kCrashTtlMs};
}

}  // namespace idem::testing
