#include "execution_log.h"

#include <boost/json.hpp>
#include <functional>

namespace idem::demo {

ExecutionLog::Shard& ExecutionLog::ShardFor(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % kShards];
}

const ExecutionLog::Shard& ExecutionLog::ShardFor(std::string_view key) const {
  return shards_[std::hash<std::string_view>{}(key) % kShards];
}

void ExecutionLog::Record(std::optional<std::string_view> key,
                          const RequestSnapshot& snapshot, Execution execution) {
  total_.fetch_add(1, std::memory_order_relaxed);
  if (key) {
    Shard& shard = ShardFor(*key);
    std::lock_guard lock(shard.mu);
    std::string owned(*key);
    ++shard.counts[owned];
    std::vector<Execution>& executions = shard.executions[owned];
    if (executions.size() < kExecutionsPerKey) executions.push_back(execution);
    Snapshot& slot = shard.snapshots[owned];
    slot.seq = shard.next_seq++;
    // assign() reuses the strings' capacity when the key was seen before.
    slot.request.method.assign(snapshot.method);
    slot.request.target.assign(snapshot.target);
    slot.request.header_lines.assign(snapshot.header_lines);
    slot.request.body_bytes = snapshot.body_bytes;
    shard.order.emplace_back(std::move(owned), slot.seq);
    if (shard.order.size() > kLastPerShard) {
      const auto& [old_key, old_seq] = shard.order.front();
      auto old = shard.snapshots.find(old_key);
      if (old != shard.snapshots.end() && old->second.seq == old_seq) {
        shard.snapshots.erase(old);
      }
      shard.order.pop_front();
    }
  }
  std::lock_guard lock(last_mu_);
  if (!last_) last_.emplace();
  last_->method.assign(snapshot.method);
  last_->target.assign(snapshot.target);
  last_->header_lines.assign(snapshot.header_lines);
  last_->body_bytes = snapshot.body_bytes;
}

uint64_t ExecutionLog::CountFor(std::string_view key) const {
  const Shard& shard = ShardFor(key);
  std::lock_guard lock(shard.mu);
  auto it = shard.counts.find(std::string(key));
  return it == shard.counts.end() ? 0 : it->second;
}

std::vector<ExecutionLog::Execution> ExecutionLog::ExecutionsFor(
    std::string_view key) const {
  const Shard& shard = ShardFor(key);
  std::lock_guard lock(shard.mu);
  auto it = shard.executions.find(std::string(key));
  return it == shard.executions.end() ? std::vector<Execution>() : it->second;
}

std::optional<RequestSnapshot> ExecutionLog::LastFor(std::string_view key) const {
  const Shard& shard = ShardFor(key);
  std::lock_guard lock(shard.mu);
  auto it = shard.snapshots.find(std::string(key));
  if (it == shard.snapshots.end()) return std::nullopt;
  return it->second.request;
}

std::optional<RequestSnapshot> ExecutionLog::Last() const {
  std::lock_guard lock(last_mu_);
  return last_;
}

void ExecutionLog::Reset() {
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    // Swapping with empty maps gives their memory back, unlike clear().
    std::unordered_map<std::string, uint64_t>().swap(shard.counts);
    std::unordered_map<std::string, std::vector<Execution>>().swap(shard.executions);
    std::unordered_map<std::string, Snapshot>().swap(shard.snapshots);
    std::deque<std::pair<std::string, uint64_t>>().swap(shard.order);
  }
  total_.store(0, std::memory_order_relaxed);
  std::lock_guard lock(last_mu_);
  last_.reset();
}

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string NormalizeKey(std::string_view header_value) {
  std::string_view value = Trim(header_value);
  if (value.size() < 2 || value.front() != '"' || value.back() != '"') {
    return std::string(value);
  }
  std::string out;
  out.reserve(value.size() - 2);
  for (size_t i = 1; i + 1 < value.size(); ++i) {
    char c = value[i];
    if (c == '\\') {
      if (i + 2 >= value.size()) return std::string(value);
      char next = value[++i];
      if (next != '"' && next != '\\') return std::string(value);
      out.push_back(next);
    } else if (c == '"') {
      return std::string(value);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string ExecutionsJson(const std::vector<ExecutionLog::Execution>& executions) {
  boost::json::array out;
  for (const auto& e : executions) {
    out.push_back(boost::json::object{{"execution", e.serial}, {"fence", e.fence}});
  }
  return boost::json::serialize(out);
}

std::string SnapshotJson(const RequestSnapshot& snapshot) {
  boost::json::array headers;
  std::string_view lines = snapshot.header_lines;
  while (!lines.empty()) {
    size_t end = lines.find("\r\n");
    std::string_view line = lines.substr(0, end);
    size_t colon = line.find(": ");
    std::string_view name = line.substr(0, colon);
    std::string_view value =
        colon == std::string_view::npos ? std::string_view() : line.substr(colon + 2);
    headers.push_back(
        boost::json::array{boost::json::string(name), boost::json::string(value)});
    if (end == std::string_view::npos) break;
    lines.remove_prefix(end + 2);
  }
  boost::json::object out;
  out["method"] = snapshot.method;
  out["target"] = snapshot.target;
  out["headers"] = std::move(headers);
  out["body_bytes"] = snapshot.body_bytes;
  return boost::json::serialize(out);
}

}  // namespace idem::demo
