// Hostile and malformed HTTP, sent as raw bytes to the real gateway: request
// smuggling (Content-Length with Transfer-Encoding, repeated lengths,
// obs-fold), oversized and numerous headers, slow headers and bodies
// (slowloris), invalid methods and targets, control and non-ASCII bytes,
// pipelined duplicates. Each gets the answer docs/http.md ("Malformed and
// hostile requests") documents, the upstream never sees a smuggled request,
// and a second client is served normally during and after the attack.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "stack_fixture.h"

namespace idem::e2e {
namespace {

class AbuseTest : public StackTest<AbuseTest> {
 public:
  static std::string Config() { return DefaultConfig(); }

 protected:
  // Sends `bytes` on a fresh connection and reads one answer.
  static HttpResponse SendBytes(std::string_view bytes, bool* closed = nullptr) {
    HttpConnection connection;
    if (!connection.Connect(gateway().port())) {
      HttpResponse response;
      response.error = connection.error();
      return response;
    }
    connection.SendRaw(bytes);  // the gateway may close before all is written
    HttpResponse response = connection.Read(10s);
    if (closed != nullptr) *closed = connection.WaitForClose(10s);
    return response;
  }

  // A rejected request: `status` as problem+json (`slug`), then the close,
  // and the upstream saw nothing; another client is served.
  static void ExpectRejected(std::string_view bytes, int status, std::string_view slug) {
    const uint64_t before = upstream().Total();
    bool closed = false;
    HttpResponse response = SendBytes(bytes, &closed);
    EXPECT_TRUE(IsProblem(response, status, slug)) << "request:\n" << bytes;
    // A request refused after it was read whole (a bad key) keeps the
    // connection; one refused while reading it closes it.
    if (slug != "invalid-key") {
      EXPECT_TRUE(closed) << "the connection stayed open after a " << status;
    }
    EXPECT_EQ(upstream().Total(), before) << "the upstream saw:\n" << DescribeLast();
    ExpectServed();
  }

  static std::string DescribeLast() {
    auto last = upstream().Last();
    return last ? last->Describe() : std::string("(nothing)");
  }

  // Another client is served normally.
  static void ExpectServed() {
    HttpResponse normal = Send(KeyedPost("/echo", UniqueKey("bystander"), "ok", "text/plain"));
    EXPECT_EQ(normal.status, 200) << normal.Describe();
    EXPECT_EQ(normal.body, "ok");
  }

  // What the upstream saw last did not target `path`.
  static void ExpectNeverSeen(std::string_view path) {
    auto last = upstream().Last();
    if (last) {
      EXPECT_EQ(last->target.find(path), std::string::npos) << last->Describe();
    }
  }

