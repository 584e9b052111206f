// Pure pieces of the Redis store: key slots, redirections, the slot map, the
// header encoding, the scripts and the RESP encoding of commands.
#include <gtest/gtest.h>

#include "stores/redis/cluster_slots.h"
#include "stores/redis/command.h"
#include "stores/redis/lua_scripts.h"
#include "stores/redis/record_fields.h"
#include "stores/redis/resp.h"

namespace idem::redis_internal {
namespace {

using namespace std::string_view_literals;

TEST(RedisInternalsTest, Crc16MatchesRedis) {
  EXPECT_EQ(Crc16("123456789"), 0x31C3);  // the reference value in the cluster spec
  EXPECT_EQ(KeySlot("foo"), 12182);       // CLUSTER KEYSLOT foo
  EXPECT_EQ(KeySlot("somekey"), 11058);
}

TEST(RedisInternalsTest, HashTags) {
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), Crc16("foo{}{bar}") & 16383);  // empty tag: whole key
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));
}

TEST(RedisInternalsTest, Redirects) {
  const Endpoint from{"10.0.0.9", 7000};
  auto moved = ParseRedirect("MOVED 3999 127.0.0.1:6381", from);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->kind, Redirect::Kind::kMoved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->to, (Endpoint{"127.0.0.1", 6381}));
  auto ask = ParseRedirect("ASK 12 :7001", from);
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->kind, Redirect::Kind::kAsk);
  EXPECT_EQ(ask->to, (Endpoint{"10.0.0.9", 7001}));
  EXPECT_FALSE(ParseRedirect("ERR nope", from));
  EXPECT_FALSE(ParseRedirect("MOVED 99999 h:1", from));
  EXPECT_FALSE(ParseRedirect("MOVED 1 h", from));
}

TEST(RedisInternalsTest, TopologyNeedsEverySlot) {
  std::vector<SlotRange> ranges = {{0, 8000, {"a", 1}}, {8001, 16383, {"b", 2}}};
  auto topology = Topology::FromRanges(ranges);
  ASSERT_TRUE(topology.ok());
  EXPECT_EQ((*topology)->MasterFor(0), (Endpoint{"a", 1}));
  EXPECT_EQ((*topology)->MasterFor(16383), (Endpoint{"b", 2}));
  EXPECT_EQ((*topology)->masters().size(), 2u);
  auto moved = (*topology)->WithSlot(5, Endpoint{"c", 3});
  EXPECT_EQ(moved->MasterFor(5), (Endpoint{"c", 3}));
  EXPECT_EQ((*topology)->MasterFor(5), (Endpoint{"a", 1}));
  ranges.pop_back();
  EXPECT_EQ(Topology::FromRanges(ranges).status().code(), StatusCode::kUnavailable);
}

TEST(RedisInternalsTest, HeadersRoundTrip) {
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", "application/json"},
      {"X-Multi", "a"},
      {"X-Multi", std::string(300, 'b')},
      {"X-Bin", std::string("\0\xff\r\n", 4)}};
  auto decoded = DecodeHeaders(EncodeHeaders(headers));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, headers);
  EXPECT_TRUE(DecodeHeaders("").ok());
  std::string truncated = EncodeHeaders(headers);
  truncated.pop_back();
  EXPECT_EQ(DecodeHeaders(truncated).status().code(), StatusCode::kDataLoss);
}

TEST(RedisInternalsTest, ScriptsHaveDistinctDigests) {
  const ScriptSet scripts("idem:done");
  EXPECT_EQ(scripts[ScriptId::kBegin].sha1.size(), 40u);
  EXPECT_NE(scripts[ScriptId::kBegin].sha1, scripts[ScriptId::kComplete].sha1);
  // Each id finds its own script.
  const std::pair<ScriptId, std::string_view> names[] = {
      {ScriptId::kBegin, "begin"},
      {ScriptId::kComplete, "complete"},
      {ScriptId::kRelease, "release"},
      {ScriptId::kExtend, "extend"},
      {ScriptId::kCheckpoint, "checkpoint"},
      {ScriptId::kGet, "get"},
      {ScriptId::kDelete, "delete"},
      {ScriptId::kWatch, "watch"},
      {ScriptId::kSweep, "sweep"}};
  static_assert(std::size(names) == kScriptCount);
  for (const auto& [id, name] : names) EXPECT_EQ(scripts[id].name, name);
  // The channel is part of each script, as a Lua literal of any bytes.
  EXPECT_NE(scripts[ScriptId::kBegin].body.find("'idem:done'"), std::string::npos);
  const ScriptSet odd(
      "a'b\\\n\x01"
      "7 done");
  EXPECT_NE(odd[ScriptId::kBegin].sha1, scripts[ScriptId::kBegin].sha1);
  EXPECT_NE(odd[ScriptId::kBegin].body.find("'a\\039b\\092\\010\\0017\\032done'"),
            std::string::npos)
      << odd[ScriptId::kBegin].body.substr(0, 200);
}

TEST(RedisInternalsTest, RespEncoding) {
  EXPECT_EQ(Resp({"SET", "k", ""}), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
  RespWriter writer(2, 0);
  writer.Bulk(std::string("a\0b", 3)).Number(-1234567890123);
  EXPECT_EQ(writer.Take(), "*2\r\n$3\r\na\0b\r\n$14\r\n-1234567890123\r\n"sv);
}

TEST(RedisInternalsTest, ScriptCallsSwitchBetweenEvalshaAndEval) {
  const ScriptSet scripts("idem:done");
  const LuaScript& script = scripts[ScriptId::kRelease];
  ScriptCall call(script, "idem:k", 2, /*cluster=*/true);
  call.Arg(int64_t{42}).Arg("owner");
  auto cmd = call.Finish([](const redisReply*, Status) {});
  const std::string tail = "$1\r\n1\r\n$6\r\nidem:k\r\n$2\r\n42\r\n$5\r\nowner\r\n";
  const std::string evalsha =
      "*6\r\n$7\r\nEVALSHA\r\n$40\r\n" + script.sha1 + "\r\n" + tail;
  EXPECT_EQ(cmd->wire, evalsha);
  EXPECT_TRUE(cmd->keyed);
  EXPECT_EQ(cmd->slot, KeySlot("idem:k"));
  cmd->UseEval(true);
  EXPECT_EQ(cmd->wire, "*6\r\n$4\r\nEVAL\r\n$" + std::to_string(script.body.size()) +
                           "\r\n" + script.body + "\r\n" + tail);
  cmd->UseEval(false);
  EXPECT_EQ(cmd->wire, evalsha);
  cmd->Finish(nullptr);
}

}  // namespace
}  // namespace idem::redis_internal
