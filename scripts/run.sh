#!/bin/sh
# Set up everything and run the main job: the README's run command.
# Until the daemon exists this inspects the shipped tiny CNN and runs it on
# the shipped sample input.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -x configure ] || autoreconf -fi
mkdir -p _build
(cd _build && { [ -f Makefile ] || ../configure -q; } && make -j2 lowrank)
./_build/lowrank inspect tests/data/tiny_cnn.onnx
./_build/lowrank run tests/data/tiny_cnn.onnx tests/data/tiny_input.npy -o _build/tiny_output.npy
echo "run.sh: wrote _build/tiny_output.npy"
