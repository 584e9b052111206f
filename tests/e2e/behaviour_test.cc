// DESIGN.md "HTTP behaviour of idem serve", row by row, against the real
// gateway and a counting upstream.
#include <gtest/gtest.h>

#include "stack_fixture.h"

namespace idem::e2e {
namespace {

class BehaviourTest : public StackTest<BehaviourTest> {
 public:
  static std::string Config() { return DefaultConfig(); }
};

// Row: method not covered -> forwarded untouched, no store access.
TEST_F(BehaviourTest, MethodNotCoveredIsForwardedUntouched) {
  std::string key = UniqueKey();
  for (std::string method : {"GET", "DELETE", "GET"}) {
    HttpRequest request;
    request.method = method;
    request.target = "/work";
    request.Header("Idempotency-Key", "\"" + key + "\"");
    HttpResponse response = Send(request);
    ASSERT_TRUE(IsFresh(response));
    EXPECT_EQ(response.status, 200) << response.Describe();
  }
  EXPECT_EQ(upstream().Count(key), 3u) << "every uncovered request must execute";
  auto seen = upstream().Last(key);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->Header("Idempotency-Key"), "\"" + key + "\"");
  EXPECT_FALSE(seen->Header("Idempotency-Fence").has_value()) << seen->Describe();
}

// Row: no key, route does not require one -> forwarded untouched.
TEST_F(BehaviourTest, NoKeyIsForwardedEveryTime) {
  uint64_t before = upstream().Total();
  HttpResponse first = Send(Post("/work", "{\"a\":1}"));
  HttpResponse second = Send(Post("/work", "{\"a\":1}"));
  ASSERT_TRUE(IsFresh(first));
  ASSERT_TRUE(IsFresh(second));
  EXPECT_EQ(first.status, 200);
  EXPECT_NE(first.body, second.body) << "both must be executions of their own";
  EXPECT_EQ(upstream().Total(), before + 2);
  auto seen = upstream().Last();
  ASSERT_TRUE(seen.has_value());
  EXPECT_FALSE(seen->Header("Idempotency-Fence").has_value()) << seen->Describe();
}

// Row: no key, route requires one -> 400 problem+json with a describedby link.
TEST_F(BehaviourTest, MissingRequiredKeyIs400WithDescribedByLink) {
  uint64_t before = upstream().Total();
  HttpResponse response = Send(Post("/payments", PaymentBody()));
  EXPECT_TRUE(IsProblem(response, 400, "missing-key"));
  auto link = response.Header("Link");
  ASSERT_TRUE(link.has_value()) << response.Describe();
  EXPECT_NE(link->find("rel=\"describedby\""), std::string::npos) << *link;
  EXPECT_EQ(link->front(), '<') << *link;
  EXPECT_EQ(upstream().Total(), before);
}

// Row: new key -> forwarded with the key kept and the fence added.
TEST_F(BehaviourTest, NewKeyExecutesOnceWithFenceAndForwardingHeaders) {
  std::string key = UniqueKey();
  HttpResponse response = Send(KeyedPost("/payments", key, PaymentBody(4200, "usd")));
  ASSERT_TRUE(IsFresh(response));
  EXPECT_EQ(response.status, 201) << response.Describe();
  EXPECT_NE(response.body.find("\"amount\":4200"), std::string::npos);
  EXPECT_EQ(upstream().Count(key), 1u);
  auto seen = upstream().Last(key);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->Header("Idempotency-Key"), "\"" + key + "\"") << seen->Describe();
  EXPECT_EQ(seen->Header("Idempotency-Fence"), "1") << seen->Describe();
  auto forwarded_for = seen->Header("X-Forwarded-For");
  ASSERT_TRUE(forwarded_for.has_value()) << seen->Describe();
  EXPECT_NE(forwarded_for->find("127.0.0.1"), std::string::npos) << *forwarded_for;
  auto forwarded = seen->Header("Forwarded");
  ASSERT_TRUE(forwarded.has_value()) << seen->Describe();
  EXPECT_NE(forwarded->find("for="), std::string::npos) << *forwarded;
  EXPECT_NE(forwarded->find("127.0.0.1"), std::string::npos) << *forwarded;
}

