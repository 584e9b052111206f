// The store conformance suite against a real single Redis server and a real
// 3-master Redis Cluster. Both are started once for the whole test program
// by a gtest Environment (so the program is registered as one ctest test,
// not one process per test).
#include <memory>

#include "common/test_loops.h"
#include "conformance/store_conformance.h"
#include "idem/redis_store.h"
#include "redis/redis_server.h"

namespace idem::testing {
namespace {

struct SharedServers {
  std::unique_ptr<RedisServer> single;
  std::unique_ptr<RedisCluster> cluster;
  // Lent to the stores of the "lent_loops" variants as `idem serve` lends
  // its io threads; they run from before the first test to after the last,
  // so every store is closed while they run.
  std::unique_ptr<TestLoops> loops;
};

SharedServers& Servers() {
  static SharedServers servers;
  return servers;
}

class RedisEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto single = RedisServer::Start();
    ASSERT_TRUE(single.ok()) << single.status();
    Servers().single = std::move(single).value();
    auto cluster = RedisCluster::Start(3);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    Servers().cluster = std::move(cluster).value();
    Servers().loops = std::make_unique<TestLoops>(2);
  }
  void TearDown() override {
    Servers().loops.reset();
    Servers().cluster.reset();
    Servers().single.reset();
  }
};

[[maybe_unused]] ::testing::Environment* const kRedisEnvironment =
    ::testing::AddGlobalTestEnvironment(new RedisEnvironment);

std::shared_ptr<Store> OpenRedis(const std::string& uri, std::shared_ptr<Clock> clock,
                                 int io_threads = 1, bool cache = true,
                                 bool lent_loops = false) {
  auto options = ParseRedisUri(uri);
  if (!options.ok()) return nullptr;
  options->clock = std::move(clock);
  options->io_threads = io_threads;
  options->cache_completed = cache;
  options->connections_per_thread = io_threads == 1 ? 2 : 1;
  if (lent_loops) options->io_contexts = Servers().loops->pointers();
  auto store = NewRedisStore(*options);
  return store.ok() ? *store : nullptr;
}

INSTANTIATE_TEST_SUITE_P(
    Redis, StoreConformanceTest,
    ::testing::Values(
        StoreFactory{"single",
                     [](std::shared_ptr<Clock> clock) -> std::shared_ptr<Store> {
                       if (!Servers().single) return nullptr;
                       return OpenRedis(Servers().single->uri(), clock);
                     }},
        // Every replay read from Redis (the cache is on by default).
        StoreFactory{"single_without_cache",
                     [](std::shared_ptr<Clock> clock) -> std::shared_ptr<Store> {
                       if (!Servers().single) return nullptr;
                       return OpenRedis(Servers().single->uri(), clock, 1, false);
                     }},
        // Commands spread over two io threads; waiters live on the first.
        StoreFactory{"single_two_io_threads",
                     [](std::shared_ptr<Clock> clock) -> std::shared_ptr<Store> {
                       if (!Servers().single) return nullptr;
                       return OpenRedis(Servers().single->uri(), clock, 2);
                     }},
        StoreFactory{"cluster",
                     [](std::shared_ptr<Clock> clock) -> std::shared_ptr<Store> {
                       if (!Servers().cluster) return nullptr;
                       return OpenRedis(Servers().cluster->uri(), clock);
                     }},
        // As `idem serve` runs it: on two loops the caller lends.
        StoreFactory{"single_lent_loops",
                     [](std::shared_ptr<Clock> clock) -> std::shared_ptr<Store> {
                       if (!Servers().single) return nullptr;
                       return OpenRedis(Servers().single->uri(), clock, 1, true,
                                        /*lent_loops=*/true);
                     }},
        StoreFactory{"cluster_lent_loops",
                     [](std::shared_ptr<Clock> clock) -> std::shared_ptr<Store> {
                       if (!Servers().cluster) return nullptr;
                       return OpenRedis(Servers().cluster->uri(), clock, 1, true,
                                        /*lent_loops=*/true);
                     }}),
    [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace idem::testing
