#!/bin/sh
# `lowrank compress` end to end on real models trained on real data: the
# VGG-style and ResNet-style Fashion-MNIST CNNs in tests/data, calibrated on
# training images. Checks the report's claims, the output's validity in
# onnx.checker and ONNX Runtime, determinism, fixed ranks, exclusions, the
# four methods and the error paths.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
D="$top_srcdir/tests/data"
VGG="$D/fmnist_vgg.onnx"
RES="$D/fmnist_resnet.onnx"
have_ort=0
[ -d "$ORT_DIR/node_modules/onnxruntime-node" ] && have_ort=1

"$LOWRANK" compress --help | grep -q "usage: lowrank compress"; ok $? "compress --help"

# 300 seeded training images; 10% are held out by the solver.
"$PYTHON3" "$D/fmnist.py" calib 300 "$TMP/calib.npy" --seed 1
ok $? "calibration inputs from Fashion-MNIST training images"

# The channel scheme first (the default, spatial-channel, is below).
"$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective flops --speedup 3 --threads 2 --decomposition channel \
	-o "$TMP/vgg3.onnx" --report "$TMP/vgg3.json" >"$TMP/out" 2>"$TMP/err"
ok_log $? "$TMP/err" "compress fmnist_vgg 3x --decomposition channel"
grep -q "^wrote .*vgg3.onnx: theoretical speedup (FLOPs)" "$TMP/out"; ok $? "summary line"
grep -q "solving layer 5/5" "$TMP/err"; ok $? "progress names layer i of n"

"$PYTHON3" - "$TMP/vgg3.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
L = [l for l in r["layers"] if l["kind"] == "conv"]
assert len(L) == 6 and len(r["layers"]) == 7, len(r["layers"])
fc = r["layers"][-1]
assert fc["kind"] == "fc" and fc["name"] == "/fc/Gemm" and (fc["c"], fc["d"]) == (128, 10), fc
assert "too few input channels" in L[0]["skipped"], L[0]
for l in L[1:]:
    assert l["solution"] == "nonlinear", l
    assert 1 <= l["rank"] < l["d"], l
    # The layer's speedup follows from the exact cost d'(k^2 c + d).
    k2c = l["k"] * l["k"] * l["c"]
    assert abs(l["speedup"] - l["d"] * k2c / (l["rank"] * (k2c + l["d"]))) < 1e-9, l
    assert 0.5 < l["energy"] <= 1.0, l
    # The nonlinear solve never ends worse than its linear start.
    assert l["error_after"] <= l["error_before"] + 1e-9, l
    assert l["error_after"] < 0.5, l
ts = r["theoretical_speedup"]
assert abs(ts - r["mflops_before"] / r["mflops_after"]) < 1e-9
assert 3.0 <= ts < 3.6, ts
assert r["fit_inputs"] == 270 and r["holdout"]["inputs"] == 30, r
assert r["holdout"]["top1_agreement"] >= 0.85, r["holdout"]
assert 0 < r["holdout"]["relative_output_error"] < 0.2, r["holdout"]
assert [m["batch"] for m in r["measured"]] == [1, 8], r["measured"]
for m in r["measured"]:
    assert m["original_ms"] > 0 and m["compressed_ms"] > 0
    assert abs(m["speedup"] - m["original_ms"] / m["compressed_ms"]) < 1e-9
assert r["method"] == "nonlinear-asymmetric" and r["seed"] == 0
assert r["decomposition"] == "channel" and all(l["scheme"] == "channel" for l in L[1:]), r
PY
ok $? "report: ranks, exact layer speedups, errors, target met, held-out fidelity"

# The output is a valid ONNX model with provenance, and each decomposed conv
# became k x k (d' filters) then 1 x 1 (d filters).
"$PYTHON3" - "$TMP/vgg3.onnx" "$TMP/vgg3.json" "$VGG" "$TMP/calib.npy" <<'PY'
import hashlib, json, sys
import onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
r = json.load(open(sys.argv[2]))
meta = {p.key: p.value for p in m.metadata_props}
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
assert meta["lowrank.source_sha256"] == sha(sys.argv[3]), meta
assert meta["lowrank.calibration_sha256"] == sha(sys.argv[4]), meta
assert json.loads(meta["lowrank.params"])["method"] == "nonlinear-asymmetric", meta
ranks = json.loads(meta["lowrank.ranks"])
assert ranks == {l["name"]: l["rank"] for l in r["layers"] if "rank" in l}, ranks
init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
convs = [n for n in m.graph.node if n.op_type == "Conv"]
assert len(convs) == 11, len(convs)
shapes = [init[n.input[1]].shape for n in convs]
for l in [l for l in r["layers"] if l["kind"] == "conv"][1:]:
    ka = (l["rank"], l["c"], l["k"], l["k"])
    kb = (l["d"], l["rank"], 1, 1)
    i = shapes.index(ka)
    assert shapes[i + 1] == kb, (shapes[i], shapes[i + 1])
