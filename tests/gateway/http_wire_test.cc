#include "gateway/http_wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace idem::gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

UpstreamRequestHead BaseHead(const std::vector<HeaderLine>& headers) {
  UpstreamRequestHead head;
  head.method = "POST";
  head.target = "/payments?x=1";
  head.headers = headers;
  head.upstream_authority = "127.0.0.1:8081";
  head.client_address = "10.0.0.7";
  head.framing = BodyFraming::kContentLength;
  head.content_length = 5;
  return head;
}

TEST(UpstreamRequestHeadTest, KeepsEndToEndFieldsAndAddsForwardingFields) {
  const std::vector<HeaderLine> headers = {{"Host", "api.example"},
                                           {"Idempotency-Key", "\"k1\""},
                                           {"Connection", "keep-alive, X-Hop"},
                                           {"X-Hop", "1"},
                                           {"Content-Length", "5"},
                                           {"Expect", "100-continue"},
                                           {"Idempotency-Fence", "99"},
                                           {"TE", "trailers"},
                                           {"Content-Type", "application/json"}};
  UpstreamRequestHead head = BaseHead(headers);
  head.fence = 3;
  std::string out;
  AppendUpstreamRequestHead(out, head);
  EXPECT_EQ(out,
            "POST /payments?x=1 HTTP/1.1\r\n"
            "Idempotency-Key: \"k1\"\r\n"
            "Content-Type: application/json\r\n"
            "Host: 127.0.0.1:8081\r\n"
            "X-Forwarded-Host: api.example\r\n"
            "X-Forwarded-For: 10.0.0.7\r\n"
            "Forwarded: for=10.0.0.7;host=\"api.example\";proto=http\r\n"
            "Idempotency-Fence: 3\r\n"
            "Content-Length: 5\r\n"
            "\r\n");
}

TEST(UpstreamRequestHeadTest, AppendsToEarlierProxiesAndQuotesIpv6) {
  const std::vector<HeaderLine> headers = {{"X-Forwarded-For", "1.1.1.1"},
                                           {"Forwarded", "for=1.1.1.1"},
                                           {"x-forwarded-for", "2.2.2.2"}};
  UpstreamRequestHead head = BaseHead(headers);
  head.client_address = "::1";
  head.framing = BodyFraming::kChunked;
  std::string out;
  AppendUpstreamRequestHead(out, head);
  EXPECT_THAT(out, HasSubstr("X-Forwarded-For: 1.1.1.1, 2.2.2.2, ::1\r\n"));
  EXPECT_THAT(out, HasSubstr("Forwarded: for=1.1.1.1, for=\"[::1]\";proto=http\r\n"));
  EXPECT_THAT(out, HasSubstr("Host: 127.0.0.1:8081\r\n"));
  EXPECT_THAT(out, Not(HasSubstr("X-Forwarded-Host")));
  EXPECT_THAT(out, HasSubstr("Transfer-Encoding: chunked\r\n"));
  EXPECT_THAT(out, Not(HasSubstr("Idempotency-Fence")));
}

TEST(UpstreamRequestHeadTest, EscapesQuotesAndBackslashesOfTheClientHost) {
  for (const auto& [host, quoted] :
       std::vector<std::pair<std::string_view, std::string_view>>{
           {"a\"b\\c", "host=\"a\\\"b\\\\c\""},
           {"\"\"", "host=\"\\\"\\\"\""},
           {"\\end\\", "host=\"\\\\end\\\\\""},
           {"plain:8080", "host=\"plain:8080\""}}) {
    const std::vector<HeaderLine> headers = {{"Host", host}};
    std::string out;
    AppendUpstreamRequestHead(out, BaseHead(headers));
    EXPECT_THAT(out, HasSubstr(std::string(quoted) + ";proto=http\r\n")) << host;
  }
}

TEST(UpstreamRequestHeadTest, PrefixesTheBasePathOnce) {
  const std::vector<HeaderLine> headers;
  UpstreamRequestHead head = BaseHead(headers);
  head.base_path = "/api/";
  head.framing = BodyFraming::kNone;
  std::string out;
  AppendUpstreamRequestHead(out, head);
  EXPECT_EQ(out.substr(0, out.find("\r\n")), "POST /api/payments?x=1 HTTP/1.1");
  EXPECT_THAT(out, Not(HasSubstr("Content-Length")));
}

TEST(WireTest, StatusLinesAndChunks) {
  std::string out;
  AppendStatusLine(out, 201);
  AppendStatusLine(out, 299);
  AppendHeaderLine(out, "Idempotent-Replayed", "true");
  AppendChunkHeader(out, 255);
  AppendDecimal(out, 1234567890123ull);
  EXPECT_EQ(out,
            "HTTP/1.1 201 Created\r\nHTTP/1.1 299 \r\nIdempotent-Replayed: true\r\n"
            "ff\r\n1234567890123");
  EXPECT_EQ(ReasonPhrase(422), "Unprocessable Content");
}

}  // namespace
}  // namespace idem::gateway
