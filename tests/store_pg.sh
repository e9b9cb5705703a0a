#!/bin/sh
# tests/store_pg.sh - runs the storage test suite against PostgreSQL: starts
# a throwaway server (tests/pg.sh), runs each tests/unit/test_store* binary
# with LR_TEST_DATABASE pointing at it (each test directory gets its own
# database), and reports one TAP line per binary. Skipped only when the
# server binaries are absent, and then says so loudly.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/pg.sh"

if ! pg_bindir >/dev/null; then
	echo "1..0 # SKIP PostgreSQL server binaries not found (apt-get install postgresql): THE POSTGRESQL BACKEND WAS NOT TESTED"
	exit 0
fi
trap 'pg_stop' EXIT
trap 'exit 1' INT TERM HUP
pg_start || { echo "1..1"; echo "not ok 1 - start a throwaway PostgreSQL"; exit 1; }
echo "# PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') in $PG_DIR"
tests="test_store test_store_blobs test_store_hooks test_store_contention test_store_crash"
echo "1..5"
n=0 fail=0
for t in $tests; do
	n=$((n + 1))
	out=$(LR_TEST_DATABASE=$PG_URI "$top_builddir/tests/unit/$t" 2>&1)
	rc=$?
	total=$(printf '%s\n' "$out" | grep -c '^ok ')
	bad=$(printf '%s\n' "$out" | grep -c '^not ok ')
	printf '%s\n' "$out" | grep -E '^(not ok|#)' | sed 's/^/# /'
	if [ $rc -eq 0 ] && [ "$bad" -eq 0 ] && [ "$total" -gt 0 ]; then
		echo "ok $n - $t on PostgreSQL: $total passed"
	else
		echo "not ok $n - $t on PostgreSQL: $total passed, $bad failed (exit $rc)"
		# What the program said besides TAP (sanitizer reports, errors).
		printf '%s\n' "$out" | grep -vE '^(ok|not ok|#|1\.\.)' | head -60 | sed 's/^/# | /'
		fail=$((fail + 1))
	fi
done
pg_stop
[ $fail -eq 0 ]
