// Row: same scope key, still in flight -> 409 with Retry-After, or with
// in_flight = "wait" the first result for every waiter; and the lease of a
// slow upstream is extended. Many clients at once, one execution.
#include <gtest/gtest.h>

#include <charconv>
#include <latch>
#include <thread>
#include <vector>

#include "stack_fixture.h"

namespace idem::e2e {
namespace {

class ConcurrencyTest : public StackTest<ConcurrencyTest> {
 public:
  static std::string Config() { return DefaultConfig(); }

 protected:
  // Sends `request` from `n` threads released at once; responses in thread
  // order. Every connection is made before the release.
  std::vector<HttpResponse> SendConcurrently(const HttpRequest& request, int n) {
    std::vector<HttpResponse> responses(n);
    std::latch ready(n);
    std::vector<std::thread> threads;
    threads.reserve(n);
    uint16_t port = gateway().port();
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        HttpConnection connection;
        bool connected = connection.Connect(port);
        ready.arrive_and_wait();
        if (!connected) {
          responses[i].error = connection.error();
          return;
        }
        responses[i] = connection.RoundTrip(request, 30s);
      });
    }
    for (auto& thread : threads) thread.join();
    return responses;
  }
};

// A request from another thread that the test can wait for.
class Background {
 public:
  Background(uint16_t port, HttpRequest request)
      : thread_([this, port, request = std::move(request)] {
          response_ = Fetch(port, request, 30s);
        }) {}
  ~Background() {
    if (thread_.joinable()) thread_.join();
  }
  HttpResponse Finish() {
    thread_.join();
    return response_;
  }

 private:
  HttpResponse response_;
  std::thread thread_;
};

int RetryAfterSeconds(const HttpResponse& response) {
  auto value = response.Header("Retry-After");
  int seconds = -1;
  if (value) std::from_chars(value->data(), value->data() + value->size(), seconds);
  return seconds;
}

