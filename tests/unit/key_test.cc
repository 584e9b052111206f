#include "idem/key.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace idem {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string MustParse(std::string_view value) {
  Result<std::string> key = ParseIdempotencyKey(value);
  EXPECT_TRUE(key.ok()) << "for [" << value << "]: " << key.status();
  return key.ok() ? *key : std::string();
}

void ExpectRejected(std::string_view value, std::string_view message_part) {
  Result<std::string> key = ParseIdempotencyKey(value);
  ASSERT_FALSE(key.ok()) << "accepted [" << value << "]";
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(key.status().message(), HasSubstr(message_part));
}

TEST(ParseIdempotencyKeyTest, BareTokenAndSfStringAreTheSameKey) {
  EXPECT_EQ(MustParse("abc"), "abc");
  EXPECT_EQ(MustParse("\"abc\""), "abc");
  EXPECT_EQ(MustParse("8e03978e-40d5-43e8-bc93-6894a57f9324"),
            "8e03978e-40d5-43e8-bc93-6894a57f9324");
}

TEST(ParseIdempotencyKeyTest, OptionalWhiteSpaceAroundTheValueIsIgnored) {
  EXPECT_EQ(MustParse("  abc\t"), "abc");
  EXPECT_EQ(MustParse("\t \"abc\" \t"), "abc");
  EXPECT_EQ(MustParse(" \" a b \" "), " a b ");  // spaces inside are kept
}

TEST(ParseIdempotencyKeyTest, SfStringEscapes) {
  EXPECT_EQ(MustParse(R"("a\"b")"), "a\"b");
  EXPECT_EQ(MustParse(R"("a\\b")"), "a\\b");
  EXPECT_EQ(MustParse(R"("\\\"")"), "\\\"");
  EXPECT_EQ(MustParse(R"("\"ab\\cd\"")"), "\"ab\\cd\"");
  EXPECT_EQ(MustParse(R"("ab\"\"cd")"), "ab\"\"cd");
}

TEST(ParseIdempotencyKeyTest, SfStringAllowsAnyPrintableAscii) {
  std::string all;
  for (char c = 0x20; c <= 0x7E; ++c) {
    if (c == '"' || c == '\\') all.push_back('\\');
    all.push_back(c);
  }
  std::string expected;
  for (char c = 0x20; c <= 0x7E; ++c) expected.push_back(c);
  EXPECT_EQ(MustParse("\"" + all + "\""), expected);
}

TEST(ParseIdempotencyKeyTest, BareTokenAllowsPrintableAsciiExceptSpaceQuoteBackslash) {
  std::string token;
  for (char c = 0x21; c <= 0x7E; ++c) {
    if (c != '"' && c != '\\') token.push_back(c);
  }
  EXPECT_EQ(MustParse(token), token);
}

TEST(ParseIdempotencyKeyTest, EmptyIsRejected) {
  ExpectRejected("", "must not be empty");
  ExpectRejected("   ", "must not be empty");
  ExpectRejected(" \t", "must not be empty");
  ExpectRejected("\"\"", "must not be empty");
  ExpectRejected(" \"\" ", "must not be empty");
}

TEST(ParseIdempotencyKeyTest, LengthLimitIsAppliedAfterUnquoting) {
  const std::string max(kMaxIdempotencyKeyLength, 'k');
  const std::string over(kMaxIdempotencyKeyLength + 1, 'k');
  EXPECT_EQ(MustParse(max), max);
  EXPECT_EQ(MustParse("\"" + max + "\""), max);
  ExpectRejected(over, "at most 255 characters");
  ExpectRejected("\"" + over + "\"", "at most 255 characters");

  // 255 escaped quotes: 512 bytes on the wire, 255 characters unquoted.
  std::string escaped;
  for (size_t i = 0; i < kMaxIdempotencyKeyLength; ++i) escaped += "\\\"";
  EXPECT_EQ(MustParse("\"" + escaped + "\""), std::string(kMaxIdempotencyKeyLength, '"'));
  ExpectRejected("\"" + escaped + "\\\"\"", "at most 255 characters");
}

TEST(ParseIdempotencyKeyTest, NonPrintableBytesAreRejected) {
  for (const std::string& bad :
       {std::string("a\x7F"), std::string("a\0b", 3), std::string("a\x80"),
        std::string("\xC3\xA9t\xC3\xA9"), std::string("a\x01"), std::string("a\tb"),
        std::string("a\rb"), std::string("a\nb"), std::string("\xFF")}) {
    ExpectRejected(bad, "printable ASCII");
    ExpectRejected("\"" + bad + "\"", "printable ASCII");
  }
}

