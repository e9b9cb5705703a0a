#!/bin/sh
# bench/speed.sh - what "--speedup S" buys where the model runs: for each
# model, target and objective (time: measured in lowrank's engine at batch
# 1, 1 thread; flops: the paper's), the requested speedup, lowrank's
# predicted and measured speedup, ONNX Runtime's measured speedup at batch
# 1 and 8 (1 thread), the FLOP ratio, the file size and, for the trained
# Fashion-MNIST models, the top-1 drop on the 10,000 test images. Prints a
# Markdown table for docs/benchmarks.md. A target the time objective cannot
# reach is a row with the fastest reachable speedup instead. The models in
# DEPLOY8 are also compressed for batch 8 (`--deploy-batch 8`, objective
# "time, b8"), whose request is then judged by ONNX Runtime's b8 column.
#
#   bench/speed.sh [BUILD_DIR]     (default: _build)
# Environment: MODELS ("fmnist_vgg fmnist_resnet vgg16 resnet50"),
#   OBJECTIVES ("time flops"), FM_SPEEDUPS ("2 3 4"), TV_SPEEDUPS ("2 4"),
#   CALIB (Fashion-MNIST training images, 2000), TV_CALIB (seeded normal
#   inputs for torchvision models, 32; they have no labels here, so the
#   linear method is used and no top-1 is given), THREADS (solver, 2),
#   CACHE (timing cache; default a fresh one under $TMPDIR),
#   LR_MODEL_DIR (torchvision exports, see tests/models/make_models.py),
#   DEPLOY8 ("fmnist_vgg fmnist_resnet"; measuring 224x224 models at batch
#   8 takes long), ORT_PROCS (processes whose median ONNX Runtime's figure
#   is: 5 for the Fashion-MNIST models, whose sub-ms runs jitter most, 3
#   for the others).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/_build}
lowrank="$build/lowrank"
models=${MODELS:-"fmnist_vgg fmnist_resnet vgg16 resnet50"}
objectives=${OBJECTIVES:-"time flops"}
ncal=${CALIB:-2000}
ntv=${TV_CALIB:-32}
threads=${THREADS:-2}
py=/usr/bin/python3
ort="node ${LR_ORT_DIR:-$here/tests/ort}/ort_run.js"
md=${LR_MODEL_DIR:-$build/tests/models-cache}
[ -x "$lowrank" ] || { echo "bench/speed.sh: build lowrank first ($lowrank)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrspeed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cache=${CACHE:-$tmp/timings.tsv}

# ort_speedup ORIGINAL COMPRESSED SHAPE ROUNDS PROCS: ONNX Runtime's
# speedup, the median over PROCS processes of `ort_run.js compare` (both
# sessions in one process, timed in turns: the machine's load falls on both
# alike; separate processes, because one process's speed can sit 10% off
# another's).
ort_speedup() {
	r=""
	for i in $(seq "$5"); do
		r="$r $($ort compare "$1" "$2" --input-shape "$3" --threads 1 --rounds "$4" |
			"$py" -c "import json,sys; print(json.load(sys.stdin)['ratio'])")"
	done
	"$py" -c "import statistics,sys; print('%.2f' % statistics.median(float(x) for x in sys.argv[1:]))" $r
}
mb() { "$py" -c "import os,sys; print('%.1f' % (os.path.getsize(sys.argv[1]) / 1e6))" "$1"; }

"$py" "$here/tests/data/fmnist.py" calib "$ncal" "$tmp/fm_calib.npy" --seed 0
"$py" "$here/tests/data/fmnist.py" test "$tmp/test_x.npy" "$tmp/test_y.npy"
"$py" -c "import numpy as np, sys; np.save(sys.argv[2], np.random.default_rng(0).standard_normal((int(sys.argv[1]), 3, 224, 224), dtype=np.float32))" \
	"$ntv" "$tmp/tv_calib.npy"
