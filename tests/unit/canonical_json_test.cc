#include "idem/canonical_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace idem {
namespace {

using ::testing::HasSubstr;

std::string Canon(std::string_view text) {
  Result<std::string> out = CanonicalizeJson(text);
  EXPECT_TRUE(out.ok()) << "for " << text << ": " << out.status();
  return out.ok() ? *out : std::string("<error>");
}

void ExpectInvalid(std::string_view text) {
  Result<std::string> out = CanonicalizeJson(text);
  ASSERT_FALSE(out.ok()) << "accepted " << text << " as " << *out;
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << text;
  EXPECT_THAT(out.status().message(), HasSubstr("at byte offset")) << text;
}

TEST(CanonicalizeJsonTest, SortsKeysAndDropsWhiteSpace) {
  EXPECT_EQ(Canon(R"( { "b" : 1 , "a" : [ 1 , 2 ] } )"), R"({"a":[1,2],"b":1})");
  EXPECT_EQ(Canon(R"({"a":1,"b":2})"), Canon(R"({"b":2,"a":1})"));
  EXPECT_EQ(Canon("\n\t{\r\n\"x\" :\ttrue}\n"), R"({"x":true})");
}

TEST(CanonicalizeJsonTest, KeysSortByBytes) {
  // Upper case before lower case, shorter prefix first, UTF-8 after ASCII.
  EXPECT_EQ(Canon(R"({"b":0,"a":0,"B":0,"ab":0,"é":0,"~":0})"),
            R"({"B":0,"a":0,"ab":0,"b":0,"~":0,"é":0})");
}

TEST(CanonicalizeJsonTest, NestedValuesAreCanonicalized) {
  EXPECT_EQ(Canon(R"({"z":{"y":[{"b":1,"a":2},[],{}],"x":null},"a":[[[]]]})"),
            R"({"a":[[[]]],"z":{"x":null,"y":[{"a":2,"b":1},[],{}]}})");
  // Array order is significant and kept.
  EXPECT_EQ(Canon("[3, 1, 2]"), "[3,1,2]");
}

TEST(CanonicalizeJsonTest, ScalarsAtTheTop) {
  EXPECT_EQ(Canon(" true "), "true");
  EXPECT_EQ(Canon("false"), "false");
  EXPECT_EQ(Canon("null"), "null");
  EXPECT_EQ(Canon(" \"x\" "), "\"x\"");
  EXPECT_EQ(Canon(" 42 "), "42");
}

TEST(CanonicalizeJsonTest, NumbersKeepTheirExactText) {
  EXPECT_EQ(Canon("[1.0,1,1e2,1E2,1e+2,100,-0,0.10,1.1]"),
            "[1.0,1,1e2,1E2,1e+2,100,-0,0.10,1.1]");
  EXPECT_NE(Canon("1.0"), Canon("1"));
  EXPECT_NE(Canon("1.10"), Canon("1.1"));
  EXPECT_EQ(Canon("12345678901234567890"), "12345678901234567890");
  EXPECT_EQ(Canon("123456789012345678901234567890"), "123456789012345678901234567890");
  EXPECT_EQ(Canon("-9223372036854775809"), "-9223372036854775809");
  EXPECT_EQ(Canon("1.00000000000000000000000001"), "1.00000000000000000000000001");
  EXPECT_EQ(Canon("1e400"), "1e400");
}

TEST(CanonicalizeJsonTest, StringEscapesAreNormalized) {
  EXPECT_EQ(Canon(R"("\u0041")"), Canon(R"("A")"));
  EXPECT_EQ(Canon(R"("\u0041")"), R"("A")");
  EXPECT_EQ(Canon(R"("\/")"), R"("/")");
  EXPECT_EQ(Canon(R"("\u00e9")"), "\"\xC3\xA9\"");  // é kept as UTF-8
  EXPECT_EQ(Canon("\"\xC3\xA9\""), "\"\xC3\xA9\"");
  EXPECT_EQ(Canon(R"("\ud83d\ude00")"), "\"\xF0\x9F\x98\x80\"");  // 😀
  EXPECT_EQ(Canon(R"("\"\\")"), R"("\"\\")");
  EXPECT_EQ(Canon(R"("\b\f\n\r\t")"), R"("\b\f\n\r\t")");
  EXPECT_EQ(Canon(R"("\u0008\u000C\u000a")"), R"("\b\f\n")");
  EXPECT_EQ(Canon(R"("\u0000\u001F\u007f")"), "\"\\u0000\\u001f\x7F\"");
}

TEST(CanonicalizeJsonTest, KeysAreEscapedAndUnescapedToo) {
  EXPECT_EQ(Canon(R"({"\u0062":1,"a\n":2})"), R"({"a\n":2,"b":1})");
  ExpectInvalid(R"({"a":1,"\u0061":2})");  // the same name twice
}

TEST(CanonicalizeJsonTest, LongStringsAreKeptWhole) {
  // Long strings with escapes reach the handler in several parts.
  std::string text = "\"";
  std::string expected = "\"";
  for (int i = 0; i < 5000; ++i) {
    text += "ab\\u0063\\n";
    expected += "abc\\n";
  }
  text += "\"";
  expected += "\"";
  EXPECT_EQ(Canon(text), expected);
}

TEST(CanonicalizeJsonTest, DuplicateKeysAreRejected) {
  ExpectInvalid(R"({"a":1,"a":1})");
  ExpectInvalid(R"({"a":1,"b":2,"a":3})");
  ExpectInvalid(R"([{"x":{"k":1,"k":2}}])");
  Result<std::string> out = CanonicalizeJson(R"({"a":1,"a":2})");
  EXPECT_THAT(out.status().message(), HasSubstr("duplicate"));
  // The same name in different objects is fine.
  EXPECT_EQ(Canon(R"({"a":{"a":1}})"), R"({"a":{"a":1}})");
}

TEST(CanonicalizeJsonTest, MalformedInputIsRejected) {
  for (const char* text : {
           "",                   // nothing
           "   ",                // only white space
           "{",                  // truncated
           R"({"a":)",           // truncated
           R"({"a":1)",          // truncated
           "[1,2",               // truncated
           R"("abc)",            // unterminated string
           "1 2",                // two values
           "{} x",               // trailing garbage
           "[1,]",               // trailing comma
           R"({"a":1,})",        // trailing comma
           "/* c */ 1",          // comment
           "1 // c",             // comment
           "NaN",                // not JSON
           "Infinity",           // not JSON
           "-",                  // incomplete number
           "01",                 // leading zero
           "1.",                 // incomplete fraction
           "+1",                 // plus sign
           "'a'",                // single quotes
           R"({a:1})",           // unquoted key
           R"("\ud800")",        // lone high surrogate
           R"("\udc00")",        // lone low surrogate
           R"("\ud800\u0041")",  // high surrogate without its pair
           R"("\x")",            // bad escape
           "\"a\tb\"",           // raw control character in a string
           "\"\xFF\"",           // invalid UTF-8
           "\"\xC3\"",           // truncated UTF-8
           "\"\xC0\xAF\"",       // overlong UTF-8
           "tru",                // truncated literal
       }) {
    ExpectInvalid(text);
  }
}

TEST(CanonicalizeJsonTest, ErrorReportsTheByteOffset) {
  Result<std::string> out = CanonicalizeJson("{\"a\":1} x");
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("at byte offset 8"));
  out = CanonicalizeJson("[1,]");
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("at byte offset 3"));
}

