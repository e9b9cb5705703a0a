#!/bin/sh
# bench/nodes.sh - lowrankd on PostgreSQL: job throughput with 1, 2 and 3
# nodes sharing one database and one state_dir, and status requests per
# second against PostgreSQL next to SQLite. Prints Markdown tables for
# docs/benchmarks.md.
#
#   bench/nodes.sh [BUILD_DIR]      (default: _build)
# Environment: JOBS=24 (jobs per node count), DURATION=10 (seconds per wrk
#   run), CONNECTIONS=16, MODEL=tests/data/tiny_cnn.onnx with
#   CALIB=tests/data/tiny_input.npy (small jobs).
# Starts its own throwaway PostgreSQL 15 (tests/pg.sh). Each node has one
# worker and one BLAS thread; all nodes run on this machine, so with N
# nodes > cores the nodes compete for the same cores: the table shows
# what the queue adds, not what N machines would give.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/_build}
daemon="$build/lowrankd"
njobs=${JOBS:-24}
dur=${DURATION:-10}
conns=${CONNECTIONS:-16}
model=${MODEL:-$here/tests/data/tiny_cnn.onnx}
calib=${CALIB:-$here/tests/data/tiny_input.npy}
py=/usr/bin/python3
[ -x "$daemon" ] || { echo "bench/nodes.sh: build lowrankd first ($daemon)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench/nodes.sh: wrk is not installed" >&2; exit 1; }
. "$here/tests/pg.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrnodes.XXXXXX")
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; pg_stop; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
pg_start || { echo "bench/nodes.sh: cannot start PostgreSQL" >&2; exit 1; }

# node NAME [FLAGS]: starts a node, prints its URL; its pid joins $pids.
node() {
	n=$1; shift
	"$daemon" --listen 127.0.0.1:0 --workers 1 --blas-threads 1 --max-queued-per-tenant 100000 "$@" >/dev/null 2>"$tmp/$n.log" &
	echo $! >"$tmp/$n.pid"
	for _ in $(seq 1 200); do
		port=$(grep '"msg":"listening"' "$tmp/$n.log" 2>/dev/null | tail -1 | sed 's/.*"port":"\([0-9]*\)".*/\1/')
		[ -n "$port" ] && break
		sleep 0.05
	done
	echo "http://127.0.0.1:$port"
}
newdb() { # a fresh database on the server; prints its URI
	ndb=$(($(cat "$tmp/ndb" 2>/dev/null || echo 0) + 1))
	echo "$ndb" >"$tmp/ndb"
	psql -q "$PG_URI" -c "CREATE DATABASE bench$ndb" >/dev/null
	echo "postgresql://lowrank@/bench$ndb?host=$PG_DIR"
}
put() { # put URL FILE: prints the blob id
	curl -sf -T "$2" "$1/v1/blobs" | "$py" -c "import json,sys; print(json.load(sys.stdin)['id'])"
}
submit() { # submit URL MODEL CALIB: prints the job id
	curl -sf -H 'Content-Type: application/json' "$1/v1/jobs" \
		-d "{\"model\":\"$2\",\"calibration\":\"$3\",\"spec\":{\"speedup\":2,\"seed\":1,\"objective\":\"flops\"}}" |
		"$py" -c "import json,sys; print(json.load(sys.stdin)['id'])"
}
count_succeeded() {
	curl -sf "$1/v1/jobs?state=succeeded&limit=1000" |
		"$py" -c "import json,sys; print(len(json.load(sys.stdin)['jobs']))"
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo "CPU: $cpu, $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "### Jobs per hour, N nodes on one PostgreSQL ($njobs jobs of $(basename "$model"), submitted round-robin)"
echo
echo "| nodes | wall s | jobs/hour | load avg |"
echo "|---|---|---|---|"
for n in 1 2 3; do
	uri=$(newdb)
	urls=""
	for k in $(seq 1 "$n"); do
		urls="$urls $(node "n$n-$k" --database "$uri" --state-dir "$tmp/shared$n")"
		pids="$pids $(cat "$tmp/n$n-$k.pid")"
	done
	first=$(echo $urls | cut -d' ' -f1)
	m=$(put "$first" "$model"); c=$(put "$first" "$calib")
	t0=$(date +%s.%N)
	i=0
	while [ $i -lt "$njobs" ]; do
		u=$(echo $urls | cut -d' ' -f$((i % n + 1)))
		submit "$u" "$m" "$c" >/dev/null
		i=$((i + 1))
	done
	end=$(($(date +%s) + 1800))
	until [ "$(count_succeeded "$first")" -ge "$njobs" ]; do
		[ "$(date +%s)" -lt $end ] || { echo "bench/nodes.sh: jobs did not finish" >&2; exit 1; }
		sleep 0.2
	done
	t1=$(date +%s.%N)
	"$py" -c "import sys; w=float(sys.argv[2])-float(sys.argv[1]); print('| %s | %.1f | %.0f | %s |' % (sys.argv[3], w, int(sys.argv[4])*3600/w, sys.argv[5]))" \
		"$t0" "$t1" "$n" "$njobs" "$(cut -d' ' -f1 /proc/loadavg)"
	for k in $(seq 1 "$n"); do kill "$(cat "$tmp/n$n-$k.pid")"; done
	wait 2>/dev/null
done

echo
echo "### Status requests per second: GET /v1/jobs/{id}, wrk -t1 -c$conns -d${dur}s, interleaved"
echo
echo "| database | round | requests/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|---|"
usq=$(node sq --state-dir "$tmp/sq"); pids="$pids $(cat "$tmp/sq.pid")"
upg=$(node pg --database "$(newdb)" --state-dir "$tmp/pgdir"); pids="$pids $(cat "$tmp/pg.pid")"
for u in "$usq" "$upg"; do
	m=$(put "$u" "$model"); c=$(put "$u" "$calib")
	j=$(submit "$u" "$m" "$c")
	until [ "$(count_succeeded "$u")" -ge 1 ]; do sleep 0.2; done
	echo "$j" >"$tmp/job.$(echo "$u" | tr -dc 0-9)"
done
for round in 1 2; do
	for db in sqlite postgresql; do
		if [ $db = sqlite ]; then u=$usq; else u=$upg; fi
		j=$(cat "$tmp/job.$(echo "$u" | tr -dc 0-9)")
		wrk -t1 -c"$conns" -d"${dur}s" --latency "$u/v1/jobs/$j" >"$tmp/wrk.txt" 2>&1
		"$py" - "$db" "$round" "$tmp/wrk.txt" <<'PY'
import re, sys
t = open(sys.argv[3]).read()
def lat(p):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, t, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
err = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print("| %s | %s | %.0f | %.2f | %.2f | %s |" % (sys.argv[1], sys.argv[2], rps, lat("50"), lat("99"),
      err.group(1) if err else "0"))
PY
	done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
