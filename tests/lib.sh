# tests/lib.sh - shared helpers for shell tests that print TAP.
# Source it: . "$top_srcdir/tests/lib.sh"
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${PYTHON3:=/usr/bin/python3}"
: "${NODE:=node}"
LOWRANK="$top_builddir/lowrank"
ORT_DIR="${LR_ORT_DIR:-$top_srcdir/tests/ort}"
T_N=0
T_FAILED=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lrtest.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

ok() { # ok COND_EXIT_STATUS DESCRIPTION
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $T_N - $2"
	else
		echo "not ok $T_N - $2"
		T_FAILED=$((T_FAILED + 1))
	fi
}

# ok_log STATUS FILE DESCRIPTION: ok; on failure also the last lines of
# FILE (the checked command's stderr) as diagnostics, so that a failure in
# CI says why without a rerun.
ok_log() {
	ok "$1" "$3"
	[ "$1" -eq 0 ] || tail -n 8 "$2" 2>/dev/null | sed 's/^/#   /'
}

# expect_fail EXPECTED_SUBSTRING DESCRIPTION CMD...: the command must exit
# non-zero and print the substring on stderr.
expect_fail() {
	want=$1; desc=$2; shift 2
	if "$@" >"$TMP/out" 2>"$TMP/err"; then
		ok 1 "$desc (exited 0)"
	elif grep -q -- "$want" "$TMP/err"; then
		ok 0 "$desc"
	else
		ok 1 "$desc (stderr: $(head -c 300 "$TMP/err"))"
	fi
}

diag() { echo "# $*"; }

# wait_for SECONDS CMD...: runs CMD until it succeeds, every 0.1 s for
# the first 2 s and every 0.5 s after that (so that a long wait does not
# load the machine); fails (status 1) once SECONDS have passed without
# success. A check that needs a state (a file, a log line, a job state, a
# process gone) waits for it with this, never with a fixed sleep: a loaded
# machine is slow, not wrong.
wait_for() {
	_wf_end=$(($(date +%s) + $1))
	_wf_n=0
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$_wf_end" ] || return 1
		_wf_n=$((_wf_n + 1))
		if [ "$_wf_n" -le 20 ]; then sleep 0.1; else sleep 0.5; fi
	done
}

# log_count FILE TEXT: how many lines of FILE contain TEXT (0 when none).
log_count() {
	_lc=$(grep -c -- "$2" "$1" 2>/dev/null)
	echo "${_lc:-0}"
}

done_testing() {
	echo "1..$T_N"
	[ "$T_FAILED" -eq 0 ]
}

# Directory of exported torchvision models (generated once, reused).
model_dir() {
	echo "${LR_MODEL_DIR:-$top_builddir/tests/models-cache}"
}
