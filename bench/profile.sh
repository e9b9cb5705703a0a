#!/bin/sh
# bench/profile.sh - where lowrank's engine loses time to ONNX Runtime, per
# op type and per Conv, Gemm and MatMul layer, for one model, batch and
# thread count.
#
#   bench/profile.sh MODEL.onnx [BATCH] [THREADS] [BUILD_DIR]
# Environment: REPEAT=20, WARMUP=3, LR_ORT_DIR (default tests/ort),
#   INPUT_SHAPE=C,H,W (default: MODEL.json's input_shape, torchvision's
#   exports; e.g. 1,28,28 for the Fashion-MNIST models), PRICING=1 (lowrank
#   with the kernels its cost model times with, `bench --pricing`),
#   ROWS_JSON=FILE (also write the matched layers as JSON, for
#   bench/pairs.sh).
# lowrank's per-node times come from LR_PROFILE (model/engine.c), ONNX
# Runtime's from its own profiler (bench/profile_ort.js), each node's median
# over the runs; both run here,
# lowrank first. ORT fuses activations (and some Adds) into its Conv nodes
# and lowrank fuses Relu/Clip into the Conv before them, so activations are
# counted with the Conv in both. Conv layers are matched by their order in
# the graph. Prints Markdown.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
model=$1
b=${2:-1}
t=${3:-1}
build=${4:-$here/_build}
repeat=${REPEAT:-20}
warmup=${WARMUP:-3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrprof.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chw=${INPUT_SHAPE:-$(/usr/bin/python3 -c "import json,sys; print(','.join(map(str, json.load(open(sys.argv[1]))['input_shape'][1:])))" "${model%.onnx}.json")}
pricing=
[ "${PRICING:-0}" = 1 ] && pricing=--pricing
LR_PROFILE="$tmp/lr.jsonl" "$build/lowrank" bench "$model" --input-shape "$b,$chw" \
	--threads "$t" --repeat "$repeat" --warmup "$warmup" $pricing --json >"$tmp/lr.json"
node "$here/bench/profile_ort.js" "$model" --input-shape "$b,$chw" \
	--threads "$t" --repeat "$repeat" --warmup "$warmup" >"$tmp/ort.json"
/usr/bin/python3 - "$tmp/lr.jsonl" "$tmp/ort.json" "$tmp/lr.json" "$model" "$b" "$t" ${ROWS_JSON:+"$ROWS_JSON"} <<'PY'
import json, sys
lr = [json.loads(l) for l in open(sys.argv[1])]
ort = json.load(open(sys.argv[2]))
bench = json.load(open(sys.argv[3]))
name = sys.argv[4].rsplit('/', 1)[-1]
nodes = [r for r in lr if 'node' in r]
ops = {r['op_total']: r['ms'] for r in lr if 'op_total' in r}
tot = [r for r in lr if 'total_ms' in r][0]['total_ms']
print("%s, batch %s, %s thread(s): lowrank bench median %.2f ms (sum of node medians %.2f), ONNX Runtime median %.2f ms with profiling on (sum of node medians %.2f)\n" % (
    name, sys.argv[5], sys.argv[6], bench['median_ms'], tot, ort['total_ms'], sum(ort['ops'].values())))
print("| op type | lowrank ms | ORT ms | ratio |")
print("|---|---|---|---|")
fold = {'FusedConv': 'Conv', 'NchwcConv': 'Conv', 'FusedGemm': 'Gemm', 'Relu': 'Relu'}
ot = {}
for k, v in ort['ops'].items():
    k = fold.get(k, k)
    ot[k] = ot.get(k, 0) + v
for k in sorted(set(ops) | set(ot), key=lambda k: -max(ops.get(k, 0), ot.get(k, 0))):
    a, c = ops.get(k, 0), ot.get(k, 0)
    if a < 0.005 and c < 0.005:
        continue
    print("| %s | %.3f | %.3f | %s |" % (k, a, c, "%.2f" % (a / c) if c > 0 else "-"))
lc = [r for r in nodes if r['op'] in ('Conv', 'Gemm', 'MatMul')]
oc = [n for n in ort['nodes'] if n[1] in ('Conv', 'FusedConv', 'NchwcConv', 'Gemm', 'FusedGemm', 'MatMul', 'FusedMatMul')]
print()
# ONNX Runtime names a Conv it rewrote after the output of the last node
# it fused into it (a Relu, or an Add and a Relu), plus "_nchwc"; one it
# kept, after its node; a Gemm it fused with its Relu, "fused " and the
# Gemm's name. Each of lowrank's Conv, Gemm and MatMul nodes is matched by
# following its output through up to two single readers.
import onnx
g = onnx.load(sys.argv[4], load_external_data=False).graph
byname = {n.name: n for n in g.node}
readers = {}
for n in g.node:
    for i in n.input:
        readers.setdefault(i, []).append(n)
ot = {}
for n in oc:
    k = n[0][:-6] if n[0].endswith('_nchwc') else n[0]
    k = k[6:] if k.startswith('fused ') else k
    ot[k] = ot.get(k, 0) + n[2]
rows, named = [], []
for i, r in enumerate(lc):
    n, c = byname.get(r['node']), None
    for hop in range(3):
        if n is None:
            break
        if n.name in ot or n.output[0] in ot:
            c = ot.pop(n.name if n.name in ot else n.output[0])
            break
        rd = readers.get(n.output[0], [])
        n = rd[0] if len(rd) == 1 else None
    rows.append((i, r['shape'], r['ms'], c))
    named.append({'node': r['node'], 'op': r['op'], 'shape': r['shape'], 'lowrank_ms': r['ms'], 'ort_ms': c})
if len(sys.argv) > 7:
    json.dump({'lowrank_median_ms': bench['median_ms'], 'ort_median_ms': ort['total_ms'], 'layers': named}, open(sys.argv[7], 'w'))
if any(c is None for _, _, _, c in rows) or ot:
    print("(%d of %d Conv, Gemm and MatMul nodes not matched to ONNX Runtime's)" % (sum(c is None for _, _, _, c in rows), len(rows)))
print("| # | Conv, Gemm or MatMul layer (lowrank shapes) | lowrank ms | ORT ms | ratio | lowrank - ORT ms |")
print("|---|---|---|---|---|---|")
for i, s, a, c in sorted(rows, key=lambda x: -(x[2] - (x[3] or 0))):
    if c is None:
        print("| %d | %s | %.3f | - | - | - |" % (i, s, a))
    else:
        print("| %d | %s | %.3f | %.3f | %.2f | %+.3f |" % (i, s, a, c, a / c if c else 0, a - c))
PY