PY
ok $? "output passes onnx.checker, carries provenance, has the reported factor shapes"

"$PYTHON3" -c "import numpy as np; np.save('$TMP/x.npy', np.load('$TMP/calib.npy')[:64])"
"$LOWRANK" run "$TMP/vgg3.onnx" "$TMP/x.npy" -o "$TMP/lr.npy" >/dev/null; ok $? "lowrank runs the output"
if [ $have_ort = 1 ]; then
	"$NODE" "$ORT_DIR/ort_run.js" run "$TMP/vgg3.onnx" "$TMP/x.npy" "$TMP/ort.npy" >/dev/null &&
		"$PYTHON3" "$ORT_DIR/compare.py" "$TMP/lr.npy" "$TMP/ort.npy" --rtol 1e-4 >/dev/null
	ok $? "ONNX Runtime runs the output and agrees with lowrank's engine"
	"$NODE" "$ORT_DIR/ort_run.js" run "$VGG" "$TMP/x.npy" "$TMP/ort0.npy" >/dev/null
	"$PYTHON3" - "$TMP/ort0.npy" "$TMP/ort.npy" <<'PY'
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
agree = (a.argmax(1) == b.argmax(1)).mean()
assert agree >= 0.85, agree
PY
	ok $? "ONNX Runtime: compressed and original agree on top-1 for >= 85% of inputs"
else
	ok 1 "onnxruntime-node is not installed (run scripts/install-deps.sh)"
fi

# Same seed, same threads: the same bytes.
"$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective flops --speedup 3 --threads 2 --decomposition channel \
	-o "$TMP/vgg3b.onnx" >/dev/null 2>"$TMP/e2" && cmp -s "$TMP/vgg3.onnx" "$TMP/vgg3b.onnx"
ok_log $? "$TMP/e2" "compress is deterministic for a given seed"

# Fixed ranks without a target, an exclusion, rounding, another method.
"$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective flops --ranks "/features/features.7/Conv=8,/features/features.12/Conv_output_0=20" \
	--method linear -o "$TMP/fixed.onnx" --report "$TMP/fixed.json" >/dev/null 2>"$TMP/e2"
ok_log $? "$TMP/e2" "compress with fixed ranks (node and output names)"
"$PYTHON3" - "$TMP/fixed.json" <<'PY'
import json, sys
L = {l["name"]: l for l in json.load(open(sys.argv[1]))["layers"]}
assert L["/features/features.7/Conv"]["rank"] == 8, L
assert L["/features/features.12/Conv"]["rank"] == 20, L
assert L["/features/features.7/Conv"]["solution"] == "linear"
decomposed = [n for n, l in L.items() if "rank" in l]
assert sorted(decomposed) == ["/features/features.12/Conv", "/features/features.7/Conv"], decomposed
PY
ok $? "fixed ranks are used exactly; other layers stay"
"$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective flops --speedup 2 --rank-multiple 8 \
	--exclude /features/features.2/Conv --method nonlinear -o "$TMP/ex.onnx" --report "$TMP/ex.json" >/dev/null 2>"$TMP/e2"
"$PYTHON3" - "$TMP/ex.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
L = {l["name"]: l for l in r["layers"]}
assert L["/features/features.2/Conv"]["skipped"] == "excluded by the user", L
for l in r["layers"]:
    if "rank" in l:
        assert l["rank"] % 8 == 0 or l["rank"] == l["d"], l
        assert l.get("rank2", 0) % 8 == 0, l
assert r["theoretical_speedup"] >= 2.0 and r["method"] == "nonlinear"
PY
ok_log $? "$TMP/e2" "--exclude and --rank-multiple honoured"

# A ResNet-style model: BatchNormalization folded, convolutions feeding the
# residual Add get the linear solution, the result runs in ONNX Runtime.
"$LOWRANK" compress "$RES" --calib "$TMP/calib.npy" --objective flops --speedup 2 \
	-o "$TMP/res2.onnx" --report "$TMP/res2.json" >/dev/null 2>"$TMP/err"
