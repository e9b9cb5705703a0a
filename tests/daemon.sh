#!/bin/sh
# tests/daemon.sh - the real lowrankd binary, driven with curl; prints TAP.
#
# Starts lowrankd on a free port (listen port 0, read back from its log)
# with a temporary state dir and checks, in order: the command line and
# config layers; health and the OpenAPI document (every route listed); a
# whole job on tiny_cnn (upload -> progress -> success -> download ->
# ONNX Runtime runs it and agrees with the report); downloads (ETag,
# Range, 304, 416); blobs and the JSON form; a bad-input corpus where each
# case is a 4xx problem and the daemon keeps serving; limits (413 before
# the body, duplicate Content-Length, chunked overrun); two tenants
# isolated on every endpoint; the per-tenant queue limit; cancel; a
# graceful stop that requeues the running job; kill -9 mid-job and
# restart -> the job completes. Takes about a minute.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

LOWRANKD="$top_builddir/lowrankd"
D="$top_srcdir/tests/data"
PY="$PYTHON3"
[ -x "$PY" ] || PY=/usr/bin/python3
PIDS=""
# The workers run at SCHED_IDLE (daemon/worker.c): on a busy machine they
# get only idle CPU, and a job that takes 10 s alone can take minutes. A
# wait for a job's state is therefore bounded by this many seconds.
JOB_WAIT=${LR_TEST_JOB_WAIT:-900}
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT

# Conditions for wait_for (tests/lib.sh).
gone() { ! kill -0 "$1" 2>/dev/null; }
more_lines() { [ "$(log_count "$1" "$2")" -gt "$3" ]; }
listening_or_dead() { more_lines "$TMP/$name/log" '"msg":"listening"' "$n0" || gone "$PID"; }
ready() { [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ]; }
nonempty_dir() { [ -n "$(ls -A "$1" 2>/dev/null)" ]; }
empty_dir() { [ -z "$(ls -A "$1" 2>/dev/null)" ]; }

# start NAME [FLAGS...]: runs lowrankd with state in $TMP/NAME/var; sets
# URL and PID, and returns once /readyz answers 200 (at most 60 s). The
# log accumulates in $TMP/NAME/log across restarts.
start() {
	name=$1
	shift
	mkdir -p "$TMP/$name"
	n0=$(log_count "$TMP/$name/log" '"msg":"listening"')
	"$LOWRANKD" --state-dir "$TMP/$name/var" --listen 127.0.0.1:0 --workers 1 \
		--heartbeat-seconds 1 --lease-seconds 4 "$@" 2>>"$TMP/$name/log" &
	PID=$!
	PIDS="$PIDS $PID"
	port=""
	wait_for 60 listening_or_dead
	if more_lines "$TMP/$name/log" '"msg":"listening"' "$n0"; then
		port=$(grep '"msg":"listening"' "$TMP/$name/log" | tail -1 |
			sed 's/.*"port":"\([0-9]*\)".*/\1/')
	fi
	URL="http://127.0.0.1:$port"
	[ -n "$port" ] && wait_for 60 ready
}

# stop_graceful: SIGTERM and wait (at most 60 s) for the exit status.
stop_graceful() {
	kill -TERM "$PID"
	wait_for 60 gone "$PID" || kill -9 "$PID"
	wait "$PID"
}

# req METHOD PATH [CURL ARGS...]: status code on stdout, body in $TMP/body,
# headers in $TMP/hdr.
req() {
	m=$1
	p=$2
	shift 2
	curl -s -X "$m" -D "$TMP/hdr" -o "$TMP/body" -w '%{http_code}' "$@" "$URL$p"
}

# jq_ FILE EXPR: prints a Python expression over the JSON in FILE (as j).
jq_() {
	"$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null
}

# is_problem STATUS DESCRIPTION: the last answer has that status and is a
# problem+json naming it, with a detail that leaks no path.
is_problem() {
	want=$1
	desc=$2
	got=$(cat "$TMP/status")
	if [ "$got" = "$want" ] && grep -qi '^content-type: application/problem+json' "$TMP/hdr" &&
		[ "$(jq_ "$TMP/body" "j['status']")" = "$want" ] &&
		! grep -q "$TMP\|/var/\|blobs/" "$TMP/body"; then
		ok 0 "$desc -> $want problem"
	else
		ok 1 "$desc -> $want problem (got $got: $(head -c 300 "$TMP/body"))"
	fi
}

# job_is ID STATE [TOKEN]: GET /v1/jobs/ID into $TMP/job.json; true when
# the job is in STATE.
job_is() {
	curl -s -m 10 ${3:+-H "Authorization: Bearer $3"} -o "$TMP/job.json" "$URL/v1/jobs/$1"
	[ "$(jq_ "$TMP/job.json" "j['state']")" = "$2" ]
}

# wait_state ID STATE SECONDS [TOKEN]: polls GET /v1/jobs/ID until the job
# is in STATE; fails after SECONDS.
wait_state() {
	wait_for "$3" job_is "$1" "$2" ${4:+"$4"}
}

serving() {
	[ "$(curl -s -m 5 "$URL/livez")" = ok ]
}

# put_big on|off FILE [CURL ARGS]: PUT FILE to /v1/blobs with Expect:
# 100-continue forced on (curl then waits up to 60 s, not its usual 1 s,
# for the answer before it sends the body) or off (curl sends the body at
# once). Status in $TMP/status, headers and body as req(), and the body
# bytes curl sent in $TMP/sent.
put_big() {
	if [ "$1" = on ]; then
		e1='Expect: 100-continue' e2=--expect100-timeout e3=60
	else
		e1='Expect:' e2=-s e3=-s
	fi
	f=$2
	shift 2
	curl -s -m 120 -D "$TMP/hdr" -o "$TMP/body" -w '%{http_code} %{size_upload}\n' \
		-H "$e1" $e2 $e3 -T "$f" "$@" "$URL/v1/blobs" >"$TMP/put.out"
	cut -d' ' -f1 <"$TMP/put.out" >"$TMP/status"
	cut -d' ' -f2 <"$TMP/put.out" >"$TMP/sent"
}

