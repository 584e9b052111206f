// The test client's response parser, without sockets.
#include "http_client.h"

#include <gtest/gtest.h>

namespace idem::e2e {
namespace {

TEST(ParseResponseTest, ContentLengthBody) {
  std::string buffer =
      "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhelloREST";
  HttpResponse response;
  ASSERT_EQ(ParseResponse(buffer, false, false, &response), ParseResult::kDone);
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.reason, "Created");
  EXPECT_EQ(response.body, "hello");
  EXPECT_EQ(response.Header("x-a"), "1");
  EXPECT_EQ(buffer, "REST");
  EXPECT_EQ(response.raw_head,
            "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: 1\r\n\r\n");
}

TEST(ParseResponseTest, NeedsMoreUntilTheBodyIsComplete) {
  std::string buffer = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
  HttpResponse response;
  EXPECT_EQ(ParseResponse(buffer, false, false, &response), ParseResult::kNeedMore);
  buffer += "defghij";
  EXPECT_EQ(ParseResponse(buffer, false, false, &response), ParseResult::kDone);
  EXPECT_EQ(response.body, "abcdefghij");
}

TEST(ParseResponseTest, ChunkedBodyWithExtensionsAndTrailers) {
  std::string buffer =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
  HttpResponse response;
  ASSERT_EQ(ParseResponse(buffer, false, false, &response), ParseResult::kDone);
  EXPECT_TRUE(response.chunked);
  EXPECT_EQ(response.body, "hello!");
  EXPECT_EQ(buffer, "NEXT");
}

TEST(ParseResponseTest, PipelinedResponsesComeOutInOrder) {
  std::string buffer =
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"
      "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nB";
  HttpResponse first, second;
  ASSERT_EQ(ParseResponse(buffer, false, false, &first), ParseResult::kDone);
  ASSERT_EQ(ParseResponse(buffer, false, false, &second), ParseResult::kDone);
  EXPECT_EQ(first.body, "A");
  EXPECT_EQ(second.status, 404);
  EXPECT_EQ(second.body, "B");
  EXPECT_TRUE(buffer.empty());
}

TEST(ParseResponseTest, InterimResponsesAreSkipped) {
  std::string buffer =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  HttpResponse response;
  ASSERT_EQ(ParseResponse(buffer, false, false, &response), ParseResult::kDone);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "ok");
}

TEST(ParseResponseTest, CloseDelimitedBodyEndsAtEof) {
  std::string buffer = "HTTP/1.1 200 OK\r\n\r\nuntil close";
  HttpResponse response;
  EXPECT_EQ(ParseResponse(buffer, false, false, &response), ParseResult::kNeedMore);
  ASSERT_EQ(ParseResponse(buffer, true, false, &response), ParseResult::kDone);
  EXPECT_EQ(response.body, "until close");
}

TEST(ParseResponseTest, NoBodyForHeadAnd204) {
  std::string buffer = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n";
  HttpResponse response;
  ASSERT_EQ(ParseResponse(buffer, false, true, &response), ParseResult::kDone);
  EXPECT_TRUE(response.body.empty());
  buffer = "HTTP/1.1 204 No Content\r\n\r\n";
  ASSERT_EQ(ParseResponse(buffer, false, false, &response), ParseResult::kDone);
  EXPECT_EQ(response.status, 204);
}

TEST(ParseResponseTest, GarbageIsAnError) {
  std::string buffer = "\x01\x02 this is not HTTP\r\n\r\n";
  HttpResponse response;
  EXPECT_EQ(ParseResponse(buffer, false, false, &response), ParseResult::kError);
  EXPECT_FALSE(response.error.empty());
}

TEST(ParseResponseTest, EofBeforeAResponseIsAnError) {
  std::string buffer;
  HttpResponse response;
  EXPECT_EQ(ParseResponse(buffer, true, false, &response), ParseResult::kError);
  buffer = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
  EXPECT_EQ(ParseResponse(buffer, true, false, &response), ParseResult::kError);
}

TEST(HttpRequestTest, SerializeAddsHostAndContentLength) {
  HttpRequest request = Post("/p", "{}");
  request.Header("Idempotency-Key", "\"k\"");
  EXPECT_EQ(request.Serialize(),
            "POST /p HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Idempotency-Key: \"k\"\r\nContent-Length: 2\r\n\r\n{}");
}

TEST(HttpRequestTest, UrlEncodeKeepsUnreservedCharacters) {
  EXPECT_EQ(UrlEncode("a-b_c.d~e f/\"g\""), "a-b_c.d~e%20f%2F%22g%22");
}

}  // namespace
}  // namespace idem::e2e
