// Fault injection end to end: the real `idem serve` on a `fault:` store
// (idem/fault_store.h) over the memory store, in front of the real demo
// upstream. For each store operation and fault (error, lost answer, hang,
// latency past store.operation_timeout) the gateway answers per policy,
// never runs a request unprotected in fail-closed mode, never hangs, and
// keeps or frees the lease as docs/reliability.md says. Also: upstream
// reset, stall and garbage under on_server_error = "store".
#include <gtest/gtest.h>

#include <thread>

#include "redis/redis_server.h"
#include "stack_fixture.h"

namespace idem::e2e {
namespace {

// store.operation_timeout is short so hung calls end quickly; leases are
// long enough that "still held right after" is not a race.
constexpr std::string_view kConfig = R"toml(
[server]
threads = 2

[upstream]
timeout = "2s"

[store]
operation_timeout = "300ms"

[idempotency]
lease_ttl = "2s"

[[route]]
path = "/pass/*"
on_store_error = "pass"

[[route]]
path = "/lease/*"
lease_ttl = "300ms"

[[route]]
path = "/wait/*"
in_flight = "wait"
wait_timeout = "5s"
)toml";

class StoreFaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { upstream_ = Upstream::Start(error_); }
  static void TearDownTestSuite() { upstream_.reset(); }

  void SetUp() override { ASSERT_NE(upstream_, nullptr) << error_; }
  void TearDown() override {
    if (HasFailure() && gateway_) std::cerr << "gateway log:\n" << gateway_->Log();
  }

  // Starts a gateway whose store is "fault:<rules>|memory:".
  void StartGateway(const std::string& rules) {
    GatewayOptions options;
    options.config = std::string(kConfig);
    options.store_uri = "fault:" + rules + "|memory:";
    options.upstream_url = upstream_->url();
    std::string error;
    gateway_ = Gateway::Start(options, error);
    ASSERT_NE(gateway_, nullptr) << error;
  }

  HttpResponse Send(const HttpRequest& request) {
    HttpResponse response = Fetch(gateway_->port(), request);
    EXPECT_TRUE(response.error.empty()) << "the gateway must answer: " << response.error;
    return response;
  }

  // The record the admin API shows for an anonymous POST.
  HttpResponse Record(std::string_view path, std::string_view key) {
    return Fetch(gateway_->admin_port(),
                 Get("/keys/" + UrlEncode("anonymous POST " + std::string(path) + " " +
                                          std::string(key))));
  }

  // Retries `request` until it is executed (any status but 409), within a
  // bound; the answer.
  HttpResponse SendUntilNotInFlight(const HttpRequest& request) {
    HttpResponse response;
    WaitUntil([&] {
      response = Send(request);
      return response.status != 409;
    });
    return response;
  }

  std::optional<uint64_t> LastFence(std::string_view key) {
    auto seen = upstream_->Last(key);
    if (!seen) return std::nullopt;
    auto fence = seen->Header("Idempotency-Fence");
    if (!fence) return 0;
    return std::stoull(*fence);
  }

  static inline std::unique_ptr<Upstream> upstream_;
  static inline std::string error_;
  std::unique_ptr<Gateway> gateway_;
};

// Begin fails before it reaches the store: 503, never forwarded; a retry
// runs once with fence 1.
class BeginFaultTest : public StoreFaultTest,
                       public ::testing::WithParamInterface<std::string> {};

TEST_P(BeginFaultTest, FailClosedIs503AndNeverExecutes) {
  StartGateway("begin=" + GetParam() + ",times=1");
  const std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/work", key));
  EXPECT_TRUE(IsProblem(first, 503, "store-unavailable")) << first.Describe();
  EXPECT_EQ(first.Header("Retry-After").value_or(""), "1");
  EXPECT_EQ(upstream_->Count(key), 0u) << "fail closed: nothing may run unprotected";
  EXPECT_EQ(OutcomeCounts(gateway_->admin_port())["store_error"], 1);

  HttpResponse retry = SendUntilNotInFlight(KeyedPost("/work", key));
  EXPECT_EQ(retry.status, 200) << retry.Describe();
  EXPECT_TRUE(IsFresh(retry));
  EXPECT_EQ(upstream_->Count(key), 1u);
  const bool lease_was_taken = GetParam() == "error-after" || GetParam() == "hang-after";
  // A lease taken by a Begin whose answer was lost is kept until it runs
  // out (then taken over: fence 2); one whose answer came late is given
  // back by the deadline (fence 1).
  EXPECT_EQ(LastFence(key), lease_was_taken ? 2u : 1u);
}

