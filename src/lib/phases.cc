#include "idem/phases.h"

#include <exception>
#include <optional>
#include <set>
#include <utility>

#include "idem/fingerprint.h"
#include "idem/run_once.h"
#include "lib/lease_keeper.h"
#include "lib/stored_outcome.h"

namespace idem {
namespace {

struct Phase {
  std::string name;
  PhaseFunction fn;
};

// A phase's outcome with exceptions turned into values.
struct PhaseOutcome {
  PhaseResult result;
  bool final = false;
};

PhaseOutcome RunPhase(const Phase& phase, const PhaseInput& input) {
  try {
    return {phase.fn(input), false};
  } catch (...) {
    internal::OnceOutcome caught = internal::OutcomeOfCurrentException();
    return {std::move(caught.status), caught.final};
  }
}

Status WithPhase(const Status& status, const std::string& phase) {
  return Status(status.code(), "phase " + phase + ": " + status.message());
}

}  // namespace

struct PhasedOperation::Impl {
  std::shared_ptr<Engine> engine;
  EnginePolicy policy;
  PhasedOptions options;
  std::vector<Phase> phases;
  internal::LeaseKeeper keeper;

  Impl(std::shared_ptr<Engine> e, EnginePolicy p, PhasedOptions o)
      : engine(std::move(e)),
        policy(p),
        options(std::move(o)),
        keeper(engine) {}

  Status CheckPhases() const {
    if (phases.empty()) return InvalidArgument("a phased operation needs a phase");
    std::set<std::string_view> names;
    for (const Phase& phase : phases) {
      if (phase.name.empty()) return InvalidArgument("a phase has an empty name");
      if (!names.insert(phase.name).second) {
        return InvalidArgument("two phases are named " + phase.name);
      }
    }
    return Status();
  }

  // Hands the lease back without losing the saved phases: its expiry moves
  // to (almost) now, so the next Begin takes it over with the recovery
  // point. A failure only means a retry waits for the lease to lapse.
  void Yield(const Lease& lease) {
    EnginePolicy now_policy = policy;
    now_policy.lease_ttl_ms = 1;
    (void)engine->ExtendSync(lease, now_policy);
  }

  Result<PhasedResult> Stored(const StoredResponse& response, PhasedResult result) {
    for (const auto& [name, value] : response.headers) {
      if (name == internal::kErrorHeader) {
        return internal::DecodeStored(response).status();
      }
    }
    result.response = response;
    return result;
  }

  Result<PhasedResult> Execute(std::string_view key, std::string_view input,
                               const Lease& lease);
};

PhasedOperation::PhasedOperation(std::shared_ptr<Engine> engine, EnginePolicy policy,
                                 PhasedOptions options)
    : impl_(std::make_unique<Impl>(std::move(engine), policy,
                                   std::move(options))) {}

PhasedOperation::~PhasedOperation() = default;

PhasedOperation& PhasedOperation::AddPhase(std::string name, PhaseFunction fn) {
  impl_->phases.push_back(Phase{std::move(name), std::move(fn)});
  return *this;
}

Result<PhasedResult> PhasedOperation::Run(std::string_view key, std::string_view input) {
  if (key.empty()) return InvalidArgument("phased operation key is empty");
  if (Status s = impl_->CheckPhases(); !s.ok()) return s;
  auto decision = impl_->engine->BeginSync(impl_->options.scope + " " + std::string(key),
                                           Sha256(input), impl_->policy);
  if (!decision.ok()) return decision.status();
  switch (decision->kind) {
    case Decision::Kind::kExecute:
      return impl_->Execute(key, input, decision->lease);
    case Decision::Kind::kReplay: {
      PhasedResult replay;
      replay.replayed = true;
      return impl_->Stored(decision->record->response, std::move(replay));
    }
    case Decision::Kind::kConflict:
      return Conflict("the operation is running elsewhere; retry in " +
                      std::to_string(decision->retry_after_s) + " s");
    case Decision::Kind::kMismatch:
      return Mismatch("the key was used with another input");
  }
  return Internal("unexpected decision");
}

Result<PhasedResult> PhasedOperation::Impl::Execute(std::string_view key,
                                                    std::string_view input,
                                                    const Lease& lease) {
  PhasedResult result;
  size_t next = 0;
  std::string state(input);
  bool saved = !lease.recovery.empty();
  if (saved) {
    size_t index = 0;
    while (index < phases.size() && phases[index].name != lease.recovery.phase) ++index;
    if (index + 1 >= phases.size()) {
      Yield(lease);
      return FailedPrecondition("the saved phase " + lease.recovery.phase +
                                " is not a phase of this operation, or its last");
    }
    next = index + 1;
    state = lease.recovery.state;
    result.resumed_after = lease.recovery.phase;
  }

  internal::KeptLease kept(options.keep_lease_alive ? &keeper : nullptr, lease,
                           policy.lease_ttl_ms);
  std::optional<StoredResponse> response;
  for (; next < phases.size() && !response; ++next) {
    const Phase& phase = phases[next];
    PhaseInput phase_input{key, state, lease.fence, saved};
    PhaseOutcome outcome = RunPhase(phase, phase_input);
    result.phases_run.push_back(phase.name);
    if (!outcome.result.ok()) {
      const Status error = WithPhase(outcome.result.status(), phase.name);
      kept.Stop();
      if (outcome.final) {
        Status stored = CompleteSync(
            engine->store(),
            {lease.key, lease.owner, internal::StoredError(error), policy.ttl_ms});
        if (!stored.ok()) return stored;
      } else if (saved) {
        Yield(lease);
      } else {
        (void)engine->AbandonSync(lease);
      }
      return error;
    }
    const bool last = next + 1 == phases.size();
    if (outcome.result.is_response()) {
      response = outcome.result.response();
    } else if (last) {
      response = StoredResponse{200, {}, outcome.result.state()};
    } else {
      state = outcome.result.state();
      Status checkpoint = engine->CheckpointSync(lease, RecoveryPoint{phase.name, state});
      if (!checkpoint.ok()) return WithPhase(checkpoint, phase.name);
      saved = true;
      if (options.after_checkpoint) {
        try {
          options.after_checkpoint(phase.name);
        } catch (...) {
          // An observer; its failure must not fail the operation.
        }
      }
    }
  }
  kept.Stop();
  Status stored =
      CompleteSync(engine->store(), {lease.key, lease.owner, *response, policy.ttl_ms});
  if (!stored.ok()) {
    return Status(
        stored.code(),
        "the operation finished but its response was not stored: " + stored.message());
  }
  result.response = std::move(*response);
  return result;
}

}  // namespace idem
