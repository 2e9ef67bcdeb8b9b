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

. "$(dirname "$0")/pg-lib.sh"

stop() {
	[ -f "$state/dir" ] || return 0
	tmp=$(cat "$state/dir")
	pg_stop "$tmp" immediate
	case $tmp in /tmp/sluice-pg-*) rm -rf "$tmp" ;; esac
	rm -f "$state/dir" "$state/url"
}

start() {
	pg_bindir >/dev/null
	mkdir -p "$state"
	stop # a server an interrupted run left behind
	tmp=$(mktemp -d /tmp/sluice-pg-XXXXXX)
	echo "$tmp" >"$state/dir"
	pg_own "$tmp"
	if ! pg_initdb "$tmp"; then
		stop
		exit 1
	fi
	port=$(pg_free_port)
	if ! pg_start "$tmp" "$port" "-c fsync=${SLUICE_PG_FSYNC:-on} -c max_connections=200"; then
		stop
		exit 1
	fi
	url=$(pg_url "$tmp" "$port")
	printf '%s\n' "$url" >"$state/url"
	echo "$url"
}

case $cmd in
start) start ;;
stop) stop ;;
*) usage ;;
esac
