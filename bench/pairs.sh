#!/bin/sh
# bench/pairs.sh - does lowrank's engine price each low-rank replacement,
# relative to the layer it replaces, as ONNX Runtime does? (Issue 8, item
# 6.) Rank selection picks ranks from lowrank's own timings, so a pair that
# lowrank finds cheaper, relative to its original, than ONNX Runtime does
# makes the compressed model land short of the request in ONNX Runtime.
#
#   bench/pairs.sh ORIGINAL.onnx COMPRESSED.onnx [BATCH] [THREADS] [BUILD_DIR]
# Environment: ROUNDS=3, REPEAT=20, WARMUP=3, INPUT_SHAPE=C,H,W (default:
#   ORIGINAL.json's input_shape), LR_ORT_DIR (default tests/ort),
#   PRICING=1 (default; 0: lowrank's fastest kernels, not the ones its cost
#   model times with).
#
# The layers are timed where they run, inside the two whole models, with
# bench/profile.sh (each node's median over REPEAT runs, in both engines):
# a single-layer model would also time ONNX Runtime's layout conversions
# at its edges, which inside a network happen once per chain of layers,
# and on a shared VM the difference of two whole-model timings is noise at
# the size of one layer. Each round profiles the original model and then
# the compressed one. A decomposed layer X is found by its replacement's
# node names (X.lr_a, X.lr_v, X.lr_b; solver/rewrite.c); its cost ratio in
# each engine is (sum of the replacement's nodes) / (X in the original),
# the median over rounds of each round's ratio; "differ" is lowrank's
# ratio over ONNX Runtime's, minus 1 (bold beyond 20%). Activations that
# either engine fuses into a Conv or Gemm are counted with it. Prints
# Markdown.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
orig=$1
comp=$2
b=${3:-1}
t=${4:-1}
build=${5:-$here/_build}
rounds=${ROUNDS:-3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrpairs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chw=${INPUT_SHAPE:-$(/usr/bin/python3 -c "import json,sys; print(','.join(map(str, json.load(open(sys.argv[1]))['input_shape'][1:])))" "${orig%.onnx}.json")}
export INPUT_SHAPE="$chw" PRICING="${PRICING:-1}"
r=1
while [ "$r" -le "$rounds" ]; do
	ROWS_JSON="$tmp/orig.$r.json" sh "$here/bench/profile.sh" "$orig" "$b" "$t" "$build" >/dev/null
	ROWS_JSON="$tmp/comp.$r.json" sh "$here/bench/profile.sh" "$comp" "$b" "$t" "$build" >/dev/null
	r=$((r + 1))
done
/usr/bin/python3 - "$tmp" "$rounds" "$orig" "$comp" "$b" "$t" "$PRICING" <<'PY'
import json, re, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
med = statistics.median
o = [json.load(open('%s/orig.%d.json' % (tmp, r))) for r in range(1, rounds + 1)]
c = [json.load(open('%s/comp.%d.json' % (tmp, r))) for r in range(1, rounds + 1)]
suffix = re.compile(r'\.lr_[abv]$')
parts = {}
for l in c[0]['layers']:
    if suffix.search(l['node']):
        parts.setdefault(suffix.sub('', l['node']), []).append(l)
print("%s -> %s, batch %s, %s thread(s), %d rounds, lowrank %s; whole models with both profilers on, median ms (lowrank / ONNX Runtime): original %.2f / %.2f, compressed %.2f / %.2f; speedup lowrank %.2f, ONNX Runtime %.2f\n" % (
    sys.argv[3].rsplit('/', 1)[-1], sys.argv[4].rsplit('/', 1)[-1], sys.argv[5], sys.argv[6], rounds,
    'pricing (bench --pricing)' if sys.argv[7] == '1' else 'fastest kernels',
    med(x['lowrank_median_ms'] for x in o), med(x['ort_median_ms'] for x in o),
    med(x['lowrank_median_ms'] for x in c), med(x['ort_median_ms'] for x in c),
    med(x['lowrank_median_ms'] / y['lowrank_median_ms'] for x, y in zip(o, c)),
    med(x['ort_median_ms'] / y['ort_median_ms'] for x, y in zip(o, c))))
print("| layer | original (lowrank shapes) | replacement | lowrank ms orig → pair | ORT ms orig → pair | lowrank pair / orig | ORT pair / orig | differ |")
print("|---|---|---|---|---|---|---|---|")
def ms(run, name, key):
    for l in run['layers']:
        if l['node'] == name:
            return l[key]
    return None
def w(shape):
    m = re.search(r'w \[([0-9,]+)\]', shape)
    return m.group(1).split(',') if m else ['?']
n = beyond = 0
wsum = werr = 0.0
missing = []
for x in [l['node'] for l in o[0]['layers']]:
    if x not in parts:
        continue
    names = [p['node'] for p in parts[x]]
    per = {'lowrank_ms': [], 'ort_ms': []}
    abs_ = {'lowrank_ms': ([], []), 'ort_ms': ([], [])}
    for ro, rc in zip(o, c):
        for k in per:
            a = ms(ro, x, k)
            q = [ms(rc, p, k) for p in names]
            if a is None or a <= 0 or any(v is None for v in q):
                continue
            per[k].append(sum(q) / a)
            abs_[k][0].append(a)
            abs_[k][1].append(sum(q))
    if not per['lowrank_ms'] or not per['ort_ms']:
        missing.append(x)
        continue
    lr, ort = med(per['lowrank_ms']), med(per['ort_ms'])
    d = lr / ort - 1
    n += 1
    beyond += abs(d) > 0.2
    wo = med(abs_['ort_ms'][0])
    wsum += wo
    werr += wo * abs(d)
    shp = next(l['shape'] for l in o[0]['layers'] if l['node'] == x)
    rep = ' + '.join('%s %s×%s' % tuple(w(p['shape'])[i] for i in (0, 2, 3)) if p['op'] == 'Conv' else 'Gemm ' + '×'.join(w(p['shape'])) for p in parts[x])
    print("| %s | %s | %s | %.3f → %.3f | %.3f → %.3f | %.3f | %.3f | %s |" % (
        x, shp, rep, med(abs_['lowrank_ms'][0]), med(abs_['lowrank_ms'][1]),
        wo, med(abs_['ort_ms'][1]), lr, ort, ("**%+.0f%%**" if abs(d) > 0.2 else "%+.0f%%") % (100 * d)))
print()
print("%d of %d replaced layers differ by more than 20%%; mean |differ| weighted by ONNX Runtime's original layer time: %.0f%%" % (
    beyond, n, 100 * werr / wsum if wsum else 0))
if missing:
    print("not matched in ONNX Runtime's profile: %s" % ', '.join(missing))
PY
