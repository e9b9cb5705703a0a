#!/bin/sh
# The `lowrank` CLI on the shipped tiny CNN: inspect, run (checked against
# PyTorch's own output and ONNX Runtime), bench, and the error paths.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
D="$top_srcdir/tests/data"

"$LOWRANK" --help >/dev/null; ok $? "lowrank --help exits 0"
for c in inspect run bench; do
	"$LOWRANK" $c --help | grep -q "usage: lowrank $c"; ok $? "lowrank $c --help"
done

"$LOWRANK" inspect "$D/tiny_cnn.onnx" --input-shape 1,3,32,32 >"$TMP/inspect.txt"
ok $? "inspect tiny_cnn"
grep -q "total .* MFLOPs in 6 Conv/Gemm/MatMul layers; 5 decomposable" "$TMP/inspect.txt"
ok $? "inspect counts 6 layers, 5 decomposable (the 64 -> 10 Gemm too)"
grep -q "too few input channels (c=3)" "$TMP/inspect.txt"; ok $? "first conv skipped for c=3"
"$LOWRANK" inspect "$D/tiny_cnn.onnx" --json >"$TMP/inspect.json"; ok $? "inspect --json"
"$PYTHON3" - "$TMP/inspect.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
L = j["layers"]
assert len(L) == 6, len(L)
# conv 16->32, 3x3 at 32x32: 2*16*32*9*32*32 flops
c2 = L[1]
assert (c2["c"], c2["d"], c2["kh"], c2["out_h"]) == (16, 32, 3, 32), c2
assert abs(c2["mflops"] - 2*16*32*9*32*32/1e6) < 1e-6, c2["mflops"]
assert abs(sum(l["share"] for l in L) - 1) < 1e-9
# the 64 -> 10 Gemm: r (64 + 10) < 640 for r <= 8
assert L[5]["op_type"] == "Gemm" and L[5]["decomposable"] and L[5]["max_rank"] == 8, L[5]
PY
ok $? "inspect --json values (c, d, k, output size, MFLOPs, shares)"

