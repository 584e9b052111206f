// Two `idem serve` processes sharing one real PostgreSQL (started by the
// test, as an unprivileged user, on a free loopback port): identical
// requests spread over both execute once; in_flight = "wait" waiters on one
// gateway get the result produced through the other (LISTEN/NOTIFY); a
// gateway killed with SIGKILL and restarted replays what it completed; with
// PostgreSQL restarted under load the gateways answer 503 while it is
// down, recover by themselves, and never execute a key twice; the
// gateways' periodic sweep (store.sweep_interval) reaps expired rows and
// counts them on /metrics; `idem migrate` and `idem gc` work on the
// database.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "http_client.h"
#include "postgres/postgres_server.h"
#include "stack_fixture.h"

namespace idem::e2e {
namespace {

using SteadyClock = std::chrono::steady_clock;

class PostgresGatewaysTest : public GatewayGroupTest<PostgresGatewaysTest> {
 public:
  // The gateways sweep every 200 ms instead of every minute.
  static std::string Config() {
    return DefaultConfig() + "\n[store]\nsweep_interval = \"200ms\"\n";
  }

  static std::string StartStore(std::string& error) {
    auto server = testing::PostgresServer::Start();
    if (!server.ok()) {
      error = server.status().ToString();
      return "";
    }
    postgres_ = std::move(server).value();
    if (Status created = postgres_->CreateDatabase("e2e"); !created.ok()) {
      error = created.ToString();
      return "";
    }
    return postgres_->Uri("e2e");  // store.auto_migrate is on by default
  }
  static void StopStore() { postgres_.reset(); }

