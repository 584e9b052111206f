#include "gateway/idempotency_filter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "idem/encrypting_store.h"
#include "idem/key.h"
#include "idem/memory_store.h"

namespace idem::gateway {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;
using Kind = Action::Kind;

// A request the way the server hands it over: views into owned strings.
struct TestRequest {
  std::string method = "POST";
  std::string target = "/payments";
  std::vector<std::pair<std::string, std::string>> header_storage;
  std::string body = R"({"amount":100,"currency":"EUR"})";
  std::vector<HeaderLine> lines;

  TestRequest& Header(std::string name, std::string value) {
    header_storage.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  TestRequest& Key(std::string value) {
    return Header("Idempotency-Key", std::move(value));
  }

  RequestView View() {
    lines.clear();
    for (const auto& [n, v] : header_storage) lines.push_back(HeaderLine{n, v});
    return RequestView{method, target, lines, body};
  }
};

// A store that is down: every call fails with kUnavailable, as a network
// store does while its server is unreachable.
class DownStore final : public Store {
 public:
  void Begin(BeginRequest, Callback<Result<BeginResult>> done) override { done(Down()); }
  void Complete(CompleteRequest, Callback<Status> done) override { done(Down()); }
  void Release(std::string, std::string, Callback<Status> done) override { done(Down()); }
  void Extend(std::string, std::string, int64_t,
              Callback<Result<int64_t>> done) override {
    done(Down());
  }
  void Checkpoint(CheckpointRequest, Callback<Status> done) override { done(Down()); }
  void Get(std::string, Callback<Result<RecordPtr>> done) override { done(Down()); }
  void Delete(std::string, Callback<Status> done) override { done(Down()); }
  void Sweep(size_t, Callback<Result<size_t>> done) override { done(Down()); }
  void WaitForCompletion(std::string, std::chrono::milliseconds,
                         Callback<Result<RecordPtr>> done) override {
    done(Down());
  }
  void Ping(Callback<Status> done) override { done(Down()); }

 private:
  static Status Down() { return Unavailable("connection refused"); }
};

class IdempotencyFilterTest : public ::testing::Test {
 protected:
  IdempotencyFilterTest() {
    RouteConfig strict;
    strict.path = "/strict/*";
    strict.idempotency.require_key = true;
    RouteConfig json;
    json.path = "/json/*";
    json.idempotency.fingerprint = FingerprintMode::kJson;
    RouteConfig stored5xx;
    stored5xx.path = "/stored5xx/*";
    stored5xx.idempotency.on_server_error = ServerErrorPolicy::kStore;
    stored5xx.idempotency.engine.on_server_error = ServerErrorPolicy::kStore;
    RouteConfig wait;
    wait.path = "/wait/*";
    wait.idempotency.engine.in_flight = InFlightPolicy::kWait;
    wait.idempotency.engine.wait_timeout_ms = 5'000;
    RouteConfig pass;
    pass.path = "/pass/*";
    pass.idempotency.on_store_error_pass = true;
    RouteConfig delete_too;
    delete_too.path = "/things/*";
    delete_too.idempotency.methods = {"DELETE"};
    config_.routes = {strict, json, stored5xx, wait, pass, delete_too};
    config_.idempotency.engine.lease_ttl_ms = 10'000;
  }

  Action Begin(TestRequest& request) { return BeginWith(filter_, request); }

  static Action BeginWith(IdempotencyFilter& filter, TestRequest& request) {
    const RequestView view = request.View();
    const Classification c = filter.Classify(view);
    EXPECT_EQ(c.kind, Classification::Kind::kProtect);
    if (c.kind != Classification::Kind::kProtect) return Action{};
    std::promise<Action> answered;
    filter.Begin(c, view, [&](Action a) { answered.set_value(std::move(a)); });
    return answered.get_future().get();
  }

  Outcome Complete(const Execution& execution, StoredResponse response) {
    std::promise<Outcome> answered;
    filter_.Complete(execution, std::move(response),
                     [&](Outcome o) { answered.set_value(o); });
    return answered.get_future().get();
  }

