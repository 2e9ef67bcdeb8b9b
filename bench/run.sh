#!/usr/bin/env bash
# run.sh — Sluice's benchmark (what `make bench` runs).
#
# Starts build/sluice on a free loopback port with a temporary data dir,
# runs the workloads with bench/driver, samples the broker's peak RSS and
# CPU time, prints a table, checks the issue targets and appends the run to
# bench/RESULTS.md.
#
#   (a) produce   max throughput: 1 KiB messages, 8 partitions, 1 producer,
#                 acks=all, linger 5 ms, DURATION_S seconds
#   (b) latency   produce at half of (a)'s message rate: p50/p99/p99.9
#   (c) consume   catch-up read of everything (a) wrote
#   (d) mock      (a) against librdkafka's in-memory mock cluster: what the
#                 client and this machine allow
#
# Environment (all optional):
#   BUILD=build  SLUICE_BIN=$BUILD/sluice  DRIVER=$BUILD/bench/driver
#   DURATION_S=10 MSG_BYTES=1024 PARTITIONS=8 LINGER_MS=5 FLUSH_INTERVAL_MS=2
#   BOOTSTRAP=HOST:PORT [BROKER_PID=PID]  benchmark a broker already running
#   PERF=1            perf record -g the broker during (a); top of the report
#   RESULTS=bench/RESULTS.md   WRITE_RESULTS=0 to leave it alone
#   KEEP=1            keep the temporary directory (data, logs)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)

# The exact command, with the environment overrides it was given.
CMDLINE=""
for v in BUILD SLUICE_BIN DRIVER DURATION_S MSG_BYTES PARTITIONS LINGER_MS \
	FLUSH_INTERVAL_MS BOOTSTRAP BROKER_PID PERF RESULTS WRITE_RESULTS KEEP; do
	if [ -n "${!v+x}" ]; then CMDLINE="$CMDLINE$v=${!v} "; fi
done
CMDLINE="$CMDLINE./bench/run.sh${*:+ $*}"

