#!/usr/bin/env bash
# run.sh — what `make bench` runs: bench/suite.py, which starts the targets
# (Sluice with the file store, Sluice with the S3 store on a local s3rver,
# librdkafka's mock cluster as the reference), runs every workload against
# each, and writes bench/results/ (CSV, table, gnuplot PNGs) and the latest
# block of bench/RESULTS.md. See bench/README.md.
#
# Environment (all optional):
#   QUICK=1            shorter runs (3 s instead of 10), 128 MiB backlog instead of 1 GiB
#                      (the full run takes ~10 minutes)
#   TARGETS=file,s3,mock   which targets, in this order
#   PERF=1             also perf-record a file-store broker during produce and
#                      a cold catch-up read (bench/results/perf-*.txt)
#   BUILD=build  SLUICE_BIN=$BUILD/sluice  DRIVER=$BUILD/bench/driver
#   DURATION_S BACKLOG_MIB SCALE=1,100,1000,10000 CONNS=1,100,1000 PARTITIONS=8
#   CATCHUP_PARTITIONS=64 E2E_RATE=10000 LINGER_MS=5 FETCH_WAIT_MS=10
#   DROP_CACHES=0      do not try to drop the OS page cache before cold reads
#   OUT=bench/results  RESULTS=bench/RESULTS.md  WRITE_RESULTS=0  KEEP=1
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# s3rver for the S3 target (npm, the same one the integration tests use).
if [[ ",${TARGETS:-file,s3,mock}," == *,s3,* ]] &&
	[ ! -x "$ROOT/tests/integration/js/node_modules/.bin/s3rver" ] &&
	command -v npm >/dev/null 2>&1; then
	"$ROOT/tools/install-node-deps.sh" || echo "run.sh: could not install s3rver; the s3 target will be skipped" >&2
fi
# 1,000 connections and a few thousand files want more than 1024 descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
SUITE_VIA=./bench/run.sh exec /usr/bin/python3 "$ROOT/bench/suite.py" "$@"