ok_log $? "$TMP/err" "compress fmnist_resnet 2x"
"$PYTHON3" - "$TMP/res2.json" "$TMP/res2.onnx" <<'PY'
import json, sys
import onnx
r = json.load(open(sys.argv[1]))
assert r["batchnorm_folded"] == 9, r["batchnorm_folded"]
sol = {l["name"]: l.get("solution") for l in r["layers"]}
# conv2 of every block feeds the residual Add: linear; conv1 feeds a ReLU.
lin = [n for n, s in sol.items() if s == "linear"]
non = [n for n, s in sol.items() if s == "nonlinear"]
assert lin and non, sol
assert all("conv2" in n or "down" in n for n in lin), lin
assert all("conv1" in n or "stem" in n for n in non), non
assert r["theoretical_speedup"] >= 2.0
assert r["holdout"]["top1_agreement"] >= 0.8, r["holdout"]
m = onnx.load(sys.argv[2])
onnx.checker.check_model(m, full_check=True)
assert not [n for n in m.graph.node if n.op_type == "BatchNormalization"]
PY
ok $? "resnet: BN folded, linear solution before the Add, valid output, agreement reported"
# Asymmetric regressors come from a cached cut advanced layer by layer, or,
# where the cut does not fit the memory budget, from rerunning the network:
# the same model either way, residual branches included.
"$LOWRANK" compress "$RES" --calib "$TMP/calib.npy" --objective flops --speedup 2 --memory-budget 40 \
	-o "$TMP/res2mix.onnx" --report "$TMP/res2mix.json" >/dev/null 2>"$TMP/e2" && cmp -s "$TMP/res2.onnx" "$TMP/res2mix.onnx"
ok_log $? "$TMP/e2" "resnet: cached cuts and reruns (40 MiB budget) give the byte-identical model"
"$PYTHON3" - "$TMP/res2.json" "$TMP/res2mix.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ca = [l["from_cached_cut"] for l in a["layers"] if "rank" in l]
cb = [l["from_cached_cut"] for l in b["layers"] if "rank" in l]
assert ca[0] is False and all(ca[1:]), ca
assert cb[0] is False and any(cb) and not all(cb[1:]), cb
assert 0 < b["cache_peak_bytes"] <= 40 << 20, b["cache_peak_bytes"]
PY
ok $? "resnet: the report says which layers used the cached cut; the cache stays in budget"
# The spatial + channel scheme (issue 9, the default): where the selection finds it
# better, a 3x3 conv becomes 3x1 (d'') -> 1x3 (d') -> 1x1 (d). The report
# says which scheme each layer got and what each stage left; the FLOPs it
# claims are those of the written model; the model is valid ONNX, ONNX
# Runtime agrees with lowrank on it; and each split layer's output in the
# written model reproduces the solver's own fit (error_after, measured
# on the fitting samples) over all positions of the fitting inputs.
"$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective flops --speedup 5 --threads 2 \
	-o "$TMP/vggs5.onnx" --report "$TMP/vggs5.json" >/dev/null 2>"$TMP/err"
ok_log $? "$TMP/err" "compress fmnist_vgg 5x (the default decomposition, spatial-channel)"
"$PYTHON3" - "$TMP/vggs5.json" "$TMP/vggs5.onnx" <<'PY'
import json, sys
import onnx
from onnx import numpy_helper
r = json.load(open(sys.argv[1]))
assert r["decomposition"] == "spatial-channel", r["decomposition"]
L = [l for l in r["layers"] if "rank" in l]
sp = [l for l in L if l["scheme"] == "spatial-channel"]
assert sp, [l.get("scheme") for l in L]
for l in L:
    assert l["scheme"] in ("channel", "spatial-channel"), l
for l in sp:
    assert 1 <= l["rank2"] <= min(3 * l["c"], 3 * l["d"]) and 1 <= l["rank"] < l["d"], l
    assert 0 < l["filter_energy"] <= 1 and abs(l["filter_error"] ** 2 + l["filter_energy"] - 1) < 1e-9, l
    assert 0 < l["split_energy"] <= 1, l
    assert 0 <= l["error_split"] < 1 and 0 <= l["error_after"] <= l["error_before"] + 1e-9, l
assert r["theoretical_speedup"] >= 5 * (1 - 1e-9), r["theoretical_speedup"]
m = onnx.load(sys.argv[2])
onnx.checker.check_model(m, full_check=True)
init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
nodes = {n.name: n for n in m.graph.node}
for l in sp:
    v, a, b = (nodes[l["name"] + s] for s in (".lr_v", ".lr_a", ".lr_b"))
    assert a.input[0] == v.output[0] and b.input[0] == a.output[0] and b.output[0] == l["output"]
    assert init[v.input[1]].shape == (l["rank2"], l["c"], 3, 1), init[v.input[1]].shape
    assert init[a.input[1]].shape == (l["rank"], l["rank2"], 1, 3), init[a.input[1]].shape
    assert init[b.input[1]].shape == (l["d"], l["rank"], 1, 1), init[b.input[1]].shape
    assert len(v.input) == 2, "V has no bias"
PY
ok $? "spatial-channel: report per layer (scheme, d'', d', stage errors), factor shapes, onnx.checker"
# The split energies come from input patches gathered in the sampling pass;
# LR_SPLIT_NO_PATCHES makes them run the network to each layer instead.
# Both ways give the same energies (same 32 inputs here) and model.
LR_SPLIT_NO_PATCHES=1 "$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective flops --speedup 5 \
	--threads 2 -o "$TMP/vggs5n.onnx" --report "$TMP/vggs5n.json" >/dev/null 2>"$TMP/e2" &&
	"$PYTHON3" -c "