INSTANTIATE_TEST_SUITE_P(Kinds, BeginFaultTest,
                         ::testing::Values("error", "error-after", "hang", "hang-after",
                                           "latency,ms=1500"),
                         [](const auto& p) {
                           std::string name = p.param.substr(0, p.param.find(','));
                           std::erase(name, '-');
                           return name;
                         });

TEST_F(StoreFaultTest, BeginAnswerLostKeepsTheLeaseUntilItRunsOut) {
  StartGateway("begin=error-after,times=1");
  const std::string key = UniqueKey();
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/work", key)), 503, "store-unavailable"));
  HttpResponse record = Record("/work", key);
  ASSERT_EQ(record.status, 200) << record.Describe();
  EXPECT_NE(record.body.find("\"state\":\"in_flight\""), std::string::npos) << record.body;
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/work", key)), 409, "request-in-progress"));
  EXPECT_EQ(upstream_->Count(key), 0u);
}

TEST_F(StoreFaultTest, BeginLateAnswerGivesTheLeaseBack) {
  StartGateway("begin=latency,ms=600,times=1");
  const std::string key = UniqueKey();
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/work", key)), 503, "store-unavailable"));
  // The late Begin acquires, and the deadline store releases it at once.
  EXPECT_TRUE(WaitUntil([&] { return Record("/work", key).status == 404; }));
  HttpResponse retry = Send(KeyedPost("/work", key));
  EXPECT_EQ(retry.status, 200) << retry.Describe();
  EXPECT_EQ(LastFence(key), 1u);
}

TEST_F(StoreFaultTest, PassForwardsUnprotectedWhenBeginFails) {
  for (const std::string kind : {"error", "hang"}) {
    StartGateway("begin=" + kind);
    const std::string key = UniqueKey(kind);
    HttpResponse first = Send(KeyedPost("/pass/work", key));
    EXPECT_EQ(first.status, 200) << kind << ": " << first.Describe();
    EXPECT_EQ(upstream_->Count(key), 1u) << kind;
    EXPECT_EQ(LastFence(key), 0u) << kind << ": unprotected: no lease, no fence";
    EXPECT_EQ(OutcomeCounts(gateway_->admin_port())["unprotected"], 1) << kind;
    // The fail-closed routes of the same gateway still refuse.
    EXPECT_TRUE(IsProblem(Send(KeyedPost("/work", key)), 503, "store-unavailable")) << kind;
    EXPECT_EQ(upstream_->Count(key), 1u) << kind;
  }
}

// Complete fails: the client still gets the upstream's answer (it ran);
// the lease is kept until it runs out, then a retry runs again.
class CompleteFaultTest : public StoreFaultTest,
                          public ::testing::WithParamInterface<std::string> {};

TEST_P(CompleteFaultTest, TheClientGetsTheAnswerAndTheLeaseRunsOut) {
  StartGateway("complete=" + GetParam() + ",times=1");
  const std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/work", key));
  EXPECT_EQ(first.status, 200) << first.Describe();
  EXPECT_TRUE(IsFresh(first));
  EXPECT_EQ(upstream_->Count(key), 1u);
  HttpResponse record = Record("/work", key);
  EXPECT_NE(record.body.find("\"state\":\"in_flight\""), std::string::npos) << record.body;
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/work", key)), 409, "request-in-progress"));
  HttpResponse retry = SendUntilNotInFlight(KeyedPost("/work", key));
  EXPECT_EQ(retry.status, 200) << retry.Describe();
  EXPECT_EQ(upstream_->Count(key), 2u);
  EXPECT_EQ(LastFence(key), 2u) << "the retry took the lapsed lease over";
}

INSTANTIATE_TEST_SUITE_P(Kinds, CompleteFaultTest, ::testing::Values("error", "hang"));

