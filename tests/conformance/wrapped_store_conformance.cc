// The conformance suite over the memory store behind the store wrappers:
// each decorator must keep the whole Store contract.
#include "conformance/store_conformance.h"
#include "idem/deadline_store.h"
#include "idem/encrypting_store.h"
#include "idem/fault_store.h"
#include "idem/memory_store.h"

namespace idem::testing {
namespace {

std::shared_ptr<Store> Memory(std::shared_ptr<Clock> clock) {
  MemoryStoreOptions options;
  options.clock = std::move(clock);
  return NewMemoryStore(options);
}

EncryptionKeys TestKeys() {
  EncryptionKeys keys;
  keys.active_id = "k2";
  keys.keys = ParseEncryptionKeys(
                  "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
                  "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=")
                  .value();
  return keys;
}

INSTANTIATE_TEST_SUITE_P(
    Wrapped, StoreConformanceTest,
    ::testing::Values(
        StoreFactory{"encrypted",
                     [](auto clock) { return NewEncryptingStore(Memory(clock), TestKeys()); }},
        StoreFactory{"deadline",
                     [](auto clock) {
                       return NewDeadlineStore(Memory(clock), std::chrono::seconds(30));
                     }},
        // Every answer comes from the fault store's timer thread.
        StoreFactory{"delayed_encrypted_deadline",
                     [](auto clock) {
                       auto spec = ParseFaultSpec("*=latency,ms=0").value();
                       return NewDeadlineStore(
                           NewEncryptingStore(NewFaultInjectingStore(Memory(clock), spec),
                                              TestKeys()),
                           std::chrono::seconds(30));
                     }}),
    [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace idem::testing
