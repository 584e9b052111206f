#include "idem/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "lib/client_policy.h"
#include "lib/scripted_server.h"
#include "lib/subprocess.h"

namespace idem {
namespace {

using libtest::ScriptedServer;
using libtest::ScriptStep;
using std::chrono::milliseconds;

// Options whose sleeps are recorded instead of slept, on a fake clock that
// the recorded sleeps move, with a jitter that always picks the bound (so
// every back-off equals its cap) and records the bounds it was given.
struct FakeTime {
  std::vector<milliseconds> sleeps;
  std::vector<uint64_t> jitter_bounds;
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();

  ClientOptions Options() {
    ClientOptions options;
    options.sleep = [this](milliseconds d) {
      sleeps.push_back(d);
      now += d;
    };
    options.now = [this] { return now; };
    options.random = [this](uint64_t bound) {
      jitter_bounds.push_back(bound);
      return bound;
    };
    options.connect_timeout = milliseconds(2'000);
    options.read_timeout = milliseconds(2'000);
    return options;
  }
};

ClientRequest Request(std::string method, std::string target, std::string body = "") {
  ClientRequest request;
  request.method = std::move(method);
  request.target = std::move(target);
  request.body = std::move(body);
  return request;
}

std::string SameKeyOrEmpty(const std::vector<libtest::SeenRequest>& requests) {
  if (requests.empty()) return "";
  const std::string key = requests.front().Header("idempotency-key");
  for (const auto& r : requests) {
    if (r.Header("idempotency-key") != key) return "";
  }
  return key;
}

TEST(ClientTest, RetriesDropsConflictsAndUnavailableWithOneKey) {
  ScriptedServer server({
      ScriptStep::Drop(),
      ScriptStep::Respond(503, {{"Retry-After", "2"}}),
      ScriptStep::Respond(409, {{"Retry-After", "1"}}),
      ScriptStep::Respond(201, {{"Content-Type", "application/json"}},
                          R"({"id":"pay_1"})"),
  });
  FakeTime time;
  auto client = Client::Create(server.url(), time.Options());
  ASSERT_TRUE(client.ok()) << client.status();
  auto response = client->Send(Request("POST", "/payments", R"({"amount":1200})"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, R"({"id":"pay_1"})");
  EXPECT_EQ(response->attempts, 4);
  EXPECT_FALSE(response->replayed);

  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 4u);
  const std::string key = SameKeyOrEmpty(seen);
  ASSERT_FALSE(key.empty()) << "the attempts did not share one key";
  EXPECT_EQ(key, "\"" + response->idempotency_key + "\"");  // an RFC 8941 string
  EXPECT_EQ(response->idempotency_key.size(), 36u);
  EXPECT_EQ(response->idempotency_key[14], '7');  // UUIDv7
  for (const auto& r : seen) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/payments");
    EXPECT_EQ(r.body, R"({"amount":1200})");
  }
  // Back-off after the drop (cap of retry 1 = base 100 ms), then exactly
  // what Retry-After asked for.
  EXPECT_EQ(time.sleeps, (std::vector<milliseconds>{milliseconds(100), milliseconds(2000),
                                                    milliseconds(1000)}));
}

TEST(ClientTest, EachSendIsANewOperationWithANewKey) {
  ScriptedServer server({ScriptStep::Respond(200)});
  auto client = Client::Create(server.url());
  ASSERT_TRUE(client.ok());
  auto a = client->Send(Request("POST", "/a"));
  auto b = client->Send(Request("POST", "/a"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->idempotency_key, b->idempotency_key);
  EXPECT_LT(a->idempotency_key, b->idempotency_key);  // UUIDv7 sorts by time
}

TEST(ClientTest, StopsOn422And400WithoutRetrying) {
  for (int status : {422, 400, 404}) {
    ScriptedServer server({ScriptStep::Respond(status, {}, "problem")});
    FakeTime time;
    auto client = Client::Create(server.url(), time.Options());
    auto response = client->Send(Request("POST", "/x", "{}"));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, status);
    EXPECT_EQ(response->attempts, 1);
    EXPECT_TRUE(time.sleeps.empty());
    EXPECT_EQ(server.requests().size(), 1u);
  }
}

TEST(ClientTest, BackoffCapsDoubleUpToMaxDelayAndTheBudgetEndsIt) {
  ScriptedServer server({ScriptStep::Respond(503)});
  FakeTime time;
  ClientOptions options = time.Options();
  options.base_delay = milliseconds(100);
  options.max_delay = milliseconds(300);
  options.max_attempts = 5;
  auto client = Client::Create(server.url(), options);
  auto response = client->Send(Request("POST", "/x"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503);  // the last answer, as it was
  EXPECT_EQ(response->attempts, 5);
  EXPECT_EQ(server.requests().size(), 5u);
  EXPECT_EQ(time.jitter_bounds, (std::vector<uint64_t>{100, 200, 300, 300}));
  EXPECT_EQ(time.sleeps,
            (std::vector<milliseconds>{milliseconds(100), milliseconds(200),
                                       milliseconds(300), milliseconds(300)}));
}

TEST(ClientTest, FullJitterWaitsAtMostTheCap) {
  ScriptedServer server({ScriptStep::Respond(500)});
  FakeTime time;
  ClientOptions options = time.Options();
  options.random = nullptr;  // the real generator
  options.max_attempts = 6;
  options.base_delay = milliseconds(50);
  auto client = Client::Create(server.url(), options);
  auto response = client->Send(Request("POST", "/x"));
  ASSERT_TRUE(response.ok());
  ASSERT_EQ(time.sleeps.size(), 5u);
  for (size_t i = 0; i < time.sleeps.size(); ++i) {
    EXPECT_GE(time.sleeps[i].count(), 0);
    EXPECT_LE(time.sleeps[i].count(), 50 << i) << "retry " << i + 1;
  }
}

TEST(ClientTest, StopsWhenTheNextWaitWouldPassTheDeadline) {
  ScriptedServer server({ScriptStep::Respond(503)});
  FakeTime time;
  ClientOptions options = time.Options();
  options.base_delay = milliseconds(400);
  options.max_delay = milliseconds(10'000);
  options.max_attempts = 100;
  options.deadline = milliseconds(2'000);
  auto client = Client::Create(server.url(), options);
  auto response = client->Send(Request("POST", "/x"));
  ASSERT_TRUE(response.ok());
  // Waits 400 and 800 fit (1200 ms used); 1600 more would pass 2000.
  EXPECT_EQ(time.sleeps,
            (std::vector<milliseconds>{milliseconds(400), milliseconds(800)}));
  EXPECT_EQ(response->attempts, 3);
}

TEST(ClientTest, RetryAfterLongerThanAllowedEndsTheRetries) {
  ScriptedServer server({ScriptStep::Respond(429, {{"Retry-After", "3600"}})});
  FakeTime time;
  auto client = Client::Create(server.url(), time.Options());
  auto response = client->Send(Request("POST", "/x"));
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 429);
  EXPECT_EQ(response->attempts, 1);
  EXPECT_TRUE(time.sleeps.empty());
}

TEST(ClientTest, ConnectionRefusedIsUnavailableAfterTheBudget) {
  // A port that was just free: nothing listens there.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t size = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size);
  const int port = ntohs(addr.sin_port);
  close(fd);

  FakeTime time;
  ClientOptions options = time.Options();
  options.max_attempts = 3;
  auto client = Client::Create("http://127.0.0.1:" + std::to_string(port), options);
  auto response = client->Send(Request("POST", "/x"));
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(response.status().message().find("after 3 attempts"), std::string::npos)
      << response.status();
  EXPECT_EQ(time.sleeps.size(), 2u);
}

TEST(ClientTest, ReadTimeOutIsRetried) {
  ScriptedServer server({ScriptStep::Hang(), ScriptStep::Respond(200, {}, "late")});
  FakeTime time;
  ClientOptions options = time.Options();
  options.read_timeout = milliseconds(200);
  auto client = Client::Create(server.url(), options);
  auto response = client->Send(Request("POST", "/x"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "late");
  EXPECT_EQ(response->attempts, 2);
  EXPECT_FALSE(SameKeyOrEmpty(server.requests()).empty());
}

TEST(ClientTest, ReportsReplaysAndUsesTheCallersKeyBareWhenAsked) {
  ScriptedServer server(
      {ScriptStep::Respond(201, {{"Idempotent-Replayed", "true"}}, "x")});
  ClientOptions options;
  options.quote_key = false;
  options.key_header = "X-Idempotency-Key";
  auto client = Client::Create(server.url() + "/api/", options);
  ClientRequest request = Request("PUT", "/orders/7?dry=0");
  request.headers = {{"Authorization", "Bearer t"}};
  request.idempotency_key = "order-7-v1";
  auto response = client->Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_TRUE(response->replayed);
  EXPECT_EQ(response->idempotency_key, "order-7-v1");
  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[0].target, "/api/orders/7?dry=0");
  EXPECT_EQ(seen[0].Header("x-idempotency-key"), "order-7-v1");
  EXPECT_EQ(seen[0].Header("authorization"), "Bearer t");
}

TEST(ClientTest, RejectsBadUrlsAndRequests) {
  EXPECT_EQ(Client::Create("https://example.com").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Client::Create("http://").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Client::Create("http://h:99999").status().code(),
            StatusCode::kInvalidArgument);
  auto client = Client::Create("http://127.0.0.1:1");
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client->Send(Request("POST", "no-slash")).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ClientTest, RetryingClientExampleRetriesThenSeesAReplay) {
  ScriptedServer server({
      ScriptStep::Drop(),
      ScriptStep::Respond(503, {{"Retry-After", "1"}}),
      ScriptStep::Respond(201, {}, R"({"id":"pay_1"})"),
      ScriptStep::Respond(201, {{"Idempotent-Replayed", "true"}}, R"({"id":"pay_1"})"),
  });
  libtest::TempDir dir;
  auto run = libtest::RunChild({IDEM_EXAMPLE_RETRYING_CLIENT, server.url(), "/payments"},
                               dir.File("out"), std::chrono::seconds(60));
  const std::string out = libtest::ReadFileOrEmpty(dir.File("out"));
  ASSERT_TRUE(run.ok() && run->Success()) << out;
  EXPECT_NE(out.find("first: status 201, attempts 3, replayed no"), std::string::npos)
      << out;
  EXPECT_NE(out.find("again: status 201, attempts 1, replayed yes"), std::string::npos)
      << out;
  EXPECT_EQ(server.requests().size(), 4u);
  EXPECT_FALSE(SameKeyOrEmpty(server.requests()).empty()) << "one key for all attempts";
}

TEST(ClientPolicyTest, RetryableStatusesAndRetryAfter) {
  for (int s : {408, 409, 425, 429, 500, 502, 503, 504, 599}) {
    EXPECT_TRUE(internal::IsRetryableStatus(s)) << s;
  }
  for (int s : {200, 201, 301, 400, 401, 403, 404, 422, 501, 505}) {
    EXPECT_FALSE(internal::IsRetryableStatus(s)) << s;
  }
  EXPECT_EQ(internal::ParseRetryAfter(" 7 "), milliseconds(7000));
  EXPECT_EQ(internal::ParseRetryAfter("0"), milliseconds(0));
  EXPECT_FALSE(internal::ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT").has_value());
  EXPECT_FALSE(internal::ParseRetryAfter("-1").has_value());
  EXPECT_FALSE(internal::ParseRetryAfter("").has_value());
  auto url = internal::ParseBaseUrl("http://[::1]:8080/base/");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, "8080");
  EXPECT_EQ(url->path, "/base");
}

}  // namespace
}  // namespace idem
