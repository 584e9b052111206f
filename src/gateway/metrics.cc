#include "gateway/metrics.h"

#include <cstdio>

namespace idem::gateway {
namespace {

constexpr std::string_view kOutcomeNames[kOutcomeCount] = {
    "forwarded",   "executed",       "replayed",     "conflict",    "mismatch",
    "invalid_key", "missing_key",    "invalid_body", "store_error", "unprotected",
    "lease_lost",  "upstream_error", "rejected"};

constexpr std::string_view kStoreOpNames[kStoreOpCount] = {"begin", "finish", "abandon",
                                                           "extend"};

// Bucket bounds in nanoseconds, so Observe compares integers.
constexpr auto kBoundsNs = [] {
  std::array<uint64_t, Metrics::kBucketBounds.size()> ns{};
  for (size_t i = 0; i < ns.size(); ++i) {
    // Positive values, and std::llround is not constexpr before C++23.
    ns[i] = static_cast<uint64_t>(  // NOLINT(bugprone-incorrect-roundings)
        Metrics::kBucketBounds[i] * 1e9 + 0.5);
  }
  return ns;
}();

void AppendDouble(std::string& out, double value) {
  char buffer[32];
  const int n = std::snprintf(buffer, sizeof buffer, "%.9g", value);
  out.append(buffer, static_cast<size_t>(n));
}

}  // namespace

std::string_view OutcomeName(Outcome outcome) {
  return kOutcomeNames[static_cast<size_t>(outcome)];
}

std::string_view StoreOpName(StoreOp op) {
  return kStoreOpNames[static_cast<size_t>(op)];
}

Metrics::Metrics() = default;

void Metrics::Histogram::Observe(std::chrono::nanoseconds duration) {
  const auto ns = static_cast<uint64_t>(std::max<int64_t>(0, duration.count()));
  size_t bucket = 0;
  while (bucket < kBoundsNs.size() && ns > kBoundsNs[bucket]) ++bucket;
  buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_ns.fetch_add(ns, std::memory_order_relaxed);
}

Metrics::Shard& Metrics::LocalShard() {
  static std::atomic<size_t> next{0};
  thread_local const size_t index =
      next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shards_[index];
}

void Metrics::CountRequest(Outcome outcome) {
  LocalShard().requests[static_cast<size_t>(outcome)].fetch_add(
      1, std::memory_order_relaxed);
}

void Metrics::ObserveStore(StoreOp op, std::chrono::nanoseconds duration) {
  LocalShard().store[static_cast<size_t>(op)].Observe(duration);
}

void Metrics::CountStoreError(StoreOp op) {
  LocalShard().store_errors[static_cast<size_t>(op)].fetch_add(1,
                                                               std::memory_order_relaxed);
}

void Metrics::ObserveUpstream(std::chrono::nanoseconds duration) {
  LocalShard().upstream.Observe(duration);
}

void Metrics::ConnectionOpened() { connections_.fetch_add(1, std::memory_order_relaxed); }
void Metrics::ConnectionClosed() { connections_.fetch_sub(1, std::memory_order_relaxed); }

uint64_t Metrics::RequestCount(Outcome outcome) const {
  uint64_t total = 0;
  for (const Shard& s : shards_) {
    total += s.requests[static_cast<size_t>(outcome)].load(std::memory_order_relaxed);
  }
  return total;
}

uint64_t Metrics::StoreErrorCount(StoreOp op) const {
  uint64_t total = 0;
  for (const Shard& s : shards_) {
    total += s.store_errors[static_cast<size_t>(op)].load(std::memory_order_relaxed);
  }
  return total;
}

uint64_t Metrics::UpstreamObservationCount() const {
  uint64_t total = 0;
  for (const Shard& s : shards_) {
    for (const auto& b : s.upstream.buckets) total += b.load(std::memory_order_relaxed);
  }
  return total;
}

void Metrics::RenderHistogram(std::string& out, std::string_view name,
                              std::string_view labels,
                              const std::array<const Histogram*, kShards>& parts) const {
  const std::string prefix = labels.empty() ? "" : std::string(labels) + ",";
  uint64_t cumulative = 0;
  uint64_t sum_ns = 0;
  for (const Histogram* h : parts) sum_ns += h->sum_ns.load(std::memory_order_relaxed);
  for (size_t b = 0; b <= kBucketBounds.size(); ++b) {
    for (const Histogram* h : parts) {
      cumulative += h->buckets[b].load(std::memory_order_relaxed);
    }
    out.append(name).append("_bucket{").append(prefix).append("le=\"");
    if (b < kBucketBounds.size()) {
      AppendDouble(out, kBucketBounds[b]);
    } else {
      out.append("+Inf");
    }
    out.append("\"} ").append(std::to_string(cumulative)).append("\n");
  }
  const std::string braces = labels.empty() ? "" : "{" + std::string(labels) + "}";
  out.append(name).append("_sum").append(braces).append(" ");
  AppendDouble(out, static_cast<double>(sum_ns) / 1e9);
  out.append("\n");
  out.append(name).append("_count").append(braces).append(" ");
  out.append(std::to_string(cumulative)).append("\n");
}

std::string Metrics::RenderPrometheus() const {
  std::string out;
  out.reserve(8192);
  out.append(
      "# HELP idem_requests_total Requests by how the gateway handled them.\n"
      "# TYPE idem_requests_total counter\n");
  for (size_t o = 0; o < kOutcomeCount; ++o) {
    out.append("idem_requests_total{outcome=\"").append(kOutcomeNames[o]).append("\"} ");
    out.append(std::to_string(RequestCount(static_cast<Outcome>(o)))).append("\n");
  }
  out.append(
      "# HELP idem_store_errors_total Store calls that failed, by operation.\n"
      "# TYPE idem_store_errors_total counter\n");
  for (size_t op = 0; op < kStoreOpCount; ++op) {
    out.append("idem_store_errors_total{op=\"").append(kStoreOpNames[op]).append("\"} ");
    out.append(std::to_string(StoreErrorCount(static_cast<StoreOp>(op)))).append("\n");
  }
  out.append(
      "# HELP idem_store_duration_seconds Time of store calls made for requests "
      "(begin includes waiting for an in-flight duplicate).\n"
      "# TYPE idem_store_duration_seconds histogram\n");
  for (size_t op = 0; op < kStoreOpCount; ++op) {
    std::array<const Histogram*, kShards> parts{};
    for (size_t s = 0; s < kShards; ++s) parts[s] = &shards_[s].store[op];
    RenderHistogram(out, "idem_store_duration_seconds",
                    "op=\"" + std::string(kStoreOpNames[op]) + "\"", parts);
  }
  out.append(
      "# HELP idem_upstream_duration_seconds Time from sending a request upstream to "
      "its response header.\n"
      "# TYPE idem_upstream_duration_seconds histogram\n");
  std::array<const Histogram*, kShards> parts{};
  for (size_t s = 0; s < kShards; ++s) parts[s] = &shards_[s].upstream;
  RenderHistogram(out, "idem_upstream_duration_seconds", "", parts);
  out.append(
      "# HELP idem_client_connections Open client connections.\n"
      "# TYPE idem_client_connections gauge\n"
      "idem_client_connections ");
  out.append(std::to_string(connections_.load(std::memory_order_relaxed))).append("\n");
  return out;
}

void Metrics::RenderStoreMetrics(std::string& out, const std::vector<StoreMetric>& metrics) {
  for (const StoreMetric& metric : metrics) {
    const std::string name = "idem_store_" + metric.name;
    const bool counter = metric.kind == StoreMetric::Kind::kCounter;
    out.append("# HELP ").append(name).append(" ").append(metric.help).append("\n");
    out.append("# TYPE ").append(name).append(counter ? " counter\n" : " gauge\n");
    // Counters and most gauges are whole numbers; print them without a
    // fraction so scrapers and tests see "42", not "42.000000".
    const double whole = static_cast<double>(static_cast<int64_t>(metric.value));
    out.append(name).append(" ");
    out.append(whole == metric.value ? std::to_string(static_cast<int64_t>(metric.value))
                                     : std::to_string(metric.value));
    out.append("\n");
  }
}

}  // namespace idem::gateway
