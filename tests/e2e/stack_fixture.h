// GoogleTest fixtures over the harness: one upstream and one gateway per
// configuration (started by the first suite that needs it and shared by every
// suite with the same configuration), unique keys per test, and assertion
// helpers for problem+json answers, replays and metrics.
//
// A suite declares its configuration with CRTP:
//
//   class PaymentsTest : public StackTest<PaymentsTest> {
//    public:
//     static std::string Config() { return "[[route]]\npath = \"/p\"\n"; }
//     static std::string StoreUri() { return "memory:"; }  // optional
//   };
//
// When a test fails, the logs both processes wrote during that test are
// printed.
#pragma once

#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "harness.h"
#include "http_client.h"

namespace idem::e2e {

// An upstream and a gateway in front of it.
struct Stack {
  std::unique_ptr<Upstream> upstream;
  std::unique_ptr<Gateway> gateway;
  std::string error;  // why the stack did not start

  bool ok() const { return upstream && gateway; }
};

std::unique_ptr<Stack> StartStack(const std::string& config,
                                  const std::string& store_uri = "memory:");

// The configuration most suites run with (see the routes in
// stack_fixture.cc): small limits so every limit is cheap to hit, and one
// route prefix per policy under test:
//   /payments*     require_key = true
//   /json/*        fingerprint = "json"
//   /stored5xx/*   on_server_error = "store"
//   /wait/*        in_flight = "wait"
//   /lease/*       lease_ttl = "300ms"
std::string DefaultConfig();

// A key unique to the running test: "k-<Suite>-<Test>-<hint>-<n>".
std::string UniqueKey(std::string_view hint = "");

// An Idempotency-Key request to the gateway.
HttpRequest KeyedPost(std::string target, std::string_view key, std::string body = "{}",
                      std::string content_type = "application/json");

// `response` is a problem+json answer with this status, a type
// "urn:idem:problem:<slug>" (any slug when `slug` is empty), a title and a
// matching "status" member.
::testing::AssertionResult IsProblem(const HttpResponse& response, int status,
                                     std::string_view slug = "");

// `replay` is `first` replayed: same status, body and end-to-end headers
// (Date and connection-management headers aside), plus exactly one
// `Idempotent-Replayed: true`.
::testing::AssertionResult IsReplayOf(const HttpResponse& replay,
                                      const HttpResponse& first);

// Not a replay: no Idempotent-Replayed header.
::testing::AssertionResult IsFresh(const HttpResponse& response);

// Sums of idem_*_total counters by their `outcome` label, from GET /metrics
// on the admin port. Empty when the endpoint is not there.
std::map<std::string, double> OutcomeCounts(uint16_t admin_port);

// The body of a "/payments" request.
std::string PaymentBody(int amount = 1000, std::string_view currency = "eur");

// Carries exactly one "Idempotent-Replayed: true".
bool Replayed(const HttpResponse& response);

// One upstream and several gateways sharing one store (Redis, PostgreSQL):
// what multi-gateway suites and the chaos soak run on.
struct GatewayGroup {
  std::unique_ptr<Upstream> upstream;
  std::vector<std::unique_ptr<Gateway>> gateways;
  std::string error;  // why the group did not start

  bool ok() const { return upstream && !gateways.empty(); }
  // Starts an upstream and `count` gateways with `config` on `store_uri`.
  static std::unique_ptr<GatewayGroup> Start(const std::string& store_uri, int count,
                                             const std::string& config = DefaultConfig());
  // `request` from `n` threads released at once, one connection each,
  // spread over the gateways in turn.
  std::vector<HttpResponse> SendToAll(const HttpRequest& request, int n);
  // Every gateway's log since its last start, each cut to `max_bytes`.
  std::string Logs(size_t max_bytes = 8000) const;
};

// A suite on a GatewayGroup of two gateways. Derived provides
//   static std::string StartStore(std::string& error);  // the store URI, "" on failure
//   static void StopStore();
// and may provide Config() (default: DefaultConfig()).
template <typename Derived>
class GatewayGroupTest : public ::testing::Test {
 public:
  static std::string Config() { return DefaultConfig(); }

 protected:
  static void SetUpTestSuite() {
    std::string uri = Derived::StartStore(error_);
    if (uri.empty()) return;
    group_ = GatewayGroup::Start(uri, 2, Derived::Config());
    if (!group_->ok()) error_ = group_->error;
  }
  static void TearDownTestSuite() {
    group_.reset();
    Derived::StopStore();
  }
  void SetUp() override {
    ASSERT_TRUE(group_ && group_->ok()) << "the group did not start: " << error_;
  }
  void TearDown() override {
    if (HasFailure() && group_) std::cerr << group_->Logs();
  }

  static Gateway& a() { return *group_->gateways[0]; }
  static Gateway& b() { return *group_->gateways[1]; }
  static Upstream& upstream() { return *group_->upstream; }
  static std::vector<HttpResponse> SendToBoth(const HttpRequest& request, int n) {
    return group_->SendToAll(request, n);
  }

  static inline std::unique_ptr<GatewayGroup> group_;
  static inline std::string error_;
};

class StackTestBase : public ::testing::Test {
 protected:
  // The stack for (config, store URI), shared by every suite asking for the
  // same pair and kept until the program exits; started again when one of
  // its processes died in an earlier test.
  static Stack* SharedStack(const std::string& config, const std::string& store_uri);
  void MarkLogs(Stack& stack);
  void DumpLogsOnFailure(Stack& stack);

 private:
  size_t upstream_log_mark_ = 0;
  size_t gateway_log_mark_ = 0;
};

template <typename Derived>
class StackTest : public StackTestBase {
 public:
  static std::string StoreUri() { return "memory:"; }

 protected:
  static void SetUpTestSuite() {
    stack_ = SharedStack(Derived::Config(), Derived::StoreUri());
  }

  void SetUp() override {
    stack_ = SharedStack(Derived::Config(), Derived::StoreUri());
    ASSERT_TRUE(stack_ && stack_->ok())
        << "the gateway or upstream did not start: "
        << (stack_ ? stack_->error : std::string("(no stack)"));
    MarkLogs(*stack_);
  }
  void TearDown() override {
    if (stack_) DumpLogsOnFailure(*stack_);
  }

  static Upstream& upstream() { return *stack_->upstream; }
  static Gateway& gateway() { return *stack_->gateway; }
  // One request on a fresh connection to the gateway.
  static HttpResponse Send(const HttpRequest& request,
                           std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    return Fetch(gateway().port(), request, timeout);
  }

  static inline Stack* stack_ = nullptr;
};

}  // namespace idem::e2e
