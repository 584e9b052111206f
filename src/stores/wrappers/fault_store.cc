// NewFaultInjectingStore and the fault: URI grammar (idem/fault_store.h).
#include "idem/fault_store.h"

#include <charconv>
#include <cstdlib>
#include <mutex>
#include <random>
#include <utility>

#include "idem/forwarding_store.h"
#include "stores/wrappers/timer_queue.h"

namespace idem {
namespace {

using stores::TimerQueue;

constexpr std::pair<std::string_view, FaultOp> kOps[] = {
    {"begin", FaultOp::kBegin},     {"complete", FaultOp::kComplete},
    {"release", FaultOp::kRelease}, {"extend", FaultOp::kExtend},
    {"checkpoint", FaultOp::kCheckpoint}, {"get", FaultOp::kGet},
    {"delete", FaultOp::kDelete},   {"sweep", FaultOp::kSweep},
    {"wait", FaultOp::kWait},       {"ping", FaultOp::kPing},
};

constexpr std::pair<std::string_view, FaultKind> kKinds[] = {
    {"error", FaultKind::kError},   {"error-after", FaultKind::kErrorAfter},
    {"latency", FaultKind::kLatency}, {"hang", FaultKind::kHang},
    {"hang-after", FaultKind::kHangAfter},
};

// A hung call is answered when the store is destroyed, or after this long.
constexpr std::chrono::hours kHangFor{24 * 365};

std::string_view OpName(FaultOp op) {
  for (const auto& [name, value] : kOps) {
    if (value == op) return name;
  }
  return "?";
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::optional<uint64_t> ParseUnsigned(std::string_view text) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

std::optional<double> ParseRate(std::string_view text) {
  // from_chars for double is in libstdc++ 11+, which Debian 12 has.
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty() ||
      !(value >= 0.0 && value <= 1.0)) {
    return std::nullopt;
  }
  return value;
}

Status Bad(std::string_view item, std::string_view why) {
  return InvalidArgument("fault rule \"" + std::string(item) + "\": " + std::string(why));
}

Result<FaultRule> ParseRule(std::string_view item) {
  const std::vector<std::string_view> parts = Split(item, ',');
  const size_t equals = parts[0].find('=');
  if (equals == std::string_view::npos) return Bad(item, "expected OP=KIND");
  const std::string_view op = parts[0].substr(0, equals);
  const std::string_view kind = parts[0].substr(equals + 1);
  FaultRule rule;
  if (op != "*") {
    bool known = false;
    for (const auto& [name, value] : kOps) {
      if (op == name) rule.op = value, known = true;
    }
    if (!known) {
      return Bad(item, "unknown operation \"" + std::string(op) +
                           "\" (begin, complete, release, extend, checkpoint, get, "
                           "delete, sweep, wait, ping or *)");
    }
  }
  bool known_kind = false;
  for (const auto& [name, value] : kKinds) {
    if (kind == name) rule.kind = value, known_kind = true;
  }
  if (!known_kind) {
    return Bad(item, "unknown fault \"" + std::string(kind) +
                         "\" (error, error-after, latency, hang or hang-after)");
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    const size_t eq = parts[i].find('=');
    const std::string_view name = parts[i].substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view() : parts[i].substr(eq + 1);
    if (name == "rate") {
      const auto rate = ParseRate(value);
      if (!rate) return Bad(item, "rate must be a number from 0 to 1");
      rule.rate = *rate;
    } else if (name == "after" || name == "times" || name == "ms") {
      const auto number = ParseUnsigned(value);
      if (!number) return Bad(item, std::string(name) + " must be a whole number");
      if (name == "after") rule.after = *number;
      if (name == "times") rule.times = *number;
      if (name == "ms") {
        if (*number > 86'400'000) return Bad(item, "ms must be at most 86400000");
        rule.latency_ms = static_cast<int64_t>(*number);
      }
    } else {
      return Bad(item, "unknown parameter \"" + std::string(name) +
                           "\" (rate, after, times, ms)");
    }
  }
  return rule;
}

class FaultInjectingStore final : public ForwardingStore {
 public:
  FaultInjectingStore(std::shared_ptr<Store> inner, FaultSpec spec)
      : ForwardingStore(std::move(inner)),
        rules_(std::move(spec.rules)),
        state_(rules_.size()),
        random_(spec.seed) {}