BUILD=${BUILD:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SLUICE_BIN=${SLUICE_BIN:-$BUILD/sluice}
DRIVER=${DRIVER:-$BUILD/bench/driver}
DURATION_S=${DURATION_S:-10}
MSG_BYTES=${MSG_BYTES:-1024}
PARTITIONS=${PARTITIONS:-8}
LINGER_MS=${LINGER_MS:-5}
FLUSH_INTERVAL_MS=${FLUSH_INTERVAL_MS:-2}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
WRITE_RESULTS=${WRITE_RESULTS:-1}
PERF=${PERF:-0}
KEEP=${KEEP:-0}
BOOTSTRAP=${BOOTSTRAP:-}
BROKER_PID=${BROKER_PID:-}

# Issue targets.
TARGET_PRODUCE_MB_S=400
TARGET_P99_MS=$((FLUSH_INTERVAL_MS + 20))
TARGET_RSS_MIB=256

die() { echo "run.sh: $*" >&2; exit 1; }

[ -x "$DRIVER" ] || die "no driver at $DRIVER (build with 'make build'; needs librdkafka-dev)"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
TMP=$(mktemp -d /tmp/bench-run.XXXXXX)
OWN_BROKER=0
cleanup() {
	if [ "$OWN_BROKER" = 1 ] && [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
		kill -TERM "$BROKER_PID" 2>/dev/null || true
		wait "$BROKER_PID" 2>/dev/null || true
	fi
	if [ "$KEEP" = 1 ]; then echo "run.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

CLK_TCK=$(getconf CLK_TCK)
# CPU seconds (user + system) the broker has used so far; "" if unknown.
broker_cpu_s() {
	[ -n "$BROKER_PID" ] && [ -r "/proc/$BROKER_PID/stat" ] || { echo ""; return; }
	# Fields after the ")" that ends the command name: utime is the 12th,
	# stime the 13th (fields 14 and 15 of proc(5)).
	sed 's/.*) //' "/proc/$BROKER_PID/stat" | awk -v t="$CLK_TCK" '{printf "%.2f", ($12 + $13) / t}'
}
broker_status_kb() { # VmHWM | VmRSS
	[ -n "$BROKER_PID" ] && [ -r "/proc/$BROKER_PID/status" ] || { echo ""; return; }
	awk -v k="$1:" '$1 == k {print $2}' "/proc/$BROKER_PID/status"
}
cpu_delta() { # before after
	if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; else echo "-"; fi
}

# ---- the broker ------------------------------------------------------------

BROKER_CMD=""
if [ -z "$BOOTSTRAP" ]; then
	[ -x "$SLUICE_BIN" ] || die "no broker at $SLUICE_BIN (make build)"
	PORT=$(free_port)
	BOOTSTRAP=127.0.0.1:$PORT
	BROKER_CMD="$SLUICE_BIN serve --listen $BOOTSTRAP --data $TMP/data --flush-interval-ms $FLUSH_INTERVAL_MS --log-level warn"
	mkdir -p "$TMP/data"
	# shellcheck disable=SC2086
	$BROKER_CMD 2>"$TMP/broker.log" &
	BROKER_PID=$!
	OWN_BROKER=1
	for _ in $(seq 1 300); do
		kill -0 "$BROKER_PID" 2>/dev/null || { cat "$TMP/broker.log" >&2; die "broker exited during start-up"; }
		port_open 127.0.0.1 "$PORT" && break
		sleep 0.1
	done
	port_open 127.0.0.1 "$PORT" || die "broker did not open $BOOTSTRAP in 30 s"
	echo "broker: pid $BROKER_PID on $BOOTSTRAP, data $TMP/data"
else
	BROKER_CMD="(already running at $BOOTSTRAP${BROKER_PID:+, pid $BROKER_PID})"
	echo "broker: $BROKER_CMD"
fi

# ---- workloads -------------------------------------------------------------

declare -a ROWS=()      # workload|target|mb_s|msgs_s|p50|p99|p999|cpu_s|rc
declare -a DRIVER_CMDS=()

# run_driver NAME DRIVER-ARGS... — runs the driver, keeps its CSV line in $CSV and
# appends a row to ROWS; returns the driver's exit code.
CSV=""
run_driver() {
	local name=$1; shift
	local cpu0 cpu1 out rc=0
	DRIVER_CMDS+=("$name: bench/driver $*")
	echo
	echo "== $name: bench/driver $*"
	cpu0=$(broker_cpu_s)
	out=$("$DRIVER" "$@" 2>>"$TMP/driver.log") || rc=$?
	cpu1=$(broker_cpu_s)
	echo "$out" | grep -v '^csv:' || true
	CSV=$(echo "$out" | sed -n 's/^csv://p' | tail -n 1)
	if [ "$rc" != 0 ]; then
		echo "   (driver exit code $rc; its log: $TMP/driver.log)"
		tail -n 5 "$TMP/driver.log" | sed 's/^/   /'
	fi
	if [ -n "$CSV" ]; then
		IFS=, read -r _w tgt _b _p mb msgs p50 p99 p999 <<<"$CSV"
	else
		tgt=-; mb=-; msgs=-; p50=-; p99=-; p999=-
	fi
	ROWS+=("$name|$tgt|$mb|$msgs|${p50:--}|${p99:--}|${p999:--}|$(cpu_delta "$cpu0" "$cpu1")|$rc")
	return "$rc"
}

COMMON=(--partitions "$PARTITIONS" --msg-bytes "$MSG_BYTES")
PRODUCE=(--duration-s "$DURATION_S" --acks all --linger-ms "$LINGER_MS")

# (a) max produce throughput (optionally under perf).
PERF_PID=""
if [ "$PERF" = 1 ] && [ -n "$BROKER_PID" ] && command -v perf >/dev/null; then
	perf record -g -o "$TMP/perf.data" -p "$BROKER_PID" -- sleep "$((DURATION_S + 3))" \
		>/dev/null 2>"$TMP/perf.log" &
	PERF_PID=$!
fi
A_MSGS_S=""
if run_driver produce produce --bootstrap "$BOOTSTRAP" --topic bench-produce --label sluice \
	"${COMMON[@]}" "${PRODUCE[@]}"; then
	A_MSGS_S=$(echo "$CSV" | cut -d, -f6)
fi
A_CSV=$CSV
if [ -n "$PERF_PID" ]; then
	wait "$PERF_PID" 2>/dev/null || true
	perf report -i "$TMP/perf.data" --no-children --percent-limit 1 --stdio -g none \
		2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 30 >"$TMP/perf.txt" || true
	echo
	echo "== perf: top of the broker's profile during (a)"
	cat "$TMP/perf.txt"
fi

# (b) latency at half of (a)'s rate.
B_CSV=""
if [ -n "$A_MSGS_S" ] && [ "${A_MSGS_S%.*}" -gt 1 ]; then
	HALF=$(( ${A_MSGS_S%.*} / 2 ))
	run_driver latency produce --bootstrap "$BOOTSTRAP" --topic bench-latency --label sluice \
		"${COMMON[@]}" "${PRODUCE[@]}" --rate "$HALF" || true
	B_CSV=$CSV
else
	echo "run.sh: (a) failed; skipping (b)" >&2
	ROWS+=("latency|sluice|-|-|-|-|-|-|skipped")
fi

# (c) catch-up consume of what (a) wrote.
C_CSV=""
if [ -n "$A_MSGS_S" ]; then
	run_driver consume consume --bootstrap "$BOOTSTRAP" --topic bench-produce --label sluice \
		"${COMMON[@]}" || true
	C_CSV=$CSV
else
	ROWS+=("consume|sluice|-|-|-|-|-|-|skipped")
fi

# Broker footprint, sampled while it still runs.
HWM_KB=$(broker_status_kb VmHWM)
RSS_KB=$(broker_status_kb VmRSS)
CPU_TOTAL=$(broker_cpu_s)
DATA_BYTES=""
[ "$OWN_BROKER" = 1 ] && DATA_BYTES=$(du -sb "$TMP/data" 2>/dev/null | cut -f1)

if [ "$OWN_BROKER" = 1 ]; then
	kill -TERM "$BROKER_PID" 2>/dev/null || true
	BROKER_RC=0
	wait "$BROKER_PID" 2>/dev/null || BROKER_RC=$?
	OWN_BROKER=0
	echo
	echo "broker: stopped (exit code $BROKER_RC)"
fi

# (d) the same as (a) against the mock reference (after the broker is gone,
# so both runs had the machine to themselves).
run_driver mock produce --reference mock --topic bench-produce --label mock \
	"${COMMON[@]}" "${PRODUCE[@]}" || true
D_CSV=$CSV

# ---- report ----------------------------------------------------------------

fmt_mib() { [ -n "$1" ] && awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}' || echo "-"; }
HWM_MIB=$(fmt_mib "$HWM_KB")
RSS_MIB=$(fmt_mib "$RSS_KB")

TABLE="| workload | target | MB/s | msgs/s | p50 ms | p99 ms | p99.9 ms | broker CPU s | exit |
|---|---|---:|---:|---:|---:|---:|---:|---|"
for r in "${ROWS[@]}"; do
	TABLE="$TABLE
| ${r//|/ | } |"
done

field() { echo "$1" | cut -d, -f"$2"; }
ratio="-"
if [ -n "$A_CSV" ] && [ -n "$D_CSV" ]; then
	ratio=$(awk -v a="$(field "$A_CSV" 5)" -v d="$(field "$D_CSV" 5)" 'BEGIN {if (d > 0) printf "%.2f", a / d; else print "-"}')
fi
check() { # label ok-expression-result
	if [ "$2" = 1 ]; then echo "- [x] $1"; else echo "- [ ] $1"; fi
}
A_MB=$(field "$A_CSV" 5); B_P99=$(field "$B_CSV" 8)
ok_mb=$(awk -v v="${A_MB:-0}" -v t=$TARGET_PRODUCE_MB_S 'BEGIN {print (v >= t) ? 1 : 0}')
ok_p99=0; [ -n "$B_P99" ] && ok_p99=$(awk -v v="$B_P99" -v t=$TARGET_P99_MS 'BEGIN {print (v < t) ? 1 : 0}')
ok_rss=0; [ -n "$HWM_KB" ] && ok_rss=$(awk -v v="$HWM_KB" -v t=$TARGET_RSS_MIB 'BEGIN {print (v < t * 1024) ? 1 : 0}')
CHECKS="$(check "produce >= $TARGET_PRODUCE_MB_S MB/s (measured ${A_MB:--})" "$ok_mb")
$(check "p99 at half rate < flush interval + 20 = $TARGET_P99_MS ms (measured ${B_P99:--})" "$ok_p99")
$(check "broker peak RSS < $TARGET_RSS_MIB MiB (measured $HWM_MIB MiB)" "$ok_rss")"

FOOT="Broker: peak RSS (VmHWM) $HWM_MIB MiB, RSS at end $RSS_MIB MiB, CPU ${CPU_TOTAL:--} s in total${DATA_BYTES:+, data dir $((DATA_BYTES / 1048576)) MiB}.
Sluice / mock produce throughput: $ratio."

echo
echo "$TABLE"
echo
echo "$FOOT"
echo "$CHECKS"

MACHINE="$(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/^MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo), Linux $(uname -r); load average at start $LOAD_START"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (working tree had uncommitted changes)" || true)
RDKAFKA=$(pkg-config --modversion rdkafka 2>/dev/null || echo "?")

if [ "$WRITE_RESULTS" = 1 ]; then
	if [ ! -s "$RESULTS" ]; then
		cat >"$RESULTS" <<'EOF'
# Benchmark results

Appended by `bench/run.sh` (`make bench`), newest last. Workloads and
targets: see bench/README.md. MB = 10^6 bytes. Latency is from
`produce()` to the delivery report (acks=all), so it includes the client's
linger time and queueing.
EOF
	fi
	{
		echo
		echo "## $(date -u +%Y-%m-%dT%H:%MZ) — commit $COMMIT$DIRTY"
		echo
		echo "- Machine: $MACHINE"
		echo "- Command: \`$CMDLINE\`"
		echo "- Broker: \`${BROKER_CMD/$TMP/\$TMP}\`"
		echo "- Client: librdkafka $RDKAFKA"
		echo
		echo "$TABLE"
		echo
		echo "$FOOT"
		echo
		echo "$CHECKS"
		echo
		echo "<details><summary>driver commands and CSV</summary>"
		echo
		echo '```'
		for c in "${DRIVER_CMDS[@]}"; do echo "$c"; done
		echo "workload,target,msg_bytes,partitions,mb_s,msgs_s,p50_ms,p99_ms,p999_ms"
		for c in "$A_CSV" "$B_CSV" "$C_CSV" "$D_CSV"; do [ -n "$c" ] && echo "$c"; done
		echo '```'
		if [ -s "$TMP/perf.txt" ]; then
			echo
			echo "perf (broker, during produce):"
			echo
			echo '```'
			cat "$TMP/perf.txt"
			echo '```'
		fi
		echo
		echo "</details>"
	} >>"$RESULTS"
	echo
	echo "appended to $RESULTS"
fi