 protected:
  static inline std::unique_ptr<testing::PostgresServer> postgres_;
};

// The value of a metric without labels on a gateway's /metrics; -1 when it
// is missing.
double MetricOf(uint16_t admin_port, const std::string& name) {
  HttpResponse response = Fetch(admin_port, Get("/metrics"), 5s);
  if (!response.ok() || response.status != 200) return -1;
  const std::string prefix = "\n" + name + " ";
  const size_t at = response.body.find(prefix);
  if (at == std::string::npos) return -1;
  return std::strtod(response.body.c_str() + at + prefix.size(), nullptr);
}

// Inserts `n` completed records named "<prefix>-<i>" that expired long ago
// (or expire in a day, when `live`), as a gateway would have written them.
std::string InsertRecordsSql(const std::string& prefix, int n, bool live) {
  const std::string expires =
      live ? "(extract(epoch FROM now()) * 1000)::bigint + 86400000" : "1";
  return "INSERT INTO idem_records (key, state, fingerprint, owner, fence, "
         "lease_expires_at_ms, response_status, created_at_ms, expires_at_ms) "
         "SELECT convert_to('" +
         prefix + "-' || i, 'UTF8'), 2, '', 'o', 1, 1, 200, 1, " + expires +
         " FROM generate_series(1, " + std::to_string(n) + ") AS i";
}

std::string CountRecordsSql(const std::string& prefix) {
  return "SELECT count(*) FROM idem_records WHERE position(convert_to('" + prefix +
         "-', 'UTF8') in key) = 1";
}

TEST_F(PostgresGatewaysTest, HundredIdenticalRequestsOverTwoGatewaysExecuteOnce) {
  const std::string key = UniqueKey();
  // The "wait" route: duplicates wait for the first result instead of 409.
  auto responses = SendToBoth(KeyedPost("/wait/slow?ms=300", key), 100);
  int fresh = 0;
  std::set<std::string> bodies;
  for (const HttpResponse& r : responses) {
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.status, 200) << r.Describe();
    if (!Replayed(r)) ++fresh;
    bodies.insert(r.body);
  }
  EXPECT_EQ(fresh, 1);
  EXPECT_EQ(bodies.size(), 1u) << "every client gets the first result";
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(PostgresGatewaysTest, RejectModeDuplicatesOverTwoGatewaysExecuteOnce) {
  const std::string key = UniqueKey();
  auto responses = SendToBoth(KeyedPost("/payments", key, PaymentBody()), 100);
  int created = 0;
  for (const HttpResponse& r : responses) {
    ASSERT_TRUE(r.ok()) << r.error;
    if (r.status == 201 && !Replayed(r)) {
      ++created;
    } else if (r.status != 201) {
      EXPECT_TRUE(IsProblem(r, 409, "request-in-progress")) << r.Describe();
    }
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(PostgresGatewaysTest, WaitersOnTheOtherGatewayGetTheFirstResult) {
  const std::string key = UniqueKey();
  HttpResponse first;
  std::thread original(
      [&] { first = Fetch(a().port(), KeyedPost("/wait/slow?ms=800", key), 30s); });
  ASSERT_TRUE(upstream().WaitForCount(key, 1)) << "the first request never arrived";
  std::vector<HttpResponse> waiters(5);
  std::vector<std::thread> threads;
  const auto start = SteadyClock::now();
  for (auto& waiter : waiters) {
    threads.emplace_back(
        [&] { waiter = Fetch(b().port(), KeyedPost("/wait/slow?ms=800", key), 30s); });
  }
  for (auto& t : threads) t.join();
  original.join();
  const auto waited = SteadyClock::now() - start;
  ASSERT_EQ(first.status, 200) << first.Describe();
  EXPECT_FALSE(Replayed(first));
  for (const HttpResponse& waiter : waiters) {
    EXPECT_TRUE(IsReplayOf(waiter, first)) << waiter.Describe();
  }
  EXPECT_EQ(upstream().Count(key), 1u);
  EXPECT_LT(waited, 5s) << "woken by the NOTIFY, not by the wait time-out";
}

TEST_F(PostgresGatewaysTest, GatewayKilledAndRestartedReplaysCompletedKeys) {
  struct Answered {
    std::string body;
    HttpResponse response;
  };
  std::map<std::string, Answered> answered;
  for (int i = 0; i < 20; ++i) {
    const std::string key = UniqueKey("before-kill");
    const std::string body = PaymentBody(100 + i);
    HttpResponse r = Fetch(a().port(), KeyedPost("/payments", key, body));
    ASSERT_EQ(r.status, 201) << r.Describe();
    answered.emplace(key, Answered{body, std::move(r)});
  }
  a().Kill();  // SIGKILL: no drain, no goodbye to PostgreSQL
  std::string error;
  ASSERT_TRUE(a().Restart(error)) << error;
  for (const auto& [key, first] : answered) {
    // Through the restarted gateway and through the other one.
    for (Gateway* gateway : {&a(), &b()}) {
      HttpResponse replay =
          Fetch(gateway->port(), KeyedPost("/payments", key, first.body));
      EXPECT_TRUE(IsReplayOf(replay, first.response)) << replay.Describe();
    }
    EXPECT_EQ(upstream().Count(key), 1u) << key;
  }
}

TEST_F(PostgresGatewaysTest, PostgresRestartedUnderLoadGives503ThenRecovers) {
  std::atomic<bool> stop{false};
  std::atomic<int> created{0}, unavailable{0}, other{0};
  std::vector<std::string> all_keys;
  std::mutex mutex;
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      for (int i = 0; i < 5000 && !stop.load(); ++i) {
        const std::string key = UniqueKey("load-" + std::to_string(t));
        const uint16_t port = ((i + t) % 2 == 0 ? a() : b()).port();
        HttpResponse r = Fetch(port, KeyedPost("/payments", key, PaymentBody()), 15s);
        std::lock_guard lock(mutex);
        all_keys.push_back(key);
        if (r.status == 201) {
          created.fetch_add(1);
        } else if (r.status == 503) {
          unavailable.fetch_add(1);
          EXPECT_TRUE(IsProblem(r, 503)) << r.Describe();
          EXPECT_TRUE(r.HasHeader("Retry-After")) << r.Describe();
        } else {
          other.fetch_add(1);
          ADD_FAILURE() << r.Describe();
        }
      }
    });
  }
  ASSERT_TRUE(WaitUntil([&] { return created.load() > 40; }, 20s));
  ASSERT_TRUE(postgres_->Stop().ok());
  const auto stopped_at = SteadyClock::now();
  ASSERT_TRUE(WaitUntil([&] { return unavailable.load() > 40; }, 20s));
  EXPECT_LT(SteadyClock::now() - stopped_at, 10s);

  ASSERT_TRUE(postgres_->Restart().ok());
  const int created_before = created.load();
  EXPECT_TRUE(WaitUntil([&] { return created.load() > created_before + 40; }, 20s))
      << "the gateways did not recover after PostgreSQL came back";
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_EQ(other.load(), 0);

