// Races between store instances (as between gateways): Begin on one key
// from two stores at once yields exactly one Acquired, never an error; a
// lapsed lease is taken over by exactly one racer, with the next fence.
// Races the server reports (serialization failure, deadlock, unique
// violation) are run again, and answered as kConflict (409), never as an
// internal error (500), when they persist.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "idem/postgres_store.h"
#include "postgres/postgres_test_env.h"

namespace idem::testing {
namespace {

struct Tally {
  std::atomic<int> acquired{0};
  std::atomic<int> in_flight{0};
  std::atomic<int> errors{0};
  std::atomic<uint64_t> fence{0};
};

void Race(std::vector<std::shared_ptr<Store>>& stores, const std::string& key,
          int threads_per_store, Tally& tally) {
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (size_t s = 0; s < stores.size(); ++s) {
    for (int t = 0; t < threads_per_store; ++t) {
      threads.emplace_back([&, s, t] {
        while (!go.load()) std::this_thread::yield();
        const std::string owner = "s" + std::to_string(s) + "t" + std::to_string(t);
        auto r = BeginSync(*stores[s], {key, "fp", owner, 10'000, 60'000});
        if (!r.ok()) {
          tally.errors.fetch_add(1);
          ADD_FAILURE() << r.status();
        } else if (r->outcome == BeginOutcome::kAcquired) {
          tally.acquired.fetch_add(1);
          tally.fence.store(r->record->fence);
        } else if (r->outcome == BeginOutcome::kInFlight) {
          tally.in_flight.fetch_add(1);
        }
      });
    }
  }
  go = true;
  for (auto& t : threads) t.join();
}

class PostgresRaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_ = std::make_shared<ManualClock>();
    const std::string uri = FreshDatabase();
    for (int i = 0; i < 2; ++i) {
      auto store = NewPostgresStore(TestStoreOptions(uri, clock_));
      ASSERT_TRUE(store.ok()) << store.status();
      stores_.push_back(*store);
    }
  }

  std::shared_ptr<ManualClock> clock_;
  std::vector<std::shared_ptr<Store>> stores_;
};

TEST_F(PostgresRaceTest, TwoStoresRacingOnNewKeysGetExactlyOneAcquiredEach) {
  for (int round = 0; round < 20; ++round) {
    Tally tally;
    Race(stores_, "new-" + std::to_string(round), 8, tally);
    EXPECT_EQ(tally.acquired.load(), 1) << "round " << round;
    EXPECT_EQ(tally.in_flight.load(), 15) << "round " << round;
    EXPECT_EQ(tally.errors.load(), 0);
    EXPECT_EQ(tally.fence.load(), 1u);
  }
}

