#include "gateway/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace idem::gateway {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(MetricsTest, CountsOutcomesAcrossThreads) {
  Metrics metrics;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&metrics] {
      for (int i = 0; i < 1000; ++i) metrics.CountRequest(Outcome::kReplayed);
    });
  }
  for (auto& t : threads) t.join();
  metrics.CountRequest(Outcome::kConflict);
  EXPECT_EQ(metrics.RequestCount(Outcome::kReplayed), 4000u);
  EXPECT_EQ(metrics.RequestCount(Outcome::kConflict), 1u);
  EXPECT_EQ(metrics.RequestCount(Outcome::kExecuted), 0u);
}

TEST(MetricsTest, RendersEveryOutcomeWithItsLabel) {
  Metrics metrics;
  metrics.CountRequest(Outcome::kLeaseLost);
  metrics.CountRequest(Outcome::kLeaseLost);
  const std::string text = metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# TYPE idem_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("idem_requests_total{outcome=\"lease_lost\"} 2\n"));
  for (const char* outcome :
       {"forwarded", "executed", "replayed", "conflict", "mismatch", "invalid_key",
        "missing_key", "store_error", "unprotected", "upstream_error", "rejected"}) {
    EXPECT_THAT(text, HasSubstr("idem_requests_total{outcome=\"" + std::string(outcome) +
                                "\"} 0\n"));
  }
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Metrics metrics;
  metrics.ObserveStore(StoreOp::kBegin, 50us);   // le 0.0001
  metrics.ObserveStore(StoreOp::kBegin, 700us);  // le 0.001
  metrics.ObserveStore(StoreOp::kBegin, 40s);    // +Inf only
  metrics.ObserveUpstream(3ms);
  const std::string text = metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# TYPE idem_store_duration_seconds histogram\n"));
  EXPECT_THAT(
      text,
      HasSubstr("idem_store_duration_seconds_bucket{op=\"begin\",le=\"0.0001\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr("idem_store_duration_seconds_bucket{op=\"begin\",le=\"0.0005\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr("idem_store_duration_seconds_bucket{op=\"begin\",le=\"0.001\"} 2\n"));
  EXPECT_THAT(
      text, HasSubstr("idem_store_duration_seconds_bucket{op=\"begin\",le=\"30\"} 2\n"));
  EXPECT_THAT(
      text,
      HasSubstr("idem_store_duration_seconds_bucket{op=\"begin\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("idem_store_duration_seconds_count{op=\"begin\"} 3\n"));
  EXPECT_THAT(text,
              HasSubstr("idem_store_duration_seconds_sum{op=\"begin\"} 40.00075\n"));
  EXPECT_THAT(text, HasSubstr("idem_store_duration_seconds_count{op=\"finish\"} 0\n"));
  EXPECT_THAT(text,
              HasSubstr("idem_upstream_duration_seconds_bucket{le=\"0.0025\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("idem_upstream_duration_seconds_bucket{le=\"0.005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("idem_upstream_duration_seconds_count 1\n"));
  EXPECT_EQ(metrics.UpstreamObservationCount(), 1u);
}

TEST(MetricsTest, StoreErrorsAndConnections) {
  Metrics metrics;
  metrics.CountStoreError(StoreOp::kFinish);
  metrics.ConnectionOpened();
  metrics.ConnectionOpened();
  metrics.ConnectionClosed();
  const std::string text = metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("idem_store_errors_total{op=\"finish\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("idem_client_connections 1\n"));
  EXPECT_EQ(metrics.StoreErrorCount(StoreOp::kFinish), 1u);
}

}  // namespace
}  // namespace idem::gateway