# is_early_problem on|off STATUS DESCRIPTION BYTES: after put_big, the
# answer is that problem; with Expect on it came instead of 100 Continue
# and no body was sent, with it off after all BYTES of the body.
is_early_problem() {
	is_problem "$2" "$3 (Expect: 100-continue $1)"
	if [ "$1" = on ]; then
		! grep -qi '^HTTP/1.1 100' "$TMP/hdr" && [ "$(cat "$TMP/sent")" = 0 ]
		ok $? "... answered instead of 100 Continue: curl sent none of the body ($(cat "$TMP/sent") bytes)"
	else
		[ "$(cat "$TMP/sent")" = "$4" ]
		ok $? "... answered after the whole body, which was read ($(cat "$TMP/sent") of $4 bytes)"
	fi
}

has_progress() { # has_progress ID: the job resource shows progress
	curl -s -m 10 -o "$TMP/job.json" "$URL/v1/jobs/$1"
	[ "$(jq_ "$TMP/job.json" "'stage' in j.get('progress', {})")" = True ]
}

submit() { # submit MODEL CALIB SPEC [CURL ARGS]: POST /v1/jobs; sets JOB
	m=$1 c=$2 s=$3
	shift 3
	req POST /v1/jobs -F "model=@$m" -F "calibration=@$c" -F "spec=$s" "$@" >"$TMP/status"
	JOB=$(jq_ "$TMP/body" "j['id']")
}

# --- Command line and configuration ----------------------------------
"$LOWRANKD" --version | grep -q "^lowrankd "
ok $? "--version"
"$LOWRANKD" --help | grep -q -- "--max-upload-bytes"
ok $? "--help lists every key as a flag"
"$LOWRANKD" --check-config --workers 3 | grep -q "^workers = 3$"
ok $? "--check-config prints the effective configuration"
printf 'workers = 2\nlisten = 127.0.0.1:9\n' >"$TMP/a.conf"
out=$(LOWRANKD_WORKERS=5 "$LOWRANKD" --config "$TMP/a.conf" --check-config)
echo "$out" | grep -q "^workers = 5$" && echo "$out" | grep -q "^listen = 127.0.0.1:9$"
ok $? "precedence: the environment beats the file"
LOWRANKD_WORKERS=5 "$LOWRANKD" --config "$TMP/a.conf" --check-config --workers=7 | grep -q "^workers = 7$"
ok $? "precedence: flags beat the environment"
printf 'workers = 2\nwrokers = 2\n' >"$TMP/b.conf"
expect_fail "b.conf:2: unknown key 'wrokers'" "a typo in the file is an error with file:line" \
	"$LOWRANKD" --config "$TMP/b.conf" --check-config
expect_fail "tokens_file must be set" "a non-loopback listen without tokens is refused" \
	"$LOWRANKD" --listen 0.0.0.0:8080 --check-config
"$LOWRANKD" --config "$top_srcdir/etc/lowrankd.conf" --check-config >/dev/null
ok $? "etc/lowrankd.conf passes --check-config"

# --- The systemd unit ---------------------------------------------------
# systemd (scripts/install-deps.sh test installs it) is a test dependency:
# without systemd-analyze these checks fail rather than vanish.
if ! command -v systemd-analyze >/dev/null 2>&1; then
	ok 1 "systemd-analyze is installed (package systemd)"
else
	sed -e "s|@sbindir@|$(cd "$top_builddir" && pwd)|g" -e "s|@sysconfdir@|/etc|g" \
		"$top_srcdir/systemd/lowrankd.service.in" >"$TMP/lowrankd.service"
	systemd-analyze verify "$TMP/lowrankd.service" >"$TMP/verify.out" 2>&1
	ok $? "systemd-analyze verify accepts the unit ($(head -c 200 "$TMP/verify.out"))"
	systemd-analyze security --offline=true --threshold=20 "$TMP/lowrankd.service" >"$TMP/sec.out" 2>&1
	ok $? "systemd-analyze security rates the unit $(grep -o 'exposure level.*' "$TMP/sec.out")"
fi

# --- Health, OpenAPI --------------------------------------------------
start main --max-upload-bytes 4000000 --job-memory-mib 1024
[ -n "$port" ]
ok $? "lowrankd starts on a free port ($port)"
grep '"msg":"listening"' "$TMP/main/log" | tail -1 |
	grep -q 'connections=256 per_ip=64 timeout_s=30 epoll=1 http_threads=4'
ok $? "libmicrohttpd runs with explicit limits, read back and logged (H2)"
[ "$(req GET /livez)" = 200 ] && [ "$(req GET /readyz)" = 200 ]
ok $? "/livez and /readyz answer 200"
grep -qi '^x-request-id: [0-9a-f]\{32\}' "$TMP/hdr"
ok $? "answers carry X-Request-Id"
[ "$(req GET /v1/openapi.yaml)" = 200 ]
missing=$("$PY" - "$TMP/body" <<'EOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
assert doc["openapi"].startswith("3.1")
routes = {"/v1/jobs": {"get", "post"}, "/v1/jobs/{id}": {"get", "delete"},
          "/v1/jobs/{id}:cancel": {"post"}, "/v1/jobs/{id}/events": {"get"},
          "/v1/jobs/{id}/model": {"get"}, "/v1/jobs/{id}/report": {"get"},
          "/v1/blobs": {"put"}, "/livez": {"get"}, "/readyz": {"get"},
          "/metrics": {"get"}, "/v1/openapi.yaml": {"get"}}
for path, methods in routes.items():
    for m in sorted(methods - set(doc["paths"].get(path, {}))):
        print("%s %s" % (m.upper(), path))
EOF
)
[ $? -eq 0 ] && [ -z "$missing" ]
ok $? "/v1/openapi.yaml parses and documents every route (missing: ${missing:-none})"