  // No key ran twice, and every execution ran under a lease (a fence).
  std::vector<std::string> keys;
  {
    std::lock_guard lock(mutex);
    keys = all_keys;
  }
  size_t executed = 0;
  for (const std::string& key : keys) {
    const uint64_t count = upstream().Count(key);
    EXPECT_LE(count, 1u) << "duplicate execution of " << key;
    if (count == 0) continue;
    ++executed;
    auto seen = upstream().Last(key);
    ASSERT_TRUE(seen.has_value()) << key;
    EXPECT_TRUE(seen->Header("Idempotency-Fence").has_value())
        << "unprotected execution of " << key << ": " << seen->Describe();
  }
  EXPECT_GE(executed, static_cast<size_t>(created.load()));
  EXPECT_GT(unavailable.load(), 0);
}

TEST_F(PostgresGatewaysTest, GatewaysReapExpiredRowsAndCountThem) {
  const auto reaped = [] {
    return MetricOf(a().admin_port(), "idem_store_rows_reaped_total") +
           MetricOf(b().admin_port(), "idem_store_rows_reaped_total");
  };
  const double before = reaped();
  ASSERT_GE(before, 0) << "idem_store_rows_reaped_total is not on /metrics";
  ASSERT_TRUE(postgres_->Query("e2e", InsertRecordsSql("reap-expired", 25, false)).ok());
  ASSERT_TRUE(postgres_->Query("e2e", InsertRecordsSql("reap-live", 5, true)).ok());
  // No request and no `idem gc`: the gateways' own sweep removes them.
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto left = postgres_->Query("e2e", CountRecordsSql("reap-expired"));
        return left.ok() && *left == "0";
      },
      20s));
  EXPECT_GE(reaped() - before, 25);
  EXPECT_EQ(*postgres_->Query("e2e", CountRecordsSql("reap-live")), "5");
  EXPECT_GE(MetricOf(a().admin_port(), "idem_store_connections_ready"), 1);
}

TEST_F(PostgresGatewaysTest, MigrateAndGcOnTheCommandLine) {
  ASSERT_TRUE(postgres_->CreateDatabase("cli").ok());
  const std::string uri = postgres_->Uri("cli");

  CliRun status = RunIdem({"migrate", "--store", uri, "--status"});
  EXPECT_EQ(status.status.code, 1) << status.output;
  EXPECT_NE(status.output.find("schema version 0"), std::string::npos) << status.output;
  // Without the schema, a gateway's store (auto_migrate off) refuses to open.
  CliRun gc_refused = RunIdem({"gc", "--store", uri});
  EXPECT_FALSE(gc_refused.status.success()) << gc_refused.output;
  EXPECT_NE(gc_refused.output.find("idem migrate"), std::string::npos)
      << gc_refused.output;

  CliRun migrated = RunIdem({"migrate", "--store", uri});
  EXPECT_TRUE(migrated.status.success()) << migrated.output;
  EXPECT_NE(migrated.output.find("schema migrated from version 0 to"), std::string::npos)
      << migrated.output;
  // The URI `idem serve --store` takes, idem's own options included.
  const std::string with_options =
      uri + (uri.find('?') == std::string::npos ? "?" : "&") + "sync_leases=false&pool_size=2";
  CliRun again = RunIdem({"migrate", "--store", with_options});
  EXPECT_TRUE(again.status.success()) << again.output;
  EXPECT_NE(again.output.find("schema already at version"), std::string::npos)
      << again.output;
  status = RunIdem({"migrate", "--store", uri, "--status"});
  EXPECT_TRUE(status.status.success()) << status.output;

  ASSERT_TRUE(postgres_->Query("cli", InsertRecordsSql("gc-expired", 1200, false)).ok());
  ASSERT_TRUE(postgres_->Query("cli", InsertRecordsSql("gc-live", 3, true)).ok());
  CliRun gc = RunIdem({"gc", "--store", with_options, "--batch", "500"});
  EXPECT_TRUE(gc.status.success()) << gc.output;
  EXPECT_NE(gc.output.find("removed 1200 expired records"), std::string::npos)
      << gc.output;
  EXPECT_EQ(*postgres_->Query("cli", CountRecordsSql("gc-expired")), "0");
  EXPECT_EQ(*postgres_->Query("cli", CountRecordsSql("gc-live")), "3");
}

}  // namespace
}  // namespace idem::e2e
