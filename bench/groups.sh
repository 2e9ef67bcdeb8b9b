#!/bin/sh
# groups.sh — the consumer group benchmark (bench/groups.py) against a fresh
# broker: once with the default group.initial.rebalance.delay.ms (3000) and
# once with 0; appends a "Consumer groups" section to bench/RESULTS.md.
#
# Usage: BUILD=build ./bench/groups.sh   (SLUICE_BIN overrides the binary)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=${SLUICE_BIN:-$root/${BUILD:-build}/sluice}
py=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d /tmp/sluice-bench-groups-XXXXXX)
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
results="$tmp/results"
: > "$results"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

for delay in 3000 0; do
	rm -rf "$tmp/data"
	"$bin" serve --listen 127.0.0.1:$port --data "$tmp/data" --log-level info \
		--group-initial-rebalance-delay-ms $delay > "$tmp/broker.log" 2>&1 &
	pid=$!
	for _ in $(seq 50); do
		$py -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
		sleep 0.1
	done
	$py "$here/groups.py" --bootstrap 127.0.0.1:$port --delay-ms $delay 2>/dev/null | tail -1 >> "$results"
	kill "$pid"; wait "$pid" || true; pid=
	grep "offset commit requests" "$tmp/broker.log" | sed 's/^.*groups: /  broker: /' >> "$results" || true
done
cat "$results"

commit=$(cd "$root" && git rev-parse --short HEAD)
{
	echo
	echo "## Consumer groups — $(date -u +%Y-%m-%dT%H:%MZ) — commit $commit"
	echo
	echo "- Machine: $(nproc) CPUs, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- Command: \`./bench/groups.sh\` (8 confluent-kafka consumers, 64 partitions, session 10 s, heartbeat 1 s)"
	echo
	echo '```'
	cat "$results"
	echo '```'
} >> "$here/RESULTS.md"
