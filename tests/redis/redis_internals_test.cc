// Pure pieces of the Redis store: key slots, redirections, the slot map and
// the header encoding.
#include <gtest/gtest.h>

#include "stores/redis/cluster_slots.h"
#include "stores/redis/lua_scripts.h"
#include "stores/redis/record_fields.h"

namespace idem::redis_internal {
namespace {

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
  EXPECT_EQ(Script(ScriptId::kBegin).sha1.size(), 40u);
  EXPECT_NE(Script(ScriptId::kBegin).sha1, Script(ScriptId::kComplete).sha1);
  EXPECT_EQ(Script(ScriptId::kSweep).name, "sweep");
}

}  // namespace
}  // namespace idem::redis_internal