// A Complete that lands after the deadline still stores the result: the
// client had its answer at the deadline, and retries replay once it lands.
TEST_F(StoreFaultTest, CompleteLandingLateIsReplayed) {
  StartGateway("complete=latency,ms=1000,times=1");
  const std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/work", key));
  EXPECT_EQ(first.status, 200) << first.Describe();
  HttpResponse retry = SendUntilNotInFlight(KeyedPost("/work", key));
  EXPECT_TRUE(IsReplayOf(retry, first));
  EXPECT_EQ(upstream_->Count(key), 1u);
}

TEST_F(StoreFaultTest, CompleteStoredButAnswerLostReplays) {
  StartGateway("complete=error-after,times=1");
  const std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/work", key));
  EXPECT_EQ(first.status, 200) << first.Describe();
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost("/work", key)), first));
  EXPECT_EQ(upstream_->Count(key), 1u);
}

// Release fails after a 5xx (released by default): the 500 reaches the
// client, the key stays in flight until the lease runs out.
TEST_F(StoreFaultTest, ReleaseFaultKeepsTheKeyUntilTheLeaseRunsOut) {
  for (const std::string kind : {"error", "hang"}) {
    StartGateway("release=" + kind + ",times=1");
    const std::string key = UniqueKey(kind);
    HttpResponse first = Send(KeyedPost("/status/500", key));
    EXPECT_EQ(first.status, 500) << kind << ": " << first.Describe();
    EXPECT_TRUE(IsProblem(Send(KeyedPost("/status/500", key)), 409, "request-in-progress"))
        << kind;
    HttpResponse retry = SendUntilNotInFlight(KeyedPost("/status/500", key));
    EXPECT_EQ(retry.status, 500) << kind;
    EXPECT_EQ(upstream_->Count(key), 2u) << kind;
  }
}

// Extend fails or hangs while a slow upstream works past its lease: the
// request still finishes, runs once and (nobody took the lease over) is
// stored.
TEST_F(StoreFaultTest, ExtendFaultsNeverHoldTheRequest) {
  for (const std::string kind : {"error", "hang"}) {
    StartGateway("extend=" + kind);
    const std::string key = UniqueKey(kind);
    HttpResponse first = Send(KeyedPost("/lease/slow?ms=900", key));
    EXPECT_EQ(first.status, 200) << kind << ": " << first.Describe();
    EXPECT_EQ(upstream_->Count(key), 1u) << kind;
    HttpResponse replay = Send(KeyedPost("/lease/slow?ms=900", key));
    EXPECT_TRUE(IsReplayOf(replay, first)) << kind;
    EXPECT_EQ(upstream_->Count(key), 1u) << kind;
  }
}

TEST_F(StoreFaultTest, WaitFaultIs503ForTheDuplicate) {
  StartGateway("wait=error");
  const std::string key = UniqueKey();
  HttpResponse slow;
  std::thread first([&] { slow = Fetch(gateway_->port(), KeyedPost("/wait/slow?ms=800", key)); });
  ASSERT_TRUE(upstream_->WaitForCount(key, 1));
  HttpResponse duplicate = Send(KeyedPost("/wait/slow?ms=800", key));
  first.join();
  EXPECT_EQ(slow.status, 200) << slow.Describe();
  EXPECT_TRUE(IsProblem(duplicate, 503, "store-unavailable")) << duplicate.Describe();
  EXPECT_EQ(upstream_->Count(key), 1u);
}

TEST_F(StoreFaultTest, AdminCallsAnswer503WhenTheStoreFails) {
  for (const std::string kind : {"error", "hang"}) {
    StartGateway("get=" + kind + ";delete=" + kind + ";ping=" + kind);
    const std::string key = UniqueKey(kind);
    EXPECT_EQ(Send(KeyedPost("/work", key)).status, 200) << kind;
    EXPECT_TRUE(IsProblem(Record("/work", key), 503, "store-unavailable")) << kind;
    EXPECT_TRUE(IsProblem(Fetch(gateway_->admin_port(), Get("/readyz")), 503,
                          "store-unavailable"))
        << kind;
    HttpRequest purge = Get("/keys/" + UrlEncode("anonymous POST /work " + key));
    purge.method = "DELETE";
    EXPECT_TRUE(IsProblem(Fetch(gateway_->admin_port(), purge), 503, "store-unavailable"))
        << kind;
    EXPECT_EQ(Fetch(gateway_->admin_port(), Get("/healthz")).status, 200) << kind;
  }
}

