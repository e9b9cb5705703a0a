#!/usr/bin/python3
"""Make tests/data/fc_mlp.onnx and tests/data/fc_gemm.onnx: models whose
fully connected layers lowrank decomposes (solver/fc.h).

fc_mlp.onnx: a small PyTorch model exported by torch.onnx.export at opset
13 (random weights, seed 0): Conv 3->16 + ReLU, Flatten (1024), Linear
1024->256 (Gemm, transB=1) + ReLU, x @ W + b with W a 256 x 128 parameter
(MatMul then Add) + ReLU, Linear 128->10 (Gemm). Input (N, 3, 8, 8).

fc_gemm.onnx: written with onnx.helper, the Gemm forms an exporter does
not produce: transB=0 with alpha=0.5 and beta=2 and a bias of d, then
transB=1 with a 1 x d bias, then ReLU. Input (N, 64).

Committed so the tests need no torch; rerun to regenerate
(/usr/bin/python3 with Debian's python3-torch and python3-onnx).
"""
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc1 = nn.Linear(1024, 256)
        self.w2 = nn.Parameter(torch.randn(256, 128) / 16.0)
        self.b2 = nn.Parameter(torch.randn(128) * 0.1)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.flatten(torch.relu(self.conv(x)), 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(x @ self.w2 + self.b2)
        return self.fc3(x)


def gemm_model():
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((64, 48)) / 8).astype(np.float32)   # c x d: transB=0
    b1 = (rng.standard_normal(48) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((10, 48)) / 7).astype(np.float32)   # d x c: transB=1
    b2 = (rng.standard_normal((1, 10)) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="g1", alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["h"], ["hr"], name="relu"),
        helper.make_node("Gemm", ["hr", "w2", "b2"], ["y"], name="g2", transB=1),
    ]
    g = helper.make_graph(
        nodes, "fc_gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_fc.py")
    m.ir_version = 7
    onnx.checker.check_model(m)
    return m


def main():
    torch.manual_seed(0)
    m = MLP().eval()
    x = torch.randn(1, 3, 8, 8)
    torch.onnx.export(m, x, os.path.join(HERE, "fc_mlp.onnx"), opset_version=13,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    onnx.save(gemm_model(), os.path.join(HERE, "fc_gemm.onnx"))


if __name__ == "__main__":
    main()