import json, sys
a, b = (json.load(open(f))['layers'] for f in sys.argv[1:3])
pairs = [(x, y) for x, y in zip(a, b) if 'split_energy' in x]
assert pairs and all(x['rank2'] == y['rank2'] and x['rank'] == y['rank'] and
                     abs(x['split_energy'] - y['split_energy']) < 1e-7 for x, y in pairs), pairs" \
	"$TMP/vggs5.json" "$TMP/vggs5n.json"
ok_log $? "$TMP/e2" "split energies from sampled patches equal those from running the network to each layer"
"$PYTHON3" - "$VGG" "$TMP/vggs5.onnx" "$TMP/vggs5.json" <<'PY'
import json, sys
import numpy as np
import onnx
from onnx import shape_inference
def conv_macs(path):
    g = shape_inference.infer_shapes(onnx.load(path)).graph
    shp = {vi.name: [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]
           for vi in list(g.value_info) + list(g.output) + list(g.input)}
    w = {t.name: list(t.dims) for t in g.initializer}
    # Convolutions, and the fully connected layers (Gemm, MatMul with a
    # constant weight): the report's theoretical speedup counts both.
    macs = 0.0
    for n in g.node:
        if n.op_type == "Conv":
            macs += float(np.prod(shp[n.output[0]])) * float(np.prod(w[n.input[1]][1:]))
        elif n.op_type in ("Gemm", "MatMul") and n.input[1] in w:
            out = shp[n.output[0]]
            macs += float(np.prod(out)) * float(np.prod(w[n.input[1]])) / out[-1]
    return macs
got = conv_macs(sys.argv[1]) / conv_macs(sys.argv[2])
want = json.load(open(sys.argv[3]))["theoretical_speedup"]
assert abs(got - want) <= 1e-6 * want, (got, want)
PY
ok $? "spatial-channel: the written model's conv and FC FLOPs give the reported speedup"
"$LOWRANK" run "$TMP/vggs5.onnx" "$TMP/x.npy" -o "$TMP/lrs.npy" >/dev/null; ok $? "lowrank runs the spatial-channel output"
if [ $have_ort = 1 ]; then
	"$NODE" "$ORT_DIR/ort_run.js" run "$TMP/vggs5.onnx" "$TMP/x.npy" "$TMP/orts.npy" >/dev/null &&
		"$PYTHON3" "$ORT_DIR/compare.py" "$TMP/lrs.npy" "$TMP/orts.npy" --rtol 1e-4 >/dev/null
	ok $? "ONNX Runtime runs the spatial-channel output and agrees with lowrank's engine"
	# Each split layer's output as a graph output, in both models.
	"$PYTHON3" - "$VGG" "$TMP/vggs5.onnx" "$TMP/vggs5.json" "$TMP" <<'PY'
import json, sys
import onnx
from onnx import helper, TensorProto
r = json.load(open(sys.argv[3]))
sp = [l for l in r["layers"] if l.get("scheme") == "spatial-channel"]
for tag, path in (("o", sys.argv[1]), ("s", sys.argv[2])):
    for i, l in enumerate(sp):
        m = onnx.load(path)
        del m.graph.output[:]
        m.graph.output.append(helper.make_tensor_value_info(l["output"], TensorProto.FLOAT, None))
        onnx.save(m, "%s/layer_%s%d.onnx" % (sys.argv[4], tag, i))
PY
	nsp=$("$PYTHON3" -c "import json; print(sum(l.get('scheme') == 'spatial-channel' for l in json.load(open('$TMP/vggs5.json'))['layers']))")
	i=0; st=0
	while [ $i -lt "$nsp" ]; do
		"$NODE" "$ORT_DIR/ort_run.js" run "$TMP/layer_o$i.onnx" "$TMP/calib.npy" "$TMP/yo$i.npy" >/dev/null &&
			"$NODE" "$ORT_DIR/ort_run.js" run "$TMP/layer_s$i.onnx" "$TMP/calib.npy" "$TMP/ys$i.npy" >/dev/null || st=1
		i=$((i + 1))
	done
	[ $st = 0 ] && "$PYTHON3" - "$TMP/vggs5.json" "$TMP" <<'PY'
import json, sys
import numpy as np
r = json.load(open(sys.argv[1]))
sp = [l for l in r["layers"] if l.get("scheme") == "spatial-channel"]
for i, l in enumerate(sp):
    t = np.maximum(np.load("%s/yo%d.npy" % (sys.argv[2], i))[:, :, 1:-1, 1:-1], 0)
    y = np.maximum(np.load("%s/ys%d.npy" % (sys.argv[2], i))[:, :, 1:-1, 1:-1], 0)
    e = np.linalg.norm(t - y) / np.linalg.norm(t)
    # every interior position of all 300 inputs (270 of them fitted) against
    # the solver's error on its 10 sampled positions per fitting input
    assert abs(e - l["error_after"]) <= 0.15 * l["error_after"] + 0.01, (l["name"], e, l["error_after"])
    assert e < l["error_split"] + 0.05 or l["error_after"] < l["error_split"], (l["name"], e, l)
