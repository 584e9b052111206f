// The admin listener: /healthz, /readyz, /metrics (outcome counters move as
// requests are handled) and GET/DELETE /keys/<percent-encoded scope key>,
// the scope key being "<tenant> <METHOD> <path> <key>" (docs/http.md).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "stack_fixture.h"

namespace idem::e2e {
namespace {

class AdminTest : public StackTest<AdminTest> {
 public:
  static std::string Config() { return DefaultConfig(); }

 protected:
  static HttpResponse Admin(std::string method, std::string target) {
    HttpRequest request;
    request.method = std::move(method);
    request.target = std::move(target);
    return Fetch(gateway().admin_port(), request);
  }
  // The admin address of a request without credentials.
  static std::string KeyPath(std::string_view method, std::string_view path,
                             std::string_view key) {
    return "/keys/" + UrlEncode("anonymous " + std::string(method) + " " +
                                std::string(path) + " " + std::string(key));
  }
};

TEST_F(AdminTest, HealthzAndReadyz) {
  HttpResponse health = Admin("GET", "/healthz");
  EXPECT_EQ(health.status, 200) << health.Describe();
  HttpResponse ready = Admin("GET", "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.Describe();
}

TEST_F(AdminTest, AdminIsNotOnTheMainListener) {
  uint64_t before = upstream().Total();
  HttpResponse response = Send(Get("/metrics"));
  EXPECT_EQ(response.status, 200) << "/metrics on the main port goes to the upstream";
  EXPECT_EQ(upstream().Total(), before + 1);
}

TEST_F(AdminTest, MetricsCountRequestsByOutcome) {
  auto before = OutcomeCounts(gateway().admin_port());
  ASSERT_FALSE(before.empty()) << Admin("GET", "/metrics").Describe();

  std::string key = UniqueKey();
  ASSERT_EQ(Send(KeyedPost("/work", key, "{\"v\":1}")).status, 200);  // executed
  ASSERT_EQ(Send(KeyedPost("/work", key, "{\"v\":1}")).status, 200);  // replayed
  ASSERT_EQ(Send(KeyedPost("/work", key, "{\"v\":2}")).status, 422);  // mismatch
  ASSERT_EQ(Send(Get("/work")).status, 200);                          // forwarded
  HttpRequest bad = Post("/work", "{}");
  bad.Header("Idempotency-Key", "\"unterminated");
  ASSERT_EQ(Send(bad).status, 400);                               // invalid_key
  ASSERT_EQ(Send(Post("/payments", PaymentBody())).status, 400);  // missing_key

  auto after = OutcomeCounts(gateway().admin_port());
  for (std::string outcome :
       {"executed", "replayed", "mismatch", "forwarded", "invalid_key", "missing_key"}) {
    EXPECT_EQ(after[outcome] - before[outcome], 1) << "outcome " << outcome;
  }
  EXPECT_EQ(after["conflict"], before["conflict"]);

  HttpResponse metrics = Admin("GET", "/metrics");
  EXPECT_EQ(metrics.Header("Content-Type").value_or("").rfind("text/plain", 0), 0u);
  EXPECT_NE(metrics.body.find("_bucket{"), std::string::npos) << "no latency histograms";
}

TEST_F(AdminTest, GetAndDeleteAKey) {
  std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/work", key, "{\"x\":1}"));
  ASSERT_EQ(first.status, 200) << first.Describe();

  HttpResponse record = Admin("GET", KeyPath("POST", "/work", key));
  ASSERT_EQ(record.status, 200) << record.Describe();
  EXPECT_EQ(record.Header("Content-Type").value_or("").rfind("application/json", 0), 0u);
  boost::system::error_code ec;
  boost::json::value json = boost::json::parse(record.body, ec);
  ASSERT_FALSE(ec) << record.body;
  EXPECT_NE(record.body.find("completed"), std::string::npos) << record.body;

  HttpResponse deleted = Admin("DELETE", KeyPath("POST", "/work", key));
  EXPECT_TRUE(deleted.status == 204 || deleted.status == 200) << deleted.Describe();
  EXPECT_EQ(Admin("GET", KeyPath("POST", "/work", key)).status, 404);
  EXPECT_EQ(Admin("DELETE", KeyPath("POST", "/work", key)).status, 404);

  HttpResponse again = Send(KeyedPost("/work", key, "{\"x\":1}"));
  EXPECT_TRUE(IsFresh(again)) << "a purged key must execute again";
  EXPECT_EQ(upstream().Count(key), 2u);
}

TEST_F(AdminTest, UnknownKeyIs404) {
  EXPECT_TRUE(IsProblem(Admin("GET", KeyPath("POST", "/work", UniqueKey())), 404));
}

}  // namespace
}  // namespace idem::e2e
