#!/bin/sh
# Fully connected layers end to end (solver/fc.h): the PyTorch-exported
# tests/data/fc_mlp.onnx (Gemm, MatMul + Add, Gemm) and the hand-written
# tests/data/fc_gemm.onnx (transB = 0 with alpha 0.5 and beta 2; transB = 1
# with a 1 x d bias) are compressed; the report's claims, the rewritten
# graph, ONNX Runtime's agreement with lowrank's engine on the result, the
# projection identity that pins alpha/beta/transB, the fit choices and the
# default (time) objective are checked.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
D="$top_srcdir/tests/data"
MLP="$D/fc_mlp.onnx"
GEMM="$D/fc_gemm.onnx"
have_ort=0
[ -d "$ORT_DIR/node_modules/onnxruntime-node" ] && have_ort=1

"$PYTHON3" - "$TMP" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(7)
np.save(sys.argv[1] + "/mlp_x.npy", rng.standard_normal((200, 3, 8, 8)).astype(np.float32))
np.save(sys.argv[1] + "/gemm_x.npy", rng.standard_normal((200, 64)).astype(np.float32))
PY
ok $? "seeded calibration inputs"

# ---- FLOP objective, every FC layer at a fixed rank ----------------------
"$LOWRANK" compress "$MLP" --calib "$TMP/mlp_x.npy" --objective flops --threads 2 \
	--ranks /fc1/Gemm=64,/MatMul=32,/fc3/Gemm=8 -o "$TMP/mlp.onnx" --report "$TMP/mlp.json" \
	>"$TMP/out" 2>"$TMP/err"
ok $? "compress fc_mlp with fixed ranks for the Gemm, MatMul and Gemm"
grep -q "^wrote .*mlp.onnx: theoretical speedup (FLOPs) .*, file 1.2 -> 0.[0-9] MB" "$TMP/out"
ok $? "summary line gives the FLOP ratio and the file size before and after"

"$PYTHON3" - "$TMP/mlp.json" "$TMP/mlp.onnx" <<'PY'
import json, sys
import onnx
from onnx import numpy_helper
r = json.load(open(sys.argv[1]))
L = {l["name"]: l for l in r["layers"]}
assert L["/conv/Conv"]["kind"] == "conv" and "skipped" in L["/conv/Conv"], L["/conv/Conv"]
want = {"/fc1/Gemm": (1024, 256, 64), "/MatMul": (256, 128, 32), "/fc3/Gemm": (128, 10, 8)}
for n, (c, d, rank) in want.items():
    l = L[n]
    assert l["kind"] == "fc" and l["c"] == c and l["d"] == d and l["rank"] == rank, l
    # auto: the data fit with >= 10 of the 180 fitting inputs per output
    if r["fit_inputs"] >= 10 * d:
        assert l["fit"] == "data" and "shrinkage" not in l, l
    else:
        assert l["fit"] == "shrinkage" and 0 <= l["shrinkage"] <= 1, l
    assert abs(l["speedup"] - c * d / (rank * (c + d))) < 1e-9, l
    assert 0 < l["energy"] <= 1 and l["error_after"] < 1, l
# fc1 feeds a ReLU; the MatMul feeds an Add, so it is linear and says why.
assert L["/MatMul"]["note"] == "linear solution: feeds Add", L["/MatMul"]
before = sum(l["c"] * l["d"] for l in L.values() if l["kind"] == "fc") + 3 * 3 * 3 * 16 * 64
after = sum(l["rank"] * (l["c"] + l["d"]) for l in L.values() if l["kind"] == "fc") + 3 * 3 * 3 * 16 * 64
assert abs(r["theoretical_speedup"] - before / after) < 1e-9, (r["theoretical_speedup"], before / after)
assert abs(r["mflops_before"] - 2 * before / 1e6) < 1e-9, r["mflops_before"]
assert r["conv_mflops_before"] == r["conv_mflops_after"], r
assert r["model_bytes_before"] > 3 * r["model_bytes_after"] > 0, r
# The graph: each FC layer is Gemm (r x c) -> Gemm (d x r), transB = 1;
# the MatMul and the original weights are gone.
m = onnx.load(sys.argv[2])
onnx.checker.check_model(m)
init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
ops = [n.op_type for n in m.graph.node]
assert "MatMul" not in ops and ops.count("Gemm") == 6, ops
for n, (c, d, rank) in want.items():
    a = [x for x in m.graph.node if x.name == n + ".lr_a"][0]
    b = [x for x in m.graph.node if x.name == n + ".lr_b"][0]
    assert a.op_type == b.op_type == "Gemm" and b.input[0] == a.output[0], (a, b)
    assert init[a.input[1]].shape == (rank, c) and init[b.input[1]].shape == (d, rank), n
    assert init[a.input[2]].shape == (rank,) and init[b.input[2]].shape == (d,), n
    for x in (a, b):
        assert [(t.name, t.i) for t in x.attribute] == [("transB", 1)], x.attribute
