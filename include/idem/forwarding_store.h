// ForwardingStore: a Store that hands every call to another Store (the
// pattern of LevelDB's EnvWrapper). A decorator derives from it and
// overrides only the operations it changes: fault injection
// (idem/fault_store.h), operation deadlines (idem/deadline_store.h),
// encryption at rest (idem/encrypting_store.h). Thread-safe when the inner
// store is.
#pragma once

#include <memory>
#include <utility>

#include "idem/store.h"

namespace idem {

class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(std::shared_ptr<Store> inner) : inner_(std::move(inner)) {}

  void Begin(BeginRequest request, Callback<Result<BeginResult>> done) override {
    inner_->Begin(std::move(request), std::move(done));
  }
  void Complete(CompleteRequest request, Callback<Status> done) override {
    inner_->Complete(std::move(request), std::move(done));
  }
  void Release(std::string key, std::string owner, Callback<Status> done) override {
    inner_->Release(std::move(key), std::move(owner), std::move(done));
  }
  void Extend(std::string key, std::string owner, int64_t lease_ttl_ms,
              Callback<Result<int64_t>> done) override {
    inner_->Extend(std::move(key), std::move(owner), lease_ttl_ms, std::move(done));
  }
  void Checkpoint(CheckpointRequest request, Callback<Status> done) override {
    inner_->Checkpoint(std::move(request), std::move(done));
  }
  void Get(std::string key, Callback<Result<RecordPtr>> done) override {
    inner_->Get(std::move(key), std::move(done));
  }
  void Delete(std::string key, Callback<Status> done) override {
    inner_->Delete(std::move(key), std::move(done));
  }
  void Sweep(size_t limit, Callback<Result<size_t>> done) override {
    inner_->Sweep(limit, std::move(done));
  }
  void WaitForCompletion(std::string key, std::chrono::milliseconds timeout,
                         Callback<Result<RecordPtr>> done) override {
    inner_->WaitForCompletion(std::move(key), timeout, std::move(done));
  }
  void Ping(Callback<Status> done) override { inner_->Ping(std::move(done)); }
  std::vector<StoreMetric> Metrics() const override { return inner_->Metrics(); }

 protected:
  Store& inner() { return *inner_; }
  const std::shared_ptr<Store>& shared_inner() const { return inner_; }

 private:
  std::shared_ptr<Store> inner_;
};

}  // namespace idem