PY
	ok $? "spatial-channel: each split layer of the written model reproduces the solver's fit (error_after)"
else
	ok 1 "onnxruntime-node is not installed (run scripts/install-deps.sh)"
	ok 1 "onnxruntime-node is not installed (run scripts/install-deps.sh)"
fi
expect_fail "decomposition" "unknown decomposition" "$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --decomposition cubic -o "$TMP/e.onnx"

# A budget too small for all sampled responses fits fewer inputs, and says so.
"$LOWRANK" compress "$RES" --calib "$TMP/calib.npy" --objective flops --speedup 2 --memory-budget 12 \
	-o "$TMP/res2small.onnx" --report "$TMP/res2small.json" >/dev/null 2>"$TMP/e2" &&
"$PYTHON3" - "$TMP/res2small.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert 100 < r["fit_inputs"] < 270 and "memory budget" in r["note"], (r["fit_inputs"], r.get("note"))
assert r["holdout"]["inputs"] == 30
PY
ok_log $? "$TMP/e2" "a small memory budget fits fewer inputs and notes it"
if [ $have_ort = 1 ]; then
	"$LOWRANK" run "$TMP/res2.onnx" "$TMP/x.npy" -o "$TMP/rlr.npy" >/dev/null &&
		"$NODE" "$ORT_DIR/ort_run.js" run "$TMP/res2.onnx" "$TMP/x.npy" "$TMP/rort.npy" >/dev/null &&
		"$PYTHON3" "$ORT_DIR/compare.py" "$TMP/rlr.npy" "$TMP/rort.npy" --rtol 1e-4 >/dev/null
	ok $? "ONNX Runtime runs the compressed resnet and agrees with lowrank's engine"
fi

# A depthwise (grouped) conv counts with its real cost, c / group channels
# per filter, so the target is met exactly, not overshot (seen on MobileNet).
"$PYTHON3" - "$TMP/dw.onnx" "$TMP/dwx.npy" <<'PY'
import sys, numpy as np, onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as T
r = np.random.default_rng(3)
def conv(name, x, w, group=1):
    inits.append(nh.from_array(r.standard_normal(w).astype(np.float32) * 0.2, name + "_w"))
    inits.append(nh.from_array(r.standard_normal(w[0]).astype(np.float32) * 0.1, name + "_b"))
    nodes.append(h.make_node("Conv", [x, name + "_w", name + "_b"], [name], name=name, pads=[1, 1, 1, 1], group=group))
    nodes.append(h.make_node("Relu", [name], [name + "_r"]))
    return name + "_r"
nodes, inits = [], []
y = conv("c1", "x", (64, 16, 3, 3))
y = conv("dw", y, (64, 1, 3, 3), group=64)
y = conv("c2", y, (64, 64, 3, 3))
nodes.append(h.make_node("GlobalAveragePool", [y], ["g"]))
nodes.append(h.make_node("Flatten", ["g"], ["out"]))
g = h.make_graph(nodes, "dw", [h.make_tensor_value_info("x", T.FLOAT, ["n", 16, 12, 12])],
                 [h.make_tensor_value_info("out", T.FLOAT, ["n", 64])], inits)
m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
np.save(sys.argv[2], r.standard_normal((40, 16, 12, 12)).astype(np.float32))
PY
"$LOWRANK" compress "$TMP/dw.onnx" --calib "$TMP/dwx.npy" --objective flops --speedup 1.5 -o "$TMP/dwc.onnx" --report "$TMP/dw.json" >/dev/null 2>"$TMP/e2" &&
"$PYTHON3" - "$TMP/dw.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
L = {l["name"]: l for l in r["layers"]}
assert "depthwise" in L["dw"]["skipped"], L["dw"]
assert 1.5 <= r["theoretical_speedup"] < 1.6, r["theoretical_speedup"]
PY
ok_log $? "$TMP/e2" "a model with a depthwise conv reaches the target without overshooting it"

# The measured objective: ranks chosen against times measured in lowrank's
# engine at the deployment batch. Timings are noisy on a shared machine, so
# these check properties that hold whatever they are: the selection keeps
# within the budget its own timings give, ranks sit on the CPU's vector
# block, a cached run measures nothing and gives the same bytes, and an
# unreachable target fails before any sampling.
"$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective time --speedup 1.1 --deploy-batch 8 \
	--timing-cache "$TMP/tc.tsv" -o "$TMP/vt.onnx" --report "$TMP/vt.json" >/dev/null 2>"$TMP/err"