TEST_F(BehaviourTest, HopByHopRequestHeadersAreNotForwarded) {
  std::string key = UniqueKey();
  HttpRequest request = KeyedPost("/work", key);
  request.Header("Connection", "keep-alive, X-Foo")
      .Header("X-Foo", "connection-specific")
      .Header("Keep-Alive", "timeout=5")
      .Header("TE", "trailers")
      .Header("Proxy-Connection", "keep-alive")
      .Header("X-End-To-End", "kept");
  HttpResponse response = Send(request);
  ASSERT_EQ(response.status, 200) << response.Describe();
  auto seen = upstream().Last(key);
  ASSERT_TRUE(seen.has_value());
  for (std::string_view name : {"X-Foo", "Keep-Alive", "TE", "Proxy-Connection"}) {
    EXPECT_FALSE(seen->Header(name).has_value()) << name << " reached the upstream\n"
                                                 << seen->Describe();
  }
  for (const auto& value : seen->HeaderValues("Connection")) {
    EXPECT_EQ(value.find("X-Foo"), std::string::npos) << value;
  }
  EXPECT_EQ(seen->Header("X-End-To-End"), "kept");
}

TEST_F(BehaviourTest, UpgradeHeaderIsNotForwarded) {
  std::string key = UniqueKey();
  HttpRequest request = KeyedPost("/work", key);
  request.Header("Upgrade", "example/1");
  HttpResponse response = Send(request);
  ASSERT_EQ(response.status, 200) << response.Describe();
  auto seen = upstream().Last(key);
  ASSERT_TRUE(seen.has_value());
  EXPECT_FALSE(seen->Header("Upgrade").has_value()) << seen->Describe();
}

