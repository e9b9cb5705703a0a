#!/bin/sh
# bench/engine.sh - lowrank's engine next to ONNX Runtime, in one run.
# For vgg16, resnet50 and mobilenet_v2 at batch 1 and 8 with 1 and 2 threads
# it prints both medians, their ratio (lowrank / ORT: below 1 is faster) and
# both peak RSS figures, as a Markdown table for docs/benchmarks.md, under a
# header naming the CPU, its vector ISA, the ISA lowrank's kernels were
# allowed, and the load average before and after.
#
# Each configuration runs ROUNDS rounds, alternating the engines (lowrank,
# ORT, and BASE when given), and each engine's figure is the median over
# rounds of its per-round median, so that load from other processes hits
# both engines alike; the ratio is of those figures. The p10 columns are
# each engine's lowest 10th percentile over the rounds, and their ratio:
# on a shared VM whose cores slow down by up to 1.45x for seconds at a time
# (measured here, 2026-12-04: the same layer at 19 or 28 ms), a median
# takes in whichever phase a round fell into, a low percentile mostly not.
#
#   bench/engine.sh [BUILD_DIR]     (default: _build)
# Environment: LR_MODEL_DIR (default BUILD_DIR/tests/models-cache),
#   MODELS="vgg16 resnet50 mobilenet_v2", BATCHES="1 8", THREADS="1 2",
#   REPEAT=10, WARMUP=2, ROUNDS=3, LR_ORT_DIR (default tests/ort),
#   BASE=/path/to/another/lowrank (adds "before" columns: that binary's
#   median and its ratio to ORT, from the same rounds),
#   LR_CONV_ISA=avx2 (lowrank's kernels restricted to AVX2; ONNX Runtime
#   cannot be restricted and uses what the CPU has).
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
rounds=${ROUNDS:-3}
base=${BASE:-}
ort=${LR_ORT_DIR:-$here/tests/ort}/ort_run.js
py=/usr/bin/python3
[ -x "$lowrank" ] || { echo "bench/engine.sh: build lowrank first ($lowrank)" >&2; exit 1; }
mkdir -p "$md"
"$py" "$here/tests/models/make_models.py" "$md" --only "$(echo $models | tr ' ' ',')" >&2

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
if grep -q ' avx512f' /proc/cpuinfo; then isa="AVX-512"; elif grep -q ' avx2' /proc/cpuinfo; then isa="AVX2"; else isa="SSE"; fi
lisa=$isa
[ "${LR_CONV_ISA:-}" = avx2 ] && lisa="AVX2 (LR_CONV_ISA=avx2)"
echo "CPU: $cpu ($(nproc) cores), vector ISA: $isa; lowrank kernels: $lisa; ONNX Runtime: $isa (MLAS picks at run time)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds x $repeat runs after $warmup warm-up"
echo
if [ -n "$base" ]; then
	echo "| model | batch | threads | lowrank median ms | ORT median ms | ratio | lowrank p10 ms | ORT p10 ms | p10 ratio | before ms | before ratio | before p10 ms | before p10 ratio | lowrank peak RSS MiB | ORT peak RSS MiB |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
else
	echo "| model | batch | threads | lowrank median ms | ORT median ms | ratio | lowrank p10 ms | ORT p10 ms | p10 ratio | lowrank peak RSS MiB | ORT peak RSS MiB |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
fi
for m in $models; do
	hw=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['input_shape'][2])" "$md/$m.json")
	for b in $batches; do
		for t in $threads; do
			ours="" theirs="" before=""
			r=0
			while [ $r -lt $rounds ]; do
				ours="$ours $("$lowrank" bench "$md/$m.onnx" --input-shape "$b,3,$hw,$hw" \
					--threads "$t" --repeat "$repeat" --warmup "$warmup" --json)"
				theirs="$theirs $(node "$ort" bench "$md/$m.onnx" --input-shape "$b,3,$hw,$hw" \
					--threads "$t" --repeat "$repeat" --warmup "$warmup")"
				if [ -n "$base" ]; then
					before="$before $("$base" bench "$md/$m.onnx" --input-shape "$b,3,$hw,$hw" \
						--threads "$t" --repeat "$repeat" --warmup "$warmup" --json)"
				fi
				r=$((r + 1))
			done
			"$py" - "$m" "$b" "$t" "$ours" "$theirs" "$before" <<'PY'
import json, statistics, sys
m, b, t = sys.argv[1:4]
def parse(s):
    dec, out, i = json.JSONDecoder(), [], 0
    s = s.strip()
    while i < len(s):
        o, j = dec.raw_decode(s, i)
        out.append(o)
        i = j
        while i < len(s) and s[i].isspace():
            i += 1
    return out
ours, theirs, before = parse(sys.argv[4]), parse(sys.argv[5]), parse(sys.argv[6])
med = lambda runs: statistics.median(r["median_ms"] for r in runs)
p10 = lambda runs: min(r["p10_ms"] for r in runs)
rss = lambda runs: max(r["peak_rss_bytes"] for r in runs) / 2**20
o, r = med(ours), med(theirs)
row = "| %s | %s | %s | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f |" % (
    m, b, t, o, r, o / r, p10(ours), p10(theirs), p10(ours) / p10(theirs))
if before:
    row += " %.1f | %.2f | %.1f | %.2f |" % (med(before), med(before) / r, p10(before),
                                            p10(before) / p10(theirs))
print(row + " %.0f | %.0f |" % (rss(ours), rss(theirs)))
PY
		done
	done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