ok_log $? "$TMP/err" "compress --objective time --speedup 1.1 --deploy-batch 8"
"$PYTHON3" - "$TMP/vt.json" <<'PY'
import json, math, sys
r = json.load(open(sys.argv[1]))
d, cm = r["deploy"], r["cost_model"]
assert r["objective"] == "time" and d["batch"] == 8 and d["threads"] == 1, d
vb = cm["vector_block"]
assert vb in (4, 8, 16) and r["selection"]["rank_multiple"] == vb, (vb, r["selection"])
assert cm["measured"] > 0 and cm["measure_seconds"] > 0 and cm["timing_cache"].endswith("tc.tsv"), cm
total = d["rest_ms"]
for l in r["layers"]:
    if "time_ms_before" not in l:
        continue
    # every rank when no multiple of the block is below the layer's bound
    small = max(c["rank"] for c in l["candidates"]) < vb
    for c in l["candidates"]:
        assert (c["rank"] % vb == 0 or small) and c["ms"] > 0, (l["name"], c)
    if "rank" in l:
        assert l["rank"] % vb == 0 or small, l
        # the chosen candidate: a channel rank, or a spatial (d'', d') triple
        t = [c["ms"] for c in l["candidates"] if c["rank"] == l["rank"] and c.get("rank2") == l.get("rank2")]
        assert t == [l["time_ms_after"]] and l["time_ms_after"] < l["time_ms_before"], l
    elif l["skipped"].startswith("not faster"):
        assert all(c["ms"] >= l["time_ms_before"] for c in l["candidates"] if "rank2" not in c), l
    total += l["time_ms_after"]
# Calibration: the first trial asks for the request; another follows only
# when the one before missed it by more than 5%; the trial kept is the one
# closest to the request.
cal = r["selection"]["calibration"]
# (past the predicted bound the first trial is the fastest ranks')
assert 1 <= len(cal) <= 3, cal
assert cal[0]["target"] == 1.1 or cal[0]["target"] < 1.1 <= cal[0]["trial_speedup"], cal
err = [abs(math.log(c["trial_speedup"] / 1.1)) for c in cal]
assert all(e > math.log(1.05) for e in err[:-1]), cal
kept = [i for i, c in enumerate(cal) if c["kept"]]
assert kept == [err.index(min(err))], cal
k = cal[kept[0]]
# The chosen ranks fit the budget the measured timings give for its target.
assert abs(total - d["predicted_ms"]) < 1e-6 * total, (total, d["predicted_ms"])
assert total <= d["original_ms"] / k["target"] * (1 + 1e-9), (total, d["original_ms"], k)
assert abs(d["predicted_speedup"] - k["predicted_speedup"]) < 1e-9 * k["predicted_speedup"], (d, k)
assert d["predicted_speedup"] >= k["target"] * (1 - 1e-9), (d, k)
assert d["measured_speedup"] > 0 and d["flop_ratio"] >= 1, d
assert "measuring" in r["stage_seconds"] and "calibrating" in r["stage_seconds"], r["stage_seconds"]
PY
ok $? "time objective: ranks on the vector block, each faster than its layer, within the measured budget"
n=$(grep -vc '^#' "$TMP/tc.tsv")
[ "$n" -gt 5 ] && [ -z "$(ls "$TMP" | grep 'tc.tsv.tmp')" ]
ok $? "the timing cache holds $n entries and no temporary file is left"
"$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective time --speedup 1.1 --deploy-batch 8 \
	--timing-cache "$TMP/tc.tsv" -o "$TMP/vt2.onnx" --report "$TMP/vt2.json" >/dev/null 2>"$TMP/e2" &&
	cmp -s "$TMP/vt.onnx" "$TMP/vt2.onnx" &&
	"$PYTHON3" -c "
import json, sys; c = json.load(open(sys.argv[1]))['cost_model']
assert c['measured'] == 0 and c['from_cache'] > 0, c" "$TMP/vt2.json"
rc=$?
[ $rc -eq 0 ] || for f in vt vt2; do
	"$PYTHON3" -c "
import json, sys; r = json.load(open(sys.argv[1]))
print('# %s: cost_model %s' % (sys.argv[1], r['cost_model']))
print('# calibration %s' % r['selection'].get('calibration'))
print('# ranks %s' % [(l['name'], l.get('rank'), l.get('rank2')) for l in r['layers']])" "$TMP/$f.json"
done
[ $rc -eq 0 ]
ok_log $? "$TMP/e2" "a cached run measures nothing and gives the byte-identical model"
# Timings of another build (another engine) are not used: the same entries
# under another build's key are all measured again.
sed "s/|build=[^|]*|/|build=0123456789abcdef|/" "$TMP/tc.tsv" >"$TMP/tc_other.tsv"
"$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective time --speedup 1.1 --deploy-batch 8 \
	--timing-cache "$TMP/tc_other.tsv" -o "$TMP/vt3.onnx" --report "$TMP/vt3.json" >/dev/null 2>"$TMP/e2" &&
	"$PYTHON3" -c "
