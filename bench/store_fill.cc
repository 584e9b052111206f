// idem_store_fill: fills one store to N completed keys and, at each
// checkpoint, reports what the store costs and how fast it still is.
//
//   idem_store_fill --store URI --checkpoints 100000,1000000 [--window 512]
//                   [--measure-ms 1000] [--redis-info HOST:PORT]
//
// One TSV line per checkpoint on stdout:
//   keys  rss_bytes  disk_bytes  redis_used_memory  fill_per_s  replay_per_s  new_per_s
// rss_bytes is this process's resident set (what the memory store costs),
// disk_bytes the size of a rocksdb:DIR directory, redis_used_memory Redis's
// own `used_memory` (0 when not asked for). replay_per_s is Begin on
// uniformly random completed keys (the replay decision), new_per_s Begin
// then Complete on new keys, each for --measure-ms with --window calls in
// flight, as many concurrent gateway requests would be. Keys and responses
// have the shape the gateway stores for the demo upstream's POST /payments.
// Every loop is bounded by the key count or by --measure-ms.
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "idem/key.h"
#include "idem/open_store.h"
#include "idem/store.h"

namespace idem {
namespace {

using Clock = std::chrono::steady_clock;

const std::string kFingerprint(32, 'f');

std::string KeyOf(uint64_t i) {
  // A UUID-sized client key, as most clients send.
  char buf[48];
  std::snprintf(buf, sizeof(buf), "0192f0c4-7d1e-7%03x-8%03x-%012llx",
                static_cast<unsigned>(i >> 40 & 0xfff), static_cast<unsigned>(i >> 52),
                static_cast<unsigned long long>(i & 0xffffffffffffULL));
  return BuildScopeKey("anonymous", "POST", "/payments", buf);
}

StoredResponse ResponseOf(uint64_t i) {
  StoredResponse r;
  r.status = 201;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = R"({"id":"pay_)" + std::to_string(i) +
           R"(","amount":1000,"currency":"eur","status":"succeeded","execution":)" +
           std::to_string(i) + "}";
  return r;
}

// At most `window` calls in flight; callbacks may run on any thread.
class Window {
 public:
  explicit Window(int size) : free_(size), size_(size) {}
  void Acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return free_ > 0; });
    --free_;
  }
  void Release(bool ok) {
    std::lock_guard lock(mu_);
    ++free_;
    if (ok) ++done_; else ++failed_;
    cv_.notify_all();
  }
  void Drain() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return free_ == size_; });
  }
  uint64_t done() const { std::lock_guard lock(mu_); return done_; }
  uint64_t failed() const { std::lock_guard lock(mu_); return failed_; }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int free_;
  const int size_;
  uint64_t done_ = 0;
  uint64_t failed_ = 0;
};

void BeginComplete(Store& store, uint64_t i, Window& window) {
  window.Acquire();
  std::string key = KeyOf(i);
  auto on_begun = [&store, &window, key, i](Result<BeginResult> begun) mutable {
    if (!begun.ok() || begun->outcome != BeginOutcome::kAcquired) {
      window.Release(false);
      return;
    }
    store.Complete({std::move(key), "fill", ResponseOf(i), 86'400'000},
                   [&window](Status status) { window.Release(status.ok()); });
  };
  store.Begin({KeyOf(i), kFingerprint, "fill", 10'000, 86'400'000}, std::move(on_begun));
}

void Replay(Store& store, uint64_t i, Window& window) {
  window.Acquire();
  store.Begin({KeyOf(i), kFingerprint, "replay", 10'000, 86'400'000},
              [&window](Result<BeginResult> begun) {
                window.Release(begun.ok() && begun->outcome == BeginOutcome::kCompleted);
              });
}

uint64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  if (dir.empty()) return 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) total += entry.file_size(ec);
  }
  return total;
}

