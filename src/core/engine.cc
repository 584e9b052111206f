#include "idem/engine.h"

#include <chrono>
#include <random>

#include "core/sync_wait.h"

namespace idem {
namespace {

using Steady = std::chrono::steady_clock;

int64_t RetryAfterSeconds(const Record& record, int64_t now_ms) {
  const int64_t left_ms = record.lease_expires_at_ms - now_ms;
  return std::max<int64_t>(1, (left_ms + 999) / 1000);
}

Lease LeaseOf(const Record& record) {
  return Lease{record.key, record.owner, record.fence,
               record.lease_expires_at_ms, record.recovery};
}

}  // namespace

std::string NewOwnerToken() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = rng();
    for (int i = 0; i < 16; ++i, bits >>= 4) token[half * 16 + i] = kHex[bits & 0xF];
  }
  return token;
}

// Everything a Begin that may wait for an in-flight duplicate carries
// across its asynchronous steps.
struct Engine::WaitState {
  Engine* engine;
  BeginRequest request;
  InFlightPolicy in_flight;
  Steady::time_point deadline;
  Callback<Result<Decision>> done;
};

Engine::Engine(std::shared_ptr<Store> store, std::shared_ptr<Clock> clock)
    : store_(std::move(store)), clock_(std::move(clock)) {}

Decision Engine::Decide(BeginResult result) const {
  Decision decision;
  switch (result.outcome) {
    case BeginOutcome::kAcquired:
      decision.kind = Decision::Kind::kExecute;
      decision.lease = LeaseOf(*result.record);
      break;
    case BeginOutcome::kCompleted:
      decision.kind = Decision::Kind::kReplay;
      break;
    case BeginOutcome::kInFlight:
      decision.kind = Decision::Kind::kConflict;
      decision.retry_after_s = RetryAfterSeconds(*result.record, clock_->NowMs());
      break;
    case BeginOutcome::kMismatch:
      decision.kind = Decision::Kind::kMismatch;
      break;
  }
  decision.record = std::move(result.record);
  return decision;
}

void Engine::Begin(std::string scope_key, std::string fingerprint,
                   const EnginePolicy& policy, Callback<Result<Decision>> done) {
  BeginRequest request{std::move(scope_key), std::move(fingerprint),
                       NewOwnerToken(), policy.lease_ttl_ms, policy.ttl_ms};
  if (policy.in_flight == InFlightPolicy::kReject) {
    // The common path: one store call, no shared state.
    store_->Begin(std::move(request),
                  [this, done = std::move(done)](Result<BeginResult> result) {
                    if (!result.ok()) return done(result.status());
                    done(Decide(std::move(result).value()));
                  });
    return;
  }
  auto state = std::make_shared<WaitState>(WaitState{
      this, std::move(request), policy.in_flight,
      Steady::now() + std::chrono::milliseconds(policy.wait_timeout_ms),
      std::move(done)});
  BeginAttempt(std::move(state));
}

// One Begin; if the key is in flight and time is left, wait for it to
// finish and then decide again (a release lets this caller execute).
void Engine::BeginAttempt(std::shared_ptr<WaitState> state) {
  BeginRequest request = state->request;
  store_->Begin(std::move(request), [this, state](Result<BeginResult> result) {
    if (!result.ok()) return state->done(result.status());
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        state->deadline - Steady::now());
    if (result->outcome != BeginOutcome::kInFlight || remaining.count() <= 0) {
      return state->done(Decide(std::move(result).value()));
    }
    store_->WaitForCompletion(
        state->request.key, remaining, [this, state](Result<RecordPtr> waited) {
          if (waited.ok()) {
            Decision decision;
            decision.kind = Decision::Kind::kReplay;
            decision.record = std::move(waited).value();
            return state->done(std::move(decision));
          }
          switch (waited.status().code()) {
            case StatusCode::kNotFound:  // released: try to take it
              return BeginAttempt(state);
            case StatusCode::kDeadlineExceeded:
              // Out of time: one last look, which answers 409 if still busy
              // (or takes over a lease that lapsed meanwhile).
              state->deadline = Steady::now();
              return BeginAttempt(state);
            default:
              return state->done(waited.status());
          }
        });
  });
}

void Engine::Finish(const Lease& lease, StoredResponse response,
                    const EnginePolicy& policy,
                    Callback<Result<FinishOutcome>> done) {
  const bool server_error = response.status >= 500;
  const bool keep = server_error
                        ? policy.on_server_error == ServerErrorPolicy::kStore
                        : policy.store_statuses.ShouldStore(response.status);
  if (!keep) {
    store_->Release(lease.key, lease.owner, [done = std::move(done)](Status s) {
      if (!s.ok()) return done(std::move(s));
      done(FinishOutcome::kReleased);
    });
    return;
  }
  store_->Complete(
      CompleteRequest{lease.key, lease.owner, std::move(response), policy.ttl_ms},
      [done = std::move(done)](Status s) {
        if (!s.ok()) return done(std::move(s));
        done(FinishOutcome::kStored);
      });
}

void Engine::Abandon(const Lease& lease, Callback<Status> done) {
  store_->Release(lease.key, lease.owner, std::move(done));
}

void Engine::Extend(const Lease& lease, const EnginePolicy& policy,
                    Callback<Result<int64_t>> done) {
  store_->Extend(lease.key, lease.owner, policy.lease_ttl_ms, std::move(done));
}

void Engine::Checkpoint(const Lease& lease, RecoveryPoint recovery,
                        Callback<Status> done) {
  store_->Checkpoint(CheckpointRequest{lease.key, lease.owner, std::move(recovery)},
                     std::move(done));
}

using internal::WaitFor;

Result<Decision> Engine::BeginSync(std::string scope_key, std::string fingerprint,
                                   const EnginePolicy& policy) {
  return WaitFor<Result<Decision>>([&](auto done) {
    Begin(std::move(scope_key), std::move(fingerprint), policy, std::move(done));
  });
}

Result<FinishOutcome> Engine::FinishSync(const Lease& lease, StoredResponse response,
                                         const EnginePolicy& policy) {
  return WaitFor<Result<FinishOutcome>>([&](auto done) {
    Finish(lease, std::move(response), policy, std::move(done));
  });
}

Status Engine::AbandonSync(const Lease& lease) {
  return WaitFor<Status>([&](auto done) { Abandon(lease, std::move(done)); });
}

Result<int64_t> Engine::ExtendSync(const Lease& lease, const EnginePolicy& policy) {
  return WaitFor<Result<int64_t>>(
      [&](auto done) { Extend(lease, policy, std::move(done)); });
}

Status Engine::CheckpointSync(const Lease& lease, RecoveryPoint recovery) {
  return WaitFor<Status>(
      [&](auto done) { Checkpoint(lease, std::move(recovery), std::move(done)); });
}

}  // namespace idem