  void Begin(BeginRequest request, Callback<Result<BeginResult>> done) override {
    Inject<Result<BeginResult>>(
        FaultOp::kBegin, std::move(done),
        [this, request = std::move(request)](auto cb) mutable {
          inner().Begin(std::move(request), std::move(cb));
        });
  }
  void Complete(CompleteRequest request, Callback<Status> done) override {
    Inject<Status>(FaultOp::kComplete, std::move(done),
                   [this, request = std::move(request)](auto cb) mutable {
                     inner().Complete(std::move(request), std::move(cb));
                   });
  }
  void Release(std::string key, std::string owner, Callback<Status> done) override {
    Inject<Status>(FaultOp::kRelease, std::move(done),
                   [this, key = std::move(key), owner = std::move(owner)](auto cb) mutable {
                     inner().Release(std::move(key), std::move(owner), std::move(cb));
                   });
  }
  void Extend(std::string key, std::string owner, int64_t lease_ttl_ms,
              Callback<Result<int64_t>> done) override {
    Inject<Result<int64_t>>(
        FaultOp::kExtend, std::move(done),
        [this, key = std::move(key), owner = std::move(owner), lease_ttl_ms](auto cb) mutable {
          inner().Extend(std::move(key), std::move(owner), lease_ttl_ms, std::move(cb));
        });
  }
  void Checkpoint(CheckpointRequest request, Callback<Status> done) override {
    Inject<Status>(FaultOp::kCheckpoint, std::move(done),
                   [this, request = std::move(request)](auto cb) mutable {
                     inner().Checkpoint(std::move(request), std::move(cb));
                   });
  }
  void Get(std::string key, Callback<Result<RecordPtr>> done) override {
    Inject<Result<RecordPtr>>(FaultOp::kGet, std::move(done),
                              [this, key = std::move(key)](auto cb) mutable {
                                inner().Get(std::move(key), std::move(cb));
                              });
  }
  void Delete(std::string key, Callback<Status> done) override {
    Inject<Status>(FaultOp::kDelete, std::move(done),
                   [this, key = std::move(key)](auto cb) mutable {
                     inner().Delete(std::move(key), std::move(cb));
                   });
  }
  void Sweep(size_t limit, Callback<Result<size_t>> done) override {
    Inject<Result<size_t>>(FaultOp::kSweep, std::move(done), [this, limit](auto cb) {
      inner().Sweep(limit, std::move(cb));
    });
  }
  void WaitForCompletion(std::string key, std::chrono::milliseconds timeout,
                         Callback<Result<RecordPtr>> done) override {
    Inject<Result<RecordPtr>>(FaultOp::kWait, std::move(done),
                              [this, key = std::move(key), timeout](auto cb) mutable {
                                inner().WaitForCompletion(std::move(key), timeout,
                                                          std::move(cb));
                              });
  }
  void Ping(Callback<Status> done) override {
    Inject<Status>(FaultOp::kPing, std::move(done),
                   [this](auto cb) { inner().Ping(std::move(cb)); });
  }

 private:
  struct RuleState {
    uint64_t calls = 0;
    uint64_t fired = 0;
  };

  // The rule that fires for this call of `op`, if any.
  const FaultRule* Pick(FaultOp op) {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < rules_.size(); ++i) {
      const FaultRule& rule = rules_[i];
      if (rule.op && *rule.op != op) continue;
      RuleState& s = state_[i];
      if (s.calls++ < rule.after || s.fired >= rule.times) continue;
      if (rule.rate < 1.0 && std::uniform_real_distribution<double>(0, 1)(random_) >= rule.rate) {
        continue;
      }
      ++s.fired;
      return &rule;
    }
    return nullptr;
  }