"$LOWRANK" run "$D/tiny_cnn.onnx" "$D/tiny_input.npy" -o "$TMP/out.npy" --threads 2
ok $? "run tiny_cnn"
"$PYTHON3" "$ORT_DIR/compare.py" "$TMP/out.npy" "$D/tiny_output_torch.npy" --rtol 1e-4 >/dev/null
ok $? "run output matches PyTorch's"
"$LOWRANK" run "$D/tiny_cnn.onnx" "$D/tiny_input.npy" -o "$TMP/out_b1.npy" --threads 1 --batch 1
ok $? "run --batch 1"
cmp -s "$TMP/out.npy" "$TMP/out_b1.npy" || "$PYTHON3" "$ORT_DIR/compare.py" "$TMP/out_b1.npy" "$D/tiny_output_torch.npy" --rtol 1e-4 >/dev/null
ok $? "run --batch 1 gives the same result"
if [ -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
	"$NODE" "$ORT_DIR/ort_run.js" run "$D/tiny_cnn.onnx" "$D/tiny_input.npy" "$TMP/ort.npy" >/dev/null
	ok $? "ONNX Runtime runs tiny_cnn"
	"$PYTHON3" "$ORT_DIR/compare.py" "$TMP/out.npy" "$TMP/ort.npy" --rtol 1e-4 >/dev/null
	ok $? "run output matches ONNX Runtime"
	# compare times two models in turns (bench/speed.sh's ONNX Runtime
	# speedups): a model against itself is about 1x.
	"$NODE" "$ORT_DIR/ort_run.js" compare "$D/tiny_cnn.onnx" "$D/tiny_cnn.onnx" --input-shape 1,3,32,32 \
		--rounds 5 --ms 2 >"$TMP/cmp.json" &&
		"$PYTHON3" -c "
import json, sys; d = json.load(open(sys.argv[1]))
assert d['rounds'] == 5 and d['a_p10_ms'] > 0 and d['b_p10_ms'] > 0 and 0.5 < d['ratio'] < 2, d" "$TMP/cmp.json"
	ok $? "ONNX Runtime compare: a model against itself runs about 1x"
	"$NODE" "$ORT_DIR/ort_run.js" compare "$D/tiny_cnn.onnx" --input-shape 1,3,32,32 >/dev/null 2>"$TMP/cmp.err"
	[ $? -eq 2 ] && grep -q "compare needs A.onnx B.onnx" "$TMP/cmp.err"
	ok $? "ONNX Runtime compare with one model is a usage error naming what it needs"
else
	ok 1 "onnxruntime-node is not installed (run scripts/install-deps.sh)"
fi

"$LOWRANK" bench "$D/tiny_cnn.onnx" --repeat 3 --warmup 1 --json >"$TMP/bench.json"
ok $? "bench --json"
"$PYTHON3" -c "
import json,sys; j=json.load(open(sys.argv[1]))
assert 0 < j['p10_ms'] <= j['median_ms'] <= j['p90_ms'], j
assert j['peak_rss_bytes'] > 1e6 and j['input_shape'] == [1,3,32,32], j
assert j['pricing'] is False, j" "$TMP/bench.json"
ok $? "bench reports ordered percentiles and peak RSS"
"$LOWRANK" bench "$D/tiny_cnn.onnx" --repeat 3 --warmup 1 --pricing --json >"$TMP/bench_p.json" &&
	"$PYTHON3" -c "
import json,sys; j=json.load(open(sys.argv[1]))
assert j['pricing'] is True and 0 < j['p10_ms'] <= j['median_ms'], j" "$TMP/bench_p.json"
ok $? "bench --pricing times with the cost model's kernels and says so"
"$LOWRANK" bench "$D/tiny_cnn.onnx" --repeat 4 --warmup 1 --ab LR_NO_PREFETCH --json >"$TMP/bench_ab.json" &&
	"$PYTHON3" -c "
import json,sys; j=json.load(open(sys.argv[1]))
assert j['ab'] == 'LR_NO_PREFETCH=1' and j['rounds'] == 4, j
assert j['without_p10_ms'] > 0 and j['with_p10_ms'] > 0, j
assert 0 < j['ratio_p25'] <= j['ratio'] <= j['ratio_p75'], j" "$TMP/bench_ab.json"
ok $? "bench --ab times both variants in rounds and gives the ratio's quartiles"
expect_fail "--ab needs NAME" "bench --ab without a name is refused" \
	"$LOWRANK" bench "$D/tiny_cnn.onnx" --ab =1
"$LOWRANK" bench "$D/tiny_cnn.onnx" --repeat 3 --warmup 1 --ab-create LR_NO_FOLD=1 --json \
	>"$TMP/bench_abc.json" &&
	"$PYTHON3" -c "
import json,sys; j=json.load(open(sys.argv[1]))
assert j['ab'] == 'LR_NO_FOLD=1' and j['rounds'] == 3, j
assert j['without_p10_ms'] > 0 and j['with_p10_ms'] > 0, j" "$TMP/bench_abc.json"
ok $? "bench --ab-create times a switch read at engine creation on a second engine"
expect_fail "--ab-create needs NAME" "bench --ab-create without a name is refused" \
	"$LOWRANK" bench "$D/tiny_cnn.onnx" --ab-create =1

# Errors: clear message, non-zero exit, no crash.
expect_fail "cannot open" "missing model file" "$LOWRANK" inspect "$TMP/nope.onnx"
head -c 1000 "$D/tiny_cnn.onnx" >"$TMP/trunc.onnx"
expect_fail "trunc.onnx" "truncated model names the file" "$LOWRANK" inspect "$TMP/trunc.onnx"
printf 'hello' >"$TMP/bad.npy"
expect_fail "bad.npy" "bad .npy names the file" "$LOWRANK" run "$D/tiny_cnn.onnx" "$TMP/bad.npy" -o "$TMP/o.npy"
"$PYTHON3" -c "import numpy as np; np.save('$TMP/wrong.npy', np.zeros((1,4,32,32), np.float32))"
expect_fail "expects shape" "wrong input shape is named" "$LOWRANK" run "$D/tiny_cnn.onnx" "$TMP/wrong.npy" -o "$TMP/o.npy"
expect_fail "usage" "run without -o" "$LOWRANK" run "$D/tiny_cnn.onnx" "$D/tiny_input.npy"

# Element types: run reads and writes the declared types (uint8 wraps).
"$PYTHON3" - "$TMP" <<'PY'
import sys
import numpy as np
import onnx
from onnx import TensorProto as T, helper as H
d = sys.argv[1]
for name, et_in, nodes, et_out in [
        ("u8", T.UINT8, [H.make_node("Add", ["x", "x"], ["y"])], T.UINT8),
        ("eq", T.INT32, [H.make_node("Equal", ["x", "x"], ["y"])], T.BOOL),
        ("str", T.STRING, [H.make_node("Identity", ["x"], ["y"])], T.STRING)]:
    g = H.make_graph(nodes, "g", [H.make_tensor_value_info("x", et_in, ["N", 4])],
                     [H.make_tensor_value_info("y", et_out, ["N", 4])])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, "%s/%s.onnx" % (d, name))
np.save(d + "/x_u8.npy", np.array([[0, 100, 200, 255]] * 3, np.uint8))
np.save(d + "/x_i4.npy", np.array([[1, -2, 3, 2 ** 31 - 1]] * 2, np.int32))
PY
ok $? "typed models and inputs written (python3-onnx)"
"$LOWRANK" run "$TMP/u8.onnx" "$TMP/x_u8.npy" -o "$TMP/y_u8.npy" --batch 2
ok $? "run a uint8 model (in two batches)"
"$PYTHON3" -c "
import numpy as np, sys; y = np.load(sys.argv[1])
assert y.dtype == np.uint8 and (y == np.array([[0, 200, 144, 254]] * 3, np.uint8)).all(), y" "$TMP/y_u8.npy"
ok $? "run writes uint8 output, wrapped mod 256 (|u1)"
"$LOWRANK" run "$TMP/eq.onnx" "$TMP/x_i4.npy" -o "$TMP/y_eq.npy"
"$PYTHON3" -c "
import numpy as np, sys; y = np.load(sys.argv[1])
assert y.dtype == np.bool_ and y.shape == (2, 4) and y.all(), y" "$TMP/y_eq.npy"
ok $? "run reads <i4 and writes bool (|b1)"
expect_fail "expects element type uint8, got int32" "a wrong input dtype is named" \
	"$LOWRANK" run "$TMP/u8.onnx" "$TMP/x_i4.npy" -o "$TMP/o.npy"
expect_fail "graph input 'x' expects element type string, got int32" "a string input is refused naming it and the type given" \
	"$LOWRANK" run "$TMP/str.onnx" "$TMP/x_i4.npy" -o "$TMP/o.npy"
expect_fail "--threads" "bad --threads" "$LOWRANK" bench "$D/tiny_cnn.onnx" --threads 0
expect_fail "unknown command" "unknown command" "$LOWRANK" frobnicate

done_testing
