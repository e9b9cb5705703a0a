#!/usr/bin/python3
"""Make tests/data/tiny_cnn.onnx and tests/data/tiny_input.npy.

A small VGG-style CNN with random weights (seed 0), exported by
torch.onnx.export at opset 13: the model the README's run command and the
CLI tests use. Committed so the run command needs no torch; rerun this
script to regenerate (Debian python3-torch, /usr/bin/python3).
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 1), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.fc(torch.flatten(x, 1))


def main():
    torch.manual_seed(0)
    m = TinyCNN().eval()
    with torch.no_grad():
        # Non-trivial BatchNorm statistics so folding is exercised.
        bn = m.features[1]
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32))
    path = os.path.join(HERE, "tiny_cnn.onnx")
    torch.onnx.export(m, x, path, opset_version=13, input_names=["input"],
                      output_names=["output"], training=torch.onnx.TrainingMode.EVAL,
                      do_constant_folding=False,
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    np.save(os.path.join(HERE, "tiny_input.npy"), x.numpy())
    with torch.no_grad():
        np.save(os.path.join(HERE, "tiny_output_torch.npy"), m(x).numpy())
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    sys.exit(main())
