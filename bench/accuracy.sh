#!/bin/sh
# bench/accuracy.sh - the paper's comparison on a real model and real data:
# the four methods at 2x, 3x and 4x on the Fashion-MNIST CNNs in tests/data,
# calibrated on training images, judged on the 10,000 labeled test images by
# ONNX Runtime: top-1 accuracy, agreement with the original, and the
# measured ONNX Runtime speedup at batch 1 and 8 (1 thread) right next to
# the theoretical FLOP speedup. Prints a Markdown table for
# docs/benchmarks.md.
#
#   bench/accuracy.sh [BUILD_DIR]     (default: _build)
# Environment: MODELS="vgg" (or "vgg resnet"), METHODS (all four),
#   SPEEDUPS="2 3 4", CALIB=2000 (training images, seed 0), REPEAT=200
#   (timed ORT runs per measurement), THREADS=2 (solver threads).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/_build}
lowrank="$build/lowrank"
models=${MODELS:-vgg}
methods=${METHODS:-"nonlinear-asymmetric nonlinear linear-asymmetric linear"}
speedups=${SPEEDUPS:-"2 3 4"}
ncal=${CALIB:-2000}
repeat=${REPEAT:-200}
threads=${THREADS:-2}
py=/usr/bin/python3
ort="node $here/tests/ort/ort_run.js"
[ -x "$lowrank" ] || { echo "bench/accuracy.sh: build lowrank first ($lowrank)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lraccuracy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$py" "$here/tests/data/fmnist.py" calib "$ncal" "$tmp/calib.npy" --seed 0
"$py" "$here/tests/data/fmnist.py" test "$tmp/test_x.npy" "$tmp/test_y.npy"

# ORT median ms of MODEL at batch B (1 thread).
ort_ms() {
	$ort bench "$1" --input-shape "$2,1,28,28" --threads 1 --repeat "$repeat" --warmup 20 |
		"$py" -c "import json,sys; print(json.load(sys.stdin)['median_ms'])"
}

echo "calibration: $ncal Fashion-MNIST training images (seed 0), 10% held out by the solver; evaluation: the 10,000 test images; solver threads: $threads; ORT: 1 thread, median of $repeat runs"
echo
echo "| model | method | target | theoretical | top-1 | change | agreement | held-out agreement | ORT speedup b1 | ORT speedup b8 | lowrank speedup b1 | lowrank speedup b8 | solve s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for arch in $models; do
	model="$here/tests/data/fmnist_$arch.onnx"
	$ort run "$model" "$tmp/test_x.npy" "$tmp/ref.npy" >/dev/null
	b1=$(ort_ms "$model" 1)
	b8=$(ort_ms "$model" 8)
	"$py" - "$arch" "$tmp/ref.npy" "$tmp/test_y.npy" <<'PY'
import sys, numpy as np
p = np.load(sys.argv[2]).argmax(1)
print("| %s | original | - | 1.00 | %.4f | - | 1.0000 | - | 1.00 | 1.00 | 1.00 | 1.00 | - |" % (
    sys.argv[1], (p == np.load(sys.argv[3])).mean()))
PY
	for s in $speedups; do
		for meth in $methods; do
			out="$tmp/$arch-$meth-$s"
			"$lowrank" compress "$model" --calib "$tmp/calib.npy" --speedup "$s" --method "$meth" \
				--threads "$threads" -o "$out.onnx" --report "$out.json" >/dev/null 2>"$out.err" || {
				echo "| $arch | $meth | $s | failed: $(tail -1 "$out.err") |"
				continue
			}
			$ort run "$out.onnx" "$tmp/test_x.npy" "$out.npy" >/dev/null
			c1=$(ort_ms "$out.onnx" 1)
			c8=$(ort_ms "$out.onnx" 8)
			"$py" - "$arch" "$meth" "$s" "$out.json" "$tmp/ref.npy" "$out.npy" "$tmp/test_y.npy" \
				"$b1" "$c1" "$b8" "$c8" <<'PY'
import json, sys, numpy as np
arch, meth, s, rep = sys.argv[1], sys.argv[2], sys.argv[3], json.load(open(sys.argv[4]))
ref, out, y = np.load(sys.argv[5]).argmax(1), np.load(sys.argv[6]).argmax(1), np.load(sys.argv[7])
b1, c1, b8, c8 = map(float, sys.argv[8:12])
acc0, acc = (ref == y).mean(), (out == y).mean()
ms = {m["batch"]: m["speedup"] for m in rep["measured"]}
print("| %s | %s | %s | %.2f | %.4f | %+.2f pt | %.4f | %.3f | %.2f | %.2f | %.2f | %.2f | %.1f |" % (
    arch, meth, s, rep["theoretical_speedup"], acc, 100 * (acc - acc0), (out == ref).mean(),
    rep["holdout"]["top1_agreement"], b1 / c1, b8 / c8, ms[1], ms[8], rep["seconds"]))
PY
		done
	done
done
