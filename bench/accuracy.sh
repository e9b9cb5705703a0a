#!/bin/sh
# bench/accuracy.sh - the paper's comparison on a real model and real data:
# the four methods at 2x, 3x and 4x on the Fashion-MNIST CNNs in tests/data,
# calibrated on training images, judged on the 10,000 labeled test images by
# ONNX Runtime: top-1 accuracy and agreement with the original; then the
# measured speedup in ONNX Runtime and in lowrank's engine at batch 1 and 8
# (1 thread) right next to the theoretical FLOP speedup. Prints Markdown
# tables for docs/benchmarks.md.
#
#   bench/accuracy.sh [BUILD_DIR]     (default: _build)
# Environment: MODELS="vgg" (or "vgg resnet"), METHODS (all four),
#   SPEEDUPS="2 3 4", CALIB=2000 (training images, seed 0), REPEAT=200
#   (timed runs per measurement), THREADS=2 (solver threads).
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

# ORT / lowrank median ms of MODEL at batch B (1 thread).
ort_ms() {
	$ort bench "$1" --input-shape "$2,1,28,28" --threads 1 --repeat "$repeat" --warmup 20 |
		"$py" -c "import json,sys; print(json.load(sys.stdin)['median_ms'])"
}
lr_ms() {
	"$lowrank" bench "$1" --input-shape "$2,1,28,28" --threads 1 --repeat "$repeat" --warmup 20 --json |
		"$py" -c "import json,sys; print(json.load(sys.stdin)['median_ms'])"
}
# speedup TIMER ORIGINAL COMPRESSED BATCH: the median over 3 alternating
# rounds of original/compressed, so drifting machine load hits both alike.
speedup() {
	r=""
	for i in 1 2 3; do
		a=$($1 "$2" "$4")
		b=$($1 "$3" "$4")
		r="$r $a/$b"
	done
	"$py" -c "import statistics,sys; print('%.2f' % statistics.median(eval(x) for x in sys.argv[1:]))" $r
}

echo "calibration: $ncal Fashion-MNIST training images (seed 0), 10% held out by the solver; evaluation: the 10,000 test images; solver threads: $threads"
echo
echo "| model | method | target | theoretical | top-1 | change | agreement | held-out agreement | solve s |"
echo "|---|---|---|---|---|---|---|---|---|"
for arch in $models; do
	model="$here/tests/data/fmnist_$arch.onnx"
	$ort run "$model" "$tmp/test_x.npy" "$tmp/ref.npy" >/dev/null
	"$py" - "$arch" "$tmp/ref.npy" "$tmp/test_y.npy" <<'PY'
import sys, numpy as np
p = np.load(sys.argv[2]).argmax(1)
print("| %s | original | - | 1.00 | %.4f | - | 1.0000 | - | - |" % (
    sys.argv[1], (p == np.load(sys.argv[3])).mean()))
PY
	for s in $speedups; do
		for meth in $methods; do
			out="$tmp/$arch-$meth-$s"
			"$lowrank" compress "$model" --calib "$tmp/calib.npy" --speedup "$s" --objective flops --method "$meth" \
				--threads "$threads" -o "$out.onnx" --report "$out.json" >/dev/null 2>"$out.err" || {
				echo "| $arch | $meth | $s | failed: $(tail -1 "$out.err") |"
				continue
			}
			$ort run "$out.onnx" "$tmp/test_x.npy" "$out.npy" >/dev/null
			"$py" - "$arch" "$meth" "$s" "$out.json" "$tmp/ref.npy" "$out.npy" "$tmp/test_y.npy" <<'PY'
import json, sys, numpy as np
arch, meth, s, rep = sys.argv[1], sys.argv[2], sys.argv[3], json.load(open(sys.argv[4]))
ref, out, y = np.load(sys.argv[5]).argmax(1), np.load(sys.argv[6]).argmax(1), np.load(sys.argv[7])
acc0, acc = (ref == y).mean(), (out == y).mean()
print("| %s | %s | %s | %.2f | %.4f | %+.2f pt | %.4f | %.3f | %.1f |" % (
    arch, meth, s, rep["theoretical_speedup"], acc, 100 * (acc - acc0), (out == ref).mean(),
    rep["holdout"]["top1_agreement"], rep["seconds"]))
PY
		done
	done
done

# Speed. Rank selection depends on the original responses only, so every
# method gives the same architecture at a target: one measurement each.
echo
echo "Measured speedup over the original, 1 thread, median of 3 alternating rounds of $repeat runs each:"
echo
echo "| model | target | theoretical | ORT batch 1 | ORT batch 8 | lowrank batch 1 | lowrank batch 8 |"
echo "|---|---|---|---|---|---|---|"
for arch in $models; do
	model="$here/tests/data/fmnist_$arch.onnx"
	for s in $speedups; do
		set -- $methods
		out="$tmp/$arch-$1-$s"
		[ -f "$out.onnx" ] || continue
		th=$("$py" -c "import json,sys; print('%.2f' % json.load(open(sys.argv[1]))['theoretical_speedup'])" "$out.json")
		echo "| $arch | $s | $th | $(speedup ort_ms "$model" "$out.onnx" 1) | $(speedup ort_ms "$model" "$out.onnx" 8) | $(speedup lr_ms "$model" "$out.onnx" 1) | $(speedup lr_ms "$model" "$out.onnx" 8) |"
	done
done