top1() { # MODEL -> accuracy on the test set (ONNX Runtime)
	$ort run "$1" "$tmp/test_x.npy" "$tmp/pred.npy" >/dev/null
	"$py" -c "import numpy as np, sys; print((np.load(sys.argv[1]).argmax(1) == np.load(sys.argv[2])).mean())" "$tmp/pred.npy" "$tmp/test_y.npy"
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), vector block $(LR_VECTOR_BLOCK= "$py" -c "print(16 if 'avx512f' in open('/proc/cpuinfo').read() else 8)") floats; lowrank's targets at batch 1 (\"time, b8\": batch 8), 1 thread, measured there; timing cache $cache"
echo
echo "| model | objective | requested | lowrank predicted | lowrank measured | ORT b1 | ORT b8 | FLOP ratio | MB before → after | top-1 drop (pts) | measure s | compress s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for m in $models; do
	case $m in
	fmnist_*) model="$here/tests/data/$m.onnx"; calib="$tmp/fm_calib.npy"; s1=1,1,28,28; s8=8,1,28,28
		speedups=${FM_SPEEDUPS:-"2 3 4"}; method=nonlinear-asymmetric; rep=41; procs=${ORT_PROCS:-5}
		acc0=$(top1 "$model") ;;
	*) model="$md/$m.onnx"; calib="$tmp/tv_calib.npy"; s1=1,3,224,224; s8=8,3,224,224
		speedups=${TV_SPEEDUPS:-"2 4"}; method=linear; rep=5; procs=${ORT_PROCS:-3}; acc0="" ;;
	esac
	[ -f "$model" ] || { echo "| $m | (missing: $model) |"; continue; }
	for obj in $objectives; do
		dbs=1
		[ "$obj" = time ] && case " ${DEPLOY8-fmnist_vgg fmnist_resnet} " in *" $m "*) dbs="1 8" ;; esac
		for s in $speedups; do
		for db in $dbs; do
			out="$tmp/$m-$obj-$s-$db"
			label=$obj
			[ "$db" = 1 ] || label="$obj, b$db"
			t0=$(date +%s.%N)
			if ! "$lowrank" compress "$model" --calib "$calib" --speedup "$s" --objective "$obj" \
				--deploy-batch "$db" --method "$method" --threads "$threads" --timing-cache "$cache" \
				-o "$out.onnx" --report "$out.json" >/dev/null 2>"$out.err"; then
				echo "| $m | $label | $s | $(tail -1 "$out.err" | sed 's/.*fastest reachable is \([0-9.]*x\).*/unreachable: at most \1/') | | | | | | | | |"
				continue
			fi
			t1=$(date +%s.%N)
			o1=$(ort_speedup "$model" "$out.onnx" "$s1" "$rep" "$procs")
			o8=$(ort_speedup "$model" "$out.onnx" "$s8" "$rep" "$procs")
			drop=""
			[ -n "$acc0" ] && drop=$("$py" -c "import sys; print('%.2f' % (100 * (float(sys.argv[1]) - float(sys.argv[2]))))" "$acc0" "$(top1 "$out.onnx")")
			"$py" - "$out.json" "$m" "$label" "$s" "$o1" "$o8" "$(mb "$model") → $(mb "$out.onnx")" "$drop" "$t0" "$t1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
d = r["deploy"]
cm = r.get("cost_model", {})
pred = "%.2f" % d["predicted_speedup"] if "predicted_speedup" in d else "–"
ms = "%.1f" % cm["measure_seconds"] if "measure_seconds" in cm else "–"
print("| %s | %s | %s | %s | %.2f | %s | %s | %.2f | %s | %s | %s | %.0f |" % (
    sys.argv[2], sys.argv[3], sys.argv[4], pred, d["measured_speedup"], sys.argv[5], sys.argv[6],
    d["flop_ratio"], sys.argv[7], sys.argv[8] or "–", ms, float(sys.argv[10]) - float(sys.argv[9])))
PY
		done
		done
	done
done
