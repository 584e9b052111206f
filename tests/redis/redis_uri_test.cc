#include <gtest/gtest.h>

#include "idem/open_store.h"
#include "idem/redis_store.h"

namespace idem {
namespace {

TEST(RedisUriTest, HostPortAndDefaults) {
  auto o = ParseRedisUri("redis://10.0.0.5:6380");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "10.0.0.5");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(o->db, 0);
  EXPECT_TRUE(o->user.empty());
  EXPECT_TRUE(o->password.empty());
  EXPECT_TRUE(o->cluster_seeds.empty());
  EXPECT_EQ(o->key_prefix, "idem:");

  auto bare = ParseRedisUri("redis://cache.local");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->host, "cache.local");
  EXPECT_EQ(bare->port, 6379);
}

TEST(RedisUriTest, CredentialsAndDatabase) {
  auto o = ParseRedisUri("redis://app:s3cr%40t%3A@127.0.0.1:6379/4");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->user, "app");
  EXPECT_EQ(o->password, "s3cr@t:");
  EXPECT_EQ(o->db, 4);

  auto password_only = ParseRedisUri("redis://:hunter2@127.0.0.1:6379/");
  ASSERT_TRUE(password_only.ok()) << password_only.status();
  EXPECT_TRUE(password_only->user.empty());
  EXPECT_EQ(password_only->password, "hunter2");
  EXPECT_EQ(password_only->db, 0);

  auto lone = ParseRedisUri("redis://hunter2@127.0.0.1");
  ASSERT_TRUE(lone.ok());
  EXPECT_EQ(lone->password, "hunter2");
}

TEST(RedisUriTest, Ipv6) {
  auto o = ParseRedisUri("redis://[::1]:7000/2");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 7000);
  EXPECT_EQ(o->db, 2);
}

TEST(RedisUriTest, Cluster) {
  auto o = ParseRedisUri("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->cluster_seeds,
            (std::vector<std::string>{"10.0.0.1:7000", "10.0.0.2:7001", "[::1]:7002"}));
  EXPECT_EQ(o->user, "u");
  EXPECT_EQ(o->password, "p");
  EXPECT_TRUE(ParseRedisUri("redis+cluster://10.0.0.1:7000/0").ok());
}

TEST(RedisUriTest, CacheOptions) {
  auto defaults = ParseRedisUri("redis://127.0.0.1");
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults->cache_completed);
  EXPECT_EQ(defaults->cache_max_bytes, size_t{64} << 20);
  auto o = ParseRedisUri("redis://h:1/2?cache_completed=false&cache_max_bytes=8MiB");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->db, 2);
  EXPECT_FALSE(o->cache_completed);
  EXPECT_EQ(o->cache_max_bytes, size_t{8} << 20);
  auto bytes = ParseRedisUri("redis+cluster://a:1,b:2?cache_max_bytes=3145728");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(bytes->cluster_seeds.size(), 2u);
  EXPECT_EQ(bytes->cache_max_bytes, size_t{3} << 20);
  EXPECT_EQ(ParseRedisUri("redis://h?cache_max_bytes=2GiB")->cache_max_bytes,
            size_t{2} << 30);
  for (const char* bad :
       {"redis://h?cache_completed=no", "redis://h?cache_completed",
        "redis://h?cache_max_bytes=", "redis://h?cache_max_bytes=512KiB",
        "redis://h?cache_max_bytes=1x", "redis://h?cache_max_bytes=-5",
        "redis://h?cache_completed=true&", "redis://h?cache_completed=true#frag"}) {
    auto parsed = ParseRedisUri(bad);
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(RedisUriTest, RejectsMalformed) {
  for (const char* bad :
       {"redis:/x", "http://127.0.0.1:6379", "redis://", "redis://:6379",
        "redis://127.0.0.1:0", "redis://127.0.0.1:65536", "redis://127.0.0.1:port",
        "redis://127.0.0.1:6379/db", "redis://127.0.0.1:6379/-1", "redis://a:6379,b:6379",
        "redis://u:p%4@h", "redis://user:@h", "redis://::1:6379", "redis://h:6379?x=1",
        "redis+cluster://a:1,", "redis+cluster://a:1/3", "redis+cluster://",
        "redis://127.0.0.1:"}) {
    auto o = ParseRedisUri(bad);
    EXPECT_FALSE(o.ok()) << bad;
    if (!o.ok()) {
      EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(RedisUriTest, OpenStoreRecognisesBothSchemes) {
  EXPECT_EQ(OpenStore("redis://h:1/x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenStore("redis+cluster://").status().code(), StatusCode::kInvalidArgument);
  // Well-formed: the store opens even though nothing listens there.
  auto store = OpenStore("redis://127.0.0.1:1");
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(PingSync(**store).code(), StatusCode::kUnavailable);
}

TEST(RedisUriTest, NewRedisStoreValidatesOptions) {
  RedisStoreOptions o;
  o.key_prefix = "";
  EXPECT_EQ(NewRedisStore(o).status().code(), StatusCode::kInvalidArgument);
  o = {};
  o.io_threads = 0;
  EXPECT_EQ(NewRedisStore(o).status().code(), StatusCode::kInvalidArgument);
  o = {};
  o.io_contexts = {nullptr};
  EXPECT_EQ(NewRedisStore(o).status().code(), StatusCode::kInvalidArgument);
  o = {};
  o.cluster_seeds = {"nonsense"};
  EXPECT_EQ(NewRedisStore(o).status().code(), StatusCode::kInvalidArgument);
  o = {};
  o.reconnect_min_backoff = std::chrono::milliseconds(500);
  o.reconnect_max_backoff = std::chrono::milliseconds(100);
  EXPECT_EQ(NewRedisStore(o).status().code(), StatusCode::kInvalidArgument);
  o = {};
  o.cache_max_bytes = 1000;
  EXPECT_EQ(NewRedisStore(o).status().code(), StatusCode::kInvalidArgument);
  o.cache_completed = false;  // the bound only matters with the cache on
  EXPECT_TRUE(NewRedisStore(o).ok());
}

}  // namespace
}  // namespace idem