TEST(ParseIdempotencyKeyTest, EscapedNonPrintableIsRejected) {
  ExpectRejected("\"a\\\x01\"", "printable ASCII");
}

TEST(ParseIdempotencyKeyTest, UnterminatedSfStringIsRejected) {
  ExpectRejected("\"abc", "closing quote");
  ExpectRejected("\"", "closing quote");
  ExpectRejected("\"abc\\\"", "closing quote");  // the quote is escaped
  ExpectRejected("\"abc\\", "closing quote");
}

TEST(ParseIdempotencyKeyTest, BadEscapeIsRejected) {
  ExpectRejected(R"("a\nb")", "invalid escape");
  ExpectRejected(R"("a\u0041")", "invalid escape");
  ExpectRejected(R"("a\ b")", "invalid escape");
}

TEST(ParseIdempotencyKeyTest, BytesAfterTheClosingQuoteAreRejected) {
  ExpectRejected("\"abc\"def", "after the closing quote");
  ExpectRejected("\"abc\" x", "after the closing quote");
  ExpectRejected("\"abc\";p=1", "after the closing quote");
  ExpectRejected("\"a\", \"b\"", "after the closing quote");
}

TEST(ParseIdempotencyKeyTest, BareTokenWithSpaceQuoteOrBackslashIsRejected) {
  ExpectRejected("ab c", "spaces");
  ExpectRejected("ab\"c", "quotes or backslashes");
  ExpectRejected("abc\"", "quotes or backslashes");
  ExpectRejected("a\\b", "quotes or backslashes");
}

TEST(ParseIdempotencyKeyTest, MessagesNeverEchoTheValue) {
  const std::string secret = "SECRETVALUE";
  for (const std::string& bad : {secret + " x", "\"" + secret, "\"" + secret + "\\n\"",
                                 secret + std::string(300, 'z'), secret + "\x01"}) {
    Result<std::string> key = ParseIdempotencyKey(bad);
    ASSERT_FALSE(key.ok());
    EXPECT_THAT(key.status().message(), Not(HasSubstr(secret)));
  }
}

TEST(TenantIdTest, NoCredentialsIsAnonymous) {
  EXPECT_EQ(TenantId({}), "anonymous");
  EXPECT_EQ(TenantId({}, "secret"), "anonymous");
}

TEST(TenantIdTest, IsThirtyTwoLowerCaseHexCharacters) {
  const std::string id = TenantId({"Bearer abc"});
  ASSERT_EQ(id.size(), 32u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(TenantIdTest, SameCredentialSameTenant) {
  EXPECT_EQ(TenantId({"Bearer abc"}), TenantId({"Bearer abc"}));
  EXPECT_EQ(TenantId({"Bearer abc"}, "s"), TenantId({"Bearer abc"}, "s"));
}

TEST(TenantIdTest, DifferentCredentialsDifferentTenants) {
  EXPECT_NE(TenantId({"Bearer abc"}), TenantId({"Bearer abd"}));
  EXPECT_NE(TenantId({"a", "b"}), TenantId({"b", "a"}));
  EXPECT_NE(TenantId({""}), TenantId({"", ""}));
  EXPECT_NE(TenantId({""}), "anonymous");
}

TEST(TenantIdTest, ValuesAreJoinedUnambiguously) {
  EXPECT_NE(TenantId({"ab", "c"}), TenantId({"a", "bc"}));
  EXPECT_NE(TenantId({"abc"}), TenantId({"ab", "c"}));
}

TEST(TenantIdTest, SecretChangesTheId) {
  const std::vector<std::string> creds = {"Bearer abc"};
  EXPECT_NE(TenantId(creds), TenantId(creds, "secret-1"));
  EXPECT_NE(TenantId(creds, "secret-1"), TenantId(creds, "secret-2"));
}

TEST(TenantIdTest, RawCredentialNeverAppears) {
  const std::string credential = "abc123";
  for (std::string_view secret : {"", "k"}) {
    const std::string id = TenantId({credential}, secret);
    EXPECT_THAT(id, Not(HasSubstr(credential)));
  }
}

TEST(BuildScopeKeyTest, JoinsWithSpaces) {
  EXPECT_EQ(BuildScopeKey("anonymous", "POST", "/payments", "abc"),
            "anonymous POST /payments abc");
  EXPECT_EQ(BuildScopeKey("t", "PUT", "/x", " a b "), "t PUT /x  a b ");
}

TEST(BuildScopeKeyTest, TenantsDoNotShareKeys) {
  EXPECT_NE(BuildScopeKey(TenantId({"Bearer a"}), "POST", "/p", "k"),
            BuildScopeKey(TenantId({"Bearer b"}), "POST", "/p", "k"));
}

}  // namespace
}  // namespace idem
