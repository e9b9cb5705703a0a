#!/bin/sh
# bench/layers.sh - per layer, does lowrank's engine price a low-rank pair
# the way ONNX Runtime does?
#
# Rank selection trusts the engine's timings, so what must match ONNX
# Runtime is not the absolute time but each replacement's cost relative to
# the layer it replaces. For single-layer models written by
# bench/layers_models.py (VGG-16's conv2..5 and fc6, the Fashion-MNIST VGG's
# small convs, ResNet-50's 1x1s; each original with its pairs k x k c->d'
# then 1x1 d'->d) it times both engines, 1 thread, and prints a Markdown
# table: both engines' times, their ratio, each engine's pair / original time,
# and "**>20%**" where lowrank's relative cost differs from ORT's by more
# than 20%. The machine is shared, so the engines alternate model by
# model, a group's ROUNDS rounds run back to back, and a relative cost is
# the median over rounds of (pair / original in the same round).
#
#   bench/layers.sh [BUILD_DIR]     (default: _build)
# Environment: LAYER_DIR (models; default BUILD_DIR/bench/layers),
#   LAYERS="vgg_conv3 ..." (default: all; see layers_models.py --list),
#   BATCHES="1 8", ROUNDS=3, THREADS=1, LR_ORT_DIR (default tests/ort),
#   CHAIN=1: also time each VGG original followed by a second original or
#   by a pair, and print a second table of what the second layer costs
#   inside a network (chain time minus the original's): single-layer
#   models make ONNX Runtime convert from and to its blocked layout around
#   every layer, which a network does once.
#   BASE=/path/to/an/older/lowrank: time it too, in the same rounds, and
#   print the tables for it first ("before") and then for BUILD_DIR's
#   ("after"), both against the same ORT timings.
# Each timing runs about 0.2 s of forward passes (at least 3) after three
# warm-ups; the figure of a round is that run's p10 (this VM stalls one run
# in ten or so for milliseconds, which a median still feels on layers of
# a few runs), and the ms columns show the median over rounds. Both
# engines run with glibc's malloc told to keep blocks up to 128 MiB in its
# heap (GLIBC_TUNABLES): ONNX Runtime's node binding allocates each run's
# output afresh, and a 3 MiB output mmap'd and unmapped on every run made
# its times bimodal (ResNet-50's 256->64 1x1 at 56x56: p10 0.75 ms, median
# 3.1; with the tunables 0.75-0.79), worse when pinned to one core, so
# neither engine is pinned. lowrank's heap serves the first few runs of a
# large output from fresh pages too (VGG-16's 128 -> 128 3x3 at 112x112:
# 38 ms a run for the first 5 runs, 20 after), so every timing also runs
# 3 warm-ups.
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
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=134217728:glibc.malloc.trim_threshold=1073741824
export GLIBC_TUNABLES
[ -x "$lowrank" ] || { echo "bench/layers.sh: build lowrank first ($lowrank)" >&2; exit 1; }
only=$(echo ${LAYERS:-} | tr ' ' ',')
chain=
[ "${CHAIN:-0}" = 0 ] || chain=--chain
"$py" "$here/bench/layers_models.py" "$dir" --only "$only" $chain
raw=$(mktemp)
list=$(mktemp)
trap 'rm -f "$raw" "$list"' EXIT INT TERM
"$py" "$here/bench/layers_models.py" "$dir" --only "$only" $chain --list >"$list"

# Header: the CPU and the widest vector ISA the engines can use.
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
if grep -q ' avx512f' /proc/cpuinfo; then isa="AVX-512"; elif grep -q ' avx2' /proc/cpuinfo; then isa="AVX2"; else isa="SSE"; fi
echo "CPU: $cpu ($(nproc) cores), vector ISA: $isa; threads $threads; $rounds rounds; p10 of each run"
echo

