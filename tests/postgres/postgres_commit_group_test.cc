// Commit groups: the durable writes a commit connection takes together share
// one transaction. A member that fails rolls the group back; the others are
// run again and stored, the failing one gets its own error. A failure at
// commit (after every statement ran) fails the whole group and leaves the
// pipeline in step.
//
// The group is made deterministic: with one io thread, Completes submitted
// from inside a store callback all queue up before the commit connection
// can run, so it takes them as one group.
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "idem/postgres_store.h"
#include "postgres/postgres_test_env.h"

namespace idem::testing {
namespace {

using namespace std::chrono_literals;

// Raises for `key` when it is being completed: at the statement, or (when
// `deferred`) only at commit.
std::string PoisonSql(const std::string& key, bool deferred) {
  const std::string function =
      "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "IF NEW.state = 2 AND NEW.key = '" +
      key + "'::bytea THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$;";
  if (deferred) {
    return function +
           "CREATE CONSTRAINT TRIGGER poison AFTER UPDATE ON idem_records "
           "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION poison();";
  }
  return function +
         "CREATE TRIGGER poison BEFORE UPDATE ON idem_records "
         "FOR EACH ROW EXECUTE FUNCTION poison();";
}

class PostgresCommitGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uri_ = FreshDatabase();
    PostgresStoreOptions options = TestStoreOptions(uri_);
    options.pool_size = 2;  // one lease and one commit connection
    options.io_threads = 1;
    auto store = NewPostgresStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *store;
    for (const std::string& key : keys_) {
      ASSERT_EQ(BeginSync(*store_, {key, "fp", "owner", 60'000, 60'000})->outcome,
                BeginOutcome::kAcquired);
    }
  }

  // Completes every key at once, from a store callback; their statuses.
  std::map<std::string, Status> CompleteAllAtOnce() {
    std::mutex mutex;
    std::condition_variable cv;
    std::map<std::string, Status> statuses;
    Store& store = *store_;
    store.Ping([&](Status) {
      for (const std::string& key : keys_) {
        StoredResponse response;
        response.status = 201;
        response.body = "body of " + key;
        store.Complete({key, "owner", response, 60'000}, [&, key](Status status) {
          std::lock_guard lock(mutex);
          statuses[key] = std::move(status);
          cv.notify_all();
        });
      }
    });
    std::unique_lock lock(mutex);
    EXPECT_TRUE(cv.wait_for(lock, 30s, [&] { return statuses.size() == keys_.size(); }));
    return statuses;
  }

  PostgresStoreStats Stats() const { return *GetPostgresStoreStats(*store_); }

  RecordState StateOf(const std::string& key) {
    auto record = GetSync(*store_, key);
    EXPECT_TRUE(record.ok()) << key << ": " << record.status();
    return record.ok() ? (*record)->state : RecordState::kInFlight;
  }

  std::string uri_;
  std::shared_ptr<Store> store_;
  const std::vector<std::string> keys_ = {"a", "b", "c", "poison", "d", "e", "f", "g"};
};

TEST_F(PostgresCommitGroupTest, ConcurrentCompletesShareOneTransaction) {
  const PostgresStoreStats before = Stats();
  for (const auto& [key, status] : CompleteAllAtOnce()) {
    EXPECT_TRUE(status.ok()) << key << ": " << status;
  }
  const PostgresStoreStats after = Stats();
  EXPECT_EQ(after.durable_writes - before.durable_writes, keys_.size());
  EXPECT_EQ(after.commit_groups - before.commit_groups, 1u);
  EXPECT_EQ(after.group_rollbacks, 0u);
  for (const std::string& key : keys_) EXPECT_EQ(StateOf(key), RecordState::kCompleted);
}

TEST_F(PostgresCommitGroupTest, AFailingMemberRollsBackTheOthersWhichRunAgain) {
  ASSERT_TRUE(RunSql(uri_, PoisonSql("poison", /*deferred=*/false)).ok());
  const auto statuses = CompleteAllAtOnce();
  for (const auto& [key, status] : statuses) {
    if (key == "poison") {
      EXPECT_EQ(status.code(), StatusCode::kInternal) << status;
      EXPECT_NE(status.message().find("poisoned"), std::string::npos) << status;
    } else {
      EXPECT_TRUE(status.ok()) << key << ": " << status;
    }
  }
  // Every other member was rolled back once with the poisoned one, then
  // stored by a second group.
  EXPECT_EQ(Stats().group_rollbacks, keys_.size() - 1);
  for (const std::string& key : keys_) {
    EXPECT_EQ(StateOf(key),
              key == "poison" ? RecordState::kInFlight : RecordState::kCompleted)
        << key;
  }
}

TEST_F(PostgresCommitGroupTest, AFailedCommitFailsTheGroupAndTheConnectionGoesOn) {
  ASSERT_TRUE(RunSql(uri_, PoisonSql("poison", /*deferred=*/true)).ok());
  const PostgresStoreStats before = Stats();
  for (const auto& [key, status] : CompleteAllAtOnce()) {
    EXPECT_EQ(status.code(), StatusCode::kInternal) << key << ": " << status;
  }
  EXPECT_EQ(Stats().commit_groups - before.commit_groups, 1u);
  // Nothing of the group was committed.
  for (const std::string& key : keys_) EXPECT_EQ(StateOf(key), RecordState::kInFlight);
  // The same connection carries on, results and commits in step.
  EXPECT_EQ(Stats().reconnects, 0u);
  ASSERT_TRUE(RunSql(uri_, "DROP TRIGGER poison ON idem_records").ok());
  for (const auto& [key, status] : CompleteAllAtOnce()) {
    EXPECT_TRUE(status.ok()) << key << ": " << status;
  }
  for (const std::string& key : keys_) EXPECT_EQ(StateOf(key), RecordState::kCompleted);
}

}  // namespace
}  // namespace idem::testing