// Intermittent faults on every operation: whatever happens, no key runs
// twice while its result was stored, and every request is answered.
TEST_F(StoreFaultTest, RandomFaultsNeverRunAStoredKeyTwice) {
  StartGateway("*=error,rate=0.3;seed=11");
  for (int i = 0; i < 40; ++i) {
    const std::string key = UniqueKey(std::to_string(i));
    HttpResponse first = Send(KeyedPost("/work", key));
    ASSERT_TRUE(first.status == 200 || first.status == 503) << first.Describe();
    if (first.status == 503) {
      EXPECT_EQ(upstream_->Count(key), 0u);
      continue;
    }
    HttpResponse second = Send(KeyedPost("/work", key));
    if (second.status == 200 && second.Header("Idempotent-Replayed")) {
      EXPECT_EQ(upstream_->Count(key), 1u);
    }
    EXPECT_LE(upstream_->Count(key), 2u);
  }
}

// The same rules over a real Redis: a Begin whose answer is lost leaves a
// lease in Redis that is kept until it runs out and then taken over.
TEST_F(StoreFaultTest, OverRedisALostBeginAnswerKeepsTheLeaseUntilItRunsOut) {
  auto redis = testing::RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  GatewayOptions options;
  options.config = std::string(kConfig);
  options.store_uri = "fault:begin=hang-after,times=1;complete=error,after=1,times=1|" +
                      (*redis)->uri();
  options.upstream_url = upstream_->url();
  std::string error;
  gateway_ = Gateway::Start(options, error);
  ASSERT_NE(gateway_, nullptr) << error;

  const std::string key = UniqueKey();
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/work", key)), 503, "store-unavailable"));
  EXPECT_EQ(upstream_->Count(key), 0u);
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/work", key)), 409, "request-in-progress"));
  HttpResponse taken_over = SendUntilNotInFlight(KeyedPost("/work", key));
  EXPECT_EQ(taken_over.status, 200) << taken_over.Describe();
  EXPECT_EQ(LastFence(key), 2u);
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost("/work", key)), taken_over));

  // The second key's Complete fails: answered, then run again after the
  // lease, never replayed from a result that was not stored.
  const std::string other = UniqueKey("complete");
  EXPECT_EQ(Send(KeyedPost("/work", other)).status, 200);
  HttpResponse again = SendUntilNotInFlight(KeyedPost("/work", other));
  EXPECT_EQ(again.status, 200);
  EXPECT_TRUE(IsFresh(again));
  EXPECT_EQ(upstream_->Count(other), 2u);
  gateway_.reset();
}

// Upstream failures under on_server_error = "store" (the release variants
// are in limits_test.cc): the gateway's own 502/504 is stored and replayed.
class UpstreamFailureStoredTest : public StackTest<UpstreamFailureStoredTest> {
 public:
  static std::string Config() { return DefaultConfig(); }
};

TEST_F(UpstreamFailureStoredTest, ResetIsStored502) {
  const std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/stored5xx/drop", key));
  EXPECT_TRUE(IsProblem(first, 502, "upstream-bad-response")) << first.Describe();
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost("/stored5xx/drop", key)), first));
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(UpstreamFailureStoredTest, GarbageIsStored502) {
  const std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/stored5xx/garbage", key));
  EXPECT_TRUE(IsProblem(first, 502, "upstream-bad-response")) << first.Describe();
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost("/stored5xx/garbage", key)), first));
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(UpstreamFailureStoredTest, StallIsStored504) {
  const std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/stored5xx/stall", key));
  EXPECT_TRUE(IsProblem(first, 504, "upstream-timeout")) << first.Describe();
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost("/stored5xx/stall", key)), first));
  EXPECT_EQ(upstream().Count(key), 1u);
}

}  // namespace
}  // namespace idem::e2e
