// Fault injection for tests: a Store decorator that makes chosen
// operations fail, slow down or hang, so the gateway's and a library
// user's handling of a misbehaving store can be tested with the real
// binary and a real backend underneath. A testing tool: `idem serve` logs a
// loud warning when its store is one.
//
// Store URI (what OpenStore, --store and store.uri accept):
//   fault:RULE[;RULE...]|INNER-URI
// e.g. "fault:begin=error|memory:",
//      "fault:complete=hang,after=2;seed=7|redis://127.0.0.1:6379/0".
//
// RULE is `seed=N` (the random generator's seed, default 1, for rates) or
//   OP=KIND[,PARAM=VALUE...]
// OP: begin, complete, release, extend, checkpoint, get, delete, sweep,
//     wait, ping, or * for every operation.
// KIND:
//   error       answer kUnavailable; the inner store is not called
//   error-after call the inner store, then answer kUnavailable (the call
//               took effect, its answer was lost)
//   latency     wait `ms` before calling the inner store
//   hang        never answer (until the store is destroyed, when the call
//               fails with kUnavailable); the inner store is not called
//   hang-after  call the inner store, then never answer
// PARAM:
//   rate=P      the fault fires with probability P (0 to 1; default 1)
//   after=N     the first N calls of OP are left alone (default 0)
//   times=N     the fault fires at most N times (default: no limit)
//   ms=N        latency's delay in milliseconds (default 100)
// Rules are tried in order; the first that fires decides. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "idem/status.h"
#include "idem/store.h"

namespace idem {

enum class FaultOp {
  kBegin, kComplete, kRelease, kExtend, kCheckpoint, kGet, kDelete, kSweep, kWait, kPing,
};

enum class FaultKind { kError, kErrorAfter, kLatency, kHang, kHangAfter };

struct FaultRule {
  std::optional<FaultOp> op;  // nullopt: every operation
  FaultKind kind = FaultKind::kError;
  double rate = 1.0;
  uint64_t after = 0;
  uint64_t times = UINT64_MAX;
  int64_t latency_ms = 100;
};

struct FaultSpec {
  std::vector<FaultRule> rules;
  uint64_t seed = 1;
};

// Parses the RULE list (the part between "fault:" and '|').
Result<FaultSpec> ParseFaultSpec(std::string_view rules);

// Splits "fault:RULES|INNER" into the parsed rules and INNER.
Result<std::pair<FaultSpec, std::string>> ParseFaultUri(std::string_view uri);

std::shared_ptr<Store> NewFaultInjectingStore(std::shared_ptr<Store> inner,
                                              FaultSpec spec);

}  // namespace idem
