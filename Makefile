# idem: two commands on a fresh Debian machine.
#   make run    install what is missing, build, start the demo (gateway + demo service)
#   make test   install what is missing, build, run every test
BUILD_DIR ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
# Hardening (docs/verification.md): sanitizer builds, fuzzing, model checking.
ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = key canonical_json record_codec config http_front
# The sanitizer variants build the target sanitizer_suites (CMakeLists.txt):
# the unit, conformance and end-to-end suites and the programs they start; no
# benchmarks, examples or per-store suites. -O1 -g1 keeps the instrumented
# build cheap and its traces readable.
SANITIZE_FLAGS = -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DIDEM_WERROR=ON -DIDEM_BUILD_BENCH=OFF

.PHONY: all deps bench-deps configure build test run bench bench-quick format tidy clean \
  test-asan test-tsan fuzz fuzz-build verify verify-broken

all: build

deps:
	@scripts/bootstrap

bench-deps:
	@scripts/bootstrap --bench

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DIDEM_WERROR=ON $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

test: build
	@scripts/run-tests $(BUILD_DIR) $(JOBS)

test-asan: deps
	@cmake -S . -B $(ASAN_DIR) -DIDEM_SANITIZE=address $(SANITIZE_FLAGS) >/dev/null
	@cmake --build $(ASAN_DIR) -j$(JOBS) --target sanitizer_suites
	@scripts/run-tests $(ASAN_DIR) $(JOBS) --sanitized

test-tsan: deps
	@cmake -S . -B $(TSAN_DIR) -DIDEM_SANITIZE=thread $(SANITIZE_FLAGS) >/dev/null
	@cmake --build $(TSAN_DIR) -j$(JOBS) --target sanitizer_suites
	@scripts/run-tests $(TSAN_DIR) $(JOBS) --sanitized

fuzz-build: deps
	@cmake -S . -B $(FUZZ_DIR) -DIDEM_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIDEM_WERROR=ON >/dev/null
	@cmake --build $(FUZZ_DIR) -j$(JOBS) --target $(addsuffix _fuzz,$(FUZZ_TARGETS))

# Each target for FUZZ_SECONDS from the seed corpus and the regression
# inputs; new inputs go to $(FUZZ_DIR)/corpus, crashes to $(FUZZ_DIR)/crashes.
fuzz: fuzz-build
	@scripts/fuzz $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The lease protocol model (verify/lease.pml) checked exhaustively by spin;
# verify-broken checks that a model without fencing fails.
verify: deps
	@verify/check
	@verify/check --broken

verify-broken: deps
	@verify/check --show-broken

run: build
	$(BUILD_DIR)/bin/idem demo

bench: bench-deps build
	@scripts/bench $(BUILD_DIR)

bench-quick: bench-deps build
	@scripts/bench $(BUILD_DIR) --quick

format:
	@git ls-files '*.h' '*.cc' | xargs clang-format -i

tidy: configure
	@git ls-files 'src/*.cc' 'apps/*.cc' | xargs clang-tidy -p $(BUILD_DIR) --quiet

clean:
	rm -rf $(BUILD_DIR)
