#include "gateway/logging.h"

#include <fmt/format.h>
#include <spdlog/async.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <iterator>
#include <mutex>
#include <string>

#include "gateway/json_text.h"

namespace idem::gateway {
namespace {

Result<spdlog::level::level_enum> ParseLevel(std::string_view name) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"off", spdlog::level::off}};
  for (const auto& [n, level] : kLevels) {
    if (n == name) return level;
  }
  return InvalidArgument("log level \"" + std::string(name) +
                         "\" is not one of trace, debug, info, warn, error, off");
}

// Lines queued before the writer thread catches up; beyond this, writers wait.
constexpr size_t kAccessQueueSize = 16384;
// How stale the access log on stdout may get before it is flushed.
constexpr std::chrono::seconds kAccessFlushInterval{1};

// stdout through stdio's buffer: spdlog's own stdout sink flushes after
// every line, one write(2) per request.
class BufferedStdoutSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), stdout);
  }
  void flush_() override { std::fflush(stdout); }
};

}  // namespace

Status SetUpLogging(std::string_view level) {
  Result<spdlog::level::level_enum> parsed = ParseLevel(level);
  if (!parsed.ok()) return parsed.status();
  auto logger = std::make_shared<spdlog::logger>(
      "idem", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  logger->set_level(*parsed);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  return Status::Ok();
}

AccessLog::AccessLog(bool enabled, std::string_view level) {
  Result<spdlog::level::level_enum> parsed = ParseLevel(level);
  if (!enabled || !parsed.ok() || *parsed > spdlog::level::info) return;
  if (!spdlog::thread_pool()) spdlog::init_thread_pool(kAccessQueueSize, 1);
  logger_ = std::make_shared<spdlog::async_logger>(
      "access", std::make_shared<BufferedStdoutSink>(), spdlog::thread_pool(),
      spdlog::async_overflow_policy::block);
  logger_->set_pattern("{\"ts\":\"%Y-%m-%dT%H:%M:%S.%fZ\",%v}",
                       spdlog::pattern_time_type::utc);
  logger_->set_level(spdlog::level::info);
  // Registered so spdlog's periodic flusher reaches it.
  spdlog::drop("access");
  spdlog::register_logger(logger_);
  spdlog::flush_every(kAccessFlushInterval);
}

AccessLog::~AccessLog() {
  Flush();
  if (logger_) spdlog::drop("access");
}

void AccessLog::Flush() {
  if (logger_) logger_->flush();
}

void AccessLog::Write(const AccessEntry& entry) {
  if (!logger_) return;
  std::string line;
  line.reserve(256);
  line.append("\"method\":");
  AppendJsonString(line, entry.method);
  line.append(",\"path\":");
  AppendJsonString(line, entry.path);
  auto out = std::back_inserter(line);
  fmt::format_to(out, ",\"status\":{},\"outcome\":\"{}\"", entry.status,
                 OutcomeName(entry.outcome));
  if (!entry.key_tag.empty()) fmt::format_to(out, ",\"key\":\"{}\"", entry.key_tag);
  if (entry.fence > 0) fmt::format_to(out, ",\"fence\":{}", entry.fence);
  line.append(",\"client\":");
  AppendJsonString(line, entry.client);
  fmt::format_to(out, ",\"ms\":{:.3f}", entry.total_ms);
  if (entry.upstream_ms >= 0) {
    fmt::format_to(out, ",\"upstream_ms\":{:.3f}", entry.upstream_ms);
  }
  if (entry.store_ms >= 0) fmt::format_to(out, ",\"store_ms\":{:.3f}", entry.store_ms);
  logger_->log(spdlog::level::info, spdlog::string_view_t(line.data(), line.size()));
}

}  // namespace idem::gateway
