#!/bin/sh
# bench/http.sh - how responsive lowrankd's API stays while a job solves:
# wrk against GET /v1/jobs/{id}, first with the daemon idle, then while a
# compression job runs on the worker, side by side. Prints a Markdown table
# for docs/benchmarks.md (requests/s, p50, p99, errors).
#
#   bench/http.sh [BUILD_DIR]     (default: _build)
# Environment: DURATION=10 (seconds per wrk run), CONNECTIONS=16,
#   CALIB=2000 (Fashion-MNIST training images for the job).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/_build}
daemon="$build/lowrankd"
dur=${DURATION:-10}
conns=${CONNECTIONS:-16}
ncal=${CALIB:-2000}
py=/usr/bin/python3
[ -x "$daemon" ] || { echo "bench/http.sh: build lowrankd first ($daemon)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench/http.sh: wrk is not installed (scripts/install-deps.sh)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrhttp.XXXXXX")
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

"$py" "$here/tests/data/fmnist.py" calib "$ncal" "$tmp/calib.npy" --seed 0
"$daemon" --state-dir "$tmp/var" --listen 127.0.0.1:0 --workers 1 2>"$tmp/log" &
pid=$!
port=""
for _ in $(seq 1 100); do
	port=$(grep '"msg":"listening"' "$tmp/log" 2>/dev/null | tail -1 | sed 's/.*"port":"\([0-9]*\)".*/\1/')
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { echo "bench/http.sh: lowrankd did not start:" >&2; cat "$tmp/log" >&2; exit 1; }
url="http://127.0.0.1:$port"

submit() { # submit SPEEDUP: prints the job id
	curl -sf -F model=@"$here/tests/data/fmnist_vgg.onnx" -F calibration=@"$tmp/calib.npy" \
		-F spec="{\"speedup\": $1}" "$url/v1/jobs" |
		"$py" -c "import json,sys; print(json.load(sys.stdin)['id'])"
}
state() {
	curl -sf "$url/v1/jobs/$1" | "$py" -c "import json,sys; print(json.load(sys.stdin)['state'])"
}
# run_wrk LABEL ID: one table row.
run_wrk() {
	wrk -t1 -c"$conns" -d"${dur}s" --latency "$url/v1/jobs/$2" >"$tmp/wrk.txt" 2>&1
	"$py" - "$1" "$tmp/wrk.txt" <<'PY'
import re, sys
t = open(sys.argv[2]).read()
def lat(p):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, t, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
err = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
sock = re.search(r"Socket errors: (.*)", t)
print("| %s | %.0f | %.2f | %.2f | %s%s |" % (sys.argv[1], rps, lat("50"), lat("99"),
      err.group(1) if err else "0", " (" + sock.group(1) + ")" if sock else ""))
PY
}

echo "wrk -t1 -c$conns -d${dur}s on GET /v1/jobs/{id}, loopback, 2-core machine; the job: fmnist_vgg, $ncal calibration inputs, one worker (SCHED_IDLE)"
echo
echo "| daemon | requests/s | p50 ms | p99 ms | non-2xx |"
echo "|---|---|---|---|---|"
# A finished job to read while idle.
id=$(submit 2)
while :; do
	s=$(state "$id")
	case $s in succeeded|failed|canceled) break ;; esac
	sleep 0.5
done
run_wrk "idle (job $s)" "$id"
# A job that solves for longer than the wrk run.
id=$(submit 4)
while [ "$(state "$id")" != running ]; do sleep 0.2; done
run_wrk "while a job solves" "$id"
s=$(state "$id")
echo
echo "job state after the run: $s"
