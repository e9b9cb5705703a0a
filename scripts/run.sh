#!/bin/sh
# Set up everything and run the main job: the README's run command.
# Installs the dependencies, builds, and starts the lowrankd daemon on its
# defaults (http://127.0.0.1:8080, state in ./var) in the foreground; stop
# it with Ctrl-C (running jobs are requeued and resume at the next start).
# Extra arguments go to lowrankd, e.g. scripts/run.sh --listen 127.0.0.1:9090
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh run
[ -x configure ] || autoreconf -fi
mkdir -p _build
(cd _build && { [ -f Makefile ] || ../configure -q; } && make -j2 lowrank lowrankd)
echo "run.sh: starting lowrankd; try: curl -F model=@tests/data/tiny_cnn.onnx -F calibration=@tests/data/tiny_input.npy -F spec='{\"speedup\":2}' http://127.0.0.1:8080/v1/jobs" >&2
exec ./_build/lowrankd --log-format text "$@"