assert "fc1.weight" not in init and "w2" not in init, sorted(init)
PY
ok $? "report: kinds, ranks, exact FLOP ratio, file sizes; graph: Gemm pairs with the reported shapes"

"$PYTHON3" -c "import numpy as np; np.save('$TMP/mx.npy', np.load('$TMP/mlp_x.npy')[:50])"
"$LOWRANK" run "$TMP/mlp.onnx" "$TMP/mx.npy" -o "$TMP/mlp_lr.npy" >/dev/null
ok $? "lowrank runs the compressed fc_mlp"
if [ $have_ort = 1 ]; then
	"$NODE" "$ORT_DIR/ort_run.js" run "$TMP/mlp.onnx" "$TMP/mx.npy" "$TMP/mlp_ort.npy" >/dev/null &&
		"$PYTHON3" "$ORT_DIR/compare.py" "$TMP/mlp_lr.npy" "$TMP/mlp_ort.npy" --rtol 1e-4 >/dev/null
	ok $? "ONNX Runtime agrees with lowrank's engine on the Gemm and MatMul replacements"
else
	ok 1 "onnxruntime-node is not installed (run scripts/install-deps.sh)"
fi

# ---- transB = 0, alpha, beta, a 1 x d bias -------------------------------
"$LOWRANK" compress "$GEMM" --calib "$TMP/gemm_x.npy" --objective flops --threads 2 \
	--ranks g1=16,g2=8 -o "$TMP/gemm.onnx" --report "$TMP/gemm.json" >/dev/null 2>"$TMP/err"
ok $? "compress fc_gemm (transB 0, alpha 0.5, beta 2; 1 x d bias)"
"$PYTHON3" -c "import numpy as np; np.save('$TMP/gx.npy', np.load('$TMP/gemm_x.npy')[:50])"
"$LOWRANK" run "$TMP/gemm.onnx" "$TMP/gx.npy" -o "$TMP/gemm_lr.npy" >/dev/null
ok $? "lowrank runs the compressed fc_gemm"
if [ $have_ort = 1 ]; then
	"$NODE" "$ORT_DIR/ort_run.js" run "$TMP/gemm.onnx" "$TMP/gx.npy" "$TMP/gemm_ort.npy" >/dev/null &&
		"$PYTHON3" "$ORT_DIR/compare.py" "$TMP/gemm_lr.npy" "$TMP/gemm_ort.npy" --rtol 1e-4 >/dev/null
	ok $? "ONNX Runtime agrees with lowrank's engine on the Gemm forms"
	# With P = the second factor (orthonormal columns), the first layer's
	# output h' = P P^T h + (I - P P^T) hbar, so P^T (h' - h) = 0 for every
	# input: a wrongly folded alpha, beta or transB breaks it.
	"$PYTHON3" - "$GEMM" "$TMP/gemm.onnx" "$TMP" <<'PY'
import sys, onnx
from onnx import helper, TensorProto
for src, dst in ((sys.argv[1], "h0.onnx"), (sys.argv[2], "h1.onnx")):
    m = onnx.load(src)
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info("h", TensorProto.FLOAT, None))
    onnx.save(m, sys.argv[3] + "/" + dst)
PY
	"$NODE" "$ORT_DIR/ort_run.js" run "$TMP/h0.onnx" "$TMP/gx.npy" "$TMP/h0.npy" >/dev/null &&
	"$NODE" "$ORT_DIR/ort_run.js" run "$TMP/h1.onnx" "$TMP/gx.npy" "$TMP/h1.npy" >/dev/null &&
	"$PYTHON3" - "$TMP/gemm.onnx" "$TMP/h0.npy" "$TMP/h1.npy" <<'PY'
import sys, numpy as np, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
b = [n for n in m.graph.node if n.name == "g1.lr_b"][0]
P = init[b.input[1]].astype(np.float64)          # 48 x 16
h0, h1 = np.load(sys.argv[2]).astype(np.float64), np.load(sys.argv[3]).astype(np.float64)
assert np.allclose(P.T @ P, np.eye(16), atol=1e-5)
res = np.abs((h1 - h0) @ P).max() / np.abs(h0).max()
assert res < 1e-5, res
assert np.abs(h1 - h0).max() / np.abs(h0).max() > 1e-3   # it is an approximation
PY
	ok $? "the first Gemm's output keeps its projection exactly: alpha, beta and transB folded right"
else
	ok 1 "onnxruntime-node is not installed (run scripts/install-deps.sh)"
	ok 1 "onnxruntime-node is not installed (run scripts/install-deps.sh)"
fi