  static StoredResponse Created(std::string body) {
    return StoredResponse{201, {{"Content-Type", "application/json"}}, std::move(body)};
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::shared_ptr<Store> store_ = NewMemoryStore(MemoryStoreOptions{8, clock_});
  Engine engine_{store_, clock_};
  Metrics metrics_;
  GatewayConfig config_;
  IdempotencyFilter filter_{config_, engine_, metrics_};
};

TEST_F(IdempotencyFilterTest, UncoveredMethodsAndKeylessRequestsAreForwarded) {
  TestRequest get;
  get.method = "GET";
  get.Key("k1");
  EXPECT_EQ(filter_.Classify(get.View()).kind, Classification::Kind::kForward);
  TestRequest keyless;
  const Classification c = filter_.Classify(keyless.View());
  EXPECT_EQ(c.kind, Classification::Kind::kForward);
  EXPECT_EQ(c.outcome, Outcome::kForwarded);
}

TEST_F(IdempotencyFilterTest, RoutesChooseTheCoveredMethods) {
  TestRequest del;
  del.method = "DELETE";
  del.target = "/things/1";
  del.Key("k1");
  EXPECT_EQ(filter_.Classify(del.View()).kind, Classification::Kind::kProtect);
  TestRequest post;
  post.target = "/things/1";
  post.Key("k1");
  EXPECT_EQ(filter_.Classify(post.View()).kind, Classification::Kind::kForward);
}

TEST_F(IdempotencyFilterTest, MissingKeyOnARouteThatRequiresOne) {
  TestRequest request;
  request.target = "/strict/payments?debug=1";
  const Classification c = filter_.Classify(request.View());
  ASSERT_EQ(c.kind, Classification::Kind::kRespond);
  EXPECT_EQ(c.outcome, Outcome::kMissingKey);
  EXPECT_EQ(c.problem.type, ProblemType::kMissingKey);
}

TEST_F(IdempotencyFilterTest, MalformedKeysAreRejectedWithoutTheStore) {
  const std::vector<std::string> malformed = {
      "",    "  ",      std::string(256, 'a'),   "\"open",
      "a b", "\"\\x\"", std::string("k\x01", 2), "\"a\"b"};
  for (const std::string& bad : malformed) {
    TestRequest request;
    request.Key(bad);
    const Classification c = filter_.Classify(request.View());
    ASSERT_EQ(c.kind, Classification::Kind::kRespond) << "[" << bad << "]";
    EXPECT_EQ(c.problem.type, ProblemType::kInvalidKey);
    EXPECT_EQ(c.outcome, Outcome::kInvalidKey);
    EXPECT_FALSE(c.problem.detail.empty());
    EXPECT_THAT(c.problem.detail, ::testing::Not(HasSubstr(bad.empty() ? "\x01" : bad)));
  }
}

TEST_F(IdempotencyFilterTest, RepeatedKeyHeaderIsRejected) {
  TestRequest request;
  request.Key("a").Header("idempotency-key", "a");
  const Classification c = filter_.Classify(request.View());
  ASSERT_EQ(c.kind, Classification::Kind::kRespond);
  EXPECT_EQ(c.problem.type, ProblemType::kDuplicateKeyHeader);
}

TEST_F(IdempotencyFilterTest, ExecuteThenReplayThenMismatch) {
  TestRequest first;
  first.Key("pay-1");
  const Action execute = Begin(first);
  ASSERT_EQ(execute.kind, Kind::kExecute);
  EXPECT_EQ(execute.outcome, Outcome::kExecuted);
  EXPECT_EQ(execute.execution.lease.fence, 1u);
  EXPECT_EQ(execute.scope_key, "anonymous POST /payments pay-1");
  EXPECT_EQ(Complete(execute.execution, Created("{\"id\":1}")), Outcome::kExecuted);

  TestRequest again;
  again.Key("\"pay-1\"");  // the sf-string form is the same key
  const Action replay = Begin(again);
  ASSERT_EQ(replay.kind, Kind::kReplay);
  EXPECT_EQ(replay.outcome, Outcome::kReplayed);
  EXPECT_EQ(replay.record->response, Created("{\"id\":1}"));

  TestRequest other;
  other.Key("pay-1");
  other.body = R"({"amount":999,"currency":"EUR"})";
  const Action mismatch = Begin(other);
  ASSERT_EQ(mismatch.kind, Kind::kRespond);
  EXPECT_EQ(mismatch.problem.type, ProblemType::kKeyMismatch);
  EXPECT_EQ(mismatch.outcome, Outcome::kMismatch);
}

TEST_F(IdempotencyFilterTest, TheQueryIsFingerprintedButNotPartOfTheScope) {
  TestRequest first;
  first.target = "/payments?a=1";
  first.Key("q");
  const Action execute = Begin(first);
  ASSERT_EQ(execute.kind, Kind::kExecute);
  EXPECT_EQ(execute.scope_key, "anonymous POST /payments q");
  Complete(execute.execution, Created("{}"));
  TestRequest other_query;
  other_query.target = "/payments?a=2";
  other_query.Key("q");
  EXPECT_EQ(Begin(other_query).kind, Kind::kRespond);
}

TEST_F(IdempotencyFilterTest, InFlightDuplicateGetsAConflictWithRetryAfter) {
  TestRequest first;
  first.Key("busy");
  ASSERT_EQ(Begin(first).kind, Kind::kExecute);
  clock_->AdvanceMs(2'500);
  TestRequest second;
  second.Key("busy");
  const Action conflict = Begin(second);
  ASSERT_EQ(conflict.kind, Kind::kRespond);
  EXPECT_EQ(conflict.problem.type, ProblemType::kRequestInProgress);
  EXPECT_EQ(conflict.outcome, Outcome::kConflict);
  EXPECT_EQ(conflict.problem.retry_after_s, 8);  // 7.5 s of the lease left, rounded up
}

TEST_F(IdempotencyFilterTest, TenantsNeverShareResults) {
  TestRequest alice;
  alice.Key("same").Header("Authorization", "Bearer alice");
  const Action a = Begin(alice);
  ASSERT_EQ(a.kind, Kind::kExecute);
  Complete(a.execution, Created("alice"));

  TestRequest bob;
  bob.Key("same").Header("Authorization", "Bearer bob");
  const Action b = Begin(bob);
  ASSERT_EQ(b.kind, Kind::kExecute);
  EXPECT_NE(a.scope_key, b.scope_key);
  EXPECT_THAT(a.scope_key, ::testing::Not(HasSubstr("alice")));

  TestRequest alice_again;
  alice_again.Key("same").Header("authorization", "Bearer alice");
  const Action replay = Begin(alice_again);
  ASSERT_EQ(replay.kind, Kind::kReplay);
  EXPECT_EQ(replay.record->response.body, "alice");
}

TEST_F(IdempotencyFilterTest, TenantIdComesFromTheConfiguredHeadersInOrder) {
  IdempotencyConfig route;
  route.tenant_headers = {"Authorization", "X-Api-Key"};
  EXPECT_EQ(IdempotencyFilter::TenantOf(route, {}), "anonymous");
  const std::vector<HeaderLine> only_key = {{"X-Api-Key", "v"}};
  const std::vector<HeaderLine> only_auth = {{"Authorization", "v"}};
  EXPECT_NE(IdempotencyFilter::TenantOf(route, only_key),
            IdempotencyFilter::TenantOf(route, only_auth));
  const std::vector<HeaderLine> two_lines = {{"X-Api-Key", "a"}, {"x-api-key", "b"}};
  const std::vector<HeaderLine> joined = {{"X-Api-Key", "a, b"}};
  EXPECT_EQ(IdempotencyFilter::TenantOf(route, two_lines),
            IdempotencyFilter::TenantOf(route, joined));
}

TEST_F(IdempotencyFilterTest, JsonModeIgnoresFieldOrderAndRejectsBadJson) {
  TestRequest first;
  first.target = "/json/orders";
  first.Key("j");
  first.body = R"({"a":1,"b":[1,2]})";
  const Action execute = Begin(first);
  ASSERT_EQ(execute.kind, Kind::kExecute);
  Complete(execute.execution, Created("{}"));

  TestRequest reordered;
  reordered.target = "/json/orders";
  reordered.Key("j");
  reordered.body = "{ \"b\": [1, 2], \"a\": 1 }";
  EXPECT_EQ(Begin(reordered).kind, Kind::kReplay);

  TestRequest broken;
  broken.target = "/json/orders";
  broken.Key("j2");
  broken.body = "{\"a\":";
  const Action rejected = Begin(broken);
  ASSERT_EQ(rejected.kind, Kind::kRespond);
  EXPECT_EQ(rejected.problem.type, ProblemType::kInvalidJsonBody);
  EXPECT_EQ(rejected.outcome, Outcome::kInvalidBody);
  EXPECT_EQ(metrics_.RequestCount(Outcome::kInvalidBody), 0u);  // the server counts
}

TEST_F(IdempotencyFilterTest, StatusPolicyDecidesWhatIsStored) {
  const IdempotencyConfig& defaults = config_.idempotency;
  EXPECT_TRUE(IdempotencyFilter::WillStore(defaults, 201));
  EXPECT_TRUE(IdempotencyFilter::WillStore(defaults, 400));
  EXPECT_FALSE(IdempotencyFilter::WillStore(defaults, 409));
  EXPECT_FALSE(IdempotencyFilter::WillStore(defaults, 429));
  EXPECT_FALSE(IdempotencyFilter::WillStore(defaults, 500));
  EXPECT_FALSE(IdempotencyFilter::WillStore(defaults, 302));
  EXPECT_TRUE(IdempotencyFilter::WillStore(config_.routes[2].idempotency, 503));
}

TEST_F(IdempotencyFilterTest, ServerErrorIsReleasedSoTheRetryExecutes) {
  TestRequest first;
  first.Key("flaky");
  const Action execute = Begin(first);
  ASSERT_EQ(execute.kind, Kind::kExecute);
  EXPECT_EQ(Complete(execute.execution, StoredResponse{500, {}, "oops"}),
            Outcome::kExecuted);
  TestRequest retry;
  retry.Key("flaky");
  EXPECT_EQ(Begin(retry).kind, Kind::kExecute);
}

TEST_F(IdempotencyFilterTest, ServerErrorIsReplayedWhenTheRouteStoresIt) {
  TestRequest first;
  first.target = "/stored5xx/pay";
  first.Key("flaky");
  const Action execute = Begin(first);
  ASSERT_EQ(execute.kind, Kind::kExecute);
  Complete(execute.execution, StoredResponse{503, {}, "down"});
  TestRequest retry;
  retry.target = "/stored5xx/pay";
  retry.Key("flaky");
  const Action replay = Begin(retry);
  ASSERT_EQ(replay.kind, Kind::kReplay);
  EXPECT_EQ(replay.record->response.status, 503);
}

TEST_F(IdempotencyFilterTest, ClientErrorIsReplayed) {
  TestRequest first;
  first.Key("bad-card");
  const Action execute = Begin(first);
  Complete(execute.execution, StoredResponse{400, {}, "declined"});
  TestRequest retry;
  retry.Key("bad-card");
  const Action replay = Begin(retry);
  ASSERT_EQ(replay.kind, Kind::kReplay);
  EXPECT_EQ(replay.record->response.status, 400);
}

TEST_F(IdempotencyFilterTest, TooLargeResponsesLeaveAMarkerThatIsNeverExecutedAgain) {
  TestRequest first;
  first.Key("huge");
  const Action execute = Begin(first);
  ASSERT_EQ(execute.kind, Kind::kExecute);
  std::promise<Outcome> done;
  filter_.CompleteNotStored(execute.execution, 200,
                            [&](Outcome o) { done.set_value(o); });
  EXPECT_EQ(done.get_future().get(), Outcome::kExecuted);

  TestRequest retry;
  retry.Key("huge");
  const Action replay = Begin(retry);
  ASSERT_EQ(replay.kind, Kind::kReplay);
  EXPECT_EQ(replay.record->response, IdempotencyFilter::NotStoredMarker(200));
  EXPECT_EQ(replay.record->response.status, 410);
  EXPECT_THAT(replay.record->response.body,
              HasSubstr("urn:idem:problem:response-not-stored"));
  EXPECT_THAT(replay.record->response.body, HasSubstr("\"original_status\":200"));
}

TEST_F(IdempotencyFilterTest, AbandonLetsTheNextRequestExecute) {
  TestRequest first;
  first.Key("never-sent");
  const Action execute = Begin(first);
  std::promise<Status> released;
  filter_.Abandon(execute.execution, [&](Status s) { released.set_value(std::move(s)); });
  EXPECT_TRUE(released.get_future().get().ok());
  TestRequest retry;
  retry.Key("never-sent");
  EXPECT_EQ(Begin(retry).kind, Kind::kExecute);
}

TEST_F(IdempotencyFilterTest, ExtendKeepsTheLeaseAndATakeOverMeansLeaseLost) {
  TestRequest first;
  first.Key("slow");
  const Action execute = Begin(first);
  clock_->AdvanceMs(8'000);
  std::promise<Result<int64_t>> extended;
  filter_.Extend(execute.execution,
                 [&](Result<int64_t> r) { extended.set_value(std::move(r)); });
  ASSERT_TRUE(extended.get_future().get().ok());
  clock_->AdvanceMs(8'000);  // past the first lease, within the extended one
  TestRequest duplicate;
  duplicate.Key("slow");
  EXPECT_EQ(Begin(duplicate).kind, Kind::kRespond);

  clock_->AdvanceMs(10'000);  // the extended lease ran out too: a retry takes over
  const Action takeover = Begin(duplicate);
  ASSERT_EQ(takeover.kind, Kind::kExecute);
  EXPECT_EQ(takeover.execution.lease.fence, 2u);
  EXPECT_EQ(Complete(execute.execution, Created("late")), Outcome::kLeaseLost);
  EXPECT_EQ(Complete(takeover.execution, Created("current")), Outcome::kExecuted);
}

TEST_F(IdempotencyFilterTest, WaitingDuplicateGetsTheFirstResult) {
  TestRequest first;
  first.target = "/wait/pay";
  first.Key("w");
  const Action execute = Begin(first);
  ASSERT_EQ(execute.kind, Kind::kExecute);

  TestRequest waiter;
  waiter.target = "/wait/pay";
  waiter.Key("w");
  const RequestView view = waiter.View();
  const Classification c = filter_.Classify(view);
  std::promise<Action> answered;
  filter_.Begin(c, view, [&](Action a) { answered.set_value(std::move(a)); });
  std::future<Action> result = answered.get_future();
  EXPECT_EQ(result.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);

  Complete(execute.execution, Created("first"));
  const Action replay = result.get();
  ASSERT_EQ(replay.kind, Kind::kReplay);
  EXPECT_EQ(replay.record->response.body, "first");
}

TEST_F(IdempotencyFilterTest, StoreOutageFailsClosedByDefault) {
  Engine down_engine(std::make_shared<DownStore>());
  IdempotencyFilter filter(config_, down_engine, metrics_);
  TestRequest request;
  request.Key("k");
  const Action action = BeginWith(filter, request);
  ASSERT_EQ(action.kind, Kind::kRespond);
  EXPECT_EQ(action.problem.type, ProblemType::kStoreUnavailable);
  EXPECT_EQ(action.outcome, Outcome::kStoreError);
  EXPECT_GT(action.problem.retry_after_s, 0);
  EXPECT_EQ(metrics_.StoreErrorCount(StoreOp::kBegin), 1u);
  const StoredResponse response = ProblemResponse(action.problem);
  EXPECT_EQ(response.status, 503);
  EXPECT_THAT(response.body, ::testing::Not(HasSubstr("refused")));
}

TEST_F(IdempotencyFilterTest, StoreOutageForwardsUnprotectedWhenTheRouteSaysPass) {
  Engine down_engine(std::make_shared<DownStore>());
  IdempotencyFilter filter(config_, down_engine, metrics_);
  TestRequest request;
  request.target = "/pass/pay";
  request.Key("k");
  const Action action = BeginWith(filter, request);
  EXPECT_EQ(action.kind, Kind::kForward);
  EXPECT_EQ(action.outcome, Outcome::kUnprotected);
}

// A record that exists but cannot be read (its encryption key was
// retired) may be a finished execution: "pass" must not run it again.
TEST_F(IdempotencyFilterTest, UnreadableRecordFailsClosedEvenWhenTheRouteSaysPass) {
  const auto keys = [](std::string_view entry, std::string active) {
    EncryptionKeys k;
    k.active_id = std::move(active);
    k.keys = ParseEncryptionKeys(entry).value();
    return k;
  };
  const std::string_view old_key =
      "old:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  const std::string_view new_key = "new:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
  Engine before(NewEncryptingStore(store_, keys(old_key, "old")), clock_);
  IdempotencyFilter writer(config_, before, metrics_);
  TestRequest request;
  request.target = "/pass/pay";
  request.Key("sealed");
  const Action first = BeginWith(writer, request);
  ASSERT_EQ(first.kind, Kind::kExecute);
  std::promise<Outcome> stored;
  writer.Complete(first.execution, Created("{}"), [&](Outcome o) { stored.set_value(o); });
  ASSERT_EQ(stored.get_future().get(), Outcome::kExecuted);

  Engine after(NewEncryptingStore(store_, keys(new_key, "new")), clock_);
  IdempotencyFilter reader(config_, after, metrics_);
  const Action retry = BeginWith(reader, request);
  ASSERT_EQ(retry.kind, Kind::kRespond);
  EXPECT_EQ(retry.problem.type, ProblemType::kStoreUnavailable);
  EXPECT_EQ(retry.outcome, Outcome::kStoreError);
}

TEST_F(IdempotencyFilterTest, TenantIdsAreKeyedWithTheSecret) {
  RouteConfig route;
  const std::vector<HeaderLine> alice = {{"Authorization", "Bearer alice"}};
  const std::string plain = IdempotencyFilter::TenantOf(route.idempotency, alice);
  const std::string keyed = IdempotencyFilter::TenantOf(route.idempotency, alice,
                                                        "a-secret-of-16-bytes");
  EXPECT_NE(plain, keyed);
  EXPECT_EQ(keyed.size(), 32u);
  EXPECT_EQ(keyed, TenantId({"Bearer alice"}, "a-secret-of-16-bytes"));
  EXPECT_NE(keyed, IdempotencyFilter::TenantOf(route.idempotency, alice, "another-secret-16b"));
  EXPECT_EQ(IdempotencyFilter::TenantOf(route.idempotency, {}, "a-secret-of-16-bytes"),
            "anonymous");

  // The filter uses the configured secret for scope keys.
  config_.secrets.tenant_secret = "a-secret-of-16-bytes";
  TestRequest request;
  request.Key("k").Header("Authorization", "Bearer alice");
  const Action action = Begin(request);
  EXPECT_EQ(action.scope_key.substr(0, 32), keyed);
}

TEST_F(IdempotencyFilterTest, StoreCallsAreTimed) {
  TestRequest request;
  request.Key("timed");
  const Action execute = Begin(request);
  Complete(execute.execution, Created("{}"));
  const std::string text = metrics_.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("idem_store_duration_seconds_count{op=\"begin\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("idem_store_duration_seconds_count{op=\"finish\"} 1\n"));
}

TEST(KeyTagTest, IsShortStableAndHidesTheKey) {
  const std::string tag = IdempotencyFilter::KeyTag("anonymous POST /p secret-key");
  EXPECT_EQ(tag.size(), 16u);
  EXPECT_EQ(tag, IdempotencyFilter::KeyTag("anonymous POST /p secret-key"));
  EXPECT_NE(tag, IdempotencyFilter::KeyTag("anonymous POST /p secret-kez"));
}

}  // namespace
}  // namespace idem::gateway