uint64_t RedisUsedMemory(const std::string& host_port) {
  if (host_port.empty()) return 0;
  const size_t colon = host_port.rfind(':');
  redisContext* c = redisConnect(host_port.substr(0, colon).c_str(),
                                 std::stoi(host_port.substr(colon + 1)));
  uint64_t used = 0;
  if (c != nullptr && c->err == 0) {
    auto* reply = static_cast<redisReply*>(redisCommand(c, "INFO memory"));
    if (reply != nullptr && reply->type == REDIS_REPLY_STRING) {
      const std::string text(reply->str, reply->len);
      const size_t at = text.find("used_memory:");
      if (at != std::string::npos) used = std::stoull(text.substr(at + 12));
    }
    if (reply != nullptr) freeReplyObject(reply);
  }
  if (c != nullptr) redisFree(c);
  return used;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int Run(int argc, char** argv) {
  std::string uri;
  std::string checkpoints_text;
  std::string redis_info;
  int window_size = 512;
  int measure_ms = 1000;
  CLI::App app{"Fill a store to N completed keys; report size and speed at checkpoints"};
  app.add_option("--store", uri, "store URI (memory:, rocksdb:DIR, redis://H:P, ...)")
      ->required();
  app.add_option("--checkpoints", checkpoints_text, "ascending key counts, comma separated")
      ->required();
  app.add_option("--window", window_size, "calls in flight")->check(CLI::Range(1, 65536));
  app.add_option("--measure-ms", measure_ms, "time per throughput probe")
      ->check(CLI::Range(1, 600'000));
  app.add_option("--redis-info", redis_info, "HOST:PORT of the Redis to read used_memory from");
  CLI11_PARSE(app, argc, argv);

  std::vector<uint64_t> checkpoints;
  for (size_t pos = 0; pos < checkpoints_text.size();) {
    size_t comma = checkpoints_text.find(',', pos);
    if (comma == std::string::npos) comma = checkpoints_text.size();
    checkpoints.push_back(std::stoull(checkpoints_text.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  StoreOpenOptions open_options;
  open_options.auto_migrate = true;
  auto opened = OpenStore(uri, open_options);
  if (!opened.ok()) {
    std::fprintf(stderr, "idem_store_fill: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  std::shared_ptr<Store> store = std::move(opened).value();
  const std::string dir = uri.rfind("rocksdb:", 0) == 0 ? uri.substr(8) : "";

  std::printf("keys\trss_bytes\tdisk_bytes\tredis_used_memory\tfill_per_s\treplay_per_s\tnew_per_s\n");
  std::printf("0\t%llu\t%llu\t%llu\t0\t0\t0\n", static_cast<unsigned long long>(RssBytes()),
              static_cast<unsigned long long>(DirBytes(dir)),
              static_cast<unsigned long long>(RedisUsedMemory(redis_info)));
  std::fflush(stdout);
  std::mt19937_64 random(42);
  uint64_t filled = 0;  // keys 0..filled-1 are completed
  const auto probe = std::chrono::milliseconds(measure_ms);
  for (uint64_t target : checkpoints) {
    Window fill(window_size);
    const auto fill_start = Clock::now();
    const uint64_t fill_from = filled;
    for (; filled < target; ++filled) BeginComplete(*store, filled, fill);
    fill.Drain();
    const double fill_rate = static_cast<double>(filled - fill_from) /
                             std::max(Seconds(Clock::now() - fill_start), 1e-9);
    if (fill.failed() != 0) {
      std::fprintf(stderr, "idem_store_fill: %llu fills failed\n",
                   static_cast<unsigned long long>(fill.failed()));
      return 1;
    }
    // Measured before the probes so that they do not count.
    const uint64_t rss = RssBytes();
    const uint64_t disk = DirBytes(dir);
    const uint64_t redis_used = RedisUsedMemory(redis_info);

    Window replay(window_size);
    std::uniform_int_distribution<uint64_t> pick(0, filled - 1);
    auto start = Clock::now();
    while (Clock::now() - start < probe) Replay(*store, pick(random), replay);
    replay.Drain();
    const double replay_rate = static_cast<double>(replay.done()) /
                               Seconds(Clock::now() - start);
    if (replay.failed() != 0) {
      std::fprintf(stderr, "idem_store_fill: %llu replays were not kCompleted\n",
                   static_cast<unsigned long long>(replay.failed()));
      return 1;
    }

    Window fresh(window_size);
    start = Clock::now();
    while (Clock::now() - start < probe) BeginComplete(*store, filled++, fresh);
    fresh.Drain();
    const double new_rate = static_cast<double>(fresh.done()) / Seconds(Clock::now() - start);

    std::printf("%llu\t%llu\t%llu\t%llu\t%.0f\t%.0f\t%.0f\n",
                static_cast<unsigned long long>(target), static_cast<unsigned long long>(rss),
                static_cast<unsigned long long>(disk),
                static_cast<unsigned long long>(redis_used), fill_rate, replay_rate, new_rate);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace idem

int main(int argc, char** argv) { return idem::Run(argc, argv); }