# ---- the fits --------------------------------------------------------------
for fit in weight-svd data; do
	"$LOWRANK" compress "$GEMM" --calib "$TMP/gemm_x.npy" --objective flops --threads 2 \
		--ranks g1=16,g2=8 --fc-fit $fit -o "$TMP/g_$fit.onnx" --report "$TMP/g_$fit.json" \
		>/dev/null 2>"$TMP/err"
	ok $? "--fc-fit $fit"
done
"$PYTHON3" - "$TMP/gemm.json" "$TMP/g_weight-svd.json" "$TMP/g_data.json" <<'PY'
import json, sys
s, w, d = (json.load(open(f)) for f in sys.argv[1:])
g = lambda r, n: [l for l in r["layers"] if l["name"] == n][0]
assert g(s, "g1")["fit"] == "shrinkage" and 0 < g(s, "g1")["shrinkage"] < 1, g(s, "g1")
assert g(w, "g1")["fit"] == "weight-svd" and g(w, "g1")["shrinkage"] == 1, g(w, "g1")
# The data fit is the conv solver's: nonlinear before the ReLU, no shrinkage.
assert g(d, "g1")["fit"] == "data" and "shrinkage" not in g(d, "g1"), g(d, "g1")
assert g(d, "g1")["solution"] == "nonlinear", g(d, "g1")
assert g(d, "g2")["solution"] == "linear", g(d, "g2")
for r in (s, w, d):
    assert 0 < r["holdout"]["relative_output_error"] < 1, r["holdout"]
PY
ok $? "report: the fit, its shrinkage (1 for the weight SVD) and the data fit's nonlinear solution"
expect_fail "--fc-fit must be" "--fc-fit bogus refused" \
	"$LOWRANK" compress "$GEMM" --calib "$TMP/gemm_x.npy" --fc-fit bogus -o "$TMP/x.onnx"

# ---- the default objective is measured time -------------------------------
# The target is 1.3x, or half way to the fastest reachable speedup where
# that is less: this 0.02 ms model reaches about 2.4x here, but only
# 1.16-1.25x under ASan, whose per-node cost weighs on the layers nothing
# decomposes.
"$LOWRANK" compress "$MLP" --calib "$TMP/mlp_x.npy" --speedup 50 --threads 2 -o "$TMP/t50.onnx" \
	>/dev/null 2>"$TMP/err50"
best=$(sed -n 's/.*the fastest reachable is \([0-9.]*\)x.*/\1/p' "$TMP/err50")
target=$("$PYTHON3" -c "import sys; print('%.3f' % min(1.3, 1 + 0.5 * (float(sys.argv[1] or 0) - 1)))" "$best")
[ -n "$best" ] && "$PYTHON3" -c "import sys; sys.exit(0 if float(sys.argv[1]) > 1.0 else 1)" "$best"
ok $? "fc_mlp: --speedup 50 is refused naming the fastest reachable speedup ($best x; asking $target x)"
"$LOWRANK" compress "$MLP" --calib "$TMP/mlp_x.npy" --speedup "$target" --threads 2 \
	-o "$TMP/t.onnx" --report "$TMP/t.json" >"$TMP/out" 2>"$TMP/err"
ok $? "compress fc_mlp --speedup $target with the default objective"
# The measured speedup is reported, not asserted: a 0.02 ms model timed
# while the rest of the suite runs in parallel says nothing about speed
# (bench/speed.sh measures it). A failed check prints the report's deploy
# section as TAP diagnostics.
"$PYTHON3" - "$TMP/t.json" "$target" >"$TMP/py.out" 2>&1 <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
dep = r["deploy"]
fc = [l for l in r["layers"] if l["kind"] == "fc"]
print(json.dumps(dep))
print(json.dumps([{k: l.get(k) for k in ("name", "rank", "skipped")} for l in fc]))
assert r["objective"] == "time", r["objective"]
# The ranks meet the target of the calibration trial kept (the first
# asks for the request; see tests/compress.sh).
cal = r["selection"]["calibration"]
kept = [c for c in cal if c["kept"]]
print(json.dumps(cal))
# (or, past the predicted bound, the fastest ranks, whose trial meets it)
req = float(sys.argv[2])
assert len(kept) == 1, cal
assert cal[0]["target"] == req or (cal[0]["target"] < req <= cal[0]["trial_speedup"]), cal
assert dep["predicted_speedup"] >= kept[0]["target"] * (1 - 1e-9), (dep, kept)
assert dep["measured_speedup"] > 0 and dep["measured_original_ms"] > 0, dep
assert all("time_ms_before" in l and l["candidates"] for l in fc), fc
assert any("rank" in l for l in fc), fc
PY
rc=$?
[ $rc -eq 0 ] || sed 's/^/# /' "$TMP/py.out"
[ $rc -eq 0 ]
ok $? "report: objective time, predicted speedup meets the calibrated target, FC layers timed with candidates"

echo "1..$T_N"
[ $T_FAILED -eq 0 ]
