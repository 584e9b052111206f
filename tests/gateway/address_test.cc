#include "gateway/address.h"

#include <gtest/gtest.h>

namespace idem::gateway {
namespace {

TEST(ParseHostPortTest, AcceptsHostsAndBracketedIpv6) {
  Result<HostPort> v4 = ParseHostPort("127.0.0.1:8080");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8080);
  Result<HostPort> v6 = ParseHostPort("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  EXPECT_TRUE(ParseHostPort("localhost:9090").ok());
}

TEST(ParseHostPortTest, RejectsMalformedAddresses) {
  for (const char* bad : {"", "8080", ":8080", "host:", "host:65536", "host:80x",
                          "::1:80", "[::1]80", "[::1"}) {
    EXPECT_FALSE(ParseHostPort(bad).ok()) << bad;
  }
}

TEST(FormatHostPortTest, BracketsIpv6) {
  EXPECT_EQ(FormatHostPort("127.0.0.1", 80), "127.0.0.1:80");
  EXPECT_EQ(FormatHostPort("::1", 80), "[::1]:80");
}

TEST(ParseUpstreamUrlTest, SplitsAddressAuthorityAndBasePath) {
  Result<UpstreamUrl> url = ParseUpstreamUrl("http://127.0.0.1:8081/api/v1");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->address.host, "127.0.0.1");
  EXPECT_EQ(url->address.port, 8081);
  EXPECT_EQ(url->authority, "127.0.0.1:8081");
  EXPECT_EQ(url->base_path, "/api/v1");

  Result<UpstreamUrl> bare = ParseUpstreamUrl("http://example.internal");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->address.port, 80);
  EXPECT_EQ(bare->base_path, "");

  Result<UpstreamUrl> v6 = ParseUpstreamUrl("http://[::1]");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->address.host, "::1");
  EXPECT_EQ(v6->address.port, 80);
}

TEST(ParseUpstreamUrlTest, RefusesOtherSchemesAndOddUrls) {
  for (const char* bad : {"https://127.0.0.1", "127.0.0.1:80", "http://", "http://u@h:80",
                          "http://h:80/x?y=1"}) {
    EXPECT_FALSE(ParseUpstreamUrl(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace idem::gateway
