// Row: malformed key -> 400 problem+json; the store and the upstream are not
// touched. And the boundaries of what is a valid key.
#include <gtest/gtest.h>

#include "stack_fixture.h"

namespace idem::e2e {
namespace {

struct BadKey {
  std::string name;
  std::string header_value;
  // The problem type. A control byte makes the whole request invalid HTTP
  // (RFC 9110 field values exclude CTLs), so the gateway may reject it as a
  // malformed request before it looks at the key: any 400 problem will do.
  std::string slug = "invalid-key";
};

void PrintTo(const BadKey& key, std::ostream* os) { *os << key.name; }

std::string PrintBadKey(const ::testing::TestParamInfo<BadKey>& info) {
  return info.param.name;
}

class MalformedKeyTest : public StackTest<MalformedKeyTest>,
                         public ::testing::WithParamInterface<BadKey> {
 public:
  static std::string Config() { return DefaultConfig(); }
};

TEST_P(MalformedKeyTest, Is400AndNeverReachesTheUpstream) {
  uint64_t before = upstream().Total();
  HttpRequest request = Post("/work", "{}");
  request.Header("Idempotency-Key", GetParam().header_value);
  HttpResponse response = Send(request);
  EXPECT_TRUE(IsProblem(response, 400, GetParam().slug));
  EXPECT_EQ(upstream().Total(), before);
}

INSTANTIATE_TEST_SUITE_P(
    Keys, MalformedKeyTest,
    ::testing::Values(BadKey{"Empty", ""}, BadKey{"EmptyString", "\"\""},
                      BadKey{"Bare256", std::string(256, 'a')},
                      BadKey{"Quoted256", "\"" + std::string(256, 'q') + "\""},
                      BadKey{"NonAsciiUtf8", "\"caf\xC3\xA9\""},
                      BadKey{"NonAsciiByte", "\"abc\xFF\""},
                      BadKey{"ControlByte", "\"a\x01z\"", ""}, BadKey{"Tab", "\"a\tz\""},
                      BadKey{"Unterminated", "\"abc"},
                      BadKey{"TrailingBytes", "\"abc\"def"},
                      BadKey{"BadEscape", "\"a\\qb\""}, BadKey{"List", "\"a\", \"b\""},
                      BadKey{"BareWithSpace", "a b"}, BadKey{"BareWithQuote", "ab\"c"}),
    PrintBadKey);

class KeyBoundaryTest : public StackTest<KeyBoundaryTest> {
 public:
  static std::string Config() { return DefaultConfig(); }
};

TEST_F(KeyBoundaryTest, TwoKeyLinesAre400) {
  uint64_t before = upstream().Total();
  std::string key = UniqueKey();
  for (const std::string& second : {key + "-other", key}) {
    HttpRequest request = Post("/work", "{}");
    request.Header("Idempotency-Key", "\"" + key + "\"");
    request.Header("Idempotency-Key", "\"" + second + "\"");
    EXPECT_TRUE(IsProblem(Send(request), 400, "duplicate-key-header"));
  }
  EXPECT_EQ(upstream().Total(), before);
}

TEST_F(KeyBoundaryTest, KeyOf255CharactersIsAccepted) {
  std::string key = UniqueKey();
  key += std::string(255 - key.size(), 'x');
  HttpResponse quoted = Send(KeyedPost("/work", key));
  EXPECT_EQ(quoted.status, 200) << quoted.Describe();
  HttpRequest bare = Post("/work", "{}");
  bare.Header("Idempotency-Key", key);
  EXPECT_TRUE(IsReplayOf(Send(bare), quoted));
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(KeyBoundaryTest, EscapedQuoteIsPartOfTheKey) {
  std::string key = UniqueKey();
  HttpRequest request = Post("/work", "{}");
  request.Header("Idempotency-Key", "\"" + key + "\\\"x\\\\y\"");
  HttpResponse response = Send(request);
  EXPECT_EQ(response.status, 200) << response.Describe();
  EXPECT_EQ(upstream().Count(key + "\"x\\y"), 1u);
}

TEST_F(KeyBoundaryTest, WhiteSpaceAroundTheValueIsIgnored) {
  std::string key = UniqueKey();
  HttpRequest padded = Post("/work", "{}");
  padded.Header("Idempotency-Key", "  \"" + key + "\"\t");
  HttpResponse first = Send(padded);
  ASSERT_EQ(first.status, 200) << first.Describe();
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost("/work", key)), first));
}

TEST_F(KeyBoundaryTest, HeaderNameIsCaseInsensitive) {
  std::string key = UniqueKey();
  HttpRequest lower = Post("/work", "{}");
  lower.Header("idempotency-key", "\"" + key + "\"");
  HttpResponse first = Send(lower);
  ASSERT_EQ(first.status, 200) << first.Describe();
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost("/work", key)), first));
}

}  // namespace
}  // namespace idem::e2e
