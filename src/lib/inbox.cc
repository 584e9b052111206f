#include "idem/inbox.h"

#include <exception>
#include <utility>

#include "idem/run_once.h"
#include "lib/lease_keeper.h"
#include "lib/stored_outcome.h"

namespace idem {

struct Inbox::Impl {
  std::shared_ptr<Engine> engine;
  InboxOptions options;
  EnginePolicy policy;
  internal::LeaseKeeper keeper;

  Impl(std::shared_ptr<Engine> e, InboxOptions o)
      : engine(std::move(e)), options(std::move(o)), keeper(engine) {
    policy.ttl_ms = options.retention_ms;
    policy.lease_ttl_ms = options.lease_ttl_ms;
    policy.in_flight =
        options.wait_timeout_ms > 0 ? InFlightPolicy::kWait : InFlightPolicy::kReject;
    policy.wait_timeout_ms = options.wait_timeout_ms;
  }
};

Inbox::Inbox(std::shared_ptr<Engine> engine, InboxOptions options)
    : impl_(std::make_unique<Impl>(std::move(engine), std::move(options))) {}

Inbox::~Inbox() = default;

Result<InboxOutcome> Inbox::Process(std::string_view message_id,
                                    const std::function<Status()>& handler) {
  if (message_id.empty()) return InvalidArgument("message id is empty");
  const std::string key = impl_->options.scope + " " + impl_->options.consumer + " " +
                          std::string(message_id);
  auto decision = impl_->engine->BeginSync(key, "", impl_->policy);
  if (!decision.ok()) return decision.status();
  switch (decision->kind) {
    case Decision::Kind::kReplay:
    case Decision::Kind::kMismatch:  // another fingerprint cannot happen here
      return InboxOutcome::kDuplicate;
    case Decision::Kind::kConflict:
      return Conflict("message " + std::string(message_id) +
                      " is being processed by another delivery");
    case Decision::Kind::kExecute:
      break;
  }
  const Lease& lease = decision->lease;
  Status handled;
  {
    internal::KeptLease kept(&impl_->keeper, lease, impl_->policy.lease_ttl_ms);
    try {
      handled = handler();
    } catch (...) {
      handled = internal::OutcomeOfCurrentException().status;
    }
  }
  if (!handled.ok()) {
    (void)impl_->engine->AbandonSync(lease);
    return handled;
  }
  Status marked = CompleteSync(
      impl_->engine->store(),
      {lease.key, lease.owner, internal::StoredValue(""), impl_->policy.ttl_ms});
  if (!marked.ok()) {
    return Status(marked.code(),
                  "the handler ran but the message was not marked: " + marked.message());
  }
  return InboxOutcome::kProcessed;
}

}  // namespace idem
