#!/bin/sh
# ONNX Runtime as the judge: every torchvision export runs in `lowrank run`
# within 1e-4 relative error of ONNX Runtime, at batch 1 and 4; and a
# load -> save -> reload round trip gives bit-identical ORT outputs.
# Models are exported once by tests/models/make_models.py into
# $LR_MODEL_DIR (default: <builddir>/tests/models-cache) and reused.
# LR_MODELS="a b" restricts the set (the sanitizer build uses a subset).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
MD=$(model_dir)
MODELS=${LR_MODELS:-"vgg16 resnet18 resnet50 alexnet squeezenet1_1 googlenet inception_v3 mobilenet_v2 mnasnet1_0 efficientnet_b0 densenet121 shufflenet_v2_x1_0 regnet_y_400mf"}
ONLY=$(echo $MODELS | tr ' ' ',')
mkdir -p "$MD"
"$PYTHON3" "$top_srcdir/tests/models/make_models.py" "$MD" --only "$ONLY" >"$TMP/export.log" 2>&1
ok $? "export torchvision models ($ONLY)"
[ -d "$ORT_DIR/node_modules/onnxruntime-node" ]
ok $? "onnxruntime-node is installed"
ROUNDTRIP="$top_builddir/tests/onnx-roundtrip"

for m in $MODELS; do
	f="$MD/$m.onnx"
	hw=$("$PYTHON3" -c "import json,sys; print(json.load(open(sys.argv[1]))['input_shape'][2])" "$MD/$m.json")
	for b in 1 4; do
		"$PYTHON3" "$ORT_DIR/compare.py" --random-input "$b,3,$hw,$hw" "$TMP/x.npy" --seed $b >/dev/null
		"$LOWRANK" run "$f" "$TMP/x.npy" -o "$TMP/ours.npy" --threads 2 2>"$TMP/err"
		rc=$?
		[ $rc -eq 0 ] || diag "$(cat "$TMP/err")"
		"$NODE" "$ORT_DIR/ort_run.js" run "$f" "$TMP/x.npy" "$TMP/ort.npy" --threads 2 >/dev/null 2>&1
		res=$("$PYTHON3" "$ORT_DIR/compare.py" "$TMP/ours.npy" "$TMP/ort.npy" --rtol 1e-4 --atol 0 2>&1)
		ok $? "$m batch $b matches ONNX Runtime ($(echo "$res" | grep "max rel error" | tr -s " "))"
	done
	if [ "$m" = "resnet18" ] || [ "$m" = "shufflenet_v2_x1_0" ] || [ "$m" = "densenet121" ]; then
		"$ROUNDTRIP" "$f" "$TMP/rt.onnx"
		ok $? "$m: load and save"
		"$NODE" "$ORT_DIR/ort_run.js" run "$TMP/rt.onnx" "$TMP/x.npy" "$TMP/ort_rt.npy" --threads 1 >/dev/null 2>&1 &&
		"$NODE" "$ORT_DIR/ort_run.js" run "$f" "$TMP/x.npy" "$TMP/ort_orig.npy" --threads 1 >/dev/null 2>&1 &&
		cmp -s "$TMP/ort_rt.npy" "$TMP/ort_orig.npy"
		ok $? "$m: reloaded model gives bit-identical ONNX Runtime outputs"
		"$PYTHON3" - "$f" "$TMP/rt.onnx" <<'PY'
import sys, onnx
a, b = onnx.load(sys.argv[1]), onnx.load(sys.argv[2])
onnx.checker.check_model(b)
assert a.SerializeToString() == b.SerializeToString(), "serialisations differ"
PY
		ok $? "$m: saved model passes onnx.checker and is byte-identical"
	fi
done
done_testing
