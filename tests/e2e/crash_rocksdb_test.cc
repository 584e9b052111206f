// kill -9 of a gateway on the RocksDB store, under concurrent load, then a
// restart on the same directory:
// - every key whose response reached its client is replayed byte for byte
//   and never executes upstream again;
// - a key that was in flight at the kill answers 409 after the restart and
//   runs again only once its lease (never extended after the kill) ends.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "stack_fixture.h"

namespace idem::e2e {
namespace {

constexpr auto kLeaseTtl = 10s;

std::string CrashConfig() {
  return R"toml(
[upstream]
timeout = "30s"

[idempotency]
lease_ttl = "10s"
)toml";
}

// The value of an unlabelled metric in a /metrics page; -1 when absent.
double MetricValue(const std::string& page, const std::string& name) {
  const std::string prefix = name + " ";
  for (size_t at = page.find(prefix); at != std::string::npos;
       at = page.find(prefix, at + 1)) {
    if (at == 0 || page[at - 1] == '\n') {
      return std::strtod(page.c_str() + at + prefix.size(), nullptr);
    }
  }
  return -1;
}

// The slow request that is in flight when the gateway dies.
HttpRequest SlowPost(const std::string& key) { return KeyedPost("/slow?ms=4000", key); }

// Client threads, stopped and joined when the group goes away, also when
// an assertion ends the test early.
class ClientThreads {
 public:
  ~ClientThreads() { Join(); }
  template <typename Body>
  void Start(Body body) {
    threads_.emplace_back(std::move(body));
  }
  bool stopping() const { return stop_.load(); }
  void Join() {
    stop_ = true;
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

class CrashRocksDbTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && stack_ && stack_->ok()) {
      std::cerr << "----- gateway log -----\n" << stack_->gateway->Log();
    }
  }

  TempDir dir_;
  std::unique_ptr<Stack> stack_;
};

TEST_F(CrashRocksDbTest, KillNineUnderLoadThenRestart) {
  stack_ = StartStack(CrashConfig(), "rocksdb:" + dir_.File("idem-data"));
  ASSERT_TRUE(stack_->ok()) << stack_->error;
  Gateway& gateway = *stack_->gateway;
  Upstream& upstream = *stack_->upstream;

  // Requests that will be in flight (the upstream holds them) at the kill.
  std::vector<std::string> slow_keys;
  ClientThreads slow_clients;
  for (int i = 0; i < 4; ++i) {
    slow_keys.push_back(UniqueKey("slow"));
    slow_clients.Start([port = gateway.port(), request = SlowPost(slow_keys.back())] {
      (void)Fetch(port, request, 30s);  // cut off by the kill
    });
  }

  // Concurrent load with unique keys; keep every response a client got.
  std::mutex mutex;
  std::map<std::string, HttpResponse> answered;
  ClientThreads clients;
  for (int t = 0; t < 8; ++t) {
    clients.Start([&, port = gateway.port(), t] {
      for (int i = 0; !clients.stopping(); ++i) {
        const std::string key = "k-crash-" + std::to_string(t) + "-" + std::to_string(i);
        HttpResponse response =
            Fetch(port, KeyedPost("/payments", key, PaymentBody()), 10s);
        if (!response.ok()) break;  // the gateway is gone
        std::lock_guard lock(mutex);
        answered.emplace(key, std::move(response));
      }
    });
  }
  for (const auto& key : slow_keys) {
    ASSERT_TRUE(upstream.WaitForCount(key, 1)) << "the slow request never arrived";
  }
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::lock_guard lock(mutex);
        return answered.size() >= 300;
      },
      60s))
      << "the load did not get going";

  // The store's group-commit counters are on /metrics: every answered
  // request wrote a lease and a result, and results were synced.
  const std::string metrics = Fetch(gateway.admin_port(), Get("/metrics"), 5s).body;
  const double commits = MetricValue(metrics, "idem_store_rocksdb_commits_total");
  const double syncs = MetricValue(metrics, "idem_store_rocksdb_syncs_total");
  EXPECT_GE(commits, 600) << metrics;
  EXPECT_GE(syncs, 1) << metrics;
  EXPECT_LE(syncs, commits) << metrics;

  gateway.Kill();
  clients.Join();
  slow_clients.Join();
  std::string error;
  ASSERT_TRUE(gateway.Restart(error)) << error;
  const uint16_t port = gateway.port();

  // The in-flight keys first, while their leases certainly still run.
  for (const auto& key : slow_keys) {
    HttpResponse busy = Fetch(port, SlowPost(key), 30s);
    EXPECT_TRUE(IsProblem(busy, 409)) << key << "\n" << busy.Describe();
  }

  // Every answered key: replayed, never executed again.
  size_t checked = 0;
  for (const auto& [key, first] : answered) {
    if (first.status != 201) continue;  // only stored results replay
    HttpResponse replay = Fetch(port, KeyedPost("/payments", key, PaymentBody()), 10s);
    EXPECT_TRUE(IsReplayOf(replay, first)) << key;
    EXPECT_EQ(upstream.Count(key), 1u) << key;
    ++checked;
  }
  EXPECT_GE(checked, 300u);

  // Once the leases have run out, the in-flight keys execute again.
  std::this_thread::sleep_for(kLeaseTtl);
  for (const auto& key : slow_keys) {
    HttpResponse again;
    ASSERT_TRUE(WaitUntil(
        [&] {
          again = Fetch(port, SlowPost(key), 30s);
          return again.status == 200;
        },
        30s))
        << key << "\n"
        << again.Describe();
    EXPECT_TRUE(IsFresh(again));
    EXPECT_EQ(upstream.Count(key), 2u) << key;
  }
}

}  // namespace
}  // namespace idem::e2e
