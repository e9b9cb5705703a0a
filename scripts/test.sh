#!/bin/sh
# Set up everything and run every test: the README's test command.
#   scripts/test.sh            dependencies, build, `make check`, the
#                              sanitizer build's `make check`, `make distcheck`
# Environment: WERROR=1 adds -Werror (CI sets it); LR_QUICK=1 skips the
# sanitizer build and distcheck (for quick local iterations).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
scripts/install-deps.sh test
autoreconf -fi
export LR_MODEL_DIR="${LR_MODEL_DIR:-$top/_build/tests/models-cache}"
export LR_ORT_DIR="$top/tests/ort"
werror=""
[ "${WERROR:-0}" = 1 ] && werror="-Werror"

# failed BUILDDIR: names the failing tests' logs and prints, last (CI shows
# the tail of the output), each failed assertion with the diagnostics that
# follow it and the end of its log, so a failure on a machine we cannot
# log into can be read from the CI output alone.
failed() {
	echo "test.sh: make check failed in $1; logs:" >&2
	for log in $(find "$1/tests" -name '*.log' -newer "$1/config.status" \
			-exec grep -l "^not ok\|^ERROR\|^FAIL" {} \; 2>/dev/null | head -5); do
		echo "=== $log (end)" >&2
		tail -n 12 "$log" >&2
		echo "=== $log (failed assertions)" >&2
		awk '/^not ok|^ERROR|^FAIL/ { n = 12 } n > 0 && (/^#/ || /^not ok|^ERROR|^FAIL/) { print; n-- }' \
			"$log" | head -n 40 >&2
	done
	exit 1
}

mkdir -p _build
(cd _build && ../configure -q CFLAGS="-O2 -g $werror" && make -j2 && make -j2 check) || failed _build
[ "${LR_QUICK:-0}" = 1 ] && exit 0

# ASan + UBSan: the whole suite; the ONNX Runtime comparison on a subset of
# models (the full set is covered above, and sanitized convolutions are slow).
mkdir -p _build-asan
(cd _build-asan && ../configure -q --enable-sanitizers CFLAGS="-O1 -g $werror" && make -j2 &&
	LR_MODELS="resnet18 squeezenet1_1 shufflenet_v2_x1_0 densenet121" \
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 make -j2 check) || failed _build-asan

# Release tarball builds and passes its own tests out of tree.
(cd _build && LR_MODELS="resnet18 mobilenet_v2" make distcheck)
echo "test.sh: all tests passed"
