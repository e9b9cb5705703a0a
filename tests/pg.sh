# tests/pg.sh - a throwaway PostgreSQL 15 server for the tests. Source it,
# call pg_start (sets PG_URI, PG_DIR), and make sure pg_stop runs at exit:
# the caller's EXIT trap calls it, and INT/TERM/HUP traps call exit so
# that the EXIT trap runs (dash does not run it on a fatal signal). The server listens only on a unix socket in a fresh
# temporary directory (no TCP port, so parallel test runs cannot collide),
# trusts local connections, and is removed with its data at the end.
# PostgreSQL refuses to run as root: as root the server runs as `nobody`
# (runuser), and the directory is handed to that user.
# fsync=off: these tests check lowrankd's logic, not the server's
# durability, and the machine is shared; a stop/start of the server
# (pg_restart) still goes through a clean shutdown checkpoint.

pg_bindir() {
	for d in ${LR_PG_BINDIR:-} /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
	done
	command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)" && return 0
	return 1
}

pg_as() { # run a server command as the server's user
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u nobody -- "$@"
	else
		"$@"
	fi
}

pg_start() {
	PG_BIN=$(pg_bindir) || return 2
	PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/lrpg.XXXXXX") || return 1
	chmod 700 "$PG_DIR"
	[ "$(id -u)" -eq 0 ] && chown nobody "$PG_DIR"
	pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U lowrank \
		--no-sync -E UTF8 >"$PG_DIR/initdb.log" 2>&1 || {
		cat "$PG_DIR/initdb.log" >&2; return 1; }
	pg_restart_start || return 1
	PG_URI="postgresql://lowrank@/postgres?host=$PG_DIR"
	export PG_URI PG_DIR
}

pg_restart_start() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
		-o "-k $PG_DIR -c listen_addresses='' -c fsync=off -c max_connections=200" \
		start >/dev/null 2>&1 || { cat "$PG_DIR/server.log" >&2; return 1; }
}

# Stops the server (fast shutdown), keeping its data for pg_restart_start.
pg_halt() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1
}

# Stops the server and starts it again on the same data.
pg_restart() {
	pg_halt
	pg_restart_start
}

pg_stop() {
	[ -n "${PG_DIR:-}" ] || return 0
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$PG_DIR"
	PG_DIR=
}
