// Multi-phase operations across real crashes: the order_phases example is
// killed (SIGKILL) right after each phase in turn, then run again with the
// same key and RocksDB directory. Every phase's side effect must appear
// exactly once and every run after the crash must give the same response.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "lib/subprocess.h"

namespace idem {
namespace {

using namespace std::chrono_literals;
using libtest::ExitInfo;
using libtest::ReadFileOrEmpty;
using libtest::RunChild;
using libtest::TempDir;

std::map<std::string, int> CountEffects(const std::string& path) {
  std::map<std::string, int> counts;
  std::istringstream lines(ReadFileOrEmpty(path));
  std::string line;
  while (std::getline(lines, line)) counts[line.substr(0, line.find(' '))]++;
  return counts;
}

std::string ResponseLine(const std::string& output) {
  const size_t at = output.rfind("response: ");
  if (at == std::string::npos) return "";
  return output.substr(at, output.find('\n', at) - at);
}

class PhasesCrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PhasesCrashTest, KilledAfterAPhaseThenRetriedRunsEveryPhaseOnce) {
  const std::string crash_after = GetParam();
  TempDir dir;
  const std::vector<std::string> base = {IDEM_EXAMPLE_ORDER_PHASES,
                                         "--store",
                                         "rocksdb:" + dir.File("store"),
                                         "--key",
                                         "order-1",
                                         "--effects",
                                         dir.File("effects"),
                                         "--lease-ms",
                                         "300"};

  std::vector<std::string> crashing = base;
  crashing.insert(crashing.end(), {"--crash-after", crash_after});
  auto crashed = RunChild(crashing, dir.File("crash.log"), 60s);
  ASSERT_TRUE(crashed.ok()) << crashed.status();
  EXPECT_FALSE(crashed->exited) << "expected SIGKILL, got " << crashed->ToString() << "\n"
                                << ReadFileOrEmpty(dir.File("crash.log"));
  EXPECT_EQ(crashed->signal, 9);

  // The retry waits out the dead owner's 300 ms lease, then resumes.
  auto retried = RunChild(base, dir.File("retry.log"), 60s);
  ASSERT_TRUE(retried.ok()) << retried.status();
  const std::string retry_log = ReadFileOrEmpty(dir.File("retry.log"));
  ASSERT_TRUE(retried->Success()) << retried->ToString() << "\n" << retry_log;
  if (crash_after == "send_receipt") {
    EXPECT_NE(retry_log.find("replayed: yes"), std::string::npos) << retry_log;
  } else {
    EXPECT_NE(retry_log.find("resumed after: " + crash_after), std::string::npos)
        << retry_log;
  }
  EXPECT_NE(retry_log.find("response: 201 "), std::string::npos) << retry_log;

  auto replay = RunChild(base, dir.File("replay.log"), 60s);
  ASSERT_TRUE(replay.ok() && replay->Success());
  const std::string replay_log = ReadFileOrEmpty(dir.File("replay.log"));
  EXPECT_NE(replay_log.find("replayed: yes"), std::string::npos) << replay_log;
  EXPECT_EQ(ResponseLine(replay_log), ResponseLine(retry_log));

  const auto effects = CountEffects(dir.File("effects"));
  EXPECT_EQ(effects, (std::map<std::string, int>{
                         {"create_order", 1}, {"charge_card", 1}, {"send_receipt", 1}}))
      << ReadFileOrEmpty(dir.File("effects"));
}

INSTANTIATE_TEST_SUITE_P(EachPhase, PhasesCrashTest,
                         ::testing::Values("create_order", "charge_card",
                                           "send_receipt"));

TEST(PhasesCrashSequenceTest, CrashesAfterEveryPhaseInOneRunOfRetries) {
  // One key, killed after create_order, then after charge_card, then after
  // send_receipt (stored, not answered), then finished.
  TempDir dir;
  const std::vector<std::string> base = {IDEM_EXAMPLE_ORDER_PHASES,
                                         "--store",
                                         "rocksdb:" + dir.File("store"),
                                         "--key",
                                         "order-2",
                                         "--effects",
                                         dir.File("effects"),
                                         "--lease-ms",
                                         "300"};
  for (const char* phase : {"create_order", "charge_card", "send_receipt"}) {
    std::vector<std::string> args = base;
    args.insert(args.end(), {"--crash-after", phase});
    auto run = RunChild(args, dir.File("log"), 60s);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->signal, 9) << phase << ": " << run->ToString() << "\n"
                              << ReadFileOrEmpty(dir.File("log"));
  }
  auto last = RunChild(base, dir.File("last.log"), 60s);
  ASSERT_TRUE(last.ok() && last->Success()) << ReadFileOrEmpty(dir.File("last.log"));
  EXPECT_NE(ReadFileOrEmpty(dir.File("last.log")).find("replayed: yes"),
            std::string::npos);
  EXPECT_EQ(CountEffects(dir.File("effects")),
            (std::map<std::string, int>{
                {"create_order", 1}, {"charge_card", 1}, {"send_receipt", 1}}));
}

}  // namespace
}  // namespace idem