TEST(CanonicalizeJsonTest, DeepNestingIsRejectedWithoutCrashing) {
  for (const size_t depth : {65u, 1000u, 100000u}) {
    const std::string arrays = std::string(depth, '[') + std::string(depth, ']');
    ExpectInvalid(arrays);
    std::string objects;
    for (size_t i = 0; i < depth; ++i) objects += "{\"a\":";
    objects += "1" + std::string(depth, '}');
    ExpectInvalid(objects);
  }
  Result<std::string> out = CanonicalizeJson(std::string(100, '['));
  EXPECT_THAT(out.status().message(), HasSubstr("nesting deeper than 64"));
}

TEST(CanonicalizeJsonTest, SixtyFourLevelsAreAccepted) {
  const std::string text = std::string(64, '[') + std::string(64, ']');
  EXPECT_EQ(Canon(text), text);
}

TEST(CanonicalizeJsonTest, CanonicalFormIsAFixedPoint) {
  for (const char* text :
       {R"({"b":[1,{"d":"\u00e9","c":null}],"a":"x\ty"})", "[]", "{}", R"(["\u0001"])"}) {
    const std::string once = Canon(text);
    EXPECT_EQ(Canon(once), once);
  }
}

class CanonicalJsonAtTest : public ::testing::Test {
 protected:
  static constexpr std::string_view kDoc = R"({
    "amount": 100,
    "currency": "EUR",
    "customer": {"name": "Ann", "tags": ["b", "a"]},
    "items": [{"sku": "x", "qty": 2}, {"sku": "y", "qty": 1}],
    "a/b": 1,
    "m~n": 2,
    "": 3,
    "nil": null
  })";

  static std::string At(std::string_view pointer) {
    Result<std::string> out = CanonicalJsonAt(kDoc, pointer);
    EXPECT_TRUE(out.ok()) << pointer << ": " << out.status();
    return out.ok() ? *out : std::string("<error>");
  }
  static StatusCode CodeAt(std::string_view pointer) {
    return CanonicalJsonAt(kDoc, pointer).status().code();
  }
};

