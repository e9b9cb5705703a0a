#!/bin/sh
# Install every build and test dependency of lowrankd on Debian 12 (bookworm).
# Idempotent: safe to run again; apt and npm skip what is already present.
# Usage: scripts/install-deps.sh            (as root, or with sudo available)
set -eu
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

PKGS="build-essential autoconf automake libtool pkgconf
  protobuf-c-compiler libprotobuf-c-dev libonnx-dev
  libopenblas-dev liblapacke-dev
  libmicrohttpd-dev libcjson-dev libuv1-dev libsqlite3-dev sqlite3 nettle-dev
  curl ca-certificates wrk
  python3 python3-numpy python3-onnx python3-torch python3-torchvision
  libonnx-testdata dataset-fashion-mnist
  clang libclang-rt-14-dev"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -q --no-install-recommends $missing
fi

# ONNX Runtime (the independent judge in tests and benches). The CPU library
# ships inside the npm package; --ignore-scripts skips its download step.
if ! command -v node >/dev/null 2>&1; then
  echo "install-deps: node is required (it comes with the machine image)" >&2
  exit 1
fi
if [ ! -d tests/ort/node_modules/onnxruntime-node ]; then
  (cd tests/ort && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
echo "install-deps: ok"
