#!/bin/sh
# bench/layers.sh - per layer, does lowrank's engine price a low-rank pair
# the way ONNX Runtime does?
#
# Rank selection trusts the engine's timings, so what must match ONNX
# Runtime is not the absolute time but each replacement's cost relative to
# the layer it replaces. For single-layer models written by
# bench/layers_models.py (VGG-16's conv2..5 and fc6, the Fashion-MNIST VGG's
# small convs, ResNet-50's 1x1s; each original with its pairs k x k c->d'
# then 1x1 d'->d) it times both engines, 1 thread, alternating them ROUNDS
# times (the machine is shared), and prints a Markdown table: medians of
# both, their ratio, each engine's pair / original time, and "**>20%**"
# where lowrank's relative cost differs from ORT's by more than 20%.
#
#   bench/layers.sh [BUILD_DIR]     (default: _build)
# Environment: LAYER_DIR (models; default BUILD_DIR/bench/layers),
#   LAYERS="vgg_conv3 ..." (default: all; see layers_models.py --list),
#   BATCHES="1 8", ROUNDS=3, THREADS=1, LR_ORT_DIR (default tests/ort).
# Each timing runs about 0.2 s of forward passes (at least 3) after one
# warm-up; the figure of a round is that run's median, and the table shows
# the median over rounds.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/_build}
lowrank="$build/lowrank"
dir=${LAYER_DIR:-$build/bench/layers}
batches=${BATCHES:-"1 8"}
rounds=${ROUNDS:-3}
threads=${THREADS:-1}
ort=${LR_ORT_DIR:-$here/tests/ort}/ort_run.js
py=/usr/bin/python3
[ -x "$lowrank" ] || { echo "bench/layers.sh: build lowrank first ($lowrank)" >&2; exit 1; }
only=$(echo ${LAYERS:-} | tr ' ' ',')
"$py" "$here/bench/layers_models.py" "$dir" --only "$only"
raw=$(mktemp)
list=$(mktemp)
trap 'rm -f "$raw" "$list"' EXIT INT TERM
"$py" "$here/bench/layers_models.py" "$dir" --only "$only" --list >"$list"

# Header: the CPU and the widest vector ISA the engines can use.
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
if grep -q ' avx512f' /proc/cpuinfo; then isa="AVX-512"; elif grep -q ' avx2' /proc/cpuinfo; then isa="AVX2"; else isa="SSE"; fi
echo "CPU: $cpu ($(nproc) cores), vector ISA: $isa; threads $threads; $rounds rounds"
echo

for b in $batches; do
	for r in $(seq "$rounds"); do
		while read -r g name kind shape flops; do
			f="$dir/${g}_$name.onnx"
			# about 0.2 s of runs at 40 GFLOP/s, 3 to 200 of them
			rep=$(( 8000000000 / (flops * b + 1) ))
			[ "$rep" -ge 3 ] || rep=3
			[ "$rep" -le 200 ] || rep=200
			a=$("$lowrank" bench "$f" --input-shape "$b,$shape" --threads "$threads" \
				--repeat "$rep" --warmup 1 --json)
			o=$(node "$ort" bench "$f" --input-shape "$b,$shape" --threads "$threads" \
				--repeat "$rep" --warmup 1)
			echo "$g $name $kind $b $flops lowrank $a" >>"$raw"
			echo "$g $name $kind $b $flops ort $o" >>"$raw"
			echo "bench/layers.sh: batch $b round $r $g $name" >&2
		done <"$list"
	done
done

"$py" - "$raw" <<'PY'
import json, statistics, sys
t = {}
order = []
for line in open(sys.argv[1]):
    g, name, kind, b, fl, eng, js = line.split(" ", 6)
    key = (g, name, int(b))
    if key not in t:
        t[key] = {"kind": kind, "flops": int(fl), "lowrank": [], "ort": []}
        order.append(key)
    t[key][eng].append(json.loads(js)["median_ms"])
print("| layer | batch | lowrank ms | ORT ms | lowrank / ORT | FLOPs / orig | lowrank / orig | ORT / orig | differ |")
print("|---|---|---|---|---|---|---|---|---|")
flagged = 0
for key in order:
    g, name, b = key
    e = t[key]
    o = t[(g, "orig", b)]
    lr, ort = statistics.median(e["lowrank"]), statistics.median(e["ort"])
    lo, oo = statistics.median(o["lowrank"]), statistics.median(o["ort"])
    if e["kind"] == "orig":
        print("| %s %s | %d | %.3f | %.3f | %.2f | 1 | 1 | 1 | |" % (g, name, b, lr, ort, lr / ort))
        continue
    rl, ro = lr / lo, ort / oo
    diff = rl / ro - 1
    flag = "**%+.0f%%**" % (100 * diff) if abs(diff) > 0.2 else "%+.0f%%" % (100 * diff)
    flagged += abs(diff) > 0.2
    print("| %s %s | %d | %.3f | %.3f | %.2f | %.3f | %.3f | %.3f | %s |" % (
        g, name, b, lr, ort, lr / ort, e["flops"] / o["flops"], rl, ro, flag))
print()
print("%d pair rows differ by more than 20%% (bold)." % flagged)
PY