// Row: same scope key, same fingerprint, completed -> replay byte for byte.
TEST_F(BehaviourTest, ReplayIsByteForByteWithReplayedHeader) {
  std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/payments", key, PaymentBody()));
  ASSERT_TRUE(IsFresh(first));
  ASSERT_EQ(first.status, 201) << first.Describe();
  ASSERT_TRUE(first.HasHeader("Location"));
  HttpResponse second = Send(KeyedPost("/payments", key, PaymentBody()));
  EXPECT_TRUE(IsReplayOf(second, first));
  HttpResponse third = Send(KeyedPost("/payments", key, PaymentBody()));
  EXPECT_TRUE(IsReplayOf(third, first));
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(BehaviourTest, UpstreamHopByHopResponseHeadersAreNeitherSentNorReplayed) {
  std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/work?hop=1", key));
  ASSERT_EQ(first.status, 200) << first.Describe();
  HttpResponse replay = Send(KeyedPost("/work?hop=1", key));
  for (const HttpResponse* response : {&first, &replay}) {
    EXPECT_FALSE(response->HasHeader("X-Hop")) << response->Describe();
    EXPECT_FALSE(response->HasHeader("Keep-Alive")) << response->Describe();
  }
  EXPECT_TRUE(IsReplayOf(replay, first));
  EXPECT_EQ(upstream().Count(key), 1u);
}

// Row: same scope key, other fingerprint -> 422.
TEST_F(BehaviourTest, OtherBodyWithSameKeyIs422) {
  std::string key = UniqueKey();
  ASSERT_EQ(Send(KeyedPost("/payments", key, PaymentBody(100))).status, 201);
  HttpResponse response = Send(KeyedPost("/payments", key, PaymentBody(999)));
  EXPECT_TRUE(IsProblem(response, 422, "key-mismatch"));
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(BehaviourTest, OtherPathWithSameKeyIsAnotherOperation) {
  std::string key = UniqueKey();
  EXPECT_EQ(Send(KeyedPost("/work-a", key)).status, 200);
  HttpResponse other = Send(KeyedPost("/work-b", key));
  EXPECT_TRUE(IsFresh(other));
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(upstream().Count(key), 2u);
}

TEST_F(BehaviourTest, QuotedAndBareFormsAreOneKey) {
  std::string key = UniqueKey();
  HttpRequest quoted = Post("/payments", PaymentBody());
  quoted.Header("Idempotency-Key", "\"" + key + "\"");
  HttpRequest bare = Post("/payments", PaymentBody());
  bare.Header("Idempotency-Key", key);
  HttpResponse first = Send(quoted);
  ASSERT_EQ(first.status, 201) << first.Describe();
  EXPECT_TRUE(IsReplayOf(Send(bare), first));
  EXPECT_EQ(upstream().Count(key), 1u);
}

// Row: same scope key from another tenant -> its own execution.
TEST_F(BehaviourTest, TenantsNeverSeeEachOthersResults) {
  std::string key = UniqueKey();
  HttpRequest alice = KeyedPost("/payments", key, PaymentBody());
  alice.Header("Authorization", "Bearer alice-token");
  HttpRequest bob = KeyedPost("/payments", key, PaymentBody());
  bob.Header("Authorization", "Bearer bob-token");
  HttpResponse alice_first = Send(alice);
  HttpResponse bob_first = Send(bob);
  ASSERT_TRUE(IsFresh(alice_first));
  ASSERT_TRUE(IsFresh(bob_first)) << "bob got alice's result";
  EXPECT_EQ(alice_first.status, 201);
  EXPECT_EQ(bob_first.status, 201);
  EXPECT_NE(alice_first.body, bob_first.body);
  EXPECT_EQ(upstream().Count(key), 2u);
  EXPECT_TRUE(IsReplayOf(Send(alice), alice_first));
  EXPECT_TRUE(IsReplayOf(Send(bob), bob_first));
  HttpResponse anonymous = Send(KeyedPost("/payments", key, PaymentBody()));
  EXPECT_TRUE(IsFresh(anonymous)) << "a request without credentials is a third tenant";
  EXPECT_EQ(upstream().Count(key), 3u);
}

// Row: upstream 5xx, default on_server_error = "release".
TEST_F(BehaviourTest, ServerErrorIsReleasedAndTheRetryExecutes) {
  std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/status/500", key));
  EXPECT_EQ(first.status, 500) << first.Describe();
  EXPECT_TRUE(IsFresh(first));
  HttpResponse retry = Send(KeyedPost("/status/500", key));
  EXPECT_EQ(retry.status, 500);
  EXPECT_TRUE(IsFresh(retry));
  EXPECT_NE(first.body, retry.body);
  EXPECT_EQ(upstream().Count(key), 2u);
  auto seen = upstream().Last(key);
  ASSERT_TRUE(seen.has_value());
  EXPECT_TRUE(seen->Header("Idempotency-Fence").has_value());
}

// Row: upstream 5xx with on_server_error = "store" -> saved and replayed.
TEST_F(BehaviourTest, ServerErrorIsStoredWhenTheRouteSaysSo) {
  std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/stored5xx/status/503", key));
  EXPECT_EQ(first.status, 503) << first.Describe();
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost("/stored5xx/status/503", key)), first));
  EXPECT_EQ(upstream().Count(key), 1u);
}

// Stored statuses: 2xx and 4xx except 408, 409, 425, 429.
class StoredStatusTest : public StackTest<StoredStatusTest>,
                         public ::testing::WithParamInterface<int> {
 public:
  static std::string Config() { return DefaultConfig(); }
};

TEST_P(StoredStatusTest, IsReplayed) {
  std::string key = UniqueKey();
  std::string target = "/status/" + std::to_string(GetParam());
  HttpResponse first = Send(KeyedPost(target, key));
  ASSERT_EQ(first.status, GetParam()) << first.Describe();
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost(target, key)), first));
  EXPECT_EQ(upstream().Count(key), 1u);
}

INSTANTIATE_TEST_SUITE_P(TwoAndFourHundreds, StoredStatusTest,
                         ::testing::Values(200, 201, 202, 400, 403, 404, 422));

class NotStoredStatusTest : public StackTest<NotStoredStatusTest>,
                            public ::testing::WithParamInterface<int> {
 public:
  static std::string Config() { return DefaultConfig(); }
};

