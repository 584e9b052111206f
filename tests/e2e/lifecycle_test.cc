// Process lifecycle: SIGTERM drains (a slow request in flight still gets its
// answer, the process exits 0), SIGKILL and restart through the harness.
// Every test here owns its processes.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <thread>

#include "stack_fixture.h"

namespace idem::e2e {
namespace {

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = StartStack(DefaultConfig());
    ASSERT_TRUE(stack_->ok()) << stack_->error;
  }
  void TearDown() override {
    if (HasFailure() && stack_ && stack_->ok()) {
      std::cerr << "----- gateway log -----\n" << stack_->gateway->Log();
    }
  }
  Gateway& gateway() { return *stack_->gateway; }
  Upstream& upstream() { return *stack_->upstream; }

  std::unique_ptr<Stack> stack_;
};

TEST_F(LifecycleTest, SigtermLetsASlowRequestFinishAndExitsZero) {
  std::string key = UniqueKey();
  HttpResponse response;
  uint16_t port = gateway().port();
  std::thread client(
      [&] { response = Fetch(port, KeyedPost("/slow?ms=1000", key), 30s); });
  ASSERT_TRUE(upstream().WaitForCount(key, 1))
      << "the request never reached the upstream";
  auto status = gateway().Stop(SIGTERM, 10s);
  client.join();
  EXPECT_EQ(response.status, 200) << response.Describe();
  EXPECT_TRUE(IsFresh(response));
  ASSERT_TRUE(status.has_value()) << "still running 10 s after SIGTERM";
  EXPECT_TRUE(status->success()) << status->ToString();
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(LifecycleTest, SigtermWhenIdleExitsZero) {
  ASSERT_EQ(Fetch(gateway().port(), Get("/work")).status, 200);
  auto status = gateway().Stop(SIGTERM, 10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->success()) << status->ToString();
}

// An idle keep-alive client must not hold the drain up until drain_timeout
// (30 s by default): the gateway closes it and exits.
TEST_F(LifecycleTest, IdleKeepAliveConnectionDoesNotHoldTheDrain) {
  HttpConnection idle;
  ASSERT_TRUE(idle.Connect(gateway().port()));
  ASSERT_EQ(idle.RoundTrip(Get("/work")).status, 200);
  auto status = gateway().Stop(SIGTERM, 10s);
  ASSERT_TRUE(status.has_value()) << "an idle keep-alive connection held the drain";
  EXPECT_TRUE(status->success()) << status->ToString();
  EXPECT_TRUE(idle.WaitForClose(1s));
}

TEST_F(LifecycleTest, SigintExitsZero) {
  auto status = gateway().Stop(SIGINT, 10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->success()) << status->ToString();
}

TEST_F(LifecycleTest, StopsAcceptingAfterSigtermWhileDraining) {
  std::string key = UniqueKey();
  uint16_t port = gateway().port();
  HttpResponse slow;
  std::atomic<bool> slow_done{false};
  std::thread client([&] {
    slow = Fetch(port, KeyedPost("/slow?ms=1500", key), 30s);
    slow_done = true;
  });
  ASSERT_TRUE(upstream().WaitForCount(key, 1));
  ASSERT_TRUE(gateway().process().Signal(SIGTERM));
  // Once draining, a new connection is refused, reset or answered 503.
  bool refused = WaitUntil([&] {
    HttpConnection probe;
    if (!probe.Connect(port)) return true;
    HttpResponse r = probe.RoundTrip(Get("/work"), 5s);
    return !r.ok() || r.status == 503;
  });
  bool slow_was_in_flight = !slow_done;
  EXPECT_TRUE(refused) << "the gateway kept accepting work after SIGTERM";
  EXPECT_TRUE(slow_was_in_flight)
      << "new connections were served until the drain had finished";
  client.join();
  EXPECT_EQ(slow.status, 200) << slow.Describe();
  auto status = gateway().process().Wait(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->success()) << status->ToString();
}

TEST_F(LifecycleTest, KillAndRestartServesAgain) {
  uint16_t old_port = gateway().port();
  ASSERT_EQ(Fetch(old_port, Get("/work")).status, 200);
  gateway().Kill();
  ASSERT_TRUE(gateway().process().exit_status().has_value());
  EXPECT_EQ(gateway().process().exit_status()->signal, SIGKILL);
  std::string error;
  ASSERT_TRUE(gateway().Restart(error)) << error;
  std::string key = UniqueKey();
  HttpResponse first = Fetch(gateway().port(), KeyedPost("/work", key));
  EXPECT_EQ(first.status, 200) << first.Describe();
  EXPECT_TRUE(IsReplayOf(Fetch(gateway().port(), KeyedPost("/work", key)), first));
}

// `idem demo` makes its scratch directory under $TMPDIR; one that does not
// exist is a clear error at once, not a directory somewhere else.
TEST(DemoCommand, MissingTemporaryDirectoryIsAClearError) {
  TempDir dir;
  Process demo;
  std::string error;
  ASSERT_TRUE(demo.Start({"/usr/bin/env", "TMPDIR=" + dir.File("missing"), IdemBinary(),
                          "demo"},
                         dir.File("demo.log"), error))
      << error;
  std::optional<ExitStatus> status = demo.Wait(30s);
  ASSERT_TRUE(status.has_value()) << "idem demo did not exit";
  EXPECT_TRUE(status->exited && status->code == 1) << status->ToString();
  EXPECT_NE(demo.LogSince(0).find("no temporary directory (TMPDIR)"), std::string::npos)
      << demo.LogSince(0);
}

}  // namespace
}  // namespace idem::e2e
