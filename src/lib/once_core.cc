// The type-independent half of RunOnce (include/idem/run_once.h).
#include <exception>
#include <string>
#include <utility>

#include "idem/run_once.h"
#include "lib/lease_keeper.h"
#include "lib/stored_outcome.h"

namespace idem::internal {

OnceOutcome OutcomeOfCurrentException() {
  try {
    throw;
  } catch (const FinalError& e) {
    return OnceOutcome{e.status(), {}, true};
  } catch (const std::exception& e) {
    return OnceOutcome{Internal(std::string("exception: ") + e.what()), {}, false};
  } catch (...) {
    return OnceOutcome{Internal("exception of unknown type"), {}, false};
  }
}

struct OnceCore::Impl {
  std::shared_ptr<Engine> engine;
  EnginePolicy policy;
  RunOnceOptions options;
  LeaseKeeper keeper;

  Impl(std::shared_ptr<Engine> e, EnginePolicy p, RunOnceOptions o)
      : engine(std::move(e)),
        policy(p),
        options(std::move(o)),
        keeper(engine) {}

  LeaseKeeper* Keeper() { return options.keep_lease_alive ? &keeper : nullptr; }

  bool IsFinal(const OnceOutcome& outcome) const {
    if (outcome.status.ok()) return false;
    return outcome.final || (options.is_final && options.is_final(outcome.status));
  }

  std::string ScopeKey(std::string_view key) const {
    return options.scope + " " + std::string(key);
  }

  // The answer to a Begin that did not hand this caller a lease.
  static Result<std::string> NotExecuted(const Decision& decision) {
    switch (decision.kind) {
      case Decision::Kind::kReplay:
        return DecodeStored(decision.record->response);
      case Decision::Kind::kConflict:
        return Conflict("another call with this key is still running; retry in " +
                        std::to_string(decision.retry_after_s) + " s");
      case Decision::Kind::kMismatch:
        return Mismatch("the key is taken by another kind of request");
      case Decision::Kind::kExecute:
        break;
    }
    return Internal("unexpected decision");
  }

  // What the caller gets once the outcome is stored or released.
  static Result<std::string> Answer(OnceOutcome outcome, const Status& stored) {
    if (!stored.ok()) {
      return Status(stored.code(), "the function ran but its result was not stored: " +
                                       stored.message());
    }
    if (!outcome.status.ok()) return outcome.status;
    return std::move(outcome.bytes);
  }
};

OnceCore::OnceCore(std::shared_ptr<Engine> engine, EnginePolicy policy,
                   RunOnceOptions options)
    : impl_(std::make_unique<Impl>(std::move(engine), policy,
                                   std::move(options))) {}

OnceCore::~OnceCore() = default;

Result<std::string> OnceCore::Run(std::string_view key,
                                  const std::function<OnceOutcome()>& body) {
  if (key.empty()) return InvalidArgument("run-once key is empty");
  auto decision = impl_->engine->BeginSync(impl_->ScopeKey(key), "", impl_->policy);
  if (!decision.ok()) return decision.status();
  if (decision->kind != Decision::Kind::kExecute) return Impl::NotExecuted(*decision);

  const Lease& lease = decision->lease;
  OnceOutcome outcome;
  {
    KeptLease kept(impl_->Keeper(), lease, impl_->policy.lease_ttl_ms);
    outcome = body();
  }
  if (outcome.status.ok() || impl_->IsFinal(outcome)) {
    const StoredResponse response =
        outcome.status.ok() ? StoredValue(outcome.bytes) : StoredError(outcome.status);
    const Status stored = CompleteSync(
        impl_->engine->store(), {lease.key, lease.owner, response, impl_->policy.ttl_ms});
    return Impl::Answer(std::move(outcome), stored);
  }
  // Released so that a retry runs again; a failed release only delays that
  // retry until the lease lapses, so the function's own error is what the
  // caller needs to see.
  (void)impl_->engine->AbandonSync(lease);
  return outcome.status;
}

// One asynchronous execution. `kept` is declared last so it is destroyed
// first, while the core that owns the keeper is still alive.
struct OnceExecution {
  std::shared_ptr<OnceCore> self;
  Lease lease;
  std::function<void(Result<std::string>)> done;
  std::unique_ptr<KeptLease> kept;
};

void OnceCore::RunAsync(std::string key,
                        std::function<void(std::function<void(OnceOutcome)>)> body,
                        std::function<void(Result<std::string>)> done) {
  if (key.empty()) return done(InvalidArgument("run-once key is empty"));
  auto self = shared_from_this();
  impl_->engine->Begin(
      impl_->ScopeKey(key), "", impl_->policy,
      [self, body = std::move(body), done = std::move(done)](Result<Decision> decision) {
        if (!decision.ok()) return done(decision.status());
        if (decision->kind != Decision::Kind::kExecute) {
          return done(Impl::NotExecuted(*decision));
        }
        Impl& impl = *self->impl_;
        auto run = std::make_shared<OnceExecution>(
            OnceExecution{self, decision->lease, done, nullptr});
        run->kept = std::make_unique<KeptLease>(impl.Keeper(), run->lease,
                                                impl.policy.lease_ttl_ms);
        body([run](OnceOutcome outcome) {
          run->kept.reset();
          Impl& inner = *run->self->impl_;
          if (!outcome.status.ok() && !inner.IsFinal(outcome)) {
            inner.engine->Abandon(run->lease, [run, status = outcome.status](Status) {
              run->done(status);
            });
            return;
          }
          StoredResponse response = outcome.status.ok() ? StoredValue(outcome.bytes)
                                                        : StoredError(outcome.status);
          inner.engine->store().Complete(
              {run->lease.key, run->lease.owner, std::move(response),
               inner.policy.ttl_ms},
              [run, outcome = std::move(outcome)](Status stored) mutable {
                run->done(Impl::Answer(std::move(outcome), stored));
              });
        });
      });
}

}  // namespace idem::internal
