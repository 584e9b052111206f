# idem: two commands on a fresh Debian machine.
#   make run    install what is missing, build, start the demo (gateway + demo service)
#   make test   install what is missing, build, run every test
BUILD_DIR ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=

.PHONY: all deps bench-deps configure build test run bench bench-quick format tidy clean

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
