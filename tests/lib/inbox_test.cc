#include "idem/inbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "idem/memory_store.h"

namespace idem {
namespace {

using namespace std::chrono_literals;

TEST(InboxTest, AMessageDeliveredFiveTimesIsProcessedOnce) {
  Inbox inbox(std::make_shared<Engine>(NewMemoryStore()));
  int effects = 0;
  std::vector<InboxOutcome> outcomes;
  for (int delivery = 0; delivery < 5; ++delivery) {
    auto outcome = inbox.Process("msg-1", [&] {
      ++effects;
      return Status();
    });
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    outcomes.push_back(*outcome);
  }
  EXPECT_EQ(effects, 1);
  EXPECT_EQ(outcomes.front(), InboxOutcome::kProcessed);
  for (size_t i = 1; i < outcomes.size(); ++i)
    EXPECT_EQ(outcomes[i], InboxOutcome::kDuplicate);
}

TEST(InboxTest, ConcurrentDeliveriesProcessOnceAndWaitersSeeTheDuplicate) {
  InboxOptions options;
  options.wait_timeout_ms = 10'000;
  Inbox inbox(std::make_shared<Engine>(NewMemoryStore()), options);
  std::atomic<int> effects{0};
  std::atomic<int> processed{0};
  std::atomic<int> duplicates{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto outcome = inbox.Process("msg-1", [&] {
        ++effects;
        std::this_thread::sleep_for(30ms);
        return Status();
      });
      ASSERT_TRUE(outcome.ok()) << outcome.status();
      (*outcome == InboxOutcome::kProcessed ? processed : duplicates)++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(effects.load(), 1);
  EXPECT_EQ(processed.load(), 1);
  EXPECT_EQ(duplicates.load(), 7);
}

TEST(InboxTest, WithoutWaitingAConcurrentDeliveryIsAConflict) {
  Inbox inbox(std::make_shared<Engine>(NewMemoryStore()));
  std::atomic<bool> inside{false};
  std::atomic<bool> release{false};
  std::thread first([&] {
    auto outcome = inbox.Process("m", [&] {
      inside = true;
      for (int i = 0; i < 2000 && !release; ++i) std::this_thread::sleep_for(1ms);
      return Status();
    });
    EXPECT_TRUE(outcome.ok());
  });
  for (int i = 0; i < 2000 && !inside; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(inbox.Process("m", [] { return Status(); }).status().code(),
            StatusCode::kConflict);
  release = true;
  first.join();
}

TEST(InboxTest, HandlerErrorsLeaveTheMessageUnprocessed) {
  Inbox inbox(std::make_shared<Engine>(NewMemoryStore()));
  int attempts = 0;
  auto handler = [&]() -> Status {
    ++attempts;
    if (attempts == 1) return Unavailable("db down");
    if (attempts == 2) throw std::runtime_error("crash in handler");
    return Status();
  };
  EXPECT_EQ(inbox.Process("m", handler).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(inbox.Process("m", handler).status().code(), StatusCode::kInternal);
  EXPECT_EQ(*inbox.Process("m", handler), InboxOutcome::kProcessed);
  EXPECT_EQ(*inbox.Process("m", handler), InboxOutcome::kDuplicate);
  EXPECT_EQ(attempts, 3);
}

TEST(InboxTest, ConsumersAndRetentionAreSeparate) {
  auto clock = std::make_shared<ManualClock>();
  MemoryStoreOptions store_options;
  store_options.clock = clock;
  auto engine = std::make_shared<Engine>(NewMemoryStore(store_options), clock);
  InboxOptions billing;
  billing.consumer = "billing";
  billing.retention_ms = 60'000;
  InboxOptions email;
  email.consumer = "email";
  Inbox a(engine, billing);
  Inbox b(engine, email);
  int effects = 0;
  auto handler = [&] {
    ++effects;
    return Status();
  };
  EXPECT_EQ(*a.Process("m", handler), InboxOutcome::kProcessed);
  EXPECT_EQ(*b.Process("m", handler), InboxOutcome::kProcessed);
  EXPECT_EQ(*a.Process("m", handler), InboxOutcome::kDuplicate);
  clock->AdvanceMs(60'000);  // past billing's retention window
  EXPECT_EQ(*a.Process("m", handler), InboxOutcome::kProcessed);
  EXPECT_EQ(effects, 3);
  EXPECT_EQ(a.Process("", handler).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace idem
