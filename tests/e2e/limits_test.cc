// The gateway's limits (body 413, headers 431, header and body read
// time-outs) and upstream failures (time-out 504, dropped or garbled
// answers 502, nothing listening 502), all as problem+json, none stored.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stack_fixture.h"

namespace idem::e2e {
namespace {

class LimitsTest : public StackTest<LimitsTest> {
 public:
  static std::string Config() { return DefaultConfig(); }
};

// max_request_body = 64KiB, judged on Content-Length before the body is read.
TEST_F(LimitsTest, BodyLargerThanTheLimitIs413ByContentLength) {
  std::string key = UniqueKey();
  uint64_t before = upstream().Total();
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  ASSERT_TRUE(connection.SendRaw(
      "POST /work HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Idempotency-Key: \"" +
      key + "\"\r\nContent-Length: 100000\r\n\r\n"));
  HttpResponse response = connection.Read();
  EXPECT_TRUE(IsProblem(response, 413, "body-too-large"));
  EXPECT_EQ(upstream().Total(), before);
  // Nothing was stored: the same key with a small body executes.
  EXPECT_EQ(Send(KeyedPost("/work", key)).status, 200);
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(LimitsTest, BodyLargerThanTheLimitIs413WithoutAKey) {
  uint64_t before = upstream().Total();
  HttpResponse response = Send(Post("/work", std::string(size_t{70} * 1024, 'x'), "text/plain"));
  if (response.ok()) {
    EXPECT_TRUE(IsProblem(response, 413, "body-too-large"));
  } else {
    ADD_FAILURE() << "no 413 for a body sent in full: " << response.error;
  }
  EXPECT_EQ(upstream().Total(), before);
}

// A chunked body has no Content-Length: the limit applies while reading.
TEST_F(LimitsTest, ChunkedBodyOverTheLimitIs413OrClosed) {
  std::string key = UniqueKey();
  uint64_t before = upstream().Total();
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  ASSERT_TRUE(connection.SendRaw(
      "POST /work HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
      "Idempotency-Key: \"" +
      key + "\"\r\nTransfer-Encoding: chunked\r\n\r\n"));
  std::string chunk = "2000\r\n" + std::string(0x2000, 'c') + "\r\n";  // 8 KiB
  for (int i = 0; i < 10; ++i) {
    if (!connection.SendRaw(chunk)) break;  // the gateway may close early
  }
  connection.SendRaw("0\r\n\r\n");
  HttpResponse response = connection.Read();
  if (response.ok()) {
    EXPECT_TRUE(IsProblem(response, 413, "body-too-large"));
  } else {
    EXPECT_NE(response.error.find("closed"), std::string::npos)
        << "neither a 413 nor a close: " << response.error;
  }
  EXPECT_EQ(upstream().Total(), before);
}

TEST_F(LimitsTest, ChunkedBodyUnderTheLimitIsForwarded) {
  std::string key = UniqueKey();
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  ASSERT_TRUE(connection.SendRaw(
      "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
      "Idempotency-Key: \"" +
      key +
      "\"\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  HttpResponse response = connection.Read();
  EXPECT_EQ(response.status, 200) << response.Describe();
  EXPECT_EQ(response.body, "hello world");
  EXPECT_EQ(upstream().Count(key), 1u);
}

// max_header_size = 8KiB.
TEST_F(LimitsTest, HeaderSectionLargerThanTheLimitIs431) {
  uint64_t before = upstream().Total();
  HttpRequest request = KeyedPost("/work", UniqueKey());
  request.Header("X-Large", std::string(size_t{16} * 1024, 'h'));
  HttpResponse response = Send(request);
  EXPECT_TRUE(IsProblem(response, 431, "headers-too-large"));
  EXPECT_EQ(upstream().Total(), before);
}

// header_timeout = 1s: half a header section, then silence.
TEST_F(LimitsTest, SlowHeaderIsCutOffWith408OrClose) {
  uint64_t before = upstream().Total();
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  ASSERT_TRUE(connection.SendRaw("POST /work HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: "));
  HttpResponse response = connection.Read(10s);
  if (response.ok()) {
    EXPECT_TRUE(IsProblem(response, 408, "request-timeout"));
  } else {
    EXPECT_EQ(response.error.find("timed out"), std::string::npos)
        << "the gateway kept a silent client for 10 s: " << response.error;
  }
  EXPECT_TRUE(connection.WaitForClose(10s)) << "connection still open";
  EXPECT_EQ(upstream().Total(), before);
}

// body_timeout = 1s: a body that stops halfway.
TEST_F(LimitsTest, SlowBodyIsCutOffWith408OrClose) {
  std::string key = UniqueKey();
  uint64_t before = upstream().Total();
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  ASSERT_TRUE(
      connection.SendRaw("POST /work HTTP/1.1\r\nHost: 127.0.0.1\r\nIdempotency-Key: \"" +
                         key + "\"\r\nContent-Length: 100\r\n\r\n0123456789"));
  HttpResponse response = connection.Read(10s);
  if (response.ok()) {
    EXPECT_TRUE(IsProblem(response, 408, "request-timeout"));
  } else {
    EXPECT_EQ(response.error.find("timed out"), std::string::npos)
        << "the gateway kept a silent client for 10 s: " << response.error;
  }
  EXPECT_EQ(upstream().Total(), before);
  EXPECT_EQ(Send(KeyedPost("/work", key)).status, 200) << "the key must not be held";
}

// upstream.timeout = 2s.
TEST_F(LimitsTest, UpstreamTimeoutIs504AndReleased) {
  std::string key = UniqueKey();
  HttpResponse response = Send(KeyedPost("/stall", key));
  EXPECT_TRUE(IsProblem(response, 504, "upstream-timeout"));
  EXPECT_EQ(upstream().Count(key), 1u);
  HttpResponse retry = Send(KeyedPost("/stall", key));
  EXPECT_TRUE(IsProblem(retry, 504, "upstream-timeout"));
  EXPECT_EQ(upstream().Count(key), 2u) << "a time-out must release the key";
}

TEST_F(LimitsTest, UpstreamClosingWithoutAnswerIs502AndReleased) {
  std::string key = UniqueKey();
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/drop", key)), 502));
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/drop", key)), 502));
  EXPECT_EQ(upstream().Count(key), 2u);
  EXPECT_EQ(Send(Post("/work", "{}")).status, 200) << "the gateway must recover";
}

TEST_F(LimitsTest, UpstreamGarbageIs502AndReleased) {
  std::string key = UniqueKey();
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/garbage", key)), 502));
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/garbage", key)), 502));
  EXPECT_EQ(upstream().Count(key), 2u);
  EXPECT_EQ(Send(Post("/work", "{}")).status, 200) << "the gateway must recover";
}

// Row: connection failure -> 502, released. A port with nothing listening.
class UpstreamDownTest : public ::testing::Test {
 protected:
  static uint16_t ClosedPort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(fd);
      return 1;  // port 1 is privileged and closed on loopback
    }
    socklen_t length = sizeof(address);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(fd);  // bound but never listening: connections are refused
    return ntohs(address.sin_port);
  }
  static void SetUpTestSuite() {
    GatewayOptions options;
    options.config = DefaultConfig();
    options.upstream_url = "http://127.0.0.1:" + std::to_string(ClosedPort());
    gateway_ = Gateway::Start(options, error_);
  }
  static void TearDownTestSuite() { gateway_.reset(); }
  void SetUp() override { ASSERT_NE(gateway_, nullptr) << error_; }
  void TearDown() override {
    if (HasFailure() && gateway_) std::cerr << gateway_->Log();
  }

  static inline std::unique_ptr<Gateway> gateway_;
  static inline std::string error_;
};

TEST_F(UpstreamDownTest, KeyedRequestIs502AndNotStored) {
  std::string key = UniqueKey();
  HttpResponse first = Fetch(gateway_->port(), KeyedPost("/work", key));
  EXPECT_TRUE(IsProblem(first, 502, "upstream-unreachable"));
  HttpResponse retry = Fetch(gateway_->port(), KeyedPost("/work", key));
  EXPECT_TRUE(IsProblem(retry, 502, "upstream-unreachable"));
  EXPECT_TRUE(IsFresh(retry));
}

TEST_F(UpstreamDownTest, UnkeyedRequestIs502) {
  EXPECT_TRUE(
      IsProblem(Fetch(gateway_->port(), Get("/work")), 502, "upstream-unreachable"));
}

TEST_F(UpstreamDownTest, AdminStillAnswers) {
  EXPECT_EQ(Fetch(gateway_->admin_port(), Get("/healthz")).status, 200);
}

}  // namespace
}  // namespace idem::e2e
