#!/bin/sh
# bench/fc_fit.sh - how fully connected layers are fitted when there are
# fewer calibration inputs than output features (solver/fc.h): the plain
# weight SVD, the weight SVD shaped by the shrunk response covariance
# (the default below LR_FC_DATA_RATIO inputs per output) and the data fit
# (the conv solver on the calibration responses), judged on held-out
# inputs. Only the FC layers are decomposed (--ranks), so nothing else
# differs between the rows.
#
# Model: an MLP 784 -> 1024 -> 1024 -> 10 (ReLU) trained here on
# Fashion-MNIST (3 epochs, Adam, seed 0; about a minute on one core).
# Calibration: CALIB (300) training images, half held out by the solver,
# so 150 fitted responses per layer against d = 1024 outputs. Ranks RANK
# (128) for both hidden layers. Prints a Markdown table: held-out relative
# output error and top-1 agreement with the original (from the report),
# and top-1 accuracy on the 10,000 test images in ONNX Runtime.
#
#   bench/fc_fit.sh [BUILD_DIR]     (default: _build)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/_build}
lowrank="$build/lowrank"
py=/usr/bin/python3
ort="node ${LR_ORT_DIR:-$here/tests/ort}/ort_run.js"
ncal=${CALIB:-300}
rank=${RANK:-128}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrfcfit.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$py" - "$here/tests/data" "$tmp/mlp.onnx" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, torch, torch.nn as nn
from fmnist import load
torch.manual_seed(0)
torch.set_num_threads(1)
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 1024), nn.Linear(1024, 1024), nn.Linear(1024, 10)
    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))
x, y = load("train")
x, y = torch.from_numpy(x), torch.from_numpy(y)
m = MLP()
opt = torch.optim.Adam(m.parameters(), 1e-3)
g = torch.Generator().manual_seed(0)
for ep in range(3):
    perm = torch.randperm(len(x), generator=g)
    for i in range(0, len(x), 128):
        b = perm[i:i + 128]
        opt.zero_grad()
        nn.functional.cross_entropy(m(x[b]), y[b]).backward()
        opt.step()
m.eval()
torch.onnx.export(m, x[:1], sys.argv[2], opset_version=13, input_names=["x"], output_names=["y"],
                  dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
PY
"$py" "$here/tests/data/fmnist.py" calib "$ncal" "$tmp/calib.npy" --seed 1
"$py" "$here/tests/data/fmnist.py" test "$tmp/test_x.npy" "$tmp/test_y.npy"
top1() {
	$ort run "$1" "$tmp/test_x.npy" "$tmp/pred.npy" >/dev/null
	"$py" -c "import numpy as np, sys; print('%.4f' % (np.load(sys.argv[1]).argmax(1) == np.load(sys.argv[2])).mean())" "$tmp/pred.npy" "$tmp/test_y.npy"
}
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); MLP 784-1024-1024-10 on Fashion-MNIST, test top-1 $(top1 "$tmp/mlp.onnx"); $ncal calibration images, holdout 0.5; fc1 and fc2 at rank $rank"
echo
echo "| fit | shrinkage fc1 / fc2 | held-out rel. output error | held-out top-1 agreement | test top-1 (ORT) |"
echo "|---|---|---|---|---|"
for fit in weight-svd shrinkage data; do
	"$lowrank" compress "$tmp/mlp.onnx" --calib "$tmp/calib.npy" --holdout 0.5 --fc-fit "$fit" \
		--ranks "/fc1/Gemm=$rank,/fc2/Gemm=$rank" --threads 2 -o "$tmp/$fit.onnx" \
		--report "$tmp/$fit.json" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
	"$py" - "$tmp/$fit.json" "$fit" "$(top1 "$tmp/$fit.onnx")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
L = {l["name"]: l for l in r["layers"]}
a = " / ".join("%.3f" % L[n]["shrinkage"] if "shrinkage" in L[n] else "–" for n in ("/fc1/Gemm", "/fc2/Gemm"))
h = r["holdout"]
print("| %s | %s | %.4f | %.3f | %s |" % (sys.argv[2], a, h["relative_output_error"], h["top1_agreement"], sys.argv[3]))
PY
done