  template <typename T>
  static T Injected(FaultOp op) {
    return T(Unavailable("injected fault: store operation " + std::string(OpName(op)) +
                         " failed"));
  }

  // Calls `call(callback)` (which forwards to the inner store) as the rule
  // for this call says.
  template <typename T, typename Call>
  void Inject(FaultOp op, Callback<T> done, Call call) {
    const FaultRule* rule = Pick(op);
    if (rule == nullptr) return call(std::move(done));
    const auto later = [](std::chrono::milliseconds delay) {
      return TimerQueue::Clock::now() + delay;
    };
    switch (rule->kind) {
      case FaultKind::kError:
        return done(Injected<T>(op));
      case FaultKind::kErrorAfter:
        return call([done = std::move(done), op](T) { done(Injected<T>(op)); });
      case FaultKind::kLatency: {
        // Shared: the timer runs it, or the queue's destructor does.
        auto pending = std::make_shared<Call>(std::move(call));
        auto shared_done = std::make_shared<Callback<T>>(std::move(done));
        timers_->Schedule(later(std::chrono::milliseconds(rule->latency_ms)),
                          [pending, shared_done] { (*pending)(std::move(*shared_done)); });
        return;
      }
      case FaultKind::kHang: {
        auto shared_done = std::make_shared<Callback<T>>(std::move(done));
        timers_->Schedule(later(kHangFor), [shared_done, op] {
          (*shared_done)(T(Unavailable("injected fault: store operation " +
                                       std::string(OpName(op)) + " hung until closed")));
        });
        return;
      }
      case FaultKind::kHangAfter: {
        std::weak_ptr<TimerQueue> weak = timers_;
        return call([done = std::move(done), op, weak, later](T) mutable {
          auto timers = weak.lock();
          if (!timers) return done(Injected<T>(op));
          auto shared_done = std::make_shared<Callback<T>>(std::move(done));
          timers->Schedule(later(kHangFor), [shared_done, op] {
            (*shared_done)(Injected<T>(op));
          });
        });
      }
    }
  }

  const std::vector<FaultRule> rules_;
  std::mutex mutex_;
  std::vector<RuleState> state_;
  std::mt19937_64 random_;
  std::shared_ptr<TimerQueue> timers_ = std::make_shared<TimerQueue>();
};

}  // namespace

Result<FaultSpec> ParseFaultSpec(std::string_view rules) {
  FaultSpec spec;
  if (rules.empty()) return InvalidArgument("a fault: store URI needs at least one rule");
  for (const std::string_view item : Split(rules, ';')) {
    if (item.substr(0, 5) == "seed=") {
      const auto seed = ParseUnsigned(item.substr(5));
      if (!seed) return Bad(item, "seed must be a whole number");
      spec.seed = *seed;
      continue;
    }
    Result<FaultRule> rule = ParseRule(item);
    if (!rule.ok()) return rule.status();
    spec.rules.push_back(*rule);
  }
  if (spec.rules.empty()) return InvalidArgument("a fault: store URI needs at least one rule");
  return spec;
}

Result<std::pair<FaultSpec, std::string>> ParseFaultUri(std::string_view uri) {
  constexpr std::string_view kScheme = "fault:";
  if (uri.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgument("not a fault: store URI");
  }
  const std::string_view rest = uri.substr(kScheme.size());
  const size_t bar = rest.find('|');
  if (bar == std::string_view::npos || bar + 1 == rest.size()) {
    return InvalidArgument(
        "a fault: store URI is fault:RULES|INNER-URI, e.g. fault:begin=error|memory:");
  }
  Result<FaultSpec> spec = ParseFaultSpec(rest.substr(0, bar));
  if (!spec.ok()) return spec.status();
  return std::make_pair(std::move(spec).value(), std::string(rest.substr(bar + 1)));
}

std::shared_ptr<Store> NewFaultInjectingStore(std::shared_ptr<Store> inner,
                                              FaultSpec spec) {
  return std::make_shared<FaultInjectingStore>(std::move(inner), std::move(spec));
}

}  // namespace idem
