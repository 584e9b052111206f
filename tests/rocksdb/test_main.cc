// The RocksDB store tests' main. Besides running the tests, the binary has
// helper modes that the tests start as separate processes:
//
//   --hold-lock DIR            opens the store, prints "ready", then waits
//                              to be killed (holds DIR's LOCK meanwhile)
//   --write-until-killed DIR   from 8 threads, forever: Begin+Complete new
//                              keys, printing "done KEY" after each
//                              acknowledged completion, and every tenth key
//                              only Begin, printing "inflight KEY"
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "idem/rocksdb_store.h"
#include "idem/store.h"
#include "rocksdb/crash_workload.h"

namespace {

std::shared_ptr<idem::Store> OpenOrDie(const char* dir) {
  idem::RocksDbStoreOptions options;
  options.path = dir;
  auto store = idem::NewRocksDbStore(options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    std::exit(2);
  }
  return std::move(store).value();
}

[[noreturn]] void HoldLock(const char* dir) {
  auto store = OpenOrDie(dir);
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) pause();
}

[[noreturn]] void WriteUntilKilled(const char* dir) {
  auto store = OpenOrDie(dir);
  std::mutex out;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        const std::string key = idem::testing::CrashKey(t, i);
        const bool complete = i % 10 != 9;
        auto begun = idem::BeginSync(*store, idem::testing::CrashBegin(key));
        if (!begun.ok() || begun->outcome != idem::BeginOutcome::kAcquired) continue;
        if (complete &&
            !idem::CompleteSync(*store, idem::testing::CrashComplete(key)).ok()) {
          continue;
        }
        std::lock_guard lock(out);
        std::printf("%s %s\n", complete ? "done" : "inflight", key.c_str());
        std::fflush(stdout);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--hold-lock") == 0) HoldLock(argv[2]);
  if (argc == 3 && std::strcmp(argv[1], "--write-until-killed") == 0) {
    WriteUntilKilled(argv[2]);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
