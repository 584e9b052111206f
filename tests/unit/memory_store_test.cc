// What the memory store adds to the conformance suite: records handed out
// never change, even though Complete changes a record in place when nobody
// else holds it.
#include "idem/memory_store.h"

#include <gtest/gtest.h>

#include <string>

namespace idem {
namespace {

BeginRequest NewKey(const std::string& key) {
  BeginRequest request;
  request.key = key;
  request.fingerprint = "fp";
  request.owner = "owner-" + key;
  return request;
}

StoredResponse Created(const std::string& body) {
  StoredResponse response;
  response.status = 201;
  response.body = body;
  return response;
}

TEST(MemoryStoreTest, AHeldInFlightRecordStaysAsItWasAfterComplete) {
  auto store = NewMemoryStore();
  Result<BeginResult> begun = BeginSync(*store, NewKey("k"));
  ASSERT_TRUE(begun.ok());
  const RecordPtr held = begun->record;
  ASSERT_TRUE(
      CompleteSync(*store, CompleteRequest{"k", "owner-k", Created("done")}).ok());

  EXPECT_EQ(held->state, RecordState::kInFlight);
  EXPECT_TRUE(held->response.body.empty());
  Result<RecordPtr> stored = GetSync(*store, "k");
  ASSERT_TRUE(stored.ok());
  EXPECT_NE(stored->get(), held.get());
  EXPECT_EQ((*stored)->state, RecordState::kCompleted);
  EXPECT_EQ((*stored)->response.body, "done");
  EXPECT_EQ((*stored)->owner, "owner-k");
  EXPECT_EQ((*stored)->fingerprint, "fp");
}

TEST(MemoryStoreTest, AnUnheldRecordCompletesWithEverythingItHad) {
  auto store = NewMemoryStore();
  {
    Result<BeginResult> begun = BeginSync(*store, NewKey("k"));
    ASSERT_TRUE(begun.ok());
  }  // the store is the only holder now
  ASSERT_TRUE(
      CompleteSync(*store, CompleteRequest{"k", "owner-k", Created("done")}).ok());

  Result<RecordPtr> stored = GetSync(*store, "k");
  ASSERT_TRUE(stored.ok());
  const Record& record = **stored;
  EXPECT_EQ(record.key, "k");
  EXPECT_EQ(record.state, RecordState::kCompleted);
  EXPECT_EQ(record.fingerprint, "fp");
  EXPECT_EQ(record.owner, "owner-k");
  EXPECT_EQ(record.fence, 1u);
  EXPECT_EQ(record.response.status, 201);
  EXPECT_EQ(record.response.body, "done");
  EXPECT_TRUE(record.recovery.empty());
  EXPECT_GT(record.expires_at_ms, record.created_at_ms);

  // The completed record is handed out now: a retry replays it unchanged.
  Result<BeginResult> replay = BeginSync(*store, NewKey("k"));
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->outcome, BeginOutcome::kCompleted);
  EXPECT_EQ(replay->record.get(), stored->get());
}

TEST(MemoryStoreTest, ARecoveryPointIsDroppedOnComplete) {
  auto store = NewMemoryStore();
  ASSERT_TRUE(BeginSync(*store, NewKey("k")).ok());
  ASSERT_TRUE(CheckpointSync(*store, CheckpointRequest{"k", "owner-k",
                                                       RecoveryPoint{"charged", "s"}})
                  .ok());
  ASSERT_TRUE(
      CompleteSync(*store, CompleteRequest{"k", "owner-k", Created("done")}).ok());
  Result<RecordPtr> stored = GetSync(*store, "k");
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE((*stored)->recovery.empty());
}

}  // namespace
}  // namespace idem
