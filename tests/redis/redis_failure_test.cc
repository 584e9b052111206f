// Redis down, stopped or slow: every call answers kUnavailable within the
// command time-out, and the same store recovers by itself once Redis is
// back. Also AUTH, ACL users, SELECT, and AOF durability.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "idem/engine.h"
#include "redis/redis_test_util.h"

namespace idem::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string UniqueKey(const std::string& what) {
  return "failure " + what + " " + NewOwnerToken();
}

// Issues `n` Begins at once and waits for all callbacks; returns their
// statuses and the time until the last one answered.
std::pair<std::vector<Status>, std::chrono::milliseconds> BeginBurst(Store& store,
                                                                     int n) {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<Status> statuses;
  const auto start = SteadyClock::now();
  for (int i = 0; i < n; ++i) {
    store.Begin(NewBegin(UniqueKey("burst"), "o"), [&](Result<BeginResult> r) {
      std::lock_guard lock(mutex);
      statuses.push_back(r.status());
      cv.notify_all();
    });
  }
  std::unique_lock lock(mutex);
  cv.wait_for(lock, 10s, [&] { return statuses.size() == static_cast<size_t>(n); });
  return {statuses, std::chrono::duration_cast<std::chrono::milliseconds>(
                        SteadyClock::now() - start)};
}

