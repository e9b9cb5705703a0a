#!/bin/sh
# bench/solver.sh - what compression costs: `lowrank compress` on
# torchvision vgg16 (224x224, 4x) with N calibration inputs, next to ONNX
# Runtime's time for one forward pass over the same N inputs (the solver
# needs at least about two such passes: targets and regressors), with wall
# time and peak RSS of both. Several N show whether the cost grows
# linearly. Prints a Markdown table for docs/benchmarks.md.
#
#   bench/solver.sh [BUILD_DIR]     (default: _build)
# Environment: LR_MODEL_DIR (default BUILD_DIR/tests/models-cache),
#   MODEL=vgg16, INPUTS="100 200 300", SPEEDUP=4, THREADS=2.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/_build}
lowrank="$build/lowrank"
md=${LR_MODEL_DIR:-$build/tests/models-cache}
model=${MODEL:-vgg16}
inputs=${INPUTS:-"100 200 300"}
speedup=${SPEEDUP:-4}
threads=${THREADS:-2}
py=/usr/bin/python3
[ -x "$lowrank" ] || { echo "bench/solver.sh: build lowrank first ($lowrank)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrsolver.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$md"
"$py" "$here/tests/models/make_models.py" "$md" --only "$model" >&2

# measure CMD...: runs CMD, prints "wall_seconds peak_rss_bytes".
measure() {
	"$py" - "$@" <<'PY'
import os, subprocess, sys, time
t = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=open(os.environ["ERRLOG"], "w"))
_, status, ru = os.wait4(p.pid, 0)
if status != 0:
    sys.exit("command failed: %s (see %s)" % (" ".join(sys.argv[1:]), os.environ["ERRLOG"]))
print("%.2f %d" % (time.monotonic() - t, ru.ru_maxrss * 1024))
PY
}
export ERRLOG="$tmp/err.log"

echo "model: $model, target speedup ${speedup}x, nonlinear-asymmetric, $threads threads for both; seeded standard-normal inputs"
echo
echo "| inputs | ORT one pass s | ORT peak RSS MiB | compress s | compress / ORT pass | compress s per input | compress peak RSS MiB | theoretical speedup |"
echo "|---|---|---|---|---|---|---|---|"
for n in $inputs; do
	"$py" -c "
import numpy as np, sys
np.save(sys.argv[2], np.random.default_rng(0).standard_normal((int(sys.argv[1]), 3, 224, 224), dtype=np.float32))" \
		"$n" "$tmp/calib.npy"
	set -- $(measure node "$here/tests/ort/ort_run.js" run "$md/$model.onnx" "$tmp/calib.npy" "$tmp/ort.npy" --threads "$threads")
	ort_s=$1 ort_rss=$2
	set -- $(measure "$lowrank" compress "$md/$model.onnx" --calib "$tmp/calib.npy" --speedup "$speedup" --objective flops \
		--threads "$threads" -o "$tmp/out.onnx" --report "$tmp/report.json")
	"$py" - "$n" "$ort_s" "$ort_rss" "$1" "$2" "$tmp/report.json" <<'PY'
import json, sys
n, ort_s, ort_rss, lr_s, lr_rss = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
r = json.load(open(sys.argv[6]))
print("| %d | %.1f | %.0f | %.1f | %.1f | %.2f | %.0f | %.2f |" % (
    n, ort_s, ort_rss / 2**20, lr_s, lr_s / ort_s, lr_s / n, lr_rss / 2**20, r["theoretical_speedup"]))
PY
done

# The last compressed model's real speed in ONNX Runtime (1 thread): the
# FLOP ratio is not what a runtime delivers.
echo
echo "| $model ${speedup}x (last run) | ORT batch | original ms | compressed ms | measured speedup | theoretical |"
echo "|---|---|---|---|---|---|"
for b in 1 8; do
	a=$(node "$here/tests/ort/ort_run.js" bench "$md/$model.onnx" --input-shape "$b,3,224,224" --threads 1 --repeat 10 --warmup 2)
	c=$(node "$here/tests/ort/ort_run.js" bench "$tmp/out.onnx" --input-shape "$b,3,224,224" --threads 1 --repeat 10 --warmup 2)
	"$py" - "$b" "$a" "$c" "$tmp/report.json" <<'PY'
import json, sys
b, a, c, r = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.load(open(sys.argv[4]))
print("| | %s | %.1f | %.1f | %.2f | %.2f |" % (b, a["median_ms"], c["median_ms"], a["median_ms"] / c["median_ms"], r["theoretical_speedup"]))
PY
done