# Rounds of one group run back to back, so a pair and its original are
# timed minutes apart at most; each round alternates the engines per model.
groups=$(awk '{ print $1 }' "$list" | uniq)
for b in $batches; do
	for g0 in $groups; do
		for r in $(seq "$rounds"); do
			while read -r g name kind shape flops; do
				[ "$g" = "$g0" ] || continue
				f="$dir/${g}_$name.onnx"
				# about 0.2 s of runs at 40 GFLOP/s, 3 to 200 of them
				rep=$(( 8000000000 / (flops * b + 1) ))
				[ "$rep" -ge 3 ] || rep=3
				[ "$rep" -le 200 ] || rep=200
				if [ -n "${BASE:-}" ]; then
					a=$("$BASE" bench "$f" --input-shape "$b,$shape" --threads "$threads" \
						--repeat "$rep" --warmup 3 --json)
					echo "$g $name $kind $b $flops $r base $a" >>"$raw"
				fi
				a=$("$lowrank" bench "$f" --input-shape "$b,$shape" --threads "$threads" \
					--repeat "$rep" --warmup 3 --json)
				o=$(node "$ort" bench "$f" --input-shape "$b,$shape" --threads "$threads" \
					--repeat "$rep" --warmup 3)
				echo "$g $name $kind $b $flops $r lowrank $a" >>"$raw"
				echo "$g $name $kind $b $flops $r ort $o" >>"$raw"
			done <"$list"
			echo "bench/layers.sh: batch $b $g0 round $r" >&2
		done
	done
done

"$py" - "$raw" <<'PY'
import json, statistics, sys
t = {}
order = []
for line in open(sys.argv[1]):
    g, name, kind, b, fl, r, eng, js = line.split(" ", 7)
    key = (g, name, int(b))
    if key not in t:
        t[key] = {"kind": kind, "flops": int(fl), "lowrank": {}, "base": {}, "ort": {}}
        order.append(key)
    t[key][eng][int(r)] = json.loads(js)["p10_ms"]
med = statistics.median


def tables(eng):
    print("| layer | batch | lowrank ms | ORT ms | lowrank / ORT | FLOPs / orig | lowrank / orig | ORT / orig | differ |")
    print("|---|---|---|---|---|---|---|---|---|")
    flagged = total = 0
    for key in order:
        g, name, b = key
        e, o = t[key], t[(g, "orig", b)]
        if e["kind"] == "chain":
            continue
        lr, ort = med(e[eng].values()), med(e["ort"].values())
        if e["kind"] == "orig":
            print("| %s %s | %d | %.3f | %.3f | %.2f | 1 | 1 | 1 | |" % (g, name, b, lr, ort, lr / ort))
            continue
        # relative cost: the median over rounds of pair / original in that round
        rl = med(e[eng][r] / o[eng][r] for r in e[eng])
        ro = med(e["ort"][r] / o["ort"][r] for r in e["ort"])
        diff = rl / ro - 1
        total += 1
        flagged += abs(diff) > 0.2
        flag = ("**%+.0f%%**" if abs(diff) > 0.2 else "%+.0f%%") % (100 * diff)
        print("| %s %s | %d | %.3f | %.3f | %.2f | %.3f | %.3f | %.3f | %s |" % (
            g, name, b, lr, ort, lr / ort, e["flops"] / o["flops"], rl, ro, flag))
    print()
    print("%d of %d pair rows differ by more than 20%% (bold)." % (flagged, total))
    chains = [k for k in order if t[k]["kind"] == "chain" and k[1] != "chain_orig"]
    if chains:
        print()
        print("Inside a network: the second layer's time (chain minus the original alone), "
              "relative to a second original's.")
        print()
        print("| second layer | batch | lowrank ms | ORT ms | lowrank / orig | ORT / orig | differ |")
        print("|---|---|---|---|---|---|---|")
        flagged = 0
        for key in chains:
            g, name, b = key
            e, o, co = t[key], t[(g, "orig", b)], t[(g, "chain_orig", b)]
            def marg(x, eng, r):
                return x[eng][r] - o[eng][r]
            ml = med(marg(e, eng, r) for r in e[eng])
            mo = med(marg(e, "ort", r) for r in e["ort"])
            rl = med(marg(e, eng, r) / marg(co, eng, r) for r in e[eng])
            ro = med(marg(e, "ort", r) / marg(co, "ort", r) for r in e["ort"])
            diff = rl / ro - 1 if ro > 0 else float("inf")
            flagged += abs(diff) > 0.2
            flag = ("**%+.0f%%**" if abs(diff) > 0.2 else "%+.0f%%") % (100 * diff)
            print("| %s %s | %d | %.3f | %.3f | %.3f | %.3f | %s |" % (
                g, name.replace("chain_", ""), b, ml, mo, rl, ro, flag))
        print()
        print("%d of %d rows differ by more than 20%% (bold)." % (flagged, len(chains)))


engines = ["base", "lowrank"] if any(t[k]["base"] for k in order) else ["lowrank"]
for eng in engines:
    if len(engines) > 1:
        print("%s (%s):" % ("Before" if eng == "base" else "After", "BASE" if eng == "base" else "BUILD_DIR"))
        print()
    tables(eng)
    print()
PY
