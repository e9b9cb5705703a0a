#!/bin/sh
# tests/multinode_pg.sh - three lowrankd nodes on one PostgreSQL and one
# shared state directory; prints TAP.
#
# A reference run on a single SQLite node gives the compressed model for
# a seeded spec. Then three nodes (a, b, c; one worker each) share a
# throwaway PostgreSQL 15 (tests/pg.sh) and $TMP/shared; six jobs with
# that spec are submitted round-robin. Node a is killed with SIGKILL while
# it runs a job, the database is stopped (/readyz and requests answer 503)
# and started again while jobs run, and node b is stopped with SIGTERM while it runs one (then started
# again as b2). Checks: every job ends succeeded, exactly one "job
# finished ... succeeded" log line per job across all nodes (fencing: a
# killed or stopped worker's result is never committed), every result is
# downloadable from every surviving node (c and b2), byte-identical to
# the reference. Skipped (loudly) only without PostgreSQL server binaries.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
. "$top_srcdir/tests/pg.sh"

LOWRANKD="$top_builddir/lowrankd"
D="$top_srcdir/tests/data"
PY="$PYTHON3"
[ -x "$PY" ] || PY=/usr/bin/python3
JOB_WAIT=${LR_TEST_JOB_WAIT:-900}
NJOBS=6
PIDS=""

if ! pg_bindir >/dev/null; then
	echo "1..0 # SKIP PostgreSQL server binaries not found (apt-get install postgresql): THE MULTI-NODE TEST DID NOT RUN"
	exit 0
fi
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
pg_start || { echo "not ok 1 - start a throwaway PostgreSQL"; echo "1..1"; exit 1; }
echo "# PostgreSQL in $PG_DIR"

gone() { ! kill -0 "$1" 2>/dev/null; }
listening_or_dead() { grep -q '"msg":"listening"' "$TMP/$1.log" || gone "$2"; }
ready() { [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$1/readyz")" = 200 ]; }

# node NAME [FLAGS...]: starts lowrankd; sets PID_<NAME> and URL_<NAME>.
node() {
	name=$1
	shift
	: >"$TMP/$name.log"
	"$LOWRANKD" --listen 127.0.0.1:0 --workers 1 --blas-threads 1 \
		--heartbeat-seconds 1 --lease-seconds 4 "$@" 2>>"$TMP/$name.log" &
	pid=$!
	PIDS="$PIDS $pid"
	wait_for 60 listening_or_dead "$name" "$pid"
	port=$(grep '"msg":"listening"' "$TMP/$name.log" | tail -1 |
		sed 's/.*"port":"\([0-9]*\)".*/\1/')
	url="http://127.0.0.1:$port"
	wait_for 60 ready "$url"
	eval "PID_$name=$pid URL_$name=$url"
}

# submit URL: POST /v1/jobs with the seeded slow spec; prints the job id.
SPEC='{"speedup": 2, "samples_per_input": 120, "seed": 7, "objective": "flops"}'
submit() {
	curl -s -m 60 -X POST "$1/v1/jobs" -F "model=@$D/fmnist_vgg.onnx" \
		-F "calibration=@$TMP/c256.npy" -F "spec=$SPEC" -o "$TMP/sub.json" \
		-w '%{http_code}' >"$TMP/sub.status"
	"$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['id'])" "$TMP/sub.json" 2>/dev/null
}
state_of() { # state_of URL ID
	curl -s -m 10 "$1/v1/jobs/$2" |
		"$PY" -c "import json,sys; print(json.load(sys.stdin)['state'])" 2>/dev/null
}
all_succeeded() {
	for j in $JOBS; do
		[ "$(state_of "$URL_c" "$j")" = succeeded ] || return 1
	done
}
started_on() { grep -q '"msg":"job started"' "$TMP/$1.log"; }
running_on() { # a job started on node $1 and not finished there yet
	[ "$(log_count "$TMP/$1.log" '"msg":"job started"')" -gt \
	  "$(log_count "$TMP/$1.log" '"msg":"job finished"')" ]
}

"$PY" "$D/fmnist.py" calib 256 "$TMP/c256.npy"

# --- Reference: one SQLite node ------------------------------------------
node ref --state-dir "$TMP/ref"
REFJOB=$(submit "$URL_ref")
wait_for "$JOB_WAIT" sh -c "[ \"\$(curl -s '$URL_ref/v1/jobs/$REFJOB' | grep -o '\"state\":\"succeeded\"')\" ]"
curl -s -o "$TMP/ref.onnx" "$URL_ref/v1/jobs/$REFJOB/model"
REF=$(sha256sum "$TMP/ref.onnx" | cut -d' ' -f1)
[ -s "$TMP/ref.onnx" ]
ok $? "reference run on one SQLite node: $REF"
kill -TERM "$PID_ref"; wait "$PID_ref" 2>/dev/null

