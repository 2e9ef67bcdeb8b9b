# Sluice — two commands on a fresh Debian 12 machine, as root:
#   make run    install what is missing, build, start the broker
#   make test   install what the tests need, build, run every test
BUILD ?= build
DATA ?= ./data
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

RUN_PKGS = build-essential cmake pkg-config python3 libuv1-dev libsqlite3-dev \
	zlib1g-dev liblz4-dev libzstd-dev libsnappy-dev \
	libcurl4-openssl-dev libexpat1-dev libssl-dev
TEST_PKGS = $(RUN_PKGS) libcmocka-dev librdkafka-dev kcat \
	python3-pytest python3-confluent-kafka python3-kafka
BENCH_PKGS = $(RUN_PKGS) librdkafka-dev gnuplot-nox

.PHONY: all build run test bench deps-run deps-test deps-bench deps-node clean

all: build

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: deps-run build
	./$(BUILD)/sluice serve --data $(DATA)

test: deps-test build
	cd $(BUILD) && ctest --output-on-failure -j 2

bench: deps-bench build
	./bench/run.sh

deps-run:
	@./tools/install-deps.sh $(RUN_PKGS)

deps-test:
	@./tools/install-deps.sh $(TEST_PKGS)
	@./tools/install-node-deps.sh

deps-bench:
	@./tools/install-deps.sh $(BENCH_PKGS)

clean:
	rm -rf $(BUILD)