TEST_F(PostgresRaceTest, ALapsedLeaseIsTakenOverByExactlyOneRacer) {
  const std::string key = "lapsed";
  ASSERT_EQ(BeginSync(*stores_[0], {key, "fp", "first", 10'000, 60'000})->outcome,
            BeginOutcome::kAcquired);
  for (uint64_t fence = 2; fence <= 6; ++fence) {
    clock_->AdvanceMs(10'000);
    Tally tally;
    Race(stores_, key, 8, tally);
    EXPECT_EQ(tally.acquired.load(), 1);
    EXPECT_EQ(tally.errors.load(), 0);
    EXPECT_EQ(tally.fence.load(), fence);
  }
}

TEST_F(PostgresRaceTest, AnExpiredRecordIsReplacedByExactlyOneRacer) {
  const std::string key = "expired";
  ASSERT_EQ(BeginSync(*stores_[0], {key, "fp", "first", 1'000, 1'000})->outcome,
            BeginOutcome::kAcquired);
  StoredResponse response;
  response.status = 200;
  ASSERT_TRUE(CompleteSync(*stores_[0], {key, "first", response, 5'000}).ok());
  clock_->AdvanceMs(5'000);
  Tally tally;
  Race(stores_, key, 8, tally);
  EXPECT_EQ(tally.acquired.load(), 1);
  EXPECT_EQ(tally.errors.load(), 0);
  EXPECT_EQ(tally.fence.load(), 1u);  // a new record, not a takeover
}

TEST_F(PostgresRaceTest, RacersAndReleasersNeverSeeAnError) {
  // Owners release as soon as they acquire while others keep trying: every
  // path through the Begin statement's race handling, no error surfaces.
  std::atomic<int> errors{0};
  std::atomic<int> acquired{0};
  std::vector<std::thread> threads;
  for (size_t s = 0; s < stores_.size(); ++s) {
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, s, t] {
        for (int i = 0; i < 50; ++i) {
          const std::string owner =
              "s" + std::to_string(s) + "t" + std::to_string(t) + "-" + std::to_string(i);
          auto r = BeginSync(*stores_[s], {"churn", "fp", owner, 10'000, 60'000});
          if (!r.ok()) {
            errors.fetch_add(1);
            ADD_FAILURE() << "begin: " << r.status();
            continue;
          }
          if (r->outcome != BeginOutcome::kAcquired) continue;
          acquired.fetch_add(1);
          const Status released = ReleaseSync(*stores_[s], "churn", owner);
          if (!released.ok()) {
            errors.fetch_add(1);
            ADD_FAILURE() << "release: " << released;
          }
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(acquired.load(), 0);
}

// A trigger that makes a write fail with `sqlstate`, as a race the server
// detected would, whenever `condition` holds.
std::string RaceTriggerSql(const std::string& sqlstate, const std::string& condition) {
  return "CREATE OR REPLACE FUNCTION race() RETURNS trigger LANGUAGE plpgsql AS $$ "
         "BEGIN IF " +
         condition + " THEN RAISE EXCEPTION 'lost a race' USING ERRCODE = '" + sqlstate +
         "'; END IF; RETURN NEW; END $$;"
         "DROP TRIGGER IF EXISTS race ON idem_records;"
         "CREATE TRIGGER race BEFORE INSERT OR UPDATE ON idem_records "
         "FOR EACH ROW EXECUTE FUNCTION race();";
}

class PostgresReportedRaceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    uri_ = FreshDatabase();
    auto store = NewPostgresStore(TestStoreOptions(uri_));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *store;
  }

  std::string uri_;
  std::shared_ptr<Store> store_;
};

TEST_P(PostgresReportedRaceTest, ABriefRaceIsRunAgain) {
  // A sequence counts the attempts: it is not rolled back with them.
  ASSERT_TRUE(RunSql(uri_, "CREATE SEQUENCE attempts").ok());
  ASSERT_TRUE(RunSql(uri_, RaceTriggerSql(GetParam(), "nextval('attempts') <= 2")).ok());
  auto begun = BeginSync(*store_, {"k", "fp", "owner", 10'000, 60'000});
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_EQ(begun->outcome, BeginOutcome::kAcquired);
  EXPECT_EQ(GetPostgresStoreStats(*store_)->begin_retries, 2u);

  ASSERT_TRUE(RunSql(uri_, "ALTER SEQUENCE attempts RESTART").ok());
  StoredResponse response;
  response.status = 200;
  EXPECT_TRUE(CompleteSync(*store_, {"k", "owner", response, 60'000}).ok());
  auto record = GetSync(*store_, "k");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ((*record)->state, RecordState::kCompleted);
}

TEST_P(PostgresReportedRaceTest, APersistentRaceIsAConflictNotAnInternalError) {
  ASSERT_TRUE(BeginSync(*store_, {"k", "fp", "owner", 10'000, 60'000}).ok());
  ASSERT_TRUE(RunSql(uri_, RaceTriggerSql(GetParam(), "true")).ok());
  // Each is answered 409 after its retries, never 500.
  auto begun = BeginSync(*store_, {"n", "fp", "owner", 10'000, 60'000});
  EXPECT_EQ(begun.status().code(), StatusCode::kConflict) << begun.status();
  StoredResponse response;
  response.status = 200;
  const Status completed = CompleteSync(*store_, {"k", "owner", response, 60'000});
  EXPECT_EQ(completed.code(), StatusCode::kConflict) << completed;
  const Status extended = ExtendSync(*store_, "k", "owner", 10'000).status();
  EXPECT_EQ(extended.code(), StatusCode::kConflict) << extended;
  const Status checkpointed = CheckpointSync(*store_, {"k", "owner", {"p", "s"}});
  EXPECT_EQ(checkpointed.code(), StatusCode::kConflict) << checkpointed;
  EXPECT_EQ(HttpStatusFor(StatusCode::kConflict), 409);
  // Nothing was written.
  auto record = GetSync(*store_, "k");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ((*record)->state, RecordState::kInFlight);
  EXPECT_TRUE((*record)->recovery.empty());
  EXPECT_EQ(GetSync(*store_, "n").status().code(), StatusCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(SqlState, PostgresReportedRaceTest,
                         ::testing::Values("40001", "40P01", "23505"), [](const auto& p) {
                           return p.param == "40001"
                                      ? std::string("serialization_failure")
                                  : p.param == "40P01" ? std::string("deadlock")
                                                       : std::string("unique_violation");
                         });

}  // namespace
}  // namespace idem::testing
