// Blocking forms of the Store calls (declared in idem/store.h).
#include "core/sync_wait.h"
#include "idem/store.h"

namespace idem {

using internal::WaitFor;

Result<BeginResult> BeginSync(Store& store, BeginRequest request) {
  return WaitFor<Result<BeginResult>>(
      [&](auto done) { store.Begin(std::move(request), std::move(done)); });
}

Status CompleteSync(Store& store, CompleteRequest request) {
  return WaitFor<Status>(
      [&](auto done) { store.Complete(std::move(request), std::move(done)); });
}

Status ReleaseSync(Store& store, std::string key, std::string owner) {
  return WaitFor<Status>([&](auto done) {
    store.Release(std::move(key), std::move(owner), std::move(done));
  });
}

Result<int64_t> ExtendSync(Store& store, std::string key, std::string owner,
                           int64_t lease_ttl_ms) {
  return WaitFor<Result<int64_t>>([&](auto done) {
    store.Extend(std::move(key), std::move(owner), lease_ttl_ms, std::move(done));
  });
}

Status CheckpointSync(Store& store, CheckpointRequest request) {
  return WaitFor<Status>(
      [&](auto done) { store.Checkpoint(std::move(request), std::move(done)); });
}

Result<RecordPtr> GetSync(Store& store, std::string key) {
  return WaitFor<Result<RecordPtr>>(
      [&](auto done) { store.Get(std::move(key), std::move(done)); });
}

Status DeleteSync(Store& store, std::string key) {
  return WaitFor<Status>(
      [&](auto done) { store.Delete(std::move(key), std::move(done)); });
}

Result<size_t> SweepSync(Store& store, size_t limit) {
  return WaitFor<Result<size_t>>(
      [&](auto done) { store.Sweep(limit, std::move(done)); });
}

Result<RecordPtr> WaitForCompletionSync(Store& store, std::string key,
                                        std::chrono::milliseconds timeout) {
  return WaitFor<Result<RecordPtr>>([&](auto done) {
    store.WaitForCompletion(std::move(key), timeout, std::move(done));
  });
}

Status PingSync(Store& store) {
  return WaitFor<Status>([&](auto done) { store.Ping(std::move(done)); });
}

}  // namespace idem
