#include "idem/phases.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "idem/fingerprint.h"
#include "idem/memory_store.h"
#include "idem/run_once.h"

namespace idem {
namespace {

class PhasesTest : public ::testing::Test {
 protected:
  PhasesTest() {
    MemoryStoreOptions options;
    options.clock = clock_;
    engine_ = std::make_shared<Engine>(NewMemoryStore(options), clock_);
    policy_.lease_ttl_ms = 1'000;
  }

  // create_order -> charge_card -> send_receipt; each appends to `effects_`
  // and fails when `fail_` names it.
  std::unique_ptr<PhasedOperation> Order(PhasedOptions options = {}) {
    options.keep_lease_alive = false;  // the manual clock does not move by itself
    auto op = std::make_unique<PhasedOperation>(engine_, policy_, options);
    op->AddPhase("create_order",
                 [this](const PhaseInput& in) -> PhaseResult {
                   if (fail_ == "create_order") return Unavailable("db down");
                   effects_.push_back("create_order");
                   return std::string(in.state) + "|order";
                 })
        .AddPhase("charge_card",
                  [this](const PhaseInput& in) -> PhaseResult {
                    if (fail_ == "charge_card") return Unavailable("bank down");
                    if (fail_ == "decline") return StoredResponse{402, {}, "declined"};
                    if (fail_ == "final") throw FinalError(InvalidArgument("bad card"));
                    if (fail_ == "throw") throw std::runtime_error("socket");
                    effects_.push_back("charge_card");
                    return std::string(in.state) + "|charged";
                  })
        .AddPhase("send_receipt", [this](const PhaseInput& in) -> PhaseResult {
          if (fail_ == "send_receipt") return Unavailable("mail down");
          effects_.push_back("send_receipt");
          return StoredResponse{
              201, {{"content-type", "text/plain"}}, std::string(in.state) + "|sent"};
        });
    return op;
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::shared_ptr<Engine> engine_;
  EnginePolicy policy_;
  std::vector<std::string> effects_;
  std::string fail_;
};

TEST_F(PhasesTest, RunsEveryPhaseThenReplaysTheResponse) {
  auto op = Order();
  auto first = op->Run("k", "in");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->replayed);
  EXPECT_EQ(first->response.status, 201);
  EXPECT_EQ(first->response.body, "in|order|charged|sent");
  EXPECT_EQ(first->phases_run,
            (std::vector<std::string>{"create_order", "charge_card", "send_receipt"}));

  auto again = op->Run("k", "in");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->response, first->response);
  EXPECT_TRUE(again->phases_run.empty());
  EXPECT_EQ(effects_.size(), 3u);
}

TEST_F(PhasesTest, ErrorBeforeAnySavedPhaseReleasesSoARetryStartsOver) {
  auto op = Order();
  fail_ = "create_order";
  EXPECT_EQ(op->Run("k", "in").status().code(), StatusCode::kUnavailable);
  fail_.clear();
  auto retry = op->Run("k", "in");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->resumed_after.empty());
  EXPECT_EQ(effects_,
            (std::vector<std::string>{"create_order", "charge_card", "send_receipt"}));
}

TEST_F(PhasesTest, ErrorAfterASavedPhaseResumesThereOnAnImmediateRetry) {
  auto op = Order();
  fail_ = "send_receipt";
  auto failed = op->Run("k", "in");
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(failed.status().message().find("send_receipt"), std::string::npos);
  fail_.clear();
  clock_->AdvanceMs(1);  // the yielded lease ends 1 ms after the failure
  auto retry = op->Run("k", "in");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->resumed_after, "charge_card");
  EXPECT_EQ(retry->phases_run, (std::vector<std::string>{"send_receipt"}));
  EXPECT_EQ(retry->response.body, "in|order|charged|sent");
  EXPECT_EQ(effects_,
            (std::vector<std::string>{"create_order", "charge_card", "send_receipt"}));
}

TEST_F(PhasesTest, ExceptionInAPhaseIsAnErrorAndResumable) {
  auto op = Order();
  fail_ = "throw";
  EXPECT_EQ(op->Run("k", "in").status().code(), StatusCode::kInternal);
  fail_.clear();
  clock_->AdvanceMs(1);
  auto retry = op->Run("k", "in");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->resumed_after, "create_order");
  EXPECT_EQ(effects_,
            (std::vector<std::string>{"create_order", "charge_card", "send_receipt"}));
}

