// postgresql:// store URIs: idem's own query options are taken out and
// applied, libpq's are left for libpq, and both reach a real server.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "idem/open_store.h"
#include "idem/postgres_store.h"
#include "postgres/postgres_test_env.h"

namespace idem::testing {
namespace {

using namespace std::chrono_literals;

TEST(PostgresUri, WithoutAQueryEverythingIsLibpqs) {
  auto parsed = ParsePostgresUri("postgresql://u:p@127.0.0.1:5432/db");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->conninfo, "postgresql://u:p@127.0.0.1:5432/db");
  const PostgresStoreOptions defaults;
  EXPECT_EQ(parsed->sync_leases, defaults.sync_leases);
  EXPECT_EQ(parsed->pool_size, defaults.pool_size);
  EXPECT_EQ(parsed->cache_completed, defaults.cache_completed);
  EXPECT_EQ(parsed->cache_max_bytes, defaults.cache_max_bytes);
}

TEST(PostgresUri, IdemsOptionsAreTakenOutAndLibpqsKeptInOrder) {
  auto parsed = ParsePostgresUri(
      "postgres://h/db?sslmode=require&sync_leases=false&pool_size=3"
      "&connect_timeout=4&cache_completed=false&cache_max_bytes=2MiB");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->conninfo, "postgres://h/db?sslmode=require&connect_timeout=4");
  EXPECT_FALSE(parsed->sync_leases);
  EXPECT_EQ(parsed->pool_size, 3u);
  EXPECT_FALSE(parsed->cache_completed);
  EXPECT_EQ(parsed->cache_max_bytes, size_t{2} << 20);

  auto only_idem = ParsePostgresUri("postgresql://h/db?sync_leases=true&pool_size=1");
  ASSERT_TRUE(only_idem.ok()) << only_idem.status();
  EXPECT_EQ(only_idem->conninfo, "postgresql://h/db");
  EXPECT_TRUE(only_idem->sync_leases);
  EXPECT_EQ(only_idem->pool_size, 1u);
}

TEST(PostgresUri, BadValuesOfIdemsOptionsAreRefused) {
  for (const char* uri : {
           "postgresql://h/db?sync_leases=no",
           "postgresql://h/db?pool_size=0",
           "postgresql://h/db?pool_size=1001",
           "postgresql://h/db?pool_size=two",
           "postgresql://h/db?cache_completed=",
           "postgresql://h/db?cache_max_bytes=1KiB",
           "postgresql://h/db?cache_max_bytes=lots",
           // 2^34 GiB is 2^64 bytes: one past what a size holds.
           "postgresql://h/db?cache_max_bytes=17179869184GiB",
           "postgresql://h/db?cache_max_bytes=99999999999999999999",
           "postgresql://h/db?sslmode",
       }) {
    auto parsed = ParsePostgresUri(uri);
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << uri;
    // The same URI keeps a gateway from opening its store.
    EXPECT_EQ(OpenStore(uri).status().code(), StatusCode::kInvalidArgument) << uri;
  }
  EXPECT_EQ(ParsePostgresUri("redis://h:1").status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ParsePostgresUri("postgresql://h/db?pool_size=0").status().message().find(
                "pool_size must be a whole number from 1 to 1000"),
            std::string::npos);
}

int64_t Metric(const Store& store, const std::string& name) {
  for (const StoreMetric& metric : store.Metrics()) {
    if (metric.name == name) return static_cast<int64_t>(metric.value);
  }
  ADD_FAILURE() << "no metric " << name;
  return -1;
}

// Through OpenStore, as `idem serve --store` opens it: the pool has the
// asked size and leases skip the WAL flush.
TEST(PostgresUri, OptionsReachAStoreOnARealServer) {
  const std::string uri = FreshDatabase();
  const std::string database = uri.substr(uri.rfind('/') + 1);
  StoreOpenOptions open;
  open.auto_migrate = true;
  const std::string separator = uri.find('?') == std::string::npos ? "?" : "&";
  {
    auto store = OpenStore(uri + separator + "sync_leases=false&pool_size=2", open);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE(BeginSync(**store, {"uri-1", "fp", "o", 10'000, 60'000}).ok());
    EXPECT_EQ(Metric(**store, "durable_writes_total"), 0) << "the lease waited for a flush";
    // Two pool connections and the listener.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::string count;
    while (std::chrono::steady_clock::now() < deadline) {
      auto counted = RunSql(uri, "SELECT count(*) FROM pg_stat_activity WHERE datname = '" +
                                     database + "' AND pid <> pg_backend_pid()");
      count = counted.ok() ? *counted : counted.status().ToString();
      if (count == "3") break;
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(count, "3");
  }
  {
    // The default: the lease is one durable write.
    auto store = OpenStore(uri, open);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE(BeginSync(**store, {"uri-2", "fp", "o", 10'000, 60'000}).ok());
    EXPECT_EQ(Metric(**store, "durable_writes_total"), 1);
  }
  // A query option neither idem's nor libpq's: libpq refuses it when the
  // store connects, and the error says which.
  auto unknown = OpenStore(uri + separator + "no_such_option=1", open);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("no_such_option"), std::string::npos)
      << unknown.status();
}

}  // namespace
}  // namespace idem::testing
