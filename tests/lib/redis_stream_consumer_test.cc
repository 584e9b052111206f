// The Redis Streams consumer example against a real redis-server (the
// RedisServer fixture of tests/redis): consumers killed with SIGKILL in the
// middle of a batch, at a chosen point (after applying, before XACK) and at
// an arbitrary moment, then restarted, leave every message applied exactly
// once, counted per message id in Redis.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "idem/open_store.h"
#include "lib/store_scenarios.h"
#include "lib/subprocess.h"
#include "redis/redis_server.h"

namespace idem {
namespace {

using namespace std::chrono_literals;

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

class Redis {
 public:
  explicit Redis(int port) {
    const timeval timeout{5, 0};
    context_.reset(redisConnectWithTimeout("127.0.0.1", port, timeout));
  }
  bool ok() const { return context_ && !context_->err; }

  Reply Command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    return Reply(static_cast<redisReply*>(redisCommandArgv(
        context_.get(), static_cast<int>(args.size()), argv.data(), lengths.data())));
  }

  // Pipelined XADDs.
  void Publish(const std::vector<std::vector<std::string>>& commands) {
    for (const auto& args : commands) {
      std::vector<const char*> argv;
      std::vector<size_t> lengths;
      for (const auto& a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
      }
      redisAppendCommandArgv(context_.get(), static_cast<int>(args.size()), argv.data(),
                             lengths.data());
    }
    for (size_t i = 0; i < commands.size(); ++i) {
      void* reply = nullptr;
      ASSERT_EQ(redisGetReply(context_.get(), &reply), REDIS_OK);
      Reply owned(static_cast<redisReply*>(reply));
      ASSERT_NE(owned->type, REDIS_REPLY_ERROR) << owned->str;
    }
  }

  long long Integer(const std::vector<std::string>& args) {
    auto r = Command(args);
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  }

 private:
  std::unique_ptr<redisContext, ContextFree> context_;
};

std::vector<std::string> Consumer(int port, const std::string& name,
                                  std::vector<std::string> extra) {
  std::vector<std::string> args = {IDEM_EXAMPLE_REDIS_STREAM_CONSUMER,
                                   "--redis",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--consumer",
                                   name,
                                   "--count",
                                   "10",
                                   "--block-ms",
                                   "100",
                                   "--claim-idle-ms",
                                   "300"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(RedisStreamConsumerTest, KilledMidBatchAndRestartedAppliesEveryMessageOnce) {
  auto server = testing::RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  Redis redis(port);
  ASSERT_TRUE(redis.ok());

  // 3000 messages, the first 500 published twice (a producer's retries).
  constexpr int kMessages = 3000;
  std::vector<std::vector<std::string>> xadds;
  for (int i = 0; i < kMessages; ++i) {
    xadds.push_back({"XADD", "payments", "*", "id", "m" + std::to_string(i), "account",
                     "acct" + std::to_string(i % 7), "cents", "1"});
    if (i < 500) xadds.push_back(xadds.back());
  }
  redis.Publish(xadds);

  libtest::TempDir dir;
  // Consumer a dies after applying its 40th message, before acking it.
  auto a = libtest::RunChild(Consumer(port, "a", {"--crash-after", "40"}),
                             dir.File("a1.log"), 60s);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->signal, 9) << a->ToString()
                          << libtest::ReadFileOrEmpty(dir.File("a1.log"));
  EXPECT_EQ(redis.Integer({"HLEN", "{payments}:applied"}), 40);

  // Consumer b is killed at whatever point it reached once it has applied
  // about a third of the messages.
  auto b = libtest::Subprocess::Start(Consumer(port, "b", {}), dir.File("b.log"));
  ASSERT_TRUE(b.ok()) << b.status();
  for (int i = 0; i < 6000 && redis.Integer({"HLEN", "{payments}:applied"}) < 1000; ++i) {
    ASSERT_FALSE((*b)->Done()) << libtest::ReadFileOrEmpty(dir.File("b.log"));
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ((*b)->Kill().signal, 9);
  const long long applied_when_killed = redis.Integer({"HLEN", "{payments}:applied"});
  EXPECT_GE(applied_when_killed, 1000);

  // a restarts: its own pending entry, b's reclaimed ones, then the rest.
  auto again = libtest::RunChild(Consumer(port, "a", {"--exit-when-idle-ms", "1500"}),
                                 dir.File("a2.log"), 120s);
  const std::string log = libtest::ReadFileOrEmpty(dir.File("a2.log"));
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->Success()) << again->ToString() << "\n" << log;

  EXPECT_EQ(redis.Integer({"HLEN", "{payments}:applied"}), kMessages);
  auto counts = redis.Command({"HVALS", "{payments}:applied"});
  ASSERT_TRUE(counts && counts->type == REDIS_REPLY_ARRAY);
  int not_once = 0;
  for (size_t i = 0; i < counts->elements; ++i) {
    not_once += std::string(counts->element[i]->str, counts->element[i]->len) != "1";
  }
  EXPECT_EQ(not_once, 0) << "messages applied more than once";
  auto balances = redis.Command({"HVALS", "{payments}:balances"});
  ASSERT_TRUE(balances && balances->type == REDIS_REPLY_ARRAY);
  long long total = 0;
  for (size_t i = 0; i < balances->elements; ++i) {
    total += std::atoll(balances->element[i]->str);
  }
  EXPECT_EQ(total, kMessages);
  auto pending = redis.Command({"XPENDING", "payments", "ledger"});
  ASSERT_TRUE(pending && pending->type == REDIS_REPLY_ARRAY && pending->elements > 0);
  EXPECT_EQ(pending->element[0]->integer, 0) << "unacknowledged entries left";
}

TEST(LibraryOnRedisTest, LibraryScenariosOnTheRedisStore) {
  auto server = testing::RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  auto store = OpenStore((*server)->uri());
  ASSERT_TRUE(store.ok()) << store.status();
  libtest::AllLibraryScenarios(*store);
}

}  // namespace
}  // namespace idem
