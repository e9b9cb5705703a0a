#!/bin/sh
# bench/engine.sh - lowrank's engine next to ONNX Runtime, in one run.
# For vgg16, resnet50 and mobilenet_v2 at batch 1 and 8 with 1 and 2 threads
# it prints both medians, their ratio (lowrank / ORT: below 1 is faster) and
# both peak RSS figures, as a Markdown table for docs/benchmarks.md.
#
#   bench/engine.sh [BUILD_DIR]     (default: _build)
# Environment: LR_MODEL_DIR (default BUILD_DIR/tests/models-cache),
#   MODELS="vgg16 resnet50 mobilenet_v2", BATCHES="1 8", THREADS="1 2",
#   REPEAT=10, WARMUP=2.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/_build}
lowrank="$build/lowrank"
md=${LR_MODEL_DIR:-$build/tests/models-cache}
models=${MODELS:-"vgg16 resnet50 mobilenet_v2"}
batches=${BATCHES:-"1 8"}
threads=${THREADS:-"1 2"}
repeat=${REPEAT:-10}
warmup=${WARMUP:-2}
py=/usr/bin/python3
[ -x "$lowrank" ] || { echo "bench/engine.sh: build lowrank first ($lowrank)" >&2; exit 1; }
mkdir -p "$md"
"$py" "$here/tests/models/make_models.py" "$md" --only "$(echo $models | tr ' ' ',')" >&2

echo "| model | batch | threads | lowrank median ms | ORT median ms | ratio | lowrank peak RSS MiB | ORT peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
for m in $models; do
	hw=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['input_shape'][2])" "$md/$m.json")
	for b in $batches; do
		for t in $threads; do
			ours=$("$lowrank" bench "$md/$m.onnx" --input-shape "$b,3,$hw,$hw" --threads "$t" \
				--repeat "$repeat" --warmup "$warmup" --json)
			ort=$(node "$here/tests/ort/ort_run.js" bench "$md/$m.onnx" --input-shape "$b,3,$hw,$hw" \
				--threads "$t" --repeat "$repeat" --warmup "$warmup")
			"$py" - "$m" "$b" "$t" "$ours" "$ort" <<'PY'
import json, sys
m, b, t, ours, ort = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
print("| %s | %s | %s | %.1f | %.1f | %.2f | %.0f | %.0f |" % (
    m, b, t, ours["median_ms"], ort["median_ms"], ours["median_ms"] / ort["median_ms"],
    ours["peak_rss_bytes"] / 2**20, ort["peak_rss_bytes"] / 2**20))
PY
		done
	done
done
