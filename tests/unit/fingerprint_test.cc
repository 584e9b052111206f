#include "idem/fingerprint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace idem {
namespace {

using ::testing::HasSubstr;

TEST(Sha256Test, KnownAnswers) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256("abc").size(), 32u);
}

TEST(HmacSha256Test, KnownAnswers) {
  // RFC 4231, test case 2.
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // RFC 4231, test case 6: a key longer than the block size.
  EXPECT_EQ(HexEncode(HmacSha256(std::string(131, '\xAA'),
                                 "Test Using Larger Than Block-Size Key - "
                                 "Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256Test, EmptyKeyWorks) {
  EXPECT_EQ(HexEncode(HmacSha256("", "")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(HexEncodeTest, LowerCase) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\x0f\xab\xff", 4)), "000fabff");
}

TEST(FingerprintModeTest, NamesRoundTrip) {
  for (FingerprintMode mode : {FingerprintMode::kBody, FingerprintMode::kJson,
                               FingerprintMode::kFields, FingerprintMode::kNone}) {
    Result<FingerprintMode> parsed = ParseFingerprintMode(FingerprintModeName(mode));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, mode);
  }
  EXPECT_EQ(FingerprintModeName(FingerprintMode::kBody), "body");
  EXPECT_EQ(FingerprintModeName(FingerprintMode::kJson), "json");
  EXPECT_EQ(FingerprintModeName(FingerprintMode::kFields), "fields");
  EXPECT_EQ(FingerprintModeName(FingerprintMode::kNone), "none");
}

TEST(FingerprintModeTest, UnknownNameIsRejected) {
  for (std::string_view name : {"", "Body", "raw", "json "}) {
    Result<FingerprintMode> parsed = ParseFingerprintMode(name);
    ASSERT_FALSE(parsed.ok()) << name;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr("body, json, fields, none"));
  }
}

class FingerprintTest : public ::testing::Test {
 protected:
  FingerprintInput Base() const {
    return {"POST", "/payments?x=1", "application/json",
            R"({"amount":100,"currency":"EUR","note":"hi"})"};
  }

  static std::string Fp(FingerprintMode mode, const FingerprintInput& input,
                        const std::vector<std::string>& fields = {}) {
    Result<std::string> fp = ComputeFingerprint(mode, input, fields);
    EXPECT_TRUE(fp.ok()) << fp.status();
    return fp.ok() ? *fp : std::string("<error>");
  }
};

TEST_F(FingerprintTest, IsARaw32ByteDigestAndDeterministic) {
  for (FingerprintMode mode :
       {FingerprintMode::kBody, FingerprintMode::kJson, FingerprintMode::kFields}) {
    const std::string fp = Fp(mode, Base(), {"/amount"});
    EXPECT_EQ(fp.size(), 32u);
    EXPECT_EQ(fp, Fp(mode, Base(), {"/amount"}));
  }
}

TEST_F(FingerprintTest, NoneIsEmpty) {
  EXPECT_EQ(Fp(FingerprintMode::kNone, Base()), "");
  FingerprintInput garbage = Base();
  garbage.body = "{not json";
  EXPECT_EQ(Fp(FingerprintMode::kNone, garbage), "");
}

TEST_F(FingerprintTest, BodyModeSeesEveryPart) {
  const std::string base = Fp(FingerprintMode::kBody, Base());
  FingerprintInput in = Base();
  in.body = R"({"currency":"EUR","amount":100,"note":"hi"})";
  EXPECT_NE(Fp(FingerprintMode::kBody, in), base);
  in = Base();
  in.method = "PUT";
  EXPECT_NE(Fp(FingerprintMode::kBody, in), base);
  in = Base();
  in.path_with_query = "/payments?x=2";
  EXPECT_NE(Fp(FingerprintMode::kBody, in), base);
  in = Base();
  in.content_type = "text/plain";
  EXPECT_NE(Fp(FingerprintMode::kBody, in), base);
}

TEST_F(FingerprintTest, BodyModeAcceptsAnyBytes) {
  FingerprintInput in = Base();
  const std::string binary("\x00\xFF\x01{", 4);
  in.body = binary;
  EXPECT_EQ(Fp(FingerprintMode::kBody, in).size(), 32u);
}

TEST_F(FingerprintTest, PartsAreNotAmbiguous) {
  // Moving bytes from one part to the next must change the fingerprint.
  FingerprintInput a{"POST", "/ab", "c", "d"};
  FingerprintInput b{"POST", "/a", "bc", "d"};
  FingerprintInput c{"POST", "/ab", "", "cd"};
  EXPECT_NE(Fp(FingerprintMode::kBody, a), Fp(FingerprintMode::kBody, b));
  EXPECT_NE(Fp(FingerprintMode::kBody, a), Fp(FingerprintMode::kBody, c));
}

TEST_F(FingerprintTest, ModesDiffer) {
  FingerprintInput in = Base();
  in.body = "{}";
  EXPECT_NE(Fp(FingerprintMode::kBody, in), Fp(FingerprintMode::kJson, in));
  EXPECT_NE(Fp(FingerprintMode::kJson, in), Fp(FingerprintMode::kFields, in, {""}));
}

TEST_F(FingerprintTest, JsonModeIgnoresOrderAndWhiteSpace) {
  FingerprintInput in = Base();
  in.body = R"(  { "note" : "hi", "currency":"EUR",
                   "amount" : 100 } )";
  EXPECT_EQ(Fp(FingerprintMode::kJson, in), Fp(FingerprintMode::kJson, Base()));
  in.body = R"({"amount":100,"currency":"EUR","note":"ho"})";
  EXPECT_NE(Fp(FingerprintMode::kJson, in), Fp(FingerprintMode::kJson, Base()));
  in.body = R"({"amount":100.0,"currency":"EUR","note":"hi"})";
  EXPECT_NE(Fp(FingerprintMode::kJson, in), Fp(FingerprintMode::kJson, Base()));
}

TEST_F(FingerprintTest, JsonModeStillSeesMethodAndPath) {
  FingerprintInput in = Base();
  in.path_with_query = "/refunds";
  EXPECT_NE(Fp(FingerprintMode::kJson, in), Fp(FingerprintMode::kJson, Base()));
}

TEST_F(FingerprintTest, JsonModeRejectsMalformedBodies) {
  for (std::string_view body : {"", "{", R"({"a":1,"a":2})", "[1,]", "nope"}) {
    FingerprintInput in = Base();
    in.body = body;
    Result<std::string> fp = ComputeFingerprint(FingerprintMode::kJson, in);
    ASSERT_FALSE(fp.ok()) << body;
    EXPECT_EQ(fp.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(fp.status().message(), HasSubstr("request body is not valid JSON"));
  }
}

TEST_F(FingerprintTest, FieldsModeIgnoresUnlistedFields) {
  const std::vector<std::string> fields = {"/amount", "/currency"};
  FingerprintInput in = Base();
  in.body = R"({"currency":"EUR","amount":100,"note":"other","extra":[1]})";
  EXPECT_EQ(Fp(FingerprintMode::kFields, in, fields),
            Fp(FingerprintMode::kFields, Base(), fields));
  in.body = R"({"currency":"USD","amount":100,"note":"hi"})";
  EXPECT_NE(Fp(FingerprintMode::kFields, in, fields),
            Fp(FingerprintMode::kFields, Base(), fields));
}

TEST_F(FingerprintTest, FieldsModeCanonicalizesSelectedValues) {
  const std::vector<std::string> fields = {"/customer"};
  FingerprintInput a = Base();
  a.body = R"({"customer":{"id":1,"name":"Ann"}})";
  FingerprintInput b = Base();
  b.body = R"({"customer":{ "name":"Ann", "id":1 }})";
  EXPECT_EQ(Fp(FingerprintMode::kFields, a, fields),
            Fp(FingerprintMode::kFields, b, fields));
}

TEST_F(FingerprintTest, FieldsModeMissingDiffersFromNull) {
  const std::vector<std::string> fields = {"/amount"};
  FingerprintInput missing = Base();
  missing.body = R"({})";
  FingerprintInput null = Base();
  null.body = R"({"amount":null})";
  FingerprintInput text = Base();
  text.body = R"({"amount":"null"})";
  const std::string a = Fp(FingerprintMode::kFields, missing, fields);
  const std::string b = Fp(FingerprintMode::kFields, null, fields);
  const std::string c = Fp(FingerprintMode::kFields, text, fields);
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
}

TEST_F(FingerprintTest, FieldsModeDependsOnTheFieldList) {
  EXPECT_NE(Fp(FingerprintMode::kFields, Base(), {"/amount"}),
            Fp(FingerprintMode::kFields, Base(), {"/amount", "/currency"}));
  EXPECT_NE(Fp(FingerprintMode::kFields, Base(), {"/amount", "/currency"}),
            Fp(FingerprintMode::kFields, Base(), {"/currency", "/amount"}));
  // Both select nothing, but under different names.
  EXPECT_NE(Fp(FingerprintMode::kFields, Base(), {"/x"}),
            Fp(FingerprintMode::kFields, Base(), {"/y"}));
}

TEST_F(FingerprintTest, FieldsModeRejectsMalformedBodyOrPointer) {
  FingerprintInput in = Base();
  in.body = "{";
  Result<std::string> fp = ComputeFingerprint(FingerprintMode::kFields, in, {"/amount"});
  ASSERT_FALSE(fp.ok());
  EXPECT_EQ(fp.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(fp.status().message(), HasSubstr("request body is not valid JSON"));

  fp = ComputeFingerprint(FingerprintMode::kFields, Base(), {"amount"});
  ASSERT_FALSE(fp.ok());
  EXPECT_EQ(fp.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(fp.status().message(), HasSubstr("JSON pointer"));

  fp = ComputeFingerprint(FingerprintMode::kFields, Base(), {"/a~2"});
  ASSERT_FALSE(fp.ok());
  EXPECT_EQ(fp.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace idem
