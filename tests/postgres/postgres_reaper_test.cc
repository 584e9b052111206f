// The reaper: Sweep deletes exactly the expired rows (completed past their
// ttl, abandoned in-flight records past theirs) in small batches, leaves
// live ones, and counts what it removed (also among the store's metrics);
// the optional periodic sweep runs inside the store.
#include <gtest/gtest.h>

#include <thread>

#include "idem/postgres_store.h"
#include "postgres/postgres_test_env.h"

namespace idem::testing {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kLease = 10'000;

void BeginAndComplete(Store& store, const std::string& key, int64_t ttl) {
  auto begun = BeginSync(store, BeginRequest{key, "fp", "owner", kLease, ttl});
  ASSERT_TRUE(begun.ok()) << begun.status();
  ASSERT_EQ(begun->outcome, BeginOutcome::kAcquired);
  StoredResponse response;
  response.status = 200;
  response.body = "body of " + key;
  ASSERT_TRUE(CompleteSync(store, {key, "owner", response, ttl}).ok());
}

// The value of one of the store's own metrics (Store::Metrics), -1 when it
// is missing.
double MetricValue(const Store& store, const std::string& name) {
  for (const StoreMetric& metric : store.Metrics()) {
    if (metric.name == name) return metric.value;
  }
  return -1;
}

int64_t CountRows(const std::string& uri, const std::string& where = "true") {
  auto count = RunSql(uri, "SELECT count(*) FROM idem_records WHERE " + where);
  EXPECT_TRUE(count.ok()) << count.status();
  return count.ok() ? std::stoll(*count) : -1;
}

TEST(PostgresReaper, RemovesExactlyTheExpiredRowsInBatches) {
  const std::string uri = FreshDatabase();
  auto clock = std::make_shared<ManualClock>();
  PostgresStoreOptions options = TestStoreOptions(uri, clock);
  options.sweep_batch = 7;
  auto opened = NewPostgresStore(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Store& store = **opened;

  for (int i = 0; i < 40; ++i)
    BeginAndComplete(store, "short-" + std::to_string(i), 1'000);
  for (int i = 0; i < 25; ++i)
    BeginAndComplete(store, "long-" + std::to_string(i), 3'600'000);
  // Abandoned leases: in flight, expire at max(lease, ttl) = 20 s.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(BeginSync(store, BeginRequest{"abandoned-" + std::to_string(i), "fp", "o",
                                              kLease, 20'000})
                    .ok());
  }
  // A live lease that must survive.
  ASSERT_TRUE(
      BeginSync(store, BeginRequest{"working", "fp", "o", 600'000, 600'000}).ok());
  ASSERT_EQ(CountRows(uri), 71);

  clock->AdvanceMs(30'000);
  auto swept = SweepSync(store, 1'000);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(*swept, 45u);
  EXPECT_EQ(CountRows(uri), 26);
  EXPECT_EQ(CountRows(uri,
                      "position('short'::bytea in key) > 0 OR "
                      "position('abandoned'::bytea in key) > 0"),
            0);
  for (int i = 0; i < 25; ++i) {
    EXPECT_TRUE(GetSync(store, "long-" + std::to_string(i)).ok());
  }
  EXPECT_TRUE(GetSync(store, "working").ok());

  auto again = SweepSync(store, 1'000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
  auto stats = GetPostgresStoreStats(store);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->rows_reaped, 45u);
  // The same counter for /metrics (idem_store_rows_reaped_total).
  EXPECT_EQ(MetricValue(store, "rows_reaped_total"), 45);
}

TEST(PostgresReaper, HonoursTheLimit) {
  const std::string uri = FreshDatabase();
  auto clock = std::make_shared<ManualClock>();
  PostgresStoreOptions options = TestStoreOptions(uri, clock);
  options.sweep_batch = 4;
  auto opened = NewPostgresStore(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  for (int i = 0; i < 20; ++i) BeginAndComplete(**opened, "k" + std::to_string(i), 1'000);
  clock->AdvanceMs(kLease + 1);
  auto swept = SweepSync(**opened, 10);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 10u);
  EXPECT_EQ(CountRows(uri), 10);
  swept = SweepSync(**opened, 100);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 10u);
  EXPECT_EQ(CountRows(uri), 0);
}

TEST(PostgresReaper, TwoReapersNeverDeleteTheSameRowTwice) {
  const std::string uri = FreshDatabase();
  auto clock = std::make_shared<ManualClock>();
  PostgresStoreOptions options = TestStoreOptions(uri, clock);
  options.sweep_batch = 5;
  auto a = NewPostgresStore(options);
  auto b = NewPostgresStore(options);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < 200; ++i) BeginAndComplete(**a, "k" + std::to_string(i), 1'000);
  clock->AdvanceMs(kLease + 1);
  Result<size_t> from_a = size_t{0}, from_b = size_t{0};
  std::thread ta([&] { from_a = SweepSync(**a, 1'000); });
  std::thread tb([&] { from_b = SweepSync(**b, 1'000); });
  ta.join();
  tb.join();
  ASSERT_TRUE(from_a.ok() && from_b.ok());
  EXPECT_EQ(*from_a + *from_b, 200u);
  EXPECT_EQ(CountRows(uri), 0);
}

TEST(PostgresReaper, PeriodicSweepInsideTheStore) {
  const std::string uri = FreshDatabase();
  auto clock = std::make_shared<ManualClock>();
  PostgresStoreOptions options = TestStoreOptions(uri, clock);
  options.sweep_interval = 20ms;
  options.sweep_batch = 3;
  auto opened = NewPostgresStore(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  for (int i = 0; i < 10; ++i) BeginAndComplete(**opened, "k" + std::to_string(i), 1'000);
  BeginAndComplete(**opened, "live", 3'600'000);
  clock->AdvanceMs(kLease + 1);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (CountRows(uri) > 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(CountRows(uri), 1);
  EXPECT_TRUE(GetSync(**opened, "live").ok());
  EXPECT_EQ(GetPostgresStoreStats(**opened)->rows_reaped, 10u);
  EXPECT_EQ(MetricValue(**opened, "rows_reaped_total"), 10);
}

TEST(PostgresReaper, MetricsReportTheStoresCounters) {
  const std::string uri = FreshDatabase();
  auto clock = std::make_shared<ManualClock>();
  auto opened = NewPostgresStore(TestStoreOptions(uri, clock));
  ASSERT_TRUE(opened.ok()) << opened.status();
  Store& store = **opened;
  EXPECT_EQ(MetricValue(store, "rows_reaped_total"), 0);
  BeginAndComplete(store, "k", 1'000);
  auto replay = BeginSync(store, BeginRequest{"k", "fp", "again", kLease, 1'000});
  ASSERT_EQ(replay->outcome, BeginOutcome::kCompleted);
  EXPECT_EQ(MetricValue(store, "cache_hits_total"), 1);
  // Begin and Complete, one after the other (leases are durable by default).
  EXPECT_EQ(MetricValue(store, "durable_writes_total"), 2);
  EXPECT_EQ(MetricValue(store, "commit_groups_total"), 2);
  EXPECT_GE(MetricValue(store, "connections_ready"), 1);  // some may still connect
  EXPECT_LE(MetricValue(store, "connections_ready"),
            static_cast<double>(TestStoreOptions(uri).pool_size));
  clock->AdvanceMs(kLease + 1);
  ASSERT_EQ(*SweepSync(store, 100), 1u);
  EXPECT_EQ(MetricValue(store, "rows_reaped_total"), 1);
  // Names are [a-z_]+, counters end in _total, every one has a help line.
  for (const StoreMetric& metric : store.Metrics()) {
    EXPECT_EQ(metric.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"),
              std::string::npos)
        << metric.name;
    const bool total = metric.name.size() > 6 &&
                       metric.name.compare(metric.name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(total, metric.kind == StoreMetric::Kind::kCounter) << metric.name;
    EXPECT_FALSE(metric.help.empty()) << metric.name;
  }
}

}  // namespace
}  // namespace idem::testing
