// Which writes wait for the WAL flush: results (Complete), recovery points
// (Checkpoint) and admin deletes always do; leases (Begin, takeover,
// Extend, Release) commit with synchronous_commit = off unless
// sync_leases is set; a waiter's watch mark and the reaper never wait. A
// trigger records the setting each write's transaction would commit with
// (the setting is read at commit, after the statement and its AFTER
// triggers), so a write that waits when it should not, or the reverse,
// fails here.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "idem/postgres_store.h"
#include "postgres/postgres_test_env.h"

namespace idem::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kCommitLog = R"sql(
CREATE TABLE commit_log (n bigserial, op text, state smallint, sync text);
CREATE FUNCTION log_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO commit_log (op, state, sync) VALUES (
    TG_OP, CASE WHEN TG_OP = 'DELETE' THEN OLD.state ELSE NEW.state END,
    current_setting('synchronous_commit'));
  RETURN NULL;
END $$;
CREATE TRIGGER log_commit AFTER INSERT OR UPDATE OR DELETE ON idem_records
  FOR EACH ROW EXECUTE FUNCTION log_commit();
)sql";

// "OP:state:sync" for every write since the log was last read, in order.
std::vector<std::string> TakeLog(const std::string& uri) {
  auto rows = RunSql(uri,
                     "WITH taken AS (DELETE FROM commit_log RETURNING *) "
                     "SELECT coalesce(string_agg(op || ':' || state || ':' || sync, "
                     "',' ORDER BY n), '') FROM taken");
  EXPECT_TRUE(rows.ok()) << rows.status();
  std::vector<std::string> out;
  if (!rows.ok() || rows->empty()) return out;
  size_t start = 0;
  for (;;) {
    const size_t comma = rows->find(',', start);
    out.push_back(rows->substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

using Log = std::vector<std::string>;

// The log once it holds at least `n` writes (a write made after its caller
// was answered, like the watch mark of a waiter that timed out), or what it
// holds after 10 s.
Log TakeLogOf(const std::string& uri, size_t n) {
  Log log;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (log.size() < n && std::chrono::steady_clock::now() < deadline) {
    for (auto& entry : TakeLog(uri)) log.push_back(std::move(entry));
    if (log.size() < n) std::this_thread::sleep_for(10ms);
  }
  return log;
}

class PostgresCommitTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    uri_ = FreshDatabase();
    ASSERT_TRUE(MigratePostgres(TestStoreOptions(uri_)).ok());
    ASSERT_TRUE(RunSql(uri_, kCommitLog).ok());
    PostgresStoreOptions options = TestStoreOptions(uri_, clock_);
    options.sync_leases = GetParam();
    auto store = NewPostgresStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *store;
  }

  // What a lease write commits with.
  std::string Lease() const { return GetParam() ? "on" : "off"; }

  std::string uri_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::shared_ptr<Store> store_;
};

TEST_P(PostgresCommitTest, OnlyLeasesSkipTheFlush) {
  Store& store = *store_;
  ASSERT_EQ(BeginSync(store, {"k", "fp", "a", 1'000, 60'000})->outcome,
            BeginOutcome::kAcquired);
  EXPECT_EQ(TakeLog(uri_), Log{"INSERT:1:" + Lease()});

  ASSERT_TRUE(ExtendSync(store, "k", "a", 2'000).ok());
  EXPECT_EQ(TakeLog(uri_), Log{"UPDATE:1:" + Lease()});

  ASSERT_TRUE(CheckpointSync(store, {"k", "a", {"phase", "state"}}).ok());
  EXPECT_EQ(TakeLog(uri_), Log{"UPDATE:1:on"});

  // A waiter marks the in-flight row watched (its deadline passes at once,
  // maybe before the mark is written).
  EXPECT_EQ(WaitForCompletionSync(store, "k", 1ms).status().code(),
            StatusCode::kDeadlineExceeded);
  EXPECT_EQ(TakeLogOf(uri_, 1), Log{"UPDATE:1:off"});

  // The lease lapses; another owner takes it over (INSERT ... ON CONFLICT
  // DO UPDATE) and completes.
  clock_->AdvanceMs(3'000);
  auto taken = BeginSync(store, {"k", "fp", "b", 1'000, 60'000});
  ASSERT_EQ(taken->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(taken->record->fence, 2u);
  EXPECT_EQ(TakeLog(uri_), Log{"UPDATE:1:" + Lease()});

  StoredResponse response;
  response.status = 201;
  response.body = "done";
  ASSERT_TRUE(CompleteSync(store, {"k", "b", response, 60'000}).ok());
  EXPECT_EQ(TakeLog(uri_), Log{"UPDATE:2:on"});

  ASSERT_TRUE(DeleteSync(store, "k").ok());
  EXPECT_EQ(TakeLog(uri_), Log{"DELETE:2:on"});

  ASSERT_EQ(BeginSync(store, {"r", "fp", "a", 1'000, 60'000})->outcome,
            BeginOutcome::kAcquired);
  ASSERT_TRUE(ReleaseSync(store, "r", "a").ok());
  EXPECT_EQ(TakeLog(uri_), (Log{"INSERT:1:" + Lease(), "DELETE:1:" + Lease()}));

  // The reaper.
  ASSERT_EQ(BeginSync(store, {"old", "fp", "a", 1'000, 1'000})->outcome,
            BeginOutcome::kAcquired);
  (void)TakeLog(uri_);
  clock_->AdvanceMs(2'000);
  ASSERT_EQ(*SweepSync(store, 10), 1u);
  EXPECT_EQ(TakeLog(uri_), Log{"DELETE:1:off"});
}

INSTANTIATE_TEST_SUITE_P(SyncLeases, PostgresCommitTest, ::testing::Bool(),
                         [](const auto& p) {
                           return std::string(p.param ? "sync_leases" : "async_leases");
                         });

}  // namespace
}  // namespace idem::testing
