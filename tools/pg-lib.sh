# pg-lib.sh — shell functions for a local PostgreSQL server of Debian's
# postgresql package, sourced by tools/pg-test.sh (a throwaway server for
# the tests) and tools/cluster.sh (make cluster's server in the checkout).
# Root runs the server as the postgres user (PostgreSQL refuses to run as
# root); anyone else runs it as themselves.

# pg_bindir: the folder of initdb and pg_ctl.
pg_bindir() {
	for d in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
		if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	echo "$0: no PostgreSQL server found (initdb, pg_ctl): install the" \
		"postgresql package" >&2
	return 1
}

# as_pg CMD...: CMD as the user the server runs as.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# pg_own DIR: DIR (made if missing) belongs to that user, mode 700.
pg_own() {
	mkdir -p "$1"
	if [ "$(id -u)" = 0 ]; then
		chown -R postgres: "$1"
	fi
	chmod 700 "$1"
}

# pg_free_port: a free loopback TCP port that no parallel test takes before
# the server binds it (tests/integration/ports.py; $0 is a script in tools/).
pg_free_port() {
	python3 "$(dirname "$0")/../tests/integration/ports.py"
}

# pg_initdb DIR: a new server in DIR/data (DIR owned by pg_own), password
# authentication over TCP with a random password for user postgres, kept in
# DIR/pw; trust over the unix socket. Prints initdb's log on failure.
pg_initdb() {
	pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	printf '%s\n' "$pw" >"$1/pw"
	[ "$(id -u)" != 0 ] || chown postgres: "$1/pw"
	chmod 600 "$1/pw"
	if ! as_pg "$(pg_bindir)/initdb" -D "$1/data" -U postgres -E UTF8 --no-sync \
		--auth-local=trust --auth-host=scram-sha-256 --pwfile="$1/pw" \
		>"$1/initdb.log" 2>&1; then
		cat "$1/initdb.log" >&2
		return 1
	fi
}

# pg_start DIR PORT [OPTIONS]: starts DIR/data on 127.0.0.1:PORT, the unix
# socket in DIR, the log in DIR/server.log; OPTIONS are more postgres -o
# options. Prints the log on failure.
pg_start() {
	if ! as_pg "$(pg_bindir)/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 \
		-o "-p $2 -k $1 -c listen_addresses=127.0.0.1 ${3:-}" start >/dev/null; then
		cat "$1/server.log" >&2 || true
		return 1
	fi
}

# pg_stop DIR [MODE]: stops DIR/data's server if it runs (MODE: fast by
# default, immediate to skip the checkpoint).
pg_stop() {
	[ -d "$1/data" ] || return 0
	as_pg "$(pg_bindir)/pg_ctl" -D "$1/data" -m "${2:-fast}" -w stop >/dev/null 2>&1 || true
}

# pg_url DIR PORT [DB]: the server's URL for user postgres.
pg_url() {
	echo "postgresql://postgres:$(cat "$1/pw")@127.0.0.1:$2/${3:-postgres}"
}