import json, sys; c = json.load(open(sys.argv[1]))['cost_model']
assert c['from_cache'] == 0 and c['measured'] > 0 and len(c['build']) >= 16, c" "$TMP/vt3.json" &&
	grep -q "build=0123456789abcdef" "$TMP/tc_other.tsv" &&
	grep -q "build=$("$PYTHON3" -c "import json,sys; print(json.load(open(sys.argv[1]))['cost_model']['build'])" "$TMP/vt3.json")|" "$TMP/tc_other.tsv"
ok_log $? "$TMP/e2" "timings cached by another build are measured again (the key names the build)"
"$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective time --speedup 1.1 --deploy-batch 8 \
	--rank-multiple 8 --timing-cache "$TMP/tc.tsv" -o "$TMP/vt8.onnx" --report "$TMP/vt8.json" >/dev/null 2>"$TMP/e2" &&
	"$PYTHON3" -c "
import json, sys; r = json.load(open(sys.argv[1]))
assert r['selection']['rank_multiple'] == 8
assert all(c['rank'] % 8 == 0 for l in r['layers'] for c in l.get('candidates', [])), r['layers']" "$TMP/vt8.json"
ok_log $? "$TMP/e2" "--rank-multiple overrides the vector block"
expect_fail "the fastest reachable is" "an unreachable measured target names the fastest reachable speedup" \
	"$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective time --speedup 50 --timing-cache "$TMP/tc.tsv" -o "$TMP/e.onnx"