# --- Three nodes on PostgreSQL --------------------------------------------
for n in a b c; do
	node $n --database "$PG_URI" --state-dir "$TMP/shared"
done
ready "$URL_a" && ready "$URL_b" && ready "$URL_c"
ok $? "three nodes on one PostgreSQL and one shared state_dir are ready"

JOBS=""
fails=0
i=0
while [ $i -lt $NJOBS ]; do
	case $((i % 3)) in 0) u=$URL_a ;; 1) u=$URL_b ;; 2) u=$URL_c ;; esac
	j=$(submit "$u")
	[ "$(cat "$TMP/sub.status")" = 202 ] && [ -n "$j" ] || fails=$((fails + 1))
	JOBS="$JOBS $j"
	i=$((i + 1))
done
[ $fails -eq 0 ]
ok $? "$NJOBS jobs submitted round-robin: all 202"

# Every node sees every job (one queue).
seen=0
for j in $JOBS; do
	for u in "$URL_a" "$URL_b" "$URL_c"; do
		[ -n "$(state_of "$u" "$j")" ] && seen=$((seen + 1))
	done
done
[ $seen -eq $((NJOBS * 3)) ]
ok $? "every node answers for every job ($seen of $((NJOBS * 3)))"

wait_for "$JOB_WAIT" running_on a
ok $? "node a runs a job"
kill -9 "$PID_a"
wait "$PID_a" 2>/dev/null
ok 0 "node a killed with SIGKILL mid-job"

pg_halt
ok $? "database stopped while jobs run"
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL_c/readyz")
[ "$code" = 503 ]
ok $? "/readyz answers 503 while the database is down ($code)"
j1=$(echo $JOBS | cut -d' ' -f1)
code=$(curl -s -m 10 -D "$TMP/hdr" -o "$TMP/body" -w '%{http_code}' "$URL_c/v1/jobs/$j1")
[ "$code" = 503 ] && grep -qi '^retry-after: [0-9]' "$TMP/hdr"
ok $? "a status request gets 503 with Retry-After ($code: $(head -c 120 "$TMP/body"))"
sleep 1
pg_restart_start
ok $? "database started again"
ready "$URL_c" || wait_for 30 ready "$URL_c"
ok $? "node c is ready again after the database restart"

wait_for "$JOB_WAIT" running_on b
ok $? "node b runs a job"
kill -TERM "$PID_b"
wait_for 120 gone "$PID_b"
wait "$PID_b"
ok $? "node b stopped with SIGTERM mid-job: exit 0"
node b2 --database "$PG_URI" --state-dir "$TMP/shared"

wait_for "$JOB_WAIT" all_succeeded
ok $? "every job ends succeeded"

# Exactly one committed success per job, across all node logs.
dup=0
for j in $JOBS; do
	n=$(cat "$TMP"/a.log "$TMP"/b.log "$TMP"/c.log "$TMP"/b2.log |
		grep '"msg":"job finished"' | grep "\"job_id\":\"$j\"" |
		grep -c '"state":"succeeded"')
	[ "$n" -eq 1 ] || { dup=$((dup + 1)); echo "# job $j: $n successes logged"; }
done
[ $dup -eq 0 ]
ok $? "each job succeeded exactly once (one committed finish per job)"

bad=0
for j in $JOBS; do
	for u in "$URL_c" "$URL_b2"; do
		curl -s -o "$TMP/dl.onnx" "$u/v1/jobs/$j/model"
		[ "$(sha256sum "$TMP/dl.onnx" | cut -d' ' -f1)" = "$REF" ] || bad=$((bad + 1))
	done
done
[ $bad -eq 0 ]
ok $? "every result downloads from both surviving nodes, byte-identical to the single-node run ($bad mismatches)"

attempts=$(for j in $JOBS; do curl -s "$URL_c/v1/jobs/$j" |
	"$PY" -c "import json,sys; print(json.load(sys.stdin)['attempts'])"; done | tr '\n' ' ')
echo "# attempts per job: $attempts"
grep -h '"level":"error"' "$TMP"/a.log "$TMP"/b.log "$TMP"/c.log "$TMP"/b2.log | cut -c1-200 | sed 's/^/# /' | head -20

for p in $PID_c $PID_b2; do kill -TERM "$p"; done
for p in $PID_c $PID_b2; do wait "$p"; done
ok $? "surviving nodes stop cleanly"
done_testing