# --- A whole job -------------------------------------------------------
submit "$D/tiny_cnn.onnx" "$D/tiny_input.npy" '{"speedup": 2, "objective": "flops", "seed": 1, "memory_budget_mib": 256}'
[ "$(cat "$TMP/status")" = 202 ] && grep -qi "^location: /v1/jobs/$JOB" "$TMP/hdr"
ok $? "POST /v1/jobs (multipart, curl -F) -> 202 + Location"
timeout "$JOB_WAIT" curl -sN "$URL/v1/jobs/$JOB/events" >"$TMP/events" 2>/dev/null
grep -q '^event: done' "$TMP/events" && grep -q '"state":"succeeded"' "$TMP/events"
ok $? "the event stream reports progress and ends with the final state"
wait_state "$JOB" succeeded "$JOB_WAIT"
ok $? "the job succeeds"
[ "$(jq_ "$TMP/job.json" "j['done'] and 'error' not in j and j['response']['summary']['theoretical_speedup'] > 1.5")" = True ]
ok $? "the job resource: done, a response with the report's summary, no error"
[ "$(req GET "/v1/jobs/$JOB/model")" = 200 ] && cp "$TMP/body" "$TMP/out.onnx"
etag=$(grep -i '^etag:' "$TMP/hdr" | tr -d '\r' | sed 's/^[^"]*"\([0-9a-f]*\)".*/\1/')
[ "$etag" = "$(sha256sum "$TMP/out.onnx" | cut -d' ' -f1)" ] &&
	grep -qi '^content-disposition: attachment; filename=".*\.onnx"' "$TMP/hdr"
