#!/bin/sh
# cluster.sh — a Sluice cluster on this machine, for trying cluster mode
# (make cluster): one PostgreSQL, one shared file store and three agents.
#
# Run from anywhere, as root or as the owner of the checkout; it works in
# SLUICE_CLUSTER_DIR (default ./cluster in the checkout):
#   pg/         PostgreSQL's files (initdb on the first run; as root, owned
#               by and run as the postgres user, which must be able to reach
#               the folder), its log pg/server.log, password pg/pw;
#               database "sluice" on 127.0.0.1:SLUICE_CLUSTER_PG_PORT
#               (default 15432)
#   objects/    the store every agent shares (--store file:...)
#   agent-N.log agent N's log (N = 1, 2, 3)
# Agent N listens on 127.0.0.1:SLUICE_CLUSTER_PORT+N-1 (default 9092-9094)
# with --node-id N and zone a, a, b. It runs until SIGINT (Ctrl-C) or
# SIGTERM, then stops the agents with SIGTERM (each drains what it holds
# and leaves the registry) and PostgreSQL (fast shutdown). A later run
# reuses the database and the store. An agent that exits meanwhile (kill
# one to watch the others drop it) is reported; the others keep running.
# The broker is ./build/sluice (SLUICE_BIN to use another), built by make
# cluster.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tools/pg-lib.sh"
dir=${SLUICE_CLUSTER_DIR:-$root/cluster}
pg_port=${SLUICE_CLUSTER_PG_PORT:-15432}
port=${SLUICE_CLUSTER_PORT:-9092}
bin=${SLUICE_BIN:-$root/build/sluice}
zones="a a b"

say() { echo "cluster: $*"; }
die() {
	echo "cluster: $*" >&2
	exit 1
}

[ -x "$bin" ] || die "no broker at $bin: run make build-broker"
mkdir -p "$dir/objects"
dir=$(cd "$dir" && pwd)
pg="$dir/pg"

# A cluster already running from this folder.
for n in 1 2 3; do
	f="$dir/agent-$n.pid"
	if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
		die "agent $n already runs (pid $(cat "$f")): stop that cluster first"
	fi
	rm -f "$f"
done

if [ ! -f "$pg/data/PG_VERSION" ]; then
	rm -rf "$pg"
	pg_own "$pg"
	if ! as_pg test -w "$pg"; then
		rm -rf "$pg"
		die "the postgres user cannot write $pg (a parent folder is closed" \
			"to it?): set SLUICE_CLUSTER_DIR to a folder elsewhere"
	fi
	say "initdb into $pg"
	pg_initdb "$pg" || die "initdb failed"
fi
pg_stop "$pg" # a server an interrupted run left behind
say "PostgreSQL on 127.0.0.1:$pg_port (log $pg/server.log)"
pg_start "$pg" "$pg_port" || die "PostgreSQL did not start"

agents=""
stop() {
	trap - INT TERM
	for n in 1 2 3; do
		f="$dir/agent-$n.pid"
		[ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
	done
	for n in 1 2 3; do
		f="$dir/agent-$n.pid"
		if [ -f "$f" ]; then
			pid=$(cat "$f") t=0
			while kill -0 "$pid" 2>/dev/null; do
				t=$((t + 1))
				if [ $t -eq 600 ]; then
					say "agent $n still draining after 60 s: kill -9"
					kill -KILL "$pid" 2>/dev/null || true
				fi
				sleep 0.1
			done
			rm -f "$f"
		fi
	done
	say "agents stopped; stopping PostgreSQL"
	pg_stop "$pg"
	say "stopped"
}
trap stop EXIT
trap 'exit 0' INT TERM

if [ -z "$(as_pg "$(pg_bindir)/psql" -h "$pg" -p "$pg_port" -U postgres -tAc \
	"SELECT 1 FROM pg_database WHERE datname = 'sluice'")" ]; then
	as_pg "$(pg_bindir)/createdb" -h "$pg" -p "$pg_port" -U postgres sluice
	say "created database sluice"
fi
url=$(pg_url "$pg" "$pg_port" sluice)

n=1
bootstrap=""
for z in $zones; do
	p=$((port + n - 1))
	# setsid: Ctrl-C reaches this script, which stops the agents in order.
	setsid "$bin" serve --meta "$url" --store "file:$dir/objects" \
		--listen "127.0.0.1:$p" --node-id "$n" --zone "$z" \
		>>"$dir/agent-$n.log" 2>&1 </dev/null &
	echo $! >"$dir/agent-$n.pid"
	bootstrap="$bootstrap${bootstrap:+,}127.0.0.1:$p"
	n=$((n + 1))
done

# Ready when each agent listens (registration comes before listening).
t=0
for n in 1 2 3; do
	p=$((port + n - 1))
	until python3 -c "import socket; socket.create_connection(('127.0.0.1', $p), 1).close()" 2>/dev/null; do
		kill -0 "$(cat "$dir/agent-$n.pid")" 2>/dev/null ||
			die "agent $n exited at start: $(tail -n 3 "$dir/agent-$n.log")"
		t=$((t + 1))
		[ $t -lt 300 ] || die "agent $n not listening on $p after 30 s (see $dir/agent-$n.log)"
		sleep 0.1
	done
done

cat <<END
cluster: running — 3 agents on one PostgreSQL and one store
  agent 1  127.0.0.1:$port  zone a  log $dir/agent-1.log
  agent 2  127.0.0.1:$((port + 1))  zone a  log $dir/agent-2.log
  agent 3  127.0.0.1:$((port + 2))  zone b  log $dir/agent-3.log
  --meta   $url
  --store  file:$dir/objects

  kcat -b $bootstrap -L
      # 3 brokers; agents lead clients of their zone (client.id sluice_az=...)
  echo hello | kcat -b 127.0.0.1:$port -P -t demo -X client.id=sluice_az=a
      # produce, led by agent 1 or 2
  kcat -b 127.0.0.1:$((port + 2)) -C -t demo -e -X client.id=sluice_az=b
      # consume, led by agent 3

Ctrl-C, or SIGTERM to this script (pid $$), stops the agents, then PostgreSQL.
END

# Wait; report an agent that exits (the others keep serving).
gone=""
while :; do
	sleep 1 &
	wait $! || true
	for n in 1 2 3; do
		case " $gone " in *" $n "*) continue ;; esac
		if ! kill -0 "$(cat "$dir/agent-$n.pid")" 2>/dev/null; then
			say "agent $n exited (see $dir/agent-$n.log); the others keep running"
			gone="$gone $n"
		fi
	done
done