  static constexpr std::string_view kHead = "POST /work HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  static constexpr std::string_view kSmuggled =
      "GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
};

// ---- request smuggling

TEST_F(AbuseTest, ContentLengthWithTransferEncodingIs400) {
  ExpectRejected(std::string(kHead) +
                     "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "0\r\n\r\n" +
                     std::string(kSmuggled),
                 400, "malformed-request");
  ExpectNeverSeen("/smuggled");
}

TEST_F(AbuseTest, TransferEncodingBeforeContentLengthIs400) {
  ExpectRejected(std::string(kHead) +
                     "Transfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n"
                     "0\r\n\r\n" +
                     std::string(kSmuggled),
                 400, "malformed-request");
  ExpectNeverSeen("/smuggled");
}

TEST_F(AbuseTest, DuplicateDifferingContentLengthIs400) {
  ExpectRejected(std::string(kHead) + "Content-Length: 0\r\nContent-Length: 44\r\n\r\n" +
                     std::string(kSmuggled),
                 400, "malformed-request");
  ExpectNeverSeen("/smuggled");
}

TEST_F(AbuseTest, DuplicateEqualContentLengthIs400) {
  ExpectRejected(std::string(kHead) + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
                 400, "malformed-request");
}

TEST_F(AbuseTest, ContentLengthListIs400) {
  ExpectRejected(std::string(kHead) + "Content-Length: 2, 2\r\n\r\n{}", 400,
                 "malformed-request");
}

TEST_F(AbuseTest, SignedOrHexContentLengthIs400) {
  for (std::string_view length : {"+2", "-1", "0x2", "2 2", "99999999999999999999999"}) {
    SCOPED_TRACE(length);
    ExpectRejected(std::string(kHead) + "Content-Length: " + std::string(length) +
                       "\r\n\r\n{}",
                   400, "malformed-request");
  }
}

TEST_F(AbuseTest, TransferEncodingOtherThanFinalChunkedIs400) {
  for (std::string_view coding :
       {"chunked, identity", "identity", "xchunked", "chunked;q=1", "gzip, chunked"}) {
    SCOPED_TRACE(coding);
    ExpectRejected(std::string(kHead) + "Transfer-Encoding: " + std::string(coding) +
                       "\r\n\r\n0\r\n\r\n" + std::string(kSmuggled),
                   400, "malformed-request");
  }
  ExpectNeverSeen("/smuggled");
}

TEST_F(AbuseTest, TwoTransferEncodingLinesAre400) {
  ExpectRejected(std::string(kHead) +
                     "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
                     "0\r\n\r\n" +
                     std::string(kSmuggled),
                 400, "malformed-request");
  ExpectNeverSeen("/smuggled");
}

TEST_F(AbuseTest, WhiteSpaceBeforeTheColonIs400) {
  ExpectRejected(std::string(kHead) + "Transfer-Encoding : chunked\r\n"
                                      "Content-Length: 0\r\n\r\n",
                 400, "malformed-request");
}

// RFC 9112 section 5.2: a server either rejects obs-fold or replaces it
// with spaces before reading the value or forwarding it. idem unfolds: the
// upstream gets one line, and framing and key fields are judged unfolded, so
// a folded Transfer-Encoding or key is refused like any other bad value.
TEST_F(AbuseTest, ObsFoldIsUnfoldedBeforeAnythingReadsTheValue) {
  const std::string key = UniqueKey();
  HttpResponse response = SendBytes(std::string(kHead) + "Idempotency-Key: " + key +
                                    "\r\nX-Folded: one\r\n two\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(response.status, 200) << response.Describe();
  auto seen = upstream().Last(key);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->HeaderValues("X-Folded"), std::vector<std::string>{"one two"})
      << seen->Describe();
  // "identity chunked" is not "chunked".
  ExpectRejected(std::string(kHead) +
                     "Transfer-Encoding: identity\r\n\tchunked\r\n\r\n0\r\n\r\n" +
                     std::string(kSmuggled),
                 400, "malformed-request");
  ExpectRejected(std::string(kHead) + "Content-Length: 2\r\n 0\r\n\r\n{}", 400,
                 "malformed-request");
  // "abc def" is not a bare key.
  ExpectRejected(
      std::string(kHead) + "Idempotency-Key: abc\r\n def\r\nContent-Length: 2\r\n\r\n{}",
      400, "invalid-key");
  ExpectNeverSeen("/smuggled");
}

TEST_F(AbuseTest, ChunkedBodyWithBadChunkSizeIs400) {
  ExpectRejected(std::string(kHead) + "Transfer-Encoding: chunked\r\n\r\n"
                                      "zz\r\nhello\r\n0\r\n\r\n",
                 400, "malformed-request");
}

// A smuggling attempt in the middle of a pipeline: the request before it is
// answered, the attempt gets 400, and nothing after it is read.
TEST_F(AbuseTest, SmugglingInsideAPipelineStopsThePipeline) {
  const uint64_t before = upstream().Total();
  std::string first_key = UniqueKey("first");
  std::string batch = KeyedPost("/echo", first_key, "first", "text/plain").Serialize() +
                      std::string(kHead) +
                      "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "0\r\n\r\n" +
                      std::string(kSmuggled) + Get("/after").Serialize();
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  ASSERT_TRUE(connection.SendRaw(batch));
  HttpResponse first = connection.Read(10s);
  EXPECT_EQ(first.status, 200) << first.Describe();
  EXPECT_EQ(first.body, "first");
  EXPECT_TRUE(IsProblem(connection.Read(10s), 400, "malformed-request"));
  EXPECT_TRUE(connection.WaitForClose(10s));
  EXPECT_EQ(upstream().Total(), before + 1);
  EXPECT_EQ(upstream().Count(first_key), 1u);
  ExpectNeverSeen("/smuggled");
  ExpectNeverSeen("/after");
}

// ---- request line, methods, targets, bytes

TEST_F(AbuseTest, InvalidMethodsAre400) {
  for (std::string_view line : {"G@T /work HTTP/1.1", "GET\t/work HTTP/1.1",
                                " GET /work HTTP/1.1", "/work HTTP/1.1", "GET"}) {
    SCOPED_TRACE(line);
    ExpectRejected(std::string(line) + "\r\nHost: 127.0.0.1\r\n\r\n", 400,
                   "malformed-request");
  }
}

// A gateway serves origin-form targets ("/path?query"), "*" only with
// OPTIONS. Authority-form (CONNECT) would make it a tunnel; anything else
// is not a path: 400.
TEST_F(AbuseTest, TargetsThatAreNotPathsAre400) {
  for (std::string_view line :
       {"CONNECT evil.example:443 HTTP/1.1", "GET * HTTP/1.1", "GET work HTTP/1.1",
        "POST ?x=1 HTTP/1.1", "GET ftp://evil.example/work HTTP/1.1"}) {
    SCOPED_TRACE(line);
    ExpectRejected(std::string(line) + "\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
                   400, "malformed-request");
  }
}

// RFC 9112 section 3.2.2: a server accepts absolute-form. idem rewrites it
// to origin-form before routing, so "POST http://x/payments" is the
// /payments route (require_key = true), not a way around it, and the
// upstream gets the path.
TEST_F(AbuseTest, AbsoluteFormTargetsAreRoutedByTheirPath) {
  const uint64_t before = upstream().Total();
  HttpResponse unkeyed = SendBytes(
      "POST http://evil.example/payments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_TRUE(IsProblem(unkeyed, 400, "missing-key"));
  EXPECT_EQ(upstream().Total(), before);

  const std::string key = UniqueKey();
  const std::string keyed = "POST HTTP://evil.example:8080/payments?x=1 HTTP/1.1\r\n"
                            "Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            "Idempotency-Key: " + key + "\r\nContent-Length: " +
                            std::to_string(PaymentBody().size()) + "\r\n\r\n" + PaymentBody();
  HttpResponse first = SendBytes(keyed);
  ASSERT_EQ(first.status, 201) << first.Describe();
  auto seen = upstream().Last(key);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->target, "/payments?x=1");
  // The same request in origin-form is the same scope key: a replay.
  HttpRequest origin = KeyedPost("/payments?x=1", key, PaymentBody());
  EXPECT_TRUE(IsReplayOf(Send(origin), first));
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(AbuseTest, TargetsWithSpacesOrControlBytesAre400) {
  for (std::string_view target :
       {std::string_view("/a b"), std::string_view("/a\x01"), std::string_view("/a\x7f"),
        std::string_view("/a\0b", 4)}) {
    SCOPED_TRACE(::testing::PrintToString(std::string(target)));
    ExpectRejected("GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                   400, "malformed-request");
  }
}

TEST_F(AbuseTest, VersionsOtherThanHttp1Are400) {
  for (std::string_view line :
       {"GET /work HTTP/2.0", "GET /work HTTP/1.1x", "GET /work HTTP/9.9", "GET /work FTP/1.1",
        "PRI * HTTP/2.0"}) {
    SCOPED_TRACE(line);
    ExpectRejected(std::string(line) + "\r\nHost: 127.0.0.1\r\n\r\n", 400,
                   "malformed-request");
  }
}

// RFC 9112 section 3.2: an HTTP/1.1 request without Host, or with two.
TEST_F(AbuseTest, MissingOrRepeatedHostIs400) {
  ExpectRejected("GET /work HTTP/1.1\r\n\r\n", 400, "malformed-request");
  ExpectRejected("GET /work HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", 400,
                 "malformed-request");
}

TEST_F(AbuseTest, ControlBytesInHeaderValuesAre400) {
  for (std::string_view value :
       {std::string_view("a\rb"), std::string_view("a\0b", 3), std::string_view("a\x01")}) {
    SCOPED_TRACE(::testing::PrintToString(std::string(value)));
    ExpectRejected(std::string(kHead) + "X-Bad: " + std::string(value) +
                       "\r\nContent-Length: 2\r\n\r\n{}",
                   400, "malformed-request");
  }
}

TEST_F(AbuseTest, ControlAndNonAsciiBytesInKeysAre400AndNeverStored) {
  for (std::string_view key :
       {std::string_view("\"a\x01z\""), std::string_view("\"a\x7fz\""),
        std::string_view("\"caf\xc3\xa9\""), std::string_view("k\xff"),
        std::string_view("\"a\0z\"", 5), std::string_view("\"a\tz\"")}) {
    SCOPED_TRACE(::testing::PrintToString(std::string(key)));
    const uint64_t before = upstream().Total();
    HttpResponse response = SendBytes(std::string(kHead) + "Idempotency-Key: " +
                                      std::string(key) + "\r\nContent-Length: 2\r\n\r\n{}");
    ASSERT_TRUE(response.ok()) << response.error;
    EXPECT_EQ(response.status, 400) << response.Describe();
    EXPECT_TRUE(IsProblem(response, 400)) << response.Describe();
    const std::string type = response.body;
    EXPECT_TRUE(type.find("invalid-key") != std::string::npos ||
                type.find("malformed-request") != std::string::npos)
        << response.Describe();
    EXPECT_EQ(upstream().Total(), before);
  }
  ExpectServed();
}

TEST_F(AbuseTest, BareLineFeedsAreNotASecondWayToEndAHeader) {
  // "\n\n" ends the head for a lenient parser but not for a strict one: it
  // must be rejected, never read as a request followed by a second one.
  ExpectRejected(
      "POST /work HTTP/1.1\nHost: 127.0.0.1\nContent-Length: 0\n\n" + std::string(kSmuggled),
      400, "malformed-request");
  ExpectNeverSeen("/smuggled");
}

// ---- sizes

TEST_F(AbuseTest, OneHugeHeaderIs431) {
  ExpectRejected(std::string(kHead) + "X-Huge: " + std::string(size_t{1} << 20, 'h') +
                     "\r\nContent-Length: 2\r\n\r\n{}",
                 431, "headers-too-large");
}

TEST_F(AbuseTest, HugeRequestLineIs431) {
  ExpectRejected("GET /" + std::string(size_t{64} * 1024, 'a') +
                     " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                 431, "headers-too-large");
}

TEST_F(AbuseTest, ManyHeadersOverTheLimitAre431) {
  std::string head(kHead);
  for (int i = 0; i < 20000; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
  ExpectRejected(head + "Content-Length: 2\r\n\r\n{}", 431, "headers-too-large");
}

// Many tiny header lines that fit in max_header_size are a normal request.
TEST_F(AbuseTest, ManyTinyHeadersUnderTheLimitAreServed) {
  HttpRequest request = KeyedPost("/echo", UniqueKey(), "fine", "text/plain");
  for (int i = 0; i < 900; ++i) request.Header("a", "");
  HttpResponse response = Send(request);
  EXPECT_EQ(response.status, 200) << response.Describe();
  EXPECT_EQ(response.body, "fine");
}

TEST_F(AbuseTest, TwoHundredConnectionsSendingGarbageLeaveTheGatewayUsable) {
  std::vector<std::unique_ptr<HttpConnection>> connections;
  for (int i = 0; i < 200; ++i) {
    auto connection = std::make_unique<HttpConnection>();
    ASSERT_TRUE(connection->Connect(gateway().port())) << connection->error();
    connection->SendRaw(std::string(512, static_cast<char>(0x80 + i % 100)) + "\r\n\r\n");
    connections.push_back(std::move(connection));
  }
  ExpectServed();
  for (auto& connection : connections) {
    EXPECT_TRUE(connection->WaitForClose(10s)) << "a garbage connection stayed open";
  }
  ExpectServed();
}

// ---- slow clients (header_timeout = body_timeout = 1s)

// Slowloris: many connections, each sending its header one byte at a time.
// Every one is cut off by header_timeout (counted from the first byte, so
// the trickle does not keep it alive), and other clients are served
// meanwhile.
TEST_F(AbuseTest, SlowlorisConnectionsAreCutOffAndDoNotBlockOthers) {
  constexpr int kConnections = 100;
  const uint64_t before = upstream().Total();
  std::vector<std::unique_ptr<HttpConnection>> slow;
  for (int i = 0; i < kConnections; ++i) {
    auto connection = std::make_unique<HttpConnection>();
    ASSERT_TRUE(connection->Connect(gateway().port())) << connection->error();
    slow.push_back(std::move(connection));
  }
  const std::string head = std::string(kHead) + "X-Slow: " + std::string(200, 's');
  std::vector<bool> closed(kConnections, false);
  int served = 0;
  // At most 200 rounds of one byte per connection (a 1 s header_timeout
  // cuts them off long before).
  for (size_t round = 0; round < head.size(); ++round) {
    int open = 0;
    for (int i = 0; i < kConnections; ++i) {
      if (closed[i]) continue;
      if (!slow[i]->SendRaw(std::string_view(&head[round], 1)) ||
          slow[i]->WaitForClose(0ms)) {
        closed[i] = true;
        continue;
      }
      ++open;
    }
    if (round % 20 == 0) {
      ExpectServed();  // a normal client during the attack
      ++served;
    }
    if (open == 0) break;
    std::this_thread::sleep_for(25ms);
  }
  for (int i = 0; i < kConnections; ++i) {
    if (closed[i]) continue;
    EXPECT_TRUE(slow[i]->WaitForClose(10s)) << "slow connection " << i << " stayed open";
  }
  // What was sent back before the close, if anything, is a 408.
  for (auto& connection : slow) {
    if (connection->pending().empty()) continue;
    HttpResponse response = connection->Read(1s);
    EXPECT_TRUE(IsProblem(response, 408, "request-timeout"));
  }
  EXPECT_GT(served, 0);
  EXPECT_EQ(upstream().Total(), before + static_cast<uint64_t>(served));
  ExpectServed();
}

// Connections that never send a byte are closed by header_timeout too.
TEST_F(AbuseTest, SilentConnectionsAreClosed) {
  std::vector<std::unique_ptr<HttpConnection>> silent;
  for (int i = 0; i < 100; ++i) {
    auto connection = std::make_unique<HttpConnection>();
    ASSERT_TRUE(connection->Connect(gateway().port()));
    silent.push_back(std::move(connection));
  }
  ExpectServed();
  for (auto& connection : silent) EXPECT_TRUE(connection->WaitForClose(10s));
}

// Slow bodies: the header arrives, then the body trickles; body_timeout
// counts from the end of the header, so the trickle is cut off with 408.
TEST_F(AbuseTest, TricklingBodiesAreCutOffWith408) {
  constexpr int kConnections = 30;
  const uint64_t before = upstream().Total();
  std::vector<std::unique_ptr<HttpConnection>> slow;
  std::vector<std::string> keys;
  for (int i = 0; i < kConnections; ++i) {
    auto connection = std::make_unique<HttpConnection>();
    ASSERT_TRUE(connection->Connect(gateway().port()));
    keys.push_back(UniqueKey("trickle"));
    ASSERT_TRUE(connection->SendRaw(std::string(kHead) + "Idempotency-Key: \"" + keys.back() +
                                    "\"\r\nContent-Length: 1000\r\n\r\n"));
    slow.push_back(std::move(connection));
  }
  std::vector<bool> closed(kConnections, false);
  for (int round = 0; round < 400; ++round) {
    int open = 0;
    for (int i = 0; i < kConnections; ++i) {
      if (closed[i]) continue;
      if (!slow[i]->SendRaw("x") || slow[i]->WaitForClose(0ms)) {
        closed[i] = true;
        continue;
      }
      ++open;
    }
    if (open == 0) break;
    std::this_thread::sleep_for(25ms);
  }
  for (int i = 0; i < kConnections; ++i) {
    EXPECT_TRUE(closed[i] || slow[i]->WaitForClose(10s)) << "trickle " << i << " stayed open";
    if (!slow[i]->pending().empty()) {
      EXPECT_TRUE(IsProblem(slow[i]->Read(1s), 408, "request-timeout"));
    }
  }
  EXPECT_EQ(upstream().Total(), before);
  // The keys were never taken: each executes normally now.
  for (const std::string& key : keys) {
    HttpResponse response = Send(KeyedPost("/work", key));
    EXPECT_EQ(response.status, 200) << response.Describe();
  }
}

// ---- pipelined duplicates

// Fifty copies of one keyed request in one write: the first executes, the
// other 49 replay it byte for byte, in order, on the same connection.
TEST_F(AbuseTest, FiftyPipelinedDuplicatesExecuteOnce) {
  const std::string key = UniqueKey();
  const std::string one = KeyedPost("/payments", key, PaymentBody(4242)).Serialize();
  std::string batch;
  for (int i = 0; i < 50; ++i) batch += one;
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  ASSERT_TRUE(connection.SendRaw(batch));
  HttpResponse first = connection.Read();
  ASSERT_EQ(first.status, 201) << first.Describe();
  EXPECT_TRUE(IsFresh(first));
  for (int i = 1; i < 50; ++i) {
    HttpResponse again = connection.Read();
    EXPECT_TRUE(IsReplayOf(again, first)) << "copy " << i;
  }
  EXPECT_EQ(upstream().Count(key), 1u);
}

// The same key with other bodies in one pipeline: 422 for each, in order,
// and the connection stays usable.
TEST_F(AbuseTest, PipelinedKeyReuseWithOtherBodiesIs422InOrder) {
  const std::string key = UniqueKey();
  std::string batch = KeyedPost("/payments", key, PaymentBody(1)).Serialize();
  for (int i = 2; i <= 5; ++i) batch += KeyedPost("/payments", key, PaymentBody(i)).Serialize();
  batch += KeyedPost("/payments", key, PaymentBody(1)).Serialize();
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  ASSERT_TRUE(connection.SendRaw(batch));
  HttpResponse first = connection.Read();
  ASSERT_EQ(first.status, 201) << first.Describe();
  for (int i = 2; i <= 5; ++i) EXPECT_TRUE(IsProblem(connection.Read(), 422, "key-mismatch"));
  EXPECT_TRUE(IsReplayOf(connection.Read(), first));
  EXPECT_EQ(upstream().Count(key), 1u);
}

// ---- many distinct keys from one client

// The memory store keeps every record for its ttl, so what bounds its memory
// is max_records: once full, a new key gets 503 store-unavailable (with
// Retry-After) while stored keys still replay. Evicting completed records
// instead would break their replay promise.
class KeyFloodTest : public StackTest<KeyFloodTest> {
 public:
  static constexpr size_t kMaxRecords = 5000;
  static std::string Config() { return DefaultConfig(); }
  static std::string StoreUri() {
    return "memory:?max_records=" + std::to_string(kMaxRecords);
  }

 protected:
  // The gateway's resident set in KiB (VmRSS in /proc/PID/status).
  static uint64_t GatewayRssKib() {
    std::ifstream in("/proc/" + std::to_string(gateway().process().pid()) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
    }
    return 0;
  }
};

// 20,000 distinct keys from one client, pipelined 250 at a time on one
// connection (bounded in count and to 30 s): each is executed or, once the
// store holds max_records, refused with 503; no record is evicted, the
// gateway's memory stays bounded and other clients are still served.
TEST_F(KeyFloodTest, TwentyThousandDistinctKeysGetTheirAnswersInBoundedMemory) {
  constexpr int kRequests = 20000;
  constexpr int kBatch = 250;
  // A fresh process: an empty store and a clean memory baseline.
  std::string error;
  ASSERT_TRUE(gateway().Restart(error)) << error;
  const std::string first_key = UniqueKey("first");
  HttpResponse first = Send(KeyedPost("/payments", first_key, PaymentBody(1)));
  ASSERT_EQ(first.status, 201) << first.Describe();
  const uint64_t rss_before = GatewayRssKib();
  ASSERT_GT(rss_before, 0u);
  const uint64_t executed_before = upstream().Total();

  const std::string prefix = UniqueKey("flood");
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  int created = 0, full = 0, other = 0, sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (sent < kRequests && std::chrono::steady_clock::now() < deadline) {
    std::string batch;
    for (int i = 0; i < kBatch; ++i) {
      batch += KeyedPost("/payments", prefix + "-" + std::to_string(sent + i), PaymentBody(i))
                   .Serialize();
    }
    ASSERT_TRUE(connection.SendRaw(batch)) << connection.error();
    for (int i = 0; i < kBatch; ++i) {
      HttpResponse response = connection.Read(15s);
      ASSERT_TRUE(response.ok()) << response.error;
      if (response.status == 201 && IsFresh(response)) {
        ++created;
      } else if (response.status == 503) {
        EXPECT_TRUE(IsProblem(response, 503, "store-unavailable"));
        EXPECT_EQ(response.Header("Retry-After").value_or(""), "1");
        ++full;
      } else {
        ++other;
        ADD_FAILURE() << response.Describe();
      }
    }
    sent += kBatch;
  }
  EXPECT_EQ(sent, kRequests) << "the flood did not finish in 30 s";
  EXPECT_EQ(other, 0);
  // The store took keys up to its limit (the first key is one of them) and
  // refused the rest; nothing refused reached the upstream.
  EXPECT_EQ(created + 1, static_cast<int>(kMaxRecords));
  EXPECT_EQ(full, sent - created);
  EXPECT_EQ(upstream().Total() - executed_before, static_cast<uint64_t>(created));

  // Stored keys still replay; an unkeyed request is still served.
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost("/payments", first_key, PaymentBody(1))), first));
  HttpResponse replay = Send(KeyedPost("/payments", prefix + "-0", PaymentBody(0)));
  EXPECT_EQ(replay.status, 201) << replay.Describe();
  EXPECT_TRUE(Replayed(replay));
  EXPECT_EQ(Send(Get("/work")).status, 200);

  // A purged record makes room for exactly one new key.
  HttpRequest purge = Get("/keys/" + UrlEncode("anonymous POST /payments " + prefix + "-1"));
  purge.method = "DELETE";
  ASSERT_EQ(Fetch(gateway().admin_port(), purge).status, 204);
  EXPECT_EQ(Send(KeyedPost("/payments", UniqueKey("room"), PaymentBody())).status, 201);
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/payments", UniqueKey("full"), PaymentBody())), 503,
                        "store-unavailable"));

  // 5,000 small records and 20,000 requests: tens of MiB at most, however
  // many keys arrive (an unbounded store grows with every key for its ttl).
  const uint64_t rss_after = GatewayRssKib();
  EXPECT_LT(rss_after, rss_before + 64 * 1024)
      << "VmRSS grew from " << rss_before << " KiB to " << rss_after << " KiB";
  RecordProperty("rss_before_kib", static_cast<int>(rss_before));
  RecordProperty("rss_after_kib", static_cast<int>(rss_after));
}

}  // namespace
}  // namespace idem::e2e
