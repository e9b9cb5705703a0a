#!/bin/sh
# Install lowrankd's dependencies on Debian 12 (bookworm), from Debian's
# packages (and ONNX Runtime from npm for the tests). Idempotent: apt and npm
# skip what is already present, so it is safe to run again.
#
#   scripts/install-deps.sh run    build and run lowrank and lowrankd only
#   scripts/install-deps.sh test   everything the tests and benches need
#                                  (default)
#
# Run as root, or as a user who can sudo. Assumes nothing but Debian 12: no
# Node.js, Python or compiler needs to be there beforehand.
set -eu
cd "$(dirname "$0")/.."

what=${1:-test}
case $what in
run|test) ;;
*) echo "usage: scripts/install-deps.sh [run|test]" >&2; exit 2 ;;
esac

SUDO=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "install-deps: run as root, or install sudo" >&2; exit 1; }
	SUDO="sudo"
fi

# Build and run: the compiler and autotools, the libraries lowrank and
# lowrankd link against (libcurl sends its webhooks), curl to talk to the
# daemon, and Chart.js (libjs-chart.js), which the build compiles into
# lowrankd's dashboard.
RUN_PKGS="build-essential autoconf automake libtool pkgconf
  protobuf-c-compiler libprotobuf-c-dev libonnx-dev
  libopenblas-dev liblapacke-dev
  libmicrohttpd-dev libcjson-dev libuv1-dev libsqlite3-dev libpq-dev nettle-dev
  libjs-chart.js
  libcurl4-openssl-dev curl ca-certificates"

# Tests and benches: PyTorch exports the test models, python3-onnx checks
# them, the ONNX backend test cases and Fashion-MNIST are test data, clang
# builds the fuzzers, systemd-analyze checks the unit, sqlite3 inspects the
# store after crashes, postgresql runs a throwaway server for the
# PostgreSQL backend's tests, wrk loads the HTTP API in bench/, and headless
# chromium driven by python3-selenium tests the dashboard (tests/ui.sh).
TEST_PKGS="sqlite3 postgresql wrk procps systemd
  python3 python3-numpy python3-onnx python3-torch python3-torchvision
  libonnx-testdata dataset-fashion-mnist
  clang libclang-rt-14-dev
  chromium chromium-driver python3-selenium"

pkgs=$RUN_PKGS
[ "$what" = test ] && pkgs="$pkgs $TEST_PKGS"
# Node.js runs ONNX Runtime, the tests' independent judge. A machine that
# ships its own Node.js keeps it (Debian's npm conflicts with it); one
# without gets Debian's nodejs and npm.
if [ "$what" = test ] && ! command -v node >/dev/null 2>&1; then
	pkgs="$pkgs nodejs npm"
fi

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "install-deps: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -q --no-install-recommends $missing
fi

if [ "$what" = test ]; then
	# ONNX Runtime: the CPU library ships inside the npm package, so
	# --ignore-scripts (which skips its optional download step) loses nothing.
	if [ ! -d tests/ort/node_modules/onnxruntime-node ]; then
		(cd tests/ort && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
	fi
	node -e 'require(process.argv[1])' "$(pwd)/tests/ort/node_modules/onnxruntime-node" ||
		{ echo "install-deps: onnxruntime-node does not load in $(node --version)" >&2; exit 1; }
fi
echo "install-deps ($what): ok"
