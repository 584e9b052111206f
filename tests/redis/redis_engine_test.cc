// The Engine over the Redis store, as the gateway drives it: callbacks
// arrive on the store's io threads, each exactly once; many duplicates with
// in_flight = "wait" (over two store instances, as over two gateways) see
// one execution and all get its result.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "idem/engine.h"
#include "redis/redis_test_util.h"

namespace idem::testing {
namespace {

TEST(RedisEngineTest, WaitingDuplicatesOverTwoStoresExecuteOnceAndEachCallbackRunsOnce) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  Engine a(MustOpen(FastOptions(**server)));
  Engine b(MustOpen(FastOptions(**server)));
  EnginePolicy policy;
  policy.in_flight = InFlightPolicy::kWait;
  policy.wait_timeout_ms = 10'000;

  constexpr int kCallers = 100;
  const std::string key = "engine wait " + NewOwnerToken();
  std::mutex mutex;
  std::condition_variable cv;
  int answered = 0;
  int executed = 0;
  std::set<std::string> bodies;
  std::vector<std::atomic<int>> calls(kCallers);
  for (int i = 0; i < kCallers; ++i) {
    Engine* engine = i % 2 == 0 ? &a : &b;
    engine->Begin(key, "fp", policy, [&, i, engine](Result<Decision> decision) {
      calls[i].fetch_add(1);
      if (decision.ok() && decision->kind == Decision::Kind::kExecute) {
        {
          std::lock_guard lock(mutex);
          ++executed;
        }
        // The "upstream" takes a while; then Finish from another thread.
        std::thread([&, lease = decision->lease, engine] {
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          auto finished = engine->FinishSync(lease, Response("the one result"), policy);
          EXPECT_TRUE(finished.ok()) << finished.status();
          std::lock_guard lock(mutex);
          bodies.insert("the one result");
          ++answered;
          cv.notify_all();
        }).detach();
        return;
      }
      std::lock_guard lock(mutex);
      if (decision.ok() && decision->kind == Decision::Kind::kReplay) {
        bodies.insert(decision->record->response.body);
      } else {
        bodies.insert(decision.ok() ? "unexpected decision"
                                    : decision.status().ToString());
      }
      ++answered;
      cv.notify_all();
    });
  }
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return answered == kCallers; }))
        << answered << " of " << kCallers << " answered";
    EXPECT_EQ(executed, 1);
    EXPECT_EQ(bodies, (std::set<std::string>{"the one result"}));
  }
  std::this_thread::sleep_for(100ms);  // a second call would show up by now
  for (int i = 0; i < kCallers; ++i) EXPECT_EQ(calls[i].load(), 1) << "caller " << i;
}

}  // namespace
}  // namespace idem::testing
