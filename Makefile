# Sluice — three commands on a fresh Debian 12 machine, as root:
#   make run    install what is missing, build, start the broker
#   make test   install what the tests need, build, run every test:
#               the suite (build/), the sanitized subset (build-asan/)
#               and the fuzzers (build-fuzz/); see tests/README.md
#   make soak   the consistency checker under faults for SOAK_SECONDS
#               (600); see tests/consistency/README.md
#   make install  put sluice in $(DESTDIR)$(PREFIX)/bin (default
#               /usr/local/bin), building the broker first if needed
#   make cluster  install what is missing, build the broker, start a
#               local PostgreSQL and three agents on
#               127.0.0.1:9092-9094 in ./cluster (tools/cluster.sh)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
DATA ?= ./data
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
DESTDIR ?=

RUN_PKGS = build-essential cmake pkg-config python3 libuv1-dev libsqlite3-dev \
	zlib1g-dev liblz4-dev libzstd-dev libsnappy-dev \
	libcurl4-openssl-dev libexpat1-dev libssl-dev libpq-dev
TEST_PKGS = $(RUN_PKGS) libcmocka-dev librdkafka-dev kcat clang \
	python3-pytest python3-confluent-kafka python3-kafka postgresql prometheus \
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
BENCH_PKGS = $(RUN_PKGS) librdkafka-dev gnuplot-nox
CLUSTER_PKGS = $(RUN_PKGS) postgresql kcat

.PHONY: all build build-broker build-asan build-fuzz run test test-suite \
	test-asan test-fuzz soak bench build-bench deps-run deps-test deps-bench deps-node clean \
	cluster deps-cluster install uninstall

all: build

# Everything, tests included (cmocka is required for them).
build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_TESTS=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The broker alone: needs only RUN_PKGS (no cmocka, no clients).
build-broker:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_TESTS=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target sluice

build-asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

build-fuzz:
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_LIBFUZZER=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)

run: deps-run build-broker
	./$(BUILD)/sluice serve --data $(DATA)

# An existing build dir is built as it is configured (a test build is
# not switched to the broker-only one); without one, the broker alone.
install:
	@if [ -f $(BUILD)/CMakeCache.txt ]; then \
		cmake --build $(BUILD) -j $(JOBS) --target sluice; \
	else \
		$(MAKE) --no-print-directory build-broker; \
	fi
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/sluice $(DESTDIR)$(PREFIX)/bin/sluice

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/sluice

# Until Ctrl-C; a second run reuses ./cluster's database and objects.
cluster: deps-cluster build-broker
	@SLUICE_BIN=./$(BUILD)/sluice ./tools/cluster.sh

# -k: a failure in one pass does not skip the others; make still fails.
test: deps-test
	@$(MAKE) --no-print-directory -k test-suite test-asan test-fuzz

test-suite: build
	cd $(BUILD) && ctest --output-on-failure -j 2

test-asan: build-asan
	cd $(ASAN_BUILD) && ctest --output-on-failure -j 2

test-fuzz: build-fuzz
	cd $(FUZZ_BUILD) && ctest --output-on-failure -j 2

# The consistency checker's long run (tests/consistency/README.md): a
# three-agent PostgreSQL+s3rver cluster under every fault for
# SOAK_SECONDS; SOAK_ARGS adds run.py flags (--seed N to replay one).
SOAK_SECONDS ?= 600
SOAK_ARGS ?=
soak: deps-test build
	SLUICE_BIN=$(CURDIR)/$(BUILD)/sluice SLUICE_SOURCE_DIR=$(CURDIR) \
		/usr/bin/python3 tests/consistency/run.py --mode cluster --agents 3 \
		--faults all --duration $(SOAK_SECONDS) $(SOAK_ARGS)

bench: deps-bench build-bench
	./bench/run.sh

# The benchmark programs without the test tree (BENCH_PKGS has no cmocka).
build-bench:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_TESTS=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# kcat too: the README's first commands use it against `make run`.
deps-run:
	@./tools/install-deps.sh $(RUN_PKGS) kcat

deps-test:
	@./tools/install-deps.sh $(TEST_PKGS)
	@./tools/install-node-deps.sh

deps-cluster:
	@./tools/install-deps.sh $(CLUSTER_PKGS)

deps-bench:
	@./tools/install-deps.sh $(BENCH_PKGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
