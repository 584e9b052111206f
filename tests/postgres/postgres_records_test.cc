// Records as PostgreSQL keeps them: any bytes in keys, owners and bodies
// (keys are bytea, not text), large bodies, every field read back by
// another store, and the row an operator sees with SQL.
#include <gtest/gtest.h>

#include "idem/postgres_store.h"
#include "postgres/postgres_test_env.h"

namespace idem::testing {
namespace {

TEST(PostgresRecords, AnyBytesAndLargeBodiesRoundTripThroughAnotherStore) {
  const std::string uri = FreshDatabase();
  auto clock = std::make_shared<ManualClock>();
  auto writer = NewPostgresStore(TestStoreOptions(uri, clock));
  PostgresStoreOptions reader_options = TestStoreOptions(uri, clock);
  reader_options.cache_completed = false;
  auto reader = NewPostgresStore(reader_options);
  ASSERT_TRUE(writer.ok() && reader.ok());

  static const char kKey[] = "tenant POST /p \0\xff\xfe not utf-8";
  const std::string key(kKey, sizeof(kKey) - 1);
  const std::string owner("owner\0\x80", 7);
  const std::string fingerprint(32, '\0');
  auto begun = BeginSync(**writer, {key, fingerprint, owner, 10'000, 60'000});
  ASSERT_TRUE(begun.ok()) << begun.status();
  ASSERT_EQ(begun->outcome, BeginOutcome::kAcquired);
  ASSERT_TRUE(CheckpointSync(
                  **writer,
                  {key, owner, {std::string("phase\0one", 9), std::string(5000, '\x01')}})
                  .ok());
  auto in_flight = GetSync(**reader, key);
  ASSERT_TRUE(in_flight.ok()) << in_flight.status();
  EXPECT_EQ((*in_flight)->key, key);
  EXPECT_EQ((*in_flight)->owner, owner);
  EXPECT_EQ((*in_flight)->fingerprint, fingerprint);
  EXPECT_EQ((*in_flight)->recovery.state, std::string(5000, '\x01'));

  StoredResponse response;
  response.status = 299;
  response.headers = {
      {"X-A", "1"}, {"x-a", std::string("\0\xff", 2)}, {"Set-Cookie", "a=b"}};
  response.body.resize(1 << 20);
  for (size_t i = 0; i < response.body.size(); ++i) {
    response.body[i] = static_cast<char>((i * 131) % 251);
  }
  ASSERT_TRUE(CompleteSync(**writer, {key, owner, response, 60'000}).ok());

  auto completed = GetSync(**reader, key);
  ASSERT_TRUE(completed.ok()) << completed.status();
  const Record& r = **completed;
  EXPECT_EQ(r.state, RecordState::kCompleted);
  EXPECT_EQ(r.response, response);
  EXPECT_TRUE(r.recovery.empty());
  EXPECT_EQ(r.fence, 1u);
  EXPECT_EQ(r.created_at_ms, clock->NowMs());
  EXPECT_EQ(r.expires_at_ms, clock->NowMs() + 60'000);
  EXPECT_EQ(r.lease_expires_at_ms, clock->NowMs() + 10'000);

  auto replay = BeginSync(**reader, {key, fingerprint, "other", 10'000, 60'000});
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->outcome, BeginOutcome::kCompleted);
  EXPECT_EQ(replay->record->response, response);
}

TEST(PostgresRecords, OperatorsCanReadRowsWithSql) {
  const std::string uri = FreshDatabase();
  auto clock = std::make_shared<ManualClock>(1'700'000'000'000);
  auto store = NewPostgresStore(TestStoreOptions(uri, clock));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(BeginSync(**store, {"t POST /p k1", "fp", "o", 10'000, 60'000}).ok());
  StoredResponse response;
  response.status = 201;
  response.body = "{\"id\":1}";
  ASSERT_TRUE(CompleteSync(**store, {"t POST /p k1", "o", response, 60'000}).ok());
  EXPECT_EQ(*RunSql(uri,
                    "SELECT convert_from(key, 'UTF8') || ' ' || state || ' ' || "
                    "response_status || ' ' || convert_from(response_body, 'UTF8') || "
                    "' ' || expires_at_ms FROM idem_records"),
            "t POST /p k1 2 201 {\"id\":1} 1700000060000");
}

TEST(PostgresRecords, TheCacheAnswersRepeatedReplays) {
  const std::string uri = FreshDatabase();
  auto clock = std::make_shared<ManualClock>();
  auto store = NewPostgresStore(TestStoreOptions(uri, clock));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(BeginSync(**store, {"k", "fp", "o", 10'000, 5'000}).ok());
  ASSERT_TRUE(
      CompleteSync(**store, {"k", "o", StoredResponse{200, {}, "x"}, 5'000}).ok());
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(BeginSync(**store, {"k", "fp", "r", 10'000, 5'000})->outcome,
              BeginOutcome::kCompleted);
  }
  EXPECT_EQ(BeginSync(**store, {"k", "other", "r", 10'000, 5'000})->outcome,
            BeginOutcome::kMismatch);
  EXPECT_GE(GetPostgresStoreStats(**store)->cache_hits, 10u);
  // Expiry is judged by the clock in the cache too.
  clock->AdvanceMs(5'000);
  auto fresh = BeginSync(**store, {"k", "other", "r", 10'000, 5'000});
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->outcome, BeginOutcome::kAcquired);
}

}  // namespace
}  // namespace idem::testing
