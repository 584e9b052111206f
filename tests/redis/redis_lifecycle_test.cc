// Closing a Redis store that runs on loops the caller lent it (as `idem
// serve` lends its io threads): the last reference may be dropped on one
// of those loops, and the store then closes every connection without
// stopping or blocking the loops.
#include <gtest/gtest.h>

#include <future>
#include <sstream>

#include "common/test_loops.h"
#include "idem/engine.h"
#include "redis/redis_test_util.h"

namespace idem::testing {
namespace {

// Connections the server has, apart from the one asking.
int OtherClients(const RedisServer& server) {
  auto reply = server.Command({"CLIENT", "LIST"});
  if (!reply.ok() || reply->type != RedisReply::Type::kString) return -1;
  std::istringstream lines(reply->str);
  int count = 0;
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) ++count;
  }
  return count - 1;
}

// A loop cannot wait for itself, so a store dropped on one of its lent
// loops is closed by a helper thread. `idem serve` never does this; a
// program that lends its loops may.
TEST(RedisLifecycleTest, DroppingTheLastReferenceOnALentLoopClosesTheStore) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_EQ(OtherClients(**server), 0);

  auto loops = std::make_unique<TestLoops>(2);
  // Held by the store until it is closed and freed: once the helper thread
  // is done, this is the last reference.
  auto clock = std::make_shared<ManualClock>(SystemClock()->NowMs());
  RedisStoreOptions options = FastOptions(**server);
  options.clock = clock;
  options.io_contexts = loops->pointers();
  auto opened = NewRedisStore(options);
  options.clock.reset();
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::shared_ptr<Store> store = std::move(opened).value();
  ASSERT_TRUE(BeginSync(*store, NewBegin("lent " + NewOwnerToken(), "o")).ok());
  ASSERT_TRUE(WaitUntil([&] { return OtherClients(**server) > 0; }));

  const std::optional<bool> on_a_lent_loop = DropInsideACallback(std::move(store), *loops);
  ASSERT_TRUE(on_a_lent_loop.has_value()) << "the callback did not run";
  EXPECT_TRUE(*on_a_lent_loop) << "the callback did not run on a lent loop";

  EXPECT_TRUE(WaitUntil([&] { return OtherClients(**server) == 0; }))
      << OtherClients(**server) << " connections left";
  if (!WaitUntilSoleOwner(clock)) {
    // The helper may still use the loops: leave them running.
    (void)loops.release();
    FAIL() << "the store was not freed within 10 s";
  }
  // The loops were not stopped or blocked by the closing.
  EXPECT_TRUE(loops->RunOn(0, [] {}));
  EXPECT_TRUE(loops->RunOn(1, [] {}));
}

}  // namespace
}  // namespace idem::testing