TEST_F(CanonicalJsonAtTest, SelectsMembers) {
  EXPECT_EQ(At("/amount"), "100");
  EXPECT_EQ(At("/currency"), "\"EUR\"");
  EXPECT_EQ(At("/customer"), R"({"name":"Ann","tags":["b","a"]})");
  EXPECT_EQ(At("/customer/name"), "\"Ann\"");
  EXPECT_EQ(At("/nil"), "null");
}

TEST_F(CanonicalJsonAtTest, EmptyPointerIsTheWholeDocument) {
  EXPECT_EQ(At(""), *CanonicalizeJson(kDoc));
}

TEST_F(CanonicalJsonAtTest, SelectsArrayElements) {
  EXPECT_EQ(At("/items/0"), R"({"qty":2,"sku":"x"})");
  EXPECT_EQ(At("/items/1/sku"), "\"y\"");
  EXPECT_EQ(At("/customer/tags/1"), "\"a\"");
}

TEST_F(CanonicalJsonAtTest, EscapedTokens) {
  EXPECT_EQ(At("/a~1b"), "1");
  EXPECT_EQ(At("/m~0n"), "2");
  EXPECT_EQ(At("/"), "3");  // the member named ""
  EXPECT_EQ(CodeAt("/a/b"), StatusCode::kNotFound);
  EXPECT_EQ(CodeAt("/m~1n"), StatusCode::kNotFound);
}

TEST_F(CanonicalJsonAtTest, MissingValuesAreNotFound) {
  for (std::string_view pointer :
       {"/missing", "/customer/age", "/items/2", "/items/-", "/items/01", "/items/00",
        "/items/x", "/items/-1", "/items/1e0", "/items/ 1",
        "/items/99999999999999999999999", "/amount/0", "/currency/x", "/nil/x",
        "/customer/tags/0/0", "/customer/"}) {
    EXPECT_EQ(CodeAt(pointer), StatusCode::kNotFound) << pointer;
  }
}

TEST_F(CanonicalJsonAtTest, MalformedPointersAreInvalid) {
  for (std::string_view pointer :
       {"amount", "#/amount", "/a~2b", "/a~", "~0", "/missing/~x"}) {
    EXPECT_EQ(CodeAt(pointer), StatusCode::kInvalidArgument) << pointer;
  }
}

TEST(CanonicalJsonAtErrors, MalformedTextIsInvalid) {
  EXPECT_EQ(CanonicalJsonAt("{", "/a").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CanonicalJsonAt(R"({"a":1,"a":2})", "/b").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(CanonicalJsonAtErrors, ArrayAtTheTop) {
  EXPECT_EQ(*CanonicalJsonAt("[10,20]", "/1"), "20");
  EXPECT_EQ(CanonicalJsonAt("[10,20]", "/2").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace idem