TEST_F(ConcurrencyTest, InFlightDuplicateIs409WithRetryAfter) {
  std::string key = UniqueKey();
  Background first(gateway().port(), KeyedPost("/slow?ms=1000", key));
  ASSERT_TRUE(upstream().WaitForCount(key, 1)) << "the first request never arrived";
  HttpResponse duplicate = Send(KeyedPost("/slow?ms=1000", key));
  EXPECT_TRUE(IsProblem(duplicate, 409, "request-in-progress"));
  EXPECT_GE(RetryAfterSeconds(duplicate), 1) << duplicate.Describe();
  HttpResponse original = first.Finish();
  EXPECT_EQ(original.status, 200) << original.Describe();
  EXPECT_TRUE(IsFresh(original));
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost("/slow?ms=1000", key)), original));
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(ConcurrencyTest, InFlightDuplicateWithOtherBodyIs422) {
  std::string key = UniqueKey();
  Background first(gateway().port(), KeyedPost("/slow?ms=800", key, "{\"n\":1}"));
  ASSERT_TRUE(upstream().WaitForCount(key, 1));
  EXPECT_TRUE(IsProblem(Send(KeyedPost("/slow?ms=800", key, "{\"n\":2}")), 422));
  EXPECT_EQ(first.Finish().status, 200);
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(ConcurrencyTest, FiftyIdenticalRequestsExecuteOnce) {
  std::string key = UniqueKey();
  auto responses = SendConcurrently(KeyedPost("/slow?ms=1000", key), 50);
  int fresh = 0, replayed = 0, conflicts = 0;
  const HttpResponse* executed = nullptr;
  for (const auto& response : responses) {
    ASSERT_TRUE(response.ok()) << response.error;
    if (response.status == 409) {
      EXPECT_TRUE(IsProblem(response, 409, "request-in-progress"));
      EXPECT_GE(RetryAfterSeconds(response), 1);
      ++conflicts;
    } else if (response.HasHeader("Idempotent-Replayed")) {
      ++replayed;
    } else {
      EXPECT_EQ(response.status, 200) << response.Describe();
      executed = &response;
      ++fresh;
    }
  }
  EXPECT_EQ(fresh, 1) << "replayed " << replayed << ", conflicts " << conflicts;
  EXPECT_EQ(fresh + replayed + conflicts, 50);
  EXPECT_EQ(upstream().Count(key), 1u);
  if (executed != nullptr) {
    for (const auto& response : responses) {
      if (response.HasHeader("Idempotent-Replayed")) {
        EXPECT_TRUE(IsReplayOf(response, *executed));
      }
    }
  }
}

// in_flight = "wait" on /wait/*: every waiter gets the first result.
TEST_F(ConcurrencyTest, FiftyWaitersAllGetTheSameBody) {
  std::string key = UniqueKey();
  auto responses = SendConcurrently(KeyedPost("/wait/slow?ms=1000", key), 50);
  int fresh = 0;
  for (const auto& response : responses) {
    ASSERT_TRUE(response.ok()) << response.error;
    EXPECT_EQ(response.status, 200) << response.Describe();
    EXPECT_EQ(response.body, responses[0].body);
    if (!response.HasHeader("Idempotent-Replayed")) ++fresh;
  }
  EXPECT_EQ(fresh, 1);
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(ConcurrencyTest, WaiterGetsTheReplayOfTheFirstResult) {
  std::string key = UniqueKey();
  Background first(gateway().port(), KeyedPost("/wait/slow?ms=600", key));
  ASSERT_TRUE(upstream().WaitForCount(key, 1));
  HttpResponse waiter = Send(KeyedPost("/wait/slow?ms=600", key));
  HttpResponse original = first.Finish();
  ASSERT_EQ(original.status, 200) << original.Describe();
  EXPECT_TRUE(IsReplayOf(waiter, original));
  EXPECT_EQ(upstream().Count(key), 1u);
}

// The first execution fails with a 500 and is released: the waiter then
// runs the request itself instead of replaying the failure.
TEST_F(ConcurrencyTest, WaiterExecutesWhenTheFirstIsReleased) {
  std::string key = UniqueKey();
  Background first(gateway().port(), KeyedPost("/wait/slow?ms=600&status=500", key));
  ASSERT_TRUE(upstream().WaitForCount(key, 1));
  HttpResponse waiter = Send(KeyedPost("/wait/slow?ms=600&status=500", key));
  HttpResponse original = first.Finish();
  EXPECT_EQ(original.status, 500) << original.Describe();
  EXPECT_EQ(waiter.status, 500) << waiter.Describe();
  EXPECT_TRUE(IsFresh(waiter));
  EXPECT_NE(waiter.body, original.body);
  EXPECT_EQ(upstream().Count(key), 2u);
}

// lease_ttl = 300ms on /lease/*, upstream takes 1.5 s: the gateway extends
// the lease, so a duplicate well after 300 ms is still a conflict, and the
// request executes once.
TEST_F(ConcurrencyTest, SlowUpstreamKeepsItsLease) {
  std::string key = UniqueKey();
  Background first(gateway().port(), KeyedPost("/lease/slow?ms=1500", key));
  ASSERT_TRUE(upstream().WaitForCount(key, 1));
  std::this_thread::sleep_for(800ms);  // more than twice the lease
  HttpResponse duplicate = Send(KeyedPost("/lease/slow?ms=1500", key));
  EXPECT_TRUE(IsProblem(duplicate, 409, "request-in-progress"))
      << "the lease of a working upstream was taken over";
  HttpResponse original = first.Finish();
  EXPECT_EQ(original.status, 200) << original.Describe();
  EXPECT_EQ(upstream().Count(key), 1u);
  EXPECT_TRUE(IsReplayOf(Send(KeyedPost("/lease/slow?ms=1500", key)), original));
}

// Different keys do not wait on each other.
TEST_F(ConcurrencyTest, DistinctKeysRunInParallel) {
  std::vector<std::string> keys;
  keys.reserve(20);
  for (int i = 0; i < 20; ++i) keys.push_back(UniqueKey());
  std::vector<HttpResponse> responses(keys.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < keys.size(); ++i) {
    threads.emplace_back([&, i] {
      responses[i] = Fetch(gateway().port(), KeyedPost("/slow?ms=300", keys[i]), 30s);
    });
  }
  for (auto& thread : threads) thread.join();
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(responses[i].status, 200) << responses[i].Describe();
    EXPECT_EQ(upstream().Count(keys[i]), 1u);
  }
}

}  // namespace
}  // namespace idem::e2e
