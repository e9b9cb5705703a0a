#!/bin/sh
# conformance.sh - `make check` entry for the ONNX backend conformance suite.
#
# Runs tests/conformance/lr-conformance on the node, pytorch-converted and
# pytorch-operator test cases of Debian's libonnx-testdata (a declared
# build dependency; a missing folder is a failure, not a skip). TAP goes to
# stdout; the last line is "# conformance: P passed, F failed, S skipped".
# A case listed in conformance/expected_pass.txt that is refused fails; the
# end of the output counts how many of the cases ONNX Runtime passes
# (conformance/ort_pass.txt) lowrank passes, and lists the others.
# Set LR_ONNX_TESTDATA to use another copy of the data, and
# LR_CONFORMANCE_ARGS to pass options (e.g. "--only test_conv --verbose").
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/..}"
: "${top_builddir:=$here/..}"
data=${LR_ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}
prog=$top_builddir/tests/conformance/lr-conformance

if [ ! -x "$prog" ]; then
	echo "1..1"
	echo "not ok 1 - $prog is not built (make check builds it)"
	echo "# conformance: 0 passed, 1 failed, 0 skipped"
	exit 1
fi

# shellcheck disable=SC2086 # LR_CONFORMANCE_ARGS is a list of words
exec "$prog" --list-failures --expect-pass "$top_srcdir/tests/conformance/expected_pass.txt" \
	--judge "$top_srcdir/tests/conformance/ort_pass.txt" \
	$LR_CONFORMANCE_ARGS \
	"$data/node" "$data/pytorch-converted" "$data/pytorch-operator"
