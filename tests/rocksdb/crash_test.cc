// kill -9 in the middle of concurrent writes: every completion that was
// acknowledged to the writer is on disk after the restart and is replayed
// (never executed again), and every lease that was acknowledged is still
// in flight until it expires, then taken over with the next fence.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rocksdb/child_process.h"
#include "rocksdb/crash_workload.h"
#include "rocksdb/store_test_util.h"
#include "rocksdb/temp_dir.h"

namespace idem::testing {
namespace {

TEST(RocksDbCrashTest, AcknowledgedWritesSurviveKillNine) {
  TempDir dir;
  std::vector<std::string> done, in_flight;
  {
    ChildProcess writer({"--write-until-killed", dir.path()});
    ASSERT_TRUE(writer.started());
    while (done.size() < 400) {
      auto line = writer.ReadLine();
      ASSERT_TRUE(line.has_value()) << "the writer exited early";
      if (line->rfind("done ", 0) == 0) done.push_back(line->substr(5));
      if (line->rfind("inflight ", 0) == 0) in_flight.push_back(line->substr(9));
    }
    writer.Kill();
  }
  ASSERT_FALSE(in_flight.empty());

  auto clock = std::make_shared<ManualClock>(SystemClock()->NowMs());
  auto store = OpenStoreAt(dir.path(), clock);
  ASSERT_NE(store, nullptr);
  for (const auto& key : done) {
    BeginRequest retry = CrashBegin(key);
    retry.owner = "retry";
    auto replay = BeginSync(*store, retry);
    ASSERT_TRUE(replay.ok()) << key << ": " << replay.status();
    ASSERT_EQ(replay->outcome, BeginOutcome::kCompleted) << key;
    EXPECT_EQ(replay->record->response, CrashResponse(key)) << key;
  }
  for (const auto& key : in_flight) {
    BeginRequest retry = CrashBegin(key);
    retry.owner = "retry";
    auto busy = BeginSync(*store, retry);
    ASSERT_TRUE(busy.ok()) << key << ": " << busy.status();
    EXPECT_EQ(busy->outcome, BeginOutcome::kInFlight) << key;
  }
  clock->AdvanceMs(kCrashLeaseMs);
  for (const auto& key : in_flight) {
    BeginRequest retry = CrashBegin(key);
    retry.owner = "retry";
    auto taken = BeginSync(*store, retry);
    ASSERT_TRUE(taken.ok()) << key << ": " << taken.status();
    EXPECT_EQ(taken->outcome, BeginOutcome::kAcquired) << key;
    EXPECT_EQ(taken->record->fence, 2u) << key;
  }
}

}  // namespace
}  // namespace idem::testing
