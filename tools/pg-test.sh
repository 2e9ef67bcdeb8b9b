#!/bin/sh
# pg-test.sh start STATE_DIR | stop STATE_DIR — a throwaway PostgreSQL for
# the tests (Debian's postgresql package; no mock).
#
# start: initdb into a fresh /tmp/sluice-pg-XXXXXX owned by the postgres
# user (PostgreSQL refuses to run as root; as another user it runs as
# that user), with password authentication over TCP and a random
# password; pg_ctl start on a free loopback port, the unix socket inside
# the temp dir; writes the server's URL (database "postgres") to
# STATE_DIR/url and prints it. Tests create their own databases there.
# stop: stops that server and removes its temp dir (also after a start
# that failed half-way). SLUICE_PG_FSYNC=off starts it without fsync.
set -eu

usage() {
	echo "usage: $0 start|stop STATE_DIR" >&2
	exit 2
}
[ $# -eq 2 ] || usage
cmd=$1 state=$2

bindir() {
	for d in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
		if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	echo "pg-test.sh: no PostgreSQL server found (initdb, pg_ctl): install the" \
		"postgresql package" >&2
	return 1
}

# Root runs the server as the postgres user; anyone else as themselves.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

stop() {
	[ -f "$state/dir" ] || return 0
	tmp=$(cat "$state/dir")
	if [ -d "$tmp/data" ]; then
		as_pg "$(bindir)/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	case $tmp in /tmp/sluice-pg-*) rm -rf "$tmp" ;; esac
	rm -f "$state/dir" "$state/url"
}

start() {
	bin=$(bindir)
	mkdir -p "$state"
	stop # a server an interrupted run left behind
	tmp=$(mktemp -d /tmp/sluice-pg-XXXXXX)
	echo "$tmp" >"$state/dir"
	pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	printf '%s\n' "$pw" >"$tmp/pw"
	if [ "$(id -u)" = 0 ]; then
		chown -R postgres: "$tmp"
	fi
	chmod 700 "$tmp"
	if ! as_pg "$bin/initdb" -D "$tmp/data" -U postgres -E UTF8 --no-sync \
		--auth-local=trust --auth-host=scram-sha-256 --pwfile="$tmp/pw" \
		>"$tmp/initdb.log" 2>&1; then
		cat "$tmp/initdb.log" >&2
		stop
		exit 1
	fi
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	if ! as_pg "$bin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 \
		-o "-p $port -k $tmp -c listen_addresses=127.0.0.1 -c fsync=${SLUICE_PG_FSYNC:-on} -c max_connections=200" \
		start >/dev/null; then
		cat "$tmp/server.log" >&2 || true
		stop
		exit 1
	fi
	url="postgresql://postgres:$pw@127.0.0.1:$port/postgres"
	printf '%s\n' "$url" >"$state/url"
	echo "$url"
}

case $cmd in
start) start ;;
stop) stop ;;
*) usage ;;
esac