! grep -q "collecting" "$TMP/err"
ok $? "... before any response is sampled"
# The bound is measured on the whole model at the fastest ranks, next to
# the predicted one, and the higher decides. A target half way between
# them is taken either way (the fastest ranks' trial is cached, so this
# run measures the same bound): below the predicted bound as usual; above
# it, the knapsack starts from the fastest ranks, whose trial meets it.
meas=$(sed -n 's/.*the fastest reachable is \([0-9.]*\)x (measured.*/\1/p' "$TMP/err")
pred=$(sed -n 's/.*fastest rank, \([0-9.]*\)x predicted.*/\1/p' "$TMP/err")
# The message rounds both to 0.01, so when they are that close the side of
# the predicted bound a half-way target falls on is unknown: then a target
# just below both is asked for instead (a normal selection). "That close"
# is 0.02 apart or less, decided with a margin (0.025) on both sides of the
# test: 2.21 - 2.19 is a hair above 0.02 in floating point, and 2.19 + 0.02
# a hair above 2.21, which once sent the two checks opposite ways.
mid=$("$PYTHON3" -c "
import sys; m, p = float(sys.argv[1]), float(sys.argv[2])
print('%.4f' % ((m + p) / 2 if abs(m - p) > 0.025 else min(m, p) - 0.02))" "$meas" "$pred" 2>/dev/null)
[ -n "$mid" ] && "$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective time --speedup "$mid" \
	--timing-cache "$TMP/tc.tsv" -o "$TMP/mid.onnx" --report "$TMP/mid.json" >/dev/null 2>"$TMP/e2" &&
	"$PYTHON3" -c "
import json, sys; r = json.load(open(sys.argv[1])); cal = r['selection']['calibration']
mid, pred, meas = (float(a) for a in sys.argv[2:5])
if meas > pred + 0.025:
    # the budget of the fastest ranks: their predicted speedup, their (cached) trial
    assert abs(cal[0]['target'] - pred) < 0.01 and abs(cal[0]['trial_speedup'] - meas) < 0.01, cal
else:
    assert cal[0]['target'] == mid, cal" "$TMP/mid.json" "$mid" "$pred" "$meas"
ok_log $? "$TMP/e2" "a target half way between the predicted ($pred x) and the measured bound ($meas x) is taken"
expect_fail "objective" "unknown objective" "$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective speed -o "$TMP/e.onnx"

# A bias that reaches the conv through an Identity (exporters share one
# bias tensor that way) is kept in the factors: the same model with the
# bias given directly compresses to the same output error.
"$PYTHON3" - "$TMP/idb.onnx" "$TMP/idb2.onnx" "$TMP/idbx.npy" <<'PY'
import sys, numpy as np, onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as T
r = np.random.default_rng(5)
def build(identity):
    nodes, inits = [], []
    rr = np.random.default_rng(5)
    def conv(name, x, w, via):
        inits.append(nh.from_array(rr.standard_normal(w).astype(np.float32) * 0.2, name + "_w"))
        b = rr.standard_normal(w[0]).astype(np.float32) * 0.5
        if via and identity:
            inits.append(nh.from_array(b, name + "_b0"))
            nodes.append(h.make_node("Identity", [name + "_b0"], [name + "_b"]))
        else:
            inits.append(nh.from_array(b, name + "_b"))
        nodes.append(h.make_node("Conv", [x, name + "_w", name + "_b"], [name], name=name, pads=[1, 1, 1, 1]))
        nodes.append(h.make_node("Relu", [name], [name + "_r"]))
        return name + "_r"
    y = conv("c1", "x", (32, 16, 3, 3), False)
    y = conv("c2", y, (64, 32, 3, 3), True)
    nodes.append(h.make_node("GlobalAveragePool", [y], ["g"]))
    nodes.append(h.make_node("Flatten", ["g"], ["out"]))
    g = h.make_graph(nodes, "idb", [h.make_tensor_value_info("x", T.FLOAT, ["n", 16, 12, 12])],
                     [h.make_tensor_value_info("out", T.FLOAT, ["n", 64])], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    return m
onnx.save(build(True), sys.argv[1])
onnx.save(build(False), sys.argv[2])
np.save(sys.argv[3], r.standard_normal((100, 16, 12, 12)).astype(np.float32))
PY
"$LOWRANK" compress "$TMP/idb.onnx" --calib "$TMP/idbx.npy" --objective flops --ranks c2=16 --method linear \
	-o "$TMP/idbc.onnx" --report "$TMP/idb.json" >/dev/null 2>"$TMP/e2" &&
"$LOWRANK" compress "$TMP/idb2.onnx" --calib "$TMP/idbx.npy" --objective flops --ranks c2=16 --method linear \
	-o "$TMP/idb2c.onnx" --report "$TMP/idb2.json" >/dev/null 2>"$TMP/e2" &&
"$PYTHON3" -c "
import json, sys
a, b = (json.load(open(p))['holdout']['relative_output_error'] for p in sys.argv[1:3])
assert abs(a - b) <= 1e-6 * b, (a, b)" "$TMP/idb.json" "$TMP/idb2.json"
ok_log $? "$TMP/e2" "a conv bias passed through Identity is kept in the factors"

# Errors name the problem and exit non-zero; nothing is written.
expect_fail "speedup" "speedup below 1 refused" "$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective flops --speedup 0.5 -o "$TMP/e.onnx"
expect_fail "shape" "calibration of the wrong shape" "$LOWRANK" compress "$VGG" --calib "$D/tiny_input.npy" --objective flops --speedup 2 -o "$TMP/e.onnx"
"$PYTHON3" -c "
import numpy as np; x = np.load('$TMP/calib.npy')[:40].copy(); x[7, 0, 3, 4] = np.nan; np.save('$TMP/nan.npy', x)"
expect_fail "NaN" "NaN in the calibration data" "$LOWRANK" compress "$VGG" --calib "$TMP/nan.npy" --objective flops --speedup 2 -o "$TMP/e.onnx"
expect_fail "nosuchlayer" "unknown layer in --ranks is named" "$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective flops --ranks nosuchlayer=4 -o "$TMP/e.onnx"
expect_fail "would be slower than the layer itself (ranks up to 28 are faster)" "a rank that would slow the layer down is refused" \
	"$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective flops --ranks /features/features.2/Conv=30 -o "$TMP/e.onnx"
expect_fail "method" "unknown method" "$LOWRANK" compress "$VGG" --calib "$TMP/calib.npy" --objective flops --method cubic -o "$TMP/e.onnx"
expect_fail "usage" "missing --calib" "$LOWRANK" compress "$VGG" --speedup 2 -o "$TMP/e.onnx"
[ ! -e "$TMP/e.onnx" ]; ok $? "no output file after errors"

# Ctrl-C while it solves cancels and writes nothing. The signal is sent
# once the progress shows the first layer being solved (so the handler is
# in place and the solver is running), in a run that takes about 12 s more
# from there (500 samples per input); the run must then end, status 1
# ("canceled"), within 60 s.
"$LOWRANK" compress "$RES" --calib "$TMP/calib.npy" --objective flops --speedup 2 --samples-per-input 500 \
	-o "$TMP/c.onnx" >/dev/null 2>"$TMP/cerr" &
pid=$!
solving() { grep -q "solving layer 1/" "$TMP/cerr" || ! kill -0 $pid 2>/dev/null; }
wait_for 60 solving
t0=$(date +%s%N)
kill -INT $pid
wait_for 60 eval '! kill -0 $pid 2>/dev/null' || kill -9 $pid
wait $pid
st=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $st -eq 1 ] && grep -q "canceled" "$TMP/cerr" && [ ! -e "$TMP/c.onnx" ]
ok $? "SIGINT while solving cancels (exit $st after $ms ms) and writes nothing"

done_testing