ok $? "the model downloads with its SHA-256 as a strong ETag and a file name"
[ "$(req GET "/v1/jobs/$JOB/report")" = 200 ] && cp "$TMP/body" "$TMP/report.json"
[ "$(jq_ "$TMP/report.json" "j['holdout']['relative_output_error'] >= 0")" = True ]
ok $? "the report downloads as JSON"
[ "$(jq_ "$TMP/report.json" "j['memory_budget_bytes']")" = $((256 << 20)) ]
ok $? "the spec's memory_budget_mib is the solver's budget ($(jq_ "$TMP/report.json" "j.get('memory_budget_bytes')"))"
if [ -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
	"$NODE" "$ORT_DIR/ort_run.js" run "$TMP/out.onnx" "$D/tiny_input.npy" "$TMP/ort_new.npy" >/dev/null &&
		"$NODE" "$ORT_DIR/ort_run.js" run "$D/tiny_cnn.onnx" "$D/tiny_input.npy" "$TMP/ort_old.npy" >/dev/null
	ok $? "ONNX Runtime runs the compressed model"
	"$PY" - "$TMP/ort_new.npy" "$TMP/ort_old.npy" "$TMP/report.json" <<'EOF'
import json, sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
rep = json.load(open(sys.argv[3]))
err = float(np.linalg.norm(a - b) / np.linalg.norm(b))
claim = rep["holdout"]["relative_output_error"]
print("# ORT relative output error %.4f, report's held-out claim %.4f" % (err, claim))
assert a.shape == b.shape
# The report measures held-out inputs only; over all inputs the error
# must be of the same order, not worse.
assert err <= max(3 * claim, 0.05), (err, claim)
agree = float(np.mean(a.argmax(1) == b.argmax(1)))
assert agree >= rep["holdout"]["top1_agreement"] - 0.5, agree
EOF
	ok $? "its outputs match the original's as closely as the report claims"
else
	ok 1 "onnxruntime-node is not installed (scripts/install-deps.sh; or set LR_ORT_DIR)"
fi

# --- Downloads: conditional and ranges --------------------------------
size=$(wc -c <"$TMP/out.onnx")
[ "$(req GET "/v1/jobs/$JOB/model" -H 'Range: bytes=0-99')" = 206 ] &&
	grep -qi "^content-range: bytes 0-99/$size" "$TMP/hdr" && [ "$(wc -c <"$TMP/body")" = 100 ] &&
	cmp -s "$TMP/body" "$(head -c 100 "$TMP/out.onnx" >"$TMP/h100"; echo "$TMP/h100")"
ok $? "Range bytes=0-99 -> 206 with the first 100 bytes"
[ "$(req GET "/v1/jobs/$JOB/model" -H 'Range: bytes=-10')" = 206 ] && [ "$(wc -c <"$TMP/body")" = 10 ]
ok $? "Range bytes=-10 -> 206 with the last 10 bytes"
[ "$(req GET "/v1/jobs/$JOB/model" -H "Range: bytes=$size-")" = 416 ] &&
	grep -qi "^content-range: bytes \*/$size" "$TMP/hdr"
ok $? "a range past the end -> 416 with Content-Range: bytes */size"
[ "$(req GET "/v1/jobs/$JOB/model" -H "If-None-Match: \"$etag\"")" = 304 ]
ok $? "If-None-Match with the ETag -> 304"
[ "$(req GET "/v1/jobs/$JOB/model" -H 'Range: bytes=0-1' -H 'If-Range: "other"')" = 200 ]
ok $? "If-Range with another ETag -> the whole model (200)"

# --- The default objective, measured time, through the daemon ----------
# The cost model's timing cache lives in the state_dir: a second identical
# job measures nothing (calibration trials included) and gives the same
# model bytes.
"$PY" "$D/fmnist.py" calib 64 "$TMP/c64.npy" --seed 2
tj=""
for i in 1 2; do
	submit "$D/fmnist_vgg.onnx" "$TMP/c64.npy" '{"speedup": 1.2, "seed": 1}'
	wait_state "$JOB" succeeded "$JOB_WAIT" && [ "$(req GET "/v1/jobs/$JOB/report")" = 200 ] &&
		cp "$TMP/body" "$TMP/treport$i.json" && [ "$(req GET "/v1/jobs/$JOB/model")" = 200 ] &&
		cp "$TMP/body" "$TMP/tmodel$i.onnx"
	tj="$tj$?"
done
[ "$tj" = 00 ] && "$PY" - "$TMP/treport1.json" "$TMP/treport2.json" >"$TMP/tcheck" 2>&1 <<'EOF'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
print(json.dumps(a["cost_model"]), json.dumps(b["cost_model"]))
assert a["objective"] == "time" and a["cost_model"]["measured"] > 0, a["cost_model"]
cal = a["selection"]["calibration"]
assert cal and (cal[0]["target"] == 1.2 or cal[0]["target"] < 1.2 <= cal[0]["trial_speedup"]) and sum(c["kept"] for c in cal) == 1, cal
assert "calibrating" in a["stage_seconds"], a["stage_seconds"]
assert b["cost_model"]["measured"] == 0 and b["cost_model"]["from_cache"] > 0, b["cost_model"]
# the report goes to API clients: it names the cache, not the server's path
assert not a["cost_model"]["timing_cache"].startswith("/"), a["cost_model"]
EOF
rc=$?
[ $rc -eq 0 ] || sed 's/^/# /' "$TMP/tcheck"
[ "$tj" = 00 ] && [ $rc -eq 0 ] && cmp -s "$TMP/tmodel1.onnx" "$TMP/tmodel2.onnx"
ok $? "objective time (the default) through the daemon: measured, calibrated, no server path in the report; the same job again measures nothing and gives the same model"

# --- Blobs and the JSON form -------------------------------------------
req PUT /v1/blobs --data-binary "@$D/tiny_cnn.onnx" -H 'Content-Type: application/octet-stream' >"$TMP/status"
mblob=$(jq_ "$TMP/body" "j['sha256']")
[ "$(cat "$TMP/status")" = 201 ] && [ "$mblob" = "$(sha256sum "$D/tiny_cnn.onnx" | cut -d' ' -f1)" ]
ok $? "PUT /v1/blobs -> 201 with the SHA-256 as id"
dig=$("$PY" -c "import base64,hashlib,sys; print(base64.b64encode(hashlib.sha256(open(sys.argv[1],'rb').read()).digest()).decode())" "$D/tiny_input.npy")
[ "$(req PUT /v1/blobs --data-binary "@$D/tiny_input.npy" -H "Repr-Digest: sha-256=:$dig:")" = 201 ]
ok $? "Repr-Digest that matches -> 201"
cblob=$(jq_ "$TMP/body" "j['sha256']")
req PUT /v1/blobs --data-binary "@$D/tiny_cnn.onnx" -H "Repr-Digest: sha-256=:$dig:" >"$TMP/status"
is_problem 400 "Repr-Digest that does not match"
req POST /v1/jobs -H 'Content-Type: application/json' \
	-d "{\"model\":\"$mblob\",\"calibration\":\"$cblob\",\"spec\":{\"ranks\":{\"/features/features.3/Conv\":8}}}" >"$TMP/status"
[ "$(cat "$TMP/status")" = 202 ]
ok $? "POST /v1/jobs with JSON naming blobs -> 202 ($(head -c 200 "$TMP/body"))"
JOB2=$(jq_ "$TMP/body" "j['id']")

# --- Bad input: each a 4xx problem, and the daemon keeps serving -------
head -c 3000 /dev/urandom >"$TMP/random.bin"
head -c 5000 "$D/tiny_cnn.onnx" >"$TMP/trunc.onnx"
"$PY" - "$TMP" "$D/tiny_cnn.onnx" <<'EOF'
import sys
import numpy as np
t = sys.argv[1]
np.save(t + "/wrong_shape.npy", np.zeros((2, 3, 16, 16), np.float32))
np.save(t + "/wrong_rank.npy", np.zeros((3, 32, 32), np.float32))
x = np.zeros((2, 3, 32, 32), np.float32); x[1, 2, 3, 4] = np.nan
np.save(t + "/nan.npy", x)
np.save(t + "/int.npy", np.zeros((2, 3, 32, 32), np.int64))
np.save(t + "/obj.npy", np.array([{}, 1], dtype=object), allow_pickle=True)
import onnx
from onnx import helper, TensorProto
g = helper.make_graph([helper.make_node("RandomUniformLike", ["x"], ["y"])], "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), t + "/unsup.onnx")
# Weights in an external file that the upload cannot carry (and must
# never be looked up next to the stored blob).
m = onnx.load(sys.argv[2])
onnx.save(m, t + "/external.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
          location="weights.bin", size_threshold=0)
# A header that declares far more data than the file holds.
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 3, 32, 32), }"
hdr += " " * (118 - len(hdr)) + "\n"
open(t + "/huge_shape.npy", "wb").write(b"\x93NUMPY\x01\x00" + bytes([len(hdr), 0]) + hdr.encode() + b"\0" * 64)
EOF
good_m="$D/tiny_cnn.onnx"
good_c="$D/tiny_input.npy"
for case in \
	"422 random bytes as the model|$TMP/random.bin|$good_c|{}" \
	"422 truncated ONNX|$TMP/trunc.onnx|$good_c|{}" \
	"422 unsupported operator|$TMP/unsup.onnx|$good_c|{}" \
	"422 a model whose weights are in an external file|$TMP/external.onnx|$good_c|{}" \
	"422 calibration declaring a huge shape|$good_m|$TMP/huge_shape.npy|{}" \
	"422 calibration of the wrong shape|$good_m|$TMP/wrong_shape.npy|{}" \
	"422 calibration of the wrong rank|$good_m|$TMP/wrong_rank.npy|{}" \
	"422 calibration with NaN|$good_m|$TMP/nan.npy|{}" \
	"422 calibration with an integer dtype|$good_m|$TMP/int.npy|{}" \
	"422 calibration that is an object array (pickle)|$good_m|$TMP/obj.npy|{}" \
	"422 random bytes as the calibration|$good_m|$TMP/random.bin|{}" \
	"422 spec that is not JSON|$good_m|$good_c|{speedup: 4" \
	"422 spec with an unknown member|$good_m|$good_c|{\"speed\": 4}" \
	"422 spec with a wrong type|$good_m|$good_c|{\"speedup\": \"4\"}" \
	"422 spec naming a layer the model lacks|$good_m|$good_c|{\"ranks\": {\"conv9\": 4}}" \
	"422 spec asking more memory than job_memory_mib|$good_m|$good_c|{\"memory_budget_mib\": 2048}"; do
	want=${case%% *}
	rest=${case#* }
	desc=${rest%%|*}
	rest=${rest#*|}
	m=${rest%%|*}
	rest=${rest#*|}
	c=${rest%%|*}
	s=${rest#*|}
	submit "$m" "$c" "$s"
	is_problem "$want" "$desc"
done
grep -q '"detail":"speed: unknown member' "$TMP/body" 2>/dev/null ||
	submit "$good_m" "$good_c" '{"speed": 4}'
grep -q 'speed: unknown member' "$TMP/body"
ok $? "the spec problem names the member"
req POST /v1/jobs -F "model=@$good_m" >"$TMP/status"
is_problem 400 "multipart without the calibration"
req POST /v1/jobs -F "model=@$good_m" -F "calibration=@$good_c" -F "extra=1" >"$TMP/status"
is_problem 400 "multipart with an unknown field"
req POST /v1/jobs -H 'Content-Type: multipart/form-data; boundary=abc' --data-binary 'garbage without parts' >"$TMP/status"
is_problem 400 "malformed multipart"
req POST /v1/jobs -H 'Content-Type: multipart/form-data' --data-binary 'x' >"$TMP/status"
is_problem 400 "multipart without a boundary"
req POST /v1/jobs -H 'Content-Type: text/plain' --data-binary 'x' >"$TMP/status"
is_problem 415 "an unsupported media type"
req POST /v1/jobs -H 'Content-Type: application/json' -d '{"model": "../../etc/passwd", "calibration": "x"}' >"$TMP/status"
is_problem 400 "JSON naming a path instead of a blob id"
req POST /v1/jobs -H 'Content-Type: application/json' -d "{\"model\":\"$mblob\",\"calibration\":\"$cblob\"} trailing" >"$TMP/status"
is_problem 400 "a JSON body with trailing garbage"
req POST /v1/jobs -H 'Content-Type: application/json' -d "{\"model\":\"$(printf '%064d' 0)\",\"calibration\":\"$cblob\"}" >"$TMP/status"
is_problem 422 "JSON naming a blob that does not exist"
for p in "/v1/jobs/../../etc/passwd" "/v1/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd" \
	"/v1/jobs/$(printf '%032d' 0)" "/v1/jobs/${JOB}x" "/v1/jobs/$(echo "$JOB" | tr a-f A-F)/model" \
	"/v1/jobs/$JOB%00/model" "/v1/jobs/$JOB/../../../etc/passwd" "/v1/jobs/$(head -c 3000 /dev/zero | tr '\0' a)"; do
	req GET "$p" --path-as-is >"$TMP/status"
	is_problem 404 "path-like or unknown id $(echo "$p" | cut -c1-60)"
done
req DELETE /v1/blobs >"$TMP/status"
is_problem 405 "a wrong method"
grep -qi '^allow: PUT' "$TMP/hdr"
ok $? "405 says which methods are allowed"
req GET /v1/jobs?state=sleeping >"$TMP/status"
is_problem 400 "an unknown state filter"
req GET "/v1/jobs?page_token=bogus" >"$TMP/status"
is_problem 400 "a forged page token"
serving
ok $? "the daemon still serves after the bad-input corpus"

# --- Limits before the body, smuggling, chunked overrun ---------------
"$PY" - "$port" >"$TMP/raw.out" <<'EOF'
import socket, sys
port = int(sys.argv[1])
def ask(head, body=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(head + body)
    data = b""
    try:
        while not data.endswith(b"}") and len(data) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    s.close()
    return data.split(b"\r\n", 1)[0].decode()
print("big", ask(b"PUT /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000000\r\nExpect: 100-continue\r\n\r\n"))
print("dupcl", ask(b"PUT /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", b"abc"))
print("clte", ask(b"PUT /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", b"3\r\nabc\r\n0\r\n\r\n"))
EOF
grep -q "^big HTTP/1.1 413" "$TMP/raw.out"
ok $? "Content-Length over max_upload_bytes -> 413 before the body is sent"
grep -q "^dupcl HTTP/1.1 400" "$TMP/raw.out"
ok $? "duplicate Content-Length -> 400"
grep -q "^clte HTTP/1.1 400" "$TMP/raw.out"
ok $? "Content-Length with Transfer-Encoding -> 400"
# An answer given before the body (here 413) must reach a client that is
# still sending it: 8 MB is more than the socket buffers hold.
head -c 8000000 /dev/urandom >"$TMP/8m.bin"
for e in on off; do
	put_big $e "$TMP/8m.bin"
	is_early_problem $e 413 "an 8 MB body over max_upload_bytes" 8000000
done
head -c 5000000 /dev/zero | curl -s -o /dev/null -T - -X PUT -H 'Transfer-Encoding: chunked' "$URL/v1/blobs"
# The server removes the temporary file when it completes the request,
# after curl has seen the connection drop.
wait_for 30 empty_dir "$TMP/main/var/tmp"
ok $? "a chunked body past the cap is cut off and leaves no temporary file"
serving
ok $? "the daemon still serves after the limit cases"
"$PY" "$top_srcdir/tests/daemon_slowloris.py" "$port" 600 100 >"$TMP/slow.out" 2>&1
ok $? "slowloris from 127.0.0.2: $(cat "$TMP/slow.out")"

# --- Metrics -------------------------------------------------------------
[ "$(req GET /metrics)" = 200 ] && grep -q '^lowrankd_jobs{state="succeeded"} [1-9]' "$TMP/body" &&
	grep -q '^lowrankd_http_requests_total{code="422"} [1-9]' "$TMP/body" &&
	grep -q '^lowrankd_job_duration_seconds_bucket{le="+Inf"} [1-9]' "$TMP/body" &&
	grep -q '^lowrankd_upload_bytes_total [1-9]' "$TMP/body" && [ "$(tail -c 1 "$TMP/body" | od -An -c | tr -d ' ')" = '\n' ]
ok $? "/metrics: jobs by state, requests by code, duration histogram, bytes uploaded"

# --- Concurrent submissions ---------------------------------------------
for i in 1 2 3 4; do
	curl -s -o "$TMP/conc$i.json" -w '%{http_code}' -F "model=@$D/tiny_cnn.onnx" \
		-F "calibration=@$D/tiny_input.npy" -F "spec={\"speedup\": 2, \"objective\": \"flops\", \"seed\": $i}" \
		"$URL/v1/jobs" >"$TMP/conc$i.code" &
	CPIDS="${CPIDS:-} $!"
done
for p in $CPIDS; do wait "$p"; done
ids=""
for i in 1 2 3 4; do
	[ "$(cat "$TMP/conc$i.code")" = 202 ] && ids="$ids $(jq_ "$TMP/conc$i.json" "j['id']")"
done
[ "$(echo $ids | wc -w)" = 4 ] && [ "$(echo $ids | tr ' ' '\n' | sort -u | wc -l)" = 4 ]
ok $? "4 concurrent submissions: 4 x 202 with distinct ids"
all=0
for id in $ids; do wait_state "$id" succeeded "$JOB_WAIT" || all=1; done
ok $all "all 4 concurrent jobs succeed"

# --- Listing: filter and pages ---------------------------------------------
"$PY" - "$URL" >"$TMP/pages.out" 2>&1 <<'EOF'
import json, sys, urllib.request, urllib.error
url = sys.argv[1]
def get(q):
    with urllib.request.urlopen(url + "/v1/jobs" + q) as r:
        return json.load(r), r.headers.get("Link")
everything, _ = get("?page_size=1000")
ids, tok, pages = [], "", 0
while True:
    page, link = get("?page_size=2" + ("&page_token=" + tok if tok else ""))
    assert len(page["jobs"]) <= 2
    ids += [j["id"] for j in page["jobs"]]
    tok = page["next_page_token"]
    pages += 1
    assert bool(tok) == bool(link), (tok, link)
    if not tok:
        break
assert ids == [j["id"] for j in everything["jobs"]], "pages differ from one big page"
assert len(set(ids)) == len(ids) >= 5
done, _ = get("?state=succeeded")
assert done["jobs"] and all(j["state"] == "succeeded" for j in done["jobs"])
times = [j["create_time"] for j in everything["jobs"]]
assert times == sorted(times, reverse=True), "not newest first"
try:
    get("?state=succeeded&page_token=" + get("?page_size=1")[0]["next_page_token"])
    raise SystemExit("a token from another filter was accepted")
except urllib.error.HTTPError as e:
    assert e.code == 400
print("%d jobs in %d pages of 2" % (len(ids), pages))
EOF
ok $? "pages of 2 list every job once, newest first; state filter; a token from another filter -> 400 ($(tail -1 "$TMP/pages.out"))"

# --- Delete ------------------------------------------------------------------
wait_state "$JOB2" succeeded "$JOB_WAIT"
ok $? "the job submitted as JSON succeeds (fixed ranks)"
[ "$(req DELETE "/v1/jobs/$JOB2")" = 204 ] && [ "$(req GET "/v1/jobs/$JOB2")" = 404 ]
ok $? "DELETE a finished job -> 204, then 404"
stop_graceful
ok $? "SIGTERM stops the daemon with status 0"

# --- Two tenants ------------------------------------------------------
TA=token-of-alice-$$
TB=token-of-bob-$$
{
	echo "# tenants"
	printf 'alice %s\n' "$(printf '%s' "$TA" | sha256sum | cut -d' ' -f1)"
	printf 'bob %s\n' "$(printf '%s' "$TB" | sha256sum | cut -d' ' -f1)"
} >"$TMP/tokens"
start tenants --tokens-file "$TMP/tokens" --max-queued-per-tenant 1 --max-stored-bytes-per-tenant 3000000
A="Authorization: Bearer $TA"
B="Authorization: Bearer $TB"
[ "$(req GET /v1/jobs)" = 401 ] && grep -qi '^www-authenticate: Bearer' "$TMP/hdr"
ok $? "no token -> 401 with WWW-Authenticate: Bearer"
open=""
z=$(printf '%032d' 0)
for ep in "GET /v1/jobs" "POST /v1/jobs" "PUT /v1/blobs" "GET /v1/jobs/$z" "DELETE /v1/jobs/$z" \
	"POST /v1/jobs/$z:cancel" "GET /v1/jobs/$z/events" "GET /v1/jobs/$z/model" \
	"GET /v1/jobs/$z/report" "GET /metrics" "GET /v1/openapi.yaml"; do
	[ "$(req ${ep% *} "${ep#* }" -m 5)" = 401 ] || open="$open [$ep]"
done
[ -z "$open" ]
ok $? "every endpoint but the health checks needs a token (open:${open:- none})"
[ "$(req GET /v1/jobs -H 'Authorization: Bearer wrong')" = 401 ]
ok $? "a wrong token -> 401"
for e in on off; do
	put_big $e "$TMP/8m.bin"
	is_early_problem $e 401 "an 8 MB upload without a token" 8000000
done
[ "$(req GET "/v1/jobs?access_token=$TA")" = 400 ]
ok $? "a token in the query string -> 400"
[ "$(req GET /livez)" = 200 ] && [ "$(req GET /readyz)" = 200 ]
ok $? "health answers without a token"
submit "$D/tiny_cnn.onnx" "$D/tiny_input.npy" '{"speedup": 2, "objective": "flops"}' -H "$A"
[ "$(cat "$TMP/status")" = 202 ]
ok $? "alice submits a job"
JA=$JOB
wait_state "$JA" succeeded "$JOB_WAIT" "$TA"
ok $? "alice's job succeeds"
leak=""
for ep in "GET /v1/jobs/$JA" "GET /v1/jobs/$JA/events" "GET /v1/jobs/$JA/model" \
	"GET /v1/jobs/$JA/report" "POST /v1/jobs/$JA:cancel" "DELETE /v1/jobs/$JA"; do
	[ "$(req ${ep% *} "${ep#* }" -H "$B" -m 5)" = 404 ] || leak="$leak [$ep]"
done
[ -z "$leak" ]
ok $? "every endpoint with bob's token on alice's job -> 404 (leaks:${leak:- none})"
[ "$(req GET /v1/jobs -H "$B")" = 200 ] && [ "$(jq_ "$TMP/body" "len(j['jobs'])")" = 0 ]
ok $? "bob's listing does not show alice's job"
[ "$(req GET /v1/jobs -H "$A")" = 200 ] && [ "$(jq_ "$TMP/body" "j['jobs'][0]['id']")" = "$JA" ]
ok $? "alice's listing shows it"
mb=$(sha256sum "$D/tiny_cnn.onnx" | cut -d' ' -f1)
cb=$(sha256sum "$D/tiny_input.npy" | cut -d' ' -f1)
req POST /v1/jobs -H "$B" -H 'Content-Type: application/json' -d "{\"model\":\"$mb\",\"calibration\":\"$cb\"}" >"$TMP/status"
is_problem 422 "bob naming alice's uploaded blobs"
[ "$(req GET "/v1/jobs/$JA" -H "$A")" = 200 ]
ok $? "alice still reads her job"
TC=token-of-carol-$$
printf 'carol %s\n' "$(printf '%s' "$TC" | sha256sum | cut -d' ' -f1)" >>"$TMP/tokens"
[ "$(req GET /v1/jobs -H "Authorization: Bearer $TC")" = 401 ]
ok $? "a token added to the file is not valid before SIGHUP"
n0=$(log_count "$TMP/tenants/log" '"msg":"reload: ')
kill -HUP "$PID"
wait_for 30 more_lines "$TMP/tenants/log" '"msg":"reload: ' "$n0"
ok $? "SIGHUP: the daemon logs the reload"
[ "$(req GET /v1/jobs -H "Authorization: Bearer $TC")" = 200 ] && [ "$(jq_ "$TMP/body" "len(j['jobs'])")" = 0 ]
ok $? "SIGHUP reloads the tokens: carol is in, and sees no jobs"

# --- Queue limit (max_queued_per_tenant = 1) ----------------------------
"$PY" "$D/fmnist.py" calib 256 "$TMP/c256.npy"
SLOW_SPEC='{"speedup": 2, "objective": "flops", "samples_per_input": 120}'  # about 10 s
submit "$D/fmnist_vgg.onnx" "$TMP/c256.npy" "$SLOW_SPEC" -H "$A"
JS=$JOB
submit "$D/tiny_cnn.onnx" "$D/tiny_input.npy" '{"objective": "flops"}' -H "$A"
is_problem 429 "a second job while alice's first is queued or running"
grep -qi '^retry-after: [0-9]' "$TMP/hdr"
ok $? "429 says Retry-After"
submit "$D/tiny_cnn.onnx" "$D/tiny_input.npy" '{"objective": "flops"}' -H "$B"
[ "$(cat "$TMP/status")" = 202 ]
ok $? "bob is not limited by alice's queue"
JB=$JOB

# --- Cancel --------------------------------------------------------------
wait_state "$JS" running "$JOB_WAIT" "$TA"
ok $? "alice's slow job is running"
[ "$(req POST "/v1/jobs/$JS:cancel" -H "$A" -H 'Content-Type: application/json' -d '{}')" = 200 ]
ok $? "POST :cancel -> 200"
wait_state "$JS" canceled "$JOB_WAIT" "$TA"
ok $? "the running job ends canceled"
[ "$(jq_ "$TMP/job.json" "j['done'] and 'response' not in j and j['error']['type'].endswith('/canceled')")" = True ]
ok $? "a canceled job carries a problem, no response"
wait_state "$JB" succeeded "$JOB_WAIT" "$TB"
ok $? "bob's queued job runs after the cancel"
[ "$(req GET "/v1/jobs/$JS/model" -H "$A")" = 409 ]
ok $? "the model of a canceled job -> 409"
head -c 1000000 /dev/urandom >"$TMP/1m.bin"
req PUT /v1/blobs -H "$A" --data-binary "@$TMP/1m.bin" >"$TMP/status"
is_problem 507 "an upload past alice's storage quota (3 MB)"
for e in on off; do
	put_big $e "$TMP/8m.bin" -H "$A"
	is_early_problem $e 507 "an 8 MB upload past alice's storage quota" 8000000
done
serving
ok $? "the daemon still serves after the early answers"
[ "$(req PUT /v1/blobs -H "$B" --data-binary "@$TMP/1m.bin")" = 201 ]
ok $? "bob is not limited by alice's quota"
stop_graceful
ok $? "SIGTERM with idle workers exits 0"

# --- kill -9 in the middle of an upload; upload concurrency cap -----------
start crash --max-concurrent-uploads 1
head -c 3000000 /dev/urandom >"$TMP/big.bin"
bigsha=$(sha256sum "$TMP/big.bin" | cut -d' ' -f1)
# A third of the body, then the upload stays open, unfinished, until the
# daemon is killed (or 120 s pass).
"$PY" - "$port" "$TMP/big.bin" <<'EOF' &
import socket, sys
data = open(sys.argv[2], "rb").read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=120)
s.sendall(b"PUT /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(data))
s.sendall(data[:1000000])
try:
    s.recv(1)
except OSError:
    pass
EOF
CURL=$!
wait_for 60 nonempty_dir "$TMP/crash/var/tmp"
ok $? "the upload streams into a temporary file"
[ "$(req PUT /v1/blobs --data-binary "@$D/tiny_cnn.onnx")" = 503 ] && grep -qi '^retry-after: [0-9]' "$TMP/hdr"
ok $? "a second upload over max_concurrent_uploads=1 -> 503 with Retry-After"
kill -9 "$PID"
wait "$PID" 2>/dev/null
wait "$CURL" 2>/dev/null
start crash
[ -z "$(ls -A "$TMP/crash/var/tmp" 2>/dev/null)" ]
ok $? "after restart the half upload's temporary file is gone"
req POST /v1/jobs -H 'Content-Type: application/json' -d "{\"model\":\"$bigsha\",\"calibration\":\"$bigsha\"}" >"$TMP/status"
is_problem 422 "the half upload is absent (not a blob)"

# --- Graceful stop requeues; kill -9 mid-job; restart completes ----------
submit "$D/fmnist_vgg.onnx" "$TMP/c256.npy" "$SLOW_SPEC"
JC=$JOB
wait_state "$JC" running "$JOB_WAIT"
req DELETE "/v1/jobs/$JC" >"$TMP/status"
is_problem 409 "DELETE a running job"
wait_for "$JOB_WAIT" has_progress "$JC"
ok $? "the running job reports progress"
stop_graceful
ok $? "SIGTERM while a job runs: exit 0"
"$PY" -c "
import sqlite3,sys
db = sqlite3.connect(sys.argv[1])
print(db.execute('select state from jobs where id=?', (sys.argv[2],)).fetchone()[0])" \
	"$TMP/crash/var/lowrankd.db" "$JC" >"$TMP/state" 2>&1
grep -qx "queued" "$TMP/state"
ok $? "the running job was requeued, not failed ($(cat "$TMP/state"))"
start crash
wait_state "$JC" running "$JOB_WAIT"
ok $? "after restart the requeued job runs again"
kill -9 "$PID"
wait "$PID" 2>/dev/null
start crash
wait_state "$JC" succeeded "$JOB_WAIT"
ok $? "kill -9 mid-job, restart: the job completes"
[ "$(jq_ "$TMP/job.json" "j['attempts']")" -ge 2 ]
ok $? "the job records its attempts ($(jq_ "$TMP/job.json" "j['attempts']"))"
[ "$(req GET "/v1/jobs/$JC/model")" = 200 ] && [ "$(jq_ "$TMP/job.json" "j['response']['model_sha256']")" = "$(sha256sum "$TMP/body" | cut -d' ' -f1)" ]
ok $? "its model downloads and matches the recorded SHA-256"
[ "$(req GET /v1/jobs)" = 200 ] && [ "$(jq_ "$TMP/body" "len(j['jobs'])")" = 1 ]
ok $? "nothing duplicated: one job"
stop_graceful
ok $? "SIGTERM exits 0"

# --- Poison pill: a job that keeps killing the daemon ends failed --------
start crash --max-attempts 2
submit "$D/fmnist_vgg.onnx" "$TMP/c256.npy" "$SLOW_SPEC"
JP=$JOB
for attempt in 1 2; do
	wait_state "$JP" running "$JOB_WAIT" || break
	kill -9 "$PID"
	wait "$PID" 2>/dev/null
	start crash --max-attempts 2
done
wait_state "$JP" failed "$JOB_WAIT"
ok $? "after max_attempts (2) crashes the job ends failed, not retried forever"
[ "$(jq_ "$TMP/job.json" "j['error']['type'].endswith('/crashed')")" = True ]
ok $? "its problem type is crashed"
serving
ok $? "the daemon is healthy afterwards"
stop_graceful
ok $? "final SIGTERM exits 0"

# No sanitizer reports in any daemon log.
! grep -l "AddressSanitizer\|runtime error:\|LeakSanitizer\|ThreadSanitizer" "$TMP"/*/log
ok $? "no sanitizer reports in the daemon logs"
done_testing
