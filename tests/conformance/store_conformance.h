// The one conformance suite every Store backend must pass.
//
// A backend instantiates it with a factory that opens a fresh, empty store
// on the given clock (tests move a ManualClock instead of sleeping):
//
//   INSTANTIATE_TEST_SUITE_P(Memory, StoreConformanceTest,
//       ::testing::Values(StoreFactory{"memory", [](auto clock) {...}}));
//
// and links with idem_add_conformance_test() (tests/conformance/CMakeLists).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "idem/clock.h"
#include "idem/store.h"

namespace idem::testing {

struct StoreFactory {
  std::string name;
  std::function<std::shared_ptr<Store>(std::shared_ptr<Clock>)> open;
};

inline std::string PrintToString(const StoreFactory& f) { return f.name; }

class StoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A scope key no other test (or earlier run against a shared server) uses.
  std::string Key(const std::string& suffix = "");

  std::shared_ptr<ManualClock> clock_;
  std::shared_ptr<Store> store_;
};

}  // namespace idem::testing
