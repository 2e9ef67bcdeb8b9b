#!/bin/sh
# fuzz-run.sh BINARY CORPUS WORKDIR SECONDS — one libFuzzer session, as
# ctest runs it in the SLUICE_LIBFUZZER build (tests/README.md).
#
# Fuzzes for SECONDS with the repo corpus as input and new inputs written
# to a scratch dir (so a failed run leaves the repo as it was), then
# merges into CORPUS the scratch inputs that reach code edges the corpus
# does not (-merge=1 with -use_counters=0: new edges only, not new hit
# counts, which would add hundreds of files a run): after `make test`, new
# files under tests/fuzz/corpus/ are worth committing. A crash, leak,
# timeout or sanitizer report fails the run and leaves its input in
# WORKDIR/crash-*.
set -eu
bin=$1 corpus=$2 work=$3 seconds=$4
rm -rf "$work/new"
mkdir -p "$work/new" "$corpus"
# -timeout: a single input slower than 10 s is a hang worth reporting;
# -rss_limit_mb: targets allocate at most a 16 MiB arena per input.
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
	-print_final_stats=1 -artifact_prefix="$work/" \
	"$work/new" "$corpus"
before=$(ls "$corpus" | wc -l)
"$bin" -merge=1 -use_counters=0 -artifact_prefix="$work/" "$corpus" "$work/new" 2>"$work/merge.log" || {
	cat "$work/merge.log" >&2
	exit 1
}
after=$(ls "$corpus" | wc -l)
echo "fuzz-run: $(basename "$bin"): corpus $before -> $after files ($corpus)"
