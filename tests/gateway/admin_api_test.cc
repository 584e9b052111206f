#include "gateway/admin_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "idem/forwarding_store.h"
#include "idem/memory_store.h"

namespace idem::gateway {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;

class AdminApiTest : public ::testing::Test {
 protected:
  // The memory store answers inline, so the response is there on return.
  StoredResponse Call(std::string_view method, std::string_view target,
                      std::string_view authorization = {}) {
    return CallOn(admin_, method, target, authorization);
  }
  static StoredResponse CallOn(AdminApi& admin, std::string_view method,
                               std::string_view target, std::string_view authorization) {
    StoredResponse out;
    bool answered = false;
    admin.Handle(method, target, authorization, [&](StoredResponse r) {
      out = std::move(r);
      answered = true;
    });
    EXPECT_TRUE(answered);
    return out;
  }

  std::shared_ptr<Store> store_ = NewMemoryStore();
  Metrics metrics_;
  std::atomic<bool> draining_{false};
  AdminApi admin_{*store_, metrics_, draining_};
};

TEST_F(AdminApiTest, HealthAndReadiness) {
  EXPECT_EQ(Call("GET", "/healthz").body, "ok\n");
  EXPECT_EQ(Call("GET", "/readyz").status, 200);
  draining_ = true;
  const StoredResponse draining = Call("GET", "/readyz");
  EXPECT_EQ(draining.status, 503);
  EXPECT_THAT(draining.body, HasSubstr("urn:idem:problem:draining"));
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
}

TEST_F(AdminApiTest, WithATokenEveryAddressButHealthzNeedsTheBearerToken) {
  const std::string token = "s3cret-admin-token-0123456789";
  AdminApi guarded(*store_, metrics_, draining_, token);
  EXPECT_EQ(CallOn(guarded, "GET", "/healthz", "").status, 200);
  for (const std::string_view target :
       {"/readyz", "/metrics", "/keys/anonymous%20POST%20/p%20k", "/nothing"}) {
    for (const std::string_view authorization :
         {std::string_view(), std::string_view("Bearer wrong-token"),
          std::string_view("Bearer s3cret-admin-token-012345678"),  // a prefix
          std::string_view("Bearer s3cret-admin-token-01234567890"),  // longer
          std::string_view("Basic czNjcmV0"), std::string_view("s3cret-admin-token-0123456789")}) {
      const StoredResponse denied = CallOn(guarded, "GET", target, authorization);
      EXPECT_EQ(denied.status, 401) << target << " with " << authorization;
      EXPECT_THAT(denied.body, HasSubstr("urn:idem:problem:unauthorized"));
      EXPECT_THAT(denied.headers, Contains(Pair("WWW-Authenticate", HasSubstr("Bearer"))));
    }
    EXPECT_EQ(CallOn(guarded, "DELETE", target, "").status, 401);
  }
  EXPECT_EQ(CallOn(guarded, "GET", "/readyz", "Bearer " + token).status, 200);
  EXPECT_EQ(CallOn(guarded, "GET", "/metrics", "bearer " + token).status, 200);
  EXPECT_EQ(CallOn(guarded, "GET", "/keys/anonymous%20POST%20/p%20k", "Bearer " + token).status,
            404);
}

TEST_F(AdminApiTest, WithoutATokenNoAuthorizationIsAskedFor) {
  EXPECT_EQ(Call("GET", "/readyz").status, 200);
  EXPECT_EQ(Call("GET", "/metrics", "Bearer anything").status, 200);
}

TEST_F(AdminApiTest, MetricsInPrometheusFormat) {
  metrics_.CountRequest(Outcome::kReplayed);
  const StoredResponse response = Call("GET", "/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.headers,
              Contains(Pair("Content-Type", "text/plain; version=0.0.4; charset=utf-8")));
  EXPECT_THAT(response.body, HasSubstr("idem_requests_total{outcome=\"replayed\"} 1\n"));
}

// A backend that reports numbers of its own, seen through a decorator.
class CountingStore final : public ForwardingStore {
 public:
  CountingStore() : ForwardingStore(NewMemoryStore()) {}
  std::vector<StoreMetric> Metrics() const override {
    return {{"group_syncs_total", "WAL syncs.", StoreMetric::Kind::kCounter, 42},
            {"cache_fill_ratio", "Cache fill.", StoreMetric::Kind::kGauge, 0.25}};
  }
};

TEST_F(AdminApiTest, MetricsIncludeTheStoreBackendsOwnNumbers) {
  auto backend = std::make_shared<CountingStore>();
  ForwardingStore decorated(backend);
  AdminApi admin(decorated, metrics_, draining_);
  const std::string text = CallOn(admin, "GET", "/metrics", "").body;
  EXPECT_THAT(text, HasSubstr("# TYPE idem_store_group_syncs_total counter\n"
                              "idem_store_group_syncs_total 42\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE idem_store_cache_fill_ratio gauge\n"
                              "idem_store_cache_fill_ratio 0.25"));
  // The memory store reports nothing of its own.
  EXPECT_THAT(Call("GET", "/metrics").body, ::testing::Not(HasSubstr("idem_store_group")));
}

TEST_F(AdminApiTest, GetsAndDeletesARecordByItsEncodedScopeKey) {
  const std::string key = "anonymous POST /payments k 1";
  BeginRequest begin;
  begin.key = key;
  begin.owner = "owner-1";
  ASSERT_TRUE(BeginSync(*store_, begin).ok());
  CompleteRequest complete;
  complete.key = key;
  complete.owner = "owner-1";
  complete.response = StoredResponse{201, {{"Content-Type", "application/json"}}, "{}"};
  ASSERT_TRUE(CompleteSync(*store_, complete).ok());

  const StoredResponse got = Call("GET", "/keys/anonymous%20POST%20%2Fpayments%20k%201");
  ASSERT_EQ(got.status, 200) << got.body;
  const boost::json::object record = boost::json::parse(got.body).as_object();
  EXPECT_EQ(record.at("key").as_string(), key);
  EXPECT_EQ(record.at("state").as_string(), "completed");
  EXPECT_EQ(record.at("response").at("status").as_int64(), 201);

  // A raw '/' works as well as %2F.
  EXPECT_EQ(Call("GET", "/keys/anonymous%20POST%20/payments%20k%201").status, 200);
  EXPECT_EQ(Call("DELETE", "/keys/anonymous%20POST%20/payments%20k%201").status, 204);
  EXPECT_EQ(Call("GET", "/keys/anonymous%20POST%20/payments%20k%201").status, 404);
  EXPECT_EQ(Call("DELETE", "/keys/anonymous%20POST%20/payments%20k%201").status, 404);
}

TEST_F(AdminApiTest, UnknownPathsMethodsAndEscapes) {
  EXPECT_EQ(Call("GET", "/nope").status, 404);
  EXPECT_EQ(Call("GET", "/keys/").status, 404);
  const StoredResponse post = Call("POST", "/healthz");
  EXPECT_EQ(post.status, 405);
  EXPECT_THAT(post.headers, Contains(Pair("Allow", "GET, HEAD")));
  EXPECT_EQ(Call("PUT", "/keys/x").status, 405);
  EXPECT_EQ(Call("GET", "/keys/bad%zz").status, 400);
}

TEST(PercentDecodeTest, DecodesAndRejectsBadEscapes) {
  EXPECT_EQ(*PercentDecode("a%20b%2Fc+d"), "a b/c+d");
  EXPECT_FALSE(PercentDecode("%2").ok());
  EXPECT_FALSE(PercentDecode("%g0").ok());
}

}  // namespace
}  // namespace idem::gateway
