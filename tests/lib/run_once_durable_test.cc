// Run-once results survive a restart: the store is a RocksDB directory that
// is opened, used, closed and opened again (in this process, and by a
// child process in between).
#include <gtest/gtest.h>

#include <string>

#include "idem/open_store.h"
#include "idem/run_once.h"
#include "lib/subprocess.h"

namespace idem {
namespace {

using namespace std::chrono_literals;

Result<std::string> ChargeOnce(const std::string& uri, int& runs) {
  auto store = OpenStore(uri);
  if (!store.ok()) return store.status();
  RunOnce<std::string> once(std::make_shared<Engine>(*store));
  return once.Call("charge-order-42", [&] {
    ++runs;
    return std::string("ch_42");
  });
}

TEST(RunOnceDurableTest, ResultSurvivesClosingAndReopeningTheStore) {
  libtest::TempDir dir;
  const std::string uri = "rocksdb:" + dir.File("store");
  int runs = 0;
  auto first = ChargeOnce(uri, runs);  // opens, runs, closes
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = ChargeOnce(uri, runs);  // a "restarted process"
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, "ch_42");
  EXPECT_EQ(runs, 1);
}

TEST(RunOnceDurableTest, ResultStoredByAnotherProcessIsReplayed) {
  libtest::TempDir dir;
  const std::string uri = "rocksdb:" + dir.File("store");
  // run_once_basics charges "charge-order-42" once and exits.
  auto child =
      libtest::RunChild({IDEM_EXAMPLE_RUN_ONCE_BASICS, uri}, dir.File("log"), 60s);
  ASSERT_TRUE(child.ok() && child->Success())
      << libtest::ReadFileOrEmpty(dir.File("log"));
  auto store = OpenStore(uri);
  ASSERT_TRUE(store.ok()) << store.status();
  RunOnce<std::string> once(std::make_shared<Engine>(*store));
  bool ran = false;
  auto replay = once.Call("charge-order-42", [&] {
    ran = true;
    return std::string("again");
  });
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(*replay, "ch_1");
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace idem