TEST(RedisFailureTest, StoppedMidLoadFailsWithinTimeoutThenRecoversWithoutReopening) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  auto store = MustOpen(FastOptions(**server));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(PingSync(*store).ok());

  // A load that runs while the server is killed under it.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, unavailable{0}, other{0};
  std::atomic<int64_t> slowest_ms{0};
  std::thread load([&] {
    for (int i = 0; i < 100'000 && !stop.load(); ++i) {
      const auto start = SteadyClock::now();
      auto r = BeginSync(*store, NewBegin(UniqueKey("load"), "o"));
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          SteadyClock::now() - start)
                          .count();
      slowest_ms.store(std::max<int64_t>(slowest_ms.load(), ms));
      if (r.ok()) {
        ok.fetch_add(1);
      } else if (r.status().code() == StatusCode::kUnavailable) {
        unavailable.fetch_add(1);
      } else {
        other.fetch_add(1);
      }
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return ok.load() > 50; }));
  ASSERT_TRUE((*server)->Kill().ok());
  ASSERT_TRUE(WaitUntil([&] { return unavailable.load() > 20; }));

  // While it is down: a burst of calls all fail, and fast.
  auto [statuses, elapsed] = BeginBurst(*store, 50);
  ASSERT_EQ(statuses.size(), 50u);
  for (const Status& s : statuses) EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s;
  EXPECT_LT(elapsed, 1000ms);
  EXPECT_EQ(PingSync(*store).code(), StatusCode::kUnavailable);
  EXPECT_EQ(WaitForCompletionSync(*store, UniqueKey("wait"), 5s).status().code(),
            StatusCode::kUnavailable);

  // Back on the same port: the same store object recovers.
  ASSERT_TRUE((*server)->Restart().ok());
  EXPECT_TRUE(WaitUntil([&] { return PingSync(*store).ok(); }));
  const int ok_before = ok.load();
  EXPECT_TRUE(WaitUntil([&] { return ok.load() > ok_before + 50; }));
  stop = true;
  load.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_LT(slowest_ms.load(), 1000) << "a call waited longer than the command time-out";

  const auto key = UniqueKey("after");
  auto r = BeginSync(*store, NewBegin(key, "o"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, BeginOutcome::kAcquired);
  EXPECT_TRUE(CompleteSync(*store, {key, "o", Response("x"), 60'000}).ok());
}

TEST(RedisFailureTest, UnresponsiveServerTimesOutThenRecovers) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  auto store = MustOpen(FastOptions(**server));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(PingSync(*store).ok());

  ASSERT_TRUE((*server)->Pause().ok());  // accepts TCP, never answers
  const auto start = SteadyClock::now();
  auto r = BeginSync(*store, NewBegin(UniqueKey("paused"), "o"));
  const auto elapsed = SteadyClock::now() - start;
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status();
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 800ms);
  auto [statuses, burst_elapsed] = BeginBurst(*store, 20);
  for (const Status& s : statuses) EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s;
  EXPECT_LT(burst_elapsed, 2000ms);

  ASSERT_TRUE((*server)->Resume().ok());
  EXPECT_TRUE(WaitUntil(
      [&] { return BeginSync(*store, NewBegin(UniqueKey("resumed"), "o")).ok(); }));
}

TEST(RedisFailureTest, NeverReachableServerAnswersUnavailable) {
  auto port = PickFreePort();
  ASSERT_TRUE(port.ok());
  RedisStoreOptions options;
  options.port = *port;
  options.connect_timeout = 200ms;
  options.command_timeout = 200ms;
  auto store = MustOpen(options);
  ASSERT_NE(store, nullptr);
  const auto start = SteadyClock::now();
  auto ping = PingSync(*store);
  EXPECT_EQ(ping.code(), StatusCode::kUnavailable);
  EXPECT_LT(SteadyClock::now() - start, 1s);
  EXPECT_EQ(GetSync(*store, "k").status().code(), StatusCode::kUnavailable);
}

TEST(RedisFailureTest, PasswordAclUserAndDatabaseFromTheUri) {
  RedisServerOptions server_options;
  server_options.password = "s3cret";
  auto server = RedisServer::Start(server_options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string port = std::to_string((*server)->port());

  auto open = [&](const std::string& uri) {
    auto options = ParseRedisUri(uri);
    EXPECT_TRUE(options.ok()) << options.status();
    options->connect_timeout = 300ms;
    options->command_timeout = 300ms;
    return MustOpen(*options);
  };

  auto wrong = open("redis://:nope@127.0.0.1:" + port);
  Status refused = PingSync(*wrong);
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable);
  auto none = open("redis://127.0.0.1:" + port);
  EXPECT_EQ(BeginSync(*none, NewBegin("k", "o")).status().code(),
            StatusCode::kUnavailable);

  auto db3 = open("redis://:s3cret@127.0.0.1:" + port + "/3");
  auto db0 = open("redis://:s3cret@127.0.0.1:" + port);
  const auto key = UniqueKey("db");
  auto r = BeginSync(*db3, NewBegin(key, "o"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, BeginOutcome::kAcquired);
  EXPECT_TRUE(GetSync(*db3, key).ok());
  EXPECT_EQ(GetSync(*db0, key).status().code(), StatusCode::kNotFound);

  auto acl =
      (*server)->Command({"ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all"});
  ASSERT_TRUE(acl.ok());
  ASSERT_EQ(acl->type, RedisReply::Type::kStatus) << acl->str;
  auto user = open("redis://app:pw@127.0.0.1:" + port + "/3");
  auto got = GetSync(*user, key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)->owner, "o");
  auto bad_user = open("redis://app:wrong@127.0.0.1:" + port);
  EXPECT_EQ(PingSync(*bad_user).code(), StatusCode::kUnavailable);
}

TEST(RedisFailureTest, CompletionSurvivesAKillWithAppendfsyncAlways) {
  RedisServerOptions server_options;
  server_options.appendfsync = "always";
  auto server = RedisServer::Start(server_options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto store = MustOpen(FastOptions(**server));
  ASSERT_NE(store, nullptr);
  const auto key = UniqueKey("durable");
  ASSERT_TRUE(BeginSync(*store, NewBegin(key, "o")).ok());
  ASSERT_TRUE(CompleteSync(*store, {key, "o", Response("paid"), 3'600'000}).ok());

  ASSERT_TRUE((*server)->Kill().ok());  // no shutdown save: only the AOF
  ASSERT_TRUE((*server)->Restart().ok());
  Result<RecordPtr> got = NotFound("not yet");
  EXPECT_TRUE(WaitUntil([&] {
    got = GetSync(*store, key);
    return got.ok();
  }));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)->state, RecordState::kCompleted);
  EXPECT_EQ((*got)->response.body, "paid");
  auto replay = BeginSync(*store, NewBegin(key, "retry"));
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->outcome, BeginOutcome::kCompleted);
}

}  // namespace
}  // namespace idem::testing
