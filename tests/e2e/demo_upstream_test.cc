// idem-demo-upstream on its own: the endpoints and counting controls every
// other end-to-end test relies on.
#include <gtest/gtest.h>

#include <csignal>

#include "harness.h"
#include "http_client.h"

namespace idem::e2e {
namespace {

class DemoUpstreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { upstream_ = Upstream::Start(error_); }
  static void TearDownTestSuite() { upstream_.reset(); }
  void SetUp() override {
    ASSERT_NE(upstream_, nullptr) << error_;
    upstream_->Reset();
  }
  void TearDown() override {
    if (HasFailure() && upstream_) std::cerr << upstream_->process().LogSince(0);
  }
  static HttpResponse Send(const HttpRequest& request) {
    return Fetch(upstream_->port(), request);
  }

  static inline std::unique_ptr<Upstream> upstream_;
  static inline std::string error_;
};

TEST_F(DemoUpstreamTest, PaymentIsCreatedAndCountedByKey) {
  HttpRequest request = Post("/payments", R"({"amount":1250,"currency":"eur"})");
  request.Header("Idempotency-Key", "\"pay-1\"");
  HttpResponse response = Send(request);
  ASSERT_TRUE(response.ok()) << response.error;
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.Header("Content-Type"), "application/json");
  EXPECT_NE(response.body.find(R"("amount":1250,"currency":"eur","status":"succeeded")"),
            std::string::npos)
      << response.body;
  auto location = response.Header("Location");
  ASSERT_TRUE(location.has_value());
  EXPECT_EQ(location->rfind("/payments/pay_", 0), 0u);
  EXPECT_EQ(upstream_->Count("pay-1"), 1u);
  EXPECT_EQ(upstream_->Total(), 1u);
}

TEST_F(DemoUpstreamTest, QuotedAndBareKeysCountAsOne) {
  HttpRequest quoted = Post("/work", "{}");
  quoted.Header("Idempotency-Key", "\"same\"");
  HttpRequest bare = Post("/work", "{}");
  bare.Header("Idempotency-Key", "same");
  EXPECT_EQ(Send(quoted).status, 200);
  EXPECT_EQ(Send(bare).status, 200);
  EXPECT_EQ(upstream_->Count("same"), 2u);
}

TEST_F(DemoUpstreamTest, EveryExecutionHasItsOwnBody) {
  HttpResponse a = Send(Post("/payments", R"({"amount":1,"currency":"usd"})"));
  HttpResponse b = Send(Post("/payments", R"({"amount":1,"currency":"usd"})"));
  EXPECT_EQ(a.status, 201);
  EXPECT_NE(a.body, b.body);
}

TEST_F(DemoUpstreamTest, BadPaymentIs400AndStillAnExecution) {
  EXPECT_EQ(Send(Post("/payments", "{not json")).status, 400);
  EXPECT_EQ(Send(Post("/payments", R"({"amount":"ten","currency":"eur"})")).status, 400);
  EXPECT_EQ(upstream_->Total(), 2u);
}

TEST_F(DemoUpstreamTest, StatusEndpointTakesAnyPrefix) {
  HttpResponse response = Send(Post("/some/prefix/status/418", ""));
  EXPECT_EQ(response.status, 418);
  EXPECT_NE(response.body.find("\"status\":418"), std::string::npos);
  EXPECT_TRUE(response.HasHeader("X-Demo-Execution"));
  EXPECT_EQ(Send(Get("/status/204")).status, 204);
}

TEST_F(DemoUpstreamTest, SlowAnswersAfterItsTimer) {
  HttpResponse response = Send(Get("/wait/slow?ms=50"));
  EXPECT_EQ(response.status, 200);
  EXPECT_NE(response.body.find("\"slept_ms\":50"), std::string::npos);
}

TEST_F(DemoUpstreamTest, EchoAndBig) {
  HttpResponse echo = Send(Post("/echo", "plain words", "text/plain"));
  EXPECT_EQ(echo.body, "plain words");
  EXPECT_EQ(echo.Header("Content-Type"), "text/plain");
  HttpResponse big = Send(Get("/big?bytes=100000"));
  EXPECT_EQ(big.body.size(), 100000u);
  EXPECT_EQ(big.body.substr(0, 3), "abc");
}

TEST_F(DemoUpstreamTest, DropGarbageAndStallAnswerNothingUsable) {
  EXPECT_FALSE(Send(Get("/drop")).ok());
  EXPECT_FALSE(Send(Get("/garbage")).ok());
  HttpConnection stall;
  ASSERT_TRUE(stall.Connect(upstream_->port()));
  HttpResponse response = stall.RoundTrip(Get("/stall"), 200ms);
  EXPECT_FALSE(response.ok());
  EXPECT_EQ(upstream_->Total(), 3u);
}

TEST_F(DemoUpstreamTest, LastShowsTheForwardedHeaders) {
  HttpRequest request = Post("/work", "abc", "text/plain");
  request.Header("Idempotency-Key", "last-1").Header("X-Custom", "v1");
  ASSERT_EQ(Send(request).status, 200);
  auto seen = upstream_->Last("last-1");
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->method, "POST");
  EXPECT_EQ(seen->target, "/work");
  EXPECT_EQ(seen->Header("x-custom"), "v1");
  EXPECT_EQ(seen->body_bytes, 3u);
  EXPECT_FALSE(upstream_->Last("never-sent").has_value());
  ASSERT_TRUE(upstream_->Last().has_value());
  EXPECT_EQ(upstream_->Last()->target, "/work");
}

TEST_F(DemoUpstreamTest, ControlsAreNotExecutions) {
  upstream_->Total();
  upstream_->Last();
  EXPECT_EQ(upstream_->Total(), 0u);
}

TEST_F(DemoUpstreamTest, KeepAliveAndPipelining) {
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(upstream_->port()));
  ASSERT_TRUE(connection.SendRaw(Post("/echo", "one", "text/plain").Serialize() +
                                 Post("/echo", "two", "text/plain").Serialize()));
  EXPECT_EQ(connection.Read().body, "one");
  EXPECT_EQ(connection.Read().body, "two");
  EXPECT_EQ(connection.RoundTrip(Post("/echo", "three", "text/plain")).body, "three");
}

TEST_F(DemoUpstreamTest, HopParameterAddsHopByHopHeaders) {
  HttpResponse response = Send(Get("/work?hop=1"));
  EXPECT_EQ(response.Header("X-Hop"), "1");
  EXPECT_EQ(response.Header("Connection"), "X-Hop");
  EXPECT_TRUE(response.HasHeader("Keep-Alive"));
}

TEST(DemoUpstreamProcessTest, SigtermExitsZero) {
  std::string error;
  auto upstream = Upstream::Start(error);
  ASSERT_NE(upstream, nullptr) << error;
  ASSERT_TRUE(upstream->process().Signal(SIGTERM));
  auto status = upstream->process().Wait(10s);
  ASSERT_TRUE(status.has_value()) << "still running 10 s after SIGTERM";
  EXPECT_TRUE(status->success()) << status->ToString();
}

}  // namespace
}  // namespace idem::e2e