TEST_P(NotStoredStatusTest, ExecutesAgain) {
  std::string key = UniqueKey();
  std::string target = "/status/" + std::to_string(GetParam());
  HttpResponse first = Send(KeyedPost(target, key));
  EXPECT_EQ(first.status, GetParam()) << first.Describe();
  HttpResponse retry = Send(KeyedPost(target, key));
  EXPECT_EQ(retry.status, GetParam()) << retry.Describe();
  EXPECT_TRUE(IsFresh(retry));
  EXPECT_NE(first.body, retry.body) << "the retry must be a new execution";
  EXPECT_EQ(upstream().Count(key), 2u);
}

INSTANTIATE_TEST_SUITE_P(RetryableStatuses, NotStoredStatusTest,
                         ::testing::Values(408, 409, 425, 429, 500, 502, 503));

// Fingerprint mode "json": canonical JSON, so reordering is not a mismatch.
TEST_F(BehaviourTest, JsonFingerprintIgnoresOrderAndWhiteSpace) {
  std::string key = UniqueKey();
  HttpResponse first =
      Send(KeyedPost("/json/work", key, R"({"a":1,"b":[1,2],"c":{"x":"y"}})"));
  ASSERT_EQ(first.status, 200) << first.Describe();
  HttpResponse reordered =
      Send(KeyedPost("/json/work", key, R"({ "c": {"x": "y"}, "b": [1, 2], "a": 1 })"));
  EXPECT_TRUE(IsReplayOf(reordered, first));
  HttpResponse changed =
      Send(KeyedPost("/json/work", key, R"({"a":2,"b":[1,2],"c":{"x":"y"}})"));
  EXPECT_TRUE(IsProblem(changed, 422, "key-mismatch"));
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(BehaviourTest, JsonFingerprintRejectsInvalidJson) {
  std::string key = UniqueKey();
  uint64_t before = upstream().Total();
  HttpResponse response = Send(KeyedPost("/json/work", key, "{\"a\":"));
  EXPECT_TRUE(IsProblem(response, 400, "invalid-json-body"));
  EXPECT_EQ(upstream().Total(), before);
}

TEST_F(BehaviourTest, BodyFingerprintTellsReorderedJsonApart) {
  std::string key = UniqueKey();
  ASSERT_EQ(Send(KeyedPost("/work", key, R"({"a":1,"b":2})")).status, 200);
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/work", key, R"({"b":2,"a":1})")), 422));
  EXPECT_EQ(upstream().Count(key), 1u);
}

// A response larger than max_stored_body (32 KiB here) reaches the client
// whole, and a retry never executes again: it gets 410 response-not-stored
// (docs/http.md).
TEST_F(BehaviourTest, ResponseLargerThanMaxStoredBodyIsDeliveredButNotReExecuted) {
  std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/big?bytes=100000", key));
  ASSERT_EQ(first.status, 200) << first.Describe();
  EXPECT_EQ(first.body.size(), 100000u);
  EXPECT_EQ(first.body.substr(0, 26), "abcdefghijklmnopqrstuvwxyz");
  EXPECT_TRUE(IsFresh(first));
  HttpResponse retry = Send(KeyedPost("/big?bytes=100000", key));
  EXPECT_EQ(upstream().Count(key), 1u) << "a retry executed the request again";
  EXPECT_TRUE(IsProblem(retry, 410, "response-not-stored"));
}

TEST_F(BehaviourTest, ReplayOfAnEmptyAndABinaryBody) {
  std::string key = UniqueKey();
  static constexpr char kBinary[] = "\x00\x01\xff\xfe binary\r\n\r\n";
  std::string binary(kBinary, sizeof(kBinary) - 1);
  HttpResponse first = Send(KeyedPost("/echo", key, binary, "application/octet-stream"));
  ASSERT_EQ(first.status, 200) << first.Describe();
  EXPECT_EQ(first.body, binary);
  EXPECT_TRUE(IsReplayOf(
      Send(KeyedPost("/echo", key, binary, "application/octet-stream")), first));
  std::string empty_key = UniqueKey("empty");
  HttpResponse no_content = Send(KeyedPost("/status/204", empty_key, ""));
  ASSERT_EQ(no_content.status, 204) << no_content.Describe();
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost("/status/204", empty_key, "")), no_content));
}

}  // namespace
}  // namespace idem::e2e
