#include "gateway/http_headers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace idem::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(HttpHeadersTest, NamesCompareWithoutCase) {
  EXPECT_TRUE(EqualsIgnoreCase("Idempotency-Key", "idempotency-key"));
  EXPECT_FALSE(EqualsIgnoreCase("Idempotency-Key", "Idempotency-Keys"));
  EXPECT_FALSE(EqualsIgnoreCase("Idempotency-Key", "Idempotency-Kez"));
}

TEST(HttpHeadersTest, OnlyLettersFoldCase) {
  // Pairs that differ in the bit that separates upper and lower case
  // letters, but are not letters.
  EXPECT_FALSE(EqualsIgnoreCase("@", "`"));
  EXPECT_FALSE(EqualsIgnoreCase("[", "{"));
  EXPECT_FALSE(EqualsIgnoreCase("^", "~"));
  EXPECT_FALSE(EqualsIgnoreCase("-", "\r"));
  EXPECT_FALSE(EqualsIgnoreCase("\xC0", "\xE0"));
  EXPECT_TRUE(EqualsIgnoreCase("X-A1_Z", "x-a1_z"));
}

TEST(HttpHeadersTest, Rfc9110HopByHopFields) {
  for (const char* name :
       {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade", "Proxy-Authorization", "Proxy-Authenticate"}) {
    EXPECT_TRUE(IsHopByHopName(name)) << name;
  }
  for (const char* name : {"Content-Type", "Authorization", "Idempotency-Key", "Trailers",
                           "T", "TF", "Upgrades", "Connectio", "Keep-Alive-X", ""}) {
    EXPECT_FALSE(IsHopByHopName(name)) << name;
  }
}

TEST(HttpHeadersTest, ConnectionListsMoreHopByHopFields) {
  const std::vector<HeaderLine> headers = {{"Connection", "close, X-Hop ,x-other"},
                                           {"X-Hop", "1"}};
  const HopByHopFilter filter(headers);
  EXPECT_TRUE(filter.Drops("x-hop"));
  EXPECT_TRUE(filter.Drops("X-Other"));
  EXPECT_TRUE(filter.Drops("Keep-Alive"));
  EXPECT_FALSE(filter.Drops("Content-Type"));
}

TEST(HttpHeadersTest, ManyConnectionTokensAreAllHonoured) {
  const std::vector<HeaderLine> headers = {
      {"Connection", "a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11"}};
  const HopByHopFilter filter(headers);
  EXPECT_TRUE(filter.Drops("a1"));
  EXPECT_TRUE(filter.Drops("a11"));
  EXPECT_FALSE(filter.Drops("a12"));
}

TEST(HttpHeadersTest, EndToEndHeadersKeepOrderAndDropFraming) {
  const std::vector<HeaderLine> headers = {{"Content-Type", "application/json"},
                                           {"Connection", "X-Hop"},
                                           {"X-Hop", "1"},
                                           {"Keep-Alive", "timeout=5"},
                                           {"Content-Length", "12"},
                                           {"Set-Cookie", "a=1"},
                                           {"Transfer-Encoding", "chunked"},
                                           {"Set-Cookie", "b=2"}};
  EXPECT_THAT(EndToEndHeaders(headers),
              ElementsAre(Pair("Content-Type", "application/json"),
                          Pair("Set-Cookie", "a=1"), Pair("Set-Cookie", "b=2")));
}

TEST(HttpHeadersTest, FindHeaderReturnsTheFirstLine) {
  const std::vector<HeaderLine> headers = {{"A", "1"}, {"b", "2"}, {"B", "3"}};
  ASSERT_NE(FindHeader(headers, "B"), nullptr);
  EXPECT_EQ(FindHeader(headers, "B")->value, "2");
  EXPECT_EQ(FindHeader(headers, "C"), nullptr);
}

}  // namespace
}  // namespace idem::gateway