TEST_F(PhasesTest, TakeoverAfterACrashResumesAfterTheLastCheckpoint) {
  // A process that saved "create_order" and died: its record stays in
  // flight with the recovery point until the lease lapses.
  auto crashed = engine_->BeginSync("phases k", Sha256("in"), policy_);
  ASSERT_TRUE(crashed.ok());
  ASSERT_EQ(crashed->kind, Decision::Kind::kExecute);
  ASSERT_TRUE(engine_->CheckpointSync(crashed->lease, {"create_order", "in|order"}).ok());

  auto op = Order();
  EXPECT_EQ(op->Run("k", "in").status().code(), StatusCode::kConflict);
  clock_->AdvanceMs(policy_.lease_ttl_ms);
  auto resumed = op->Run("k", "in");
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->resumed_after, "create_order");
  EXPECT_EQ(resumed->phases_run,
            (std::vector<std::string>{"charge_card", "send_receipt"}));
  EXPECT_EQ(resumed->response.body, "in|order|charged|sent");
  // The crashed owner can no longer write.
  EXPECT_EQ(engine_->CheckpointSync(crashed->lease, {"charge_card", "x"}).code(),
            StatusCode::kLeaseLost);
}

TEST_F(PhasesTest, PhasesSeeTheFenceOfTheirLease) {
  auto crashed = engine_->BeginSync("phases k", Sha256("in"), policy_);
  ASSERT_TRUE(crashed.ok());
  clock_->AdvanceMs(policy_.lease_ttl_ms);
  PhasedOperation op(engine_, policy_);
  uint64_t fence = 0;
  bool resumed = true;
  op.AddPhase("only", [&](const PhaseInput& in) -> PhaseResult {
    fence = in.fence;
    resumed = in.resumed;
    return std::string("done");
  });
  auto r = op.Run("k", "in");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(fence, 2u);
  EXPECT_FALSE(resumed);
  EXPECT_EQ(r->response, (StoredResponse{200, {}, "done"}));
}

TEST_F(PhasesTest, AnEarlyResponseEndsTheOperationAndIsStored) {
  auto op = Order();
  fail_ = "decline";
  auto declined = op->Run("k", "in");
  ASSERT_TRUE(declined.ok()) << declined.status();
  EXPECT_EQ(declined->response.status, 402);
  fail_.clear();
  auto again = op->Run("k", "in");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->response.status, 402);
  EXPECT_EQ(effects_, (std::vector<std::string>{"create_order"}));
}

TEST_F(PhasesTest, FinalErrorIsStoredAndReturnedToRetries) {
  auto op = Order();
  fail_ = "final";
  auto first = op->Run("k", "in");
  EXPECT_EQ(first.status().code(), StatusCode::kInvalidArgument);
  fail_.clear();
  auto again = op->Run("k", "in");
  EXPECT_EQ(again.status(), first.status());
  EXPECT_EQ(effects_, (std::vector<std::string>{"create_order"}));
}

TEST_F(PhasesTest, SameKeyWithAnotherInputIsAMismatch) {
  auto op = Order();
  ASSERT_TRUE(op->Run("k", "in").ok());
  EXPECT_EQ(op->Run("k", "other").status().code(), StatusCode::kMismatch);
}

TEST_F(PhasesTest, UnknownSavedPhaseIsAFailedPrecondition) {
  auto crashed = engine_->BeginSync("phases k", Sha256("in"), policy_);
  ASSERT_TRUE(crashed.ok());
  ASSERT_TRUE(engine_->CheckpointSync(crashed->lease, {"renamed_phase", "s"}).ok());
  clock_->AdvanceMs(policy_.lease_ttl_ms);
  auto op = Order();
  EXPECT_EQ(op->Run("k", "in").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(effects_.empty());
}

TEST_F(PhasesTest, RejectsBadPhaseLists) {
  PhasedOperation none(engine_, policy_);
  EXPECT_EQ(none.Run("k", "in").status().code(), StatusCode::kInvalidArgument);
  PhasedOperation twice(engine_, policy_);
  auto phase = [](const PhaseInput&) -> PhaseResult { return std::string(); };
  twice.AddPhase("a", phase).AddPhase("a", phase);
  EXPECT_EQ(twice.Run("k", "in").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Order()->Run("", "in").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PhasesTest, AfterCheckpointSeesEverySavedPhase) {
  std::vector<std::string> saved;
  PhasedOptions options;
  options.after_checkpoint = [&](std::string_view phase) { saved.emplace_back(phase); };
  ASSERT_TRUE(Order(options)->Run("k", "in").ok());
  EXPECT_EQ(saved, (std::vector<std::string>{"create_order", "charge_card"}));
}

}  // namespace
}  // namespace idem
