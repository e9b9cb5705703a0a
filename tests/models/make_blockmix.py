#!/usr/bin/python3
"""Export the network tests/blocked.sh runs: every way a value can meet the
engine's channel-blocked layout (model/engine.c, plan_blocked).

Usage: /usr/bin/python3 make_blockmix.py OUT.onnx [--thin]

Input [N, 32, 20, 20], output [N, 80, 5, 5]; weights from
torch.manual_seed(0), exported by torch.onnx.export (opset 13) and checked
with onnx.checker. The paths, in order:
  a  = relu(conv3x3(x, 32 -> 48))            blocked out, C-order input
  b  = relu(conv1x1(a, 48 -> 64) + conv1x1(x, 32 -> 64))
                                               Add of two blocked values
  c  = conv3x3(b, 64 -> 64, stride 2)          blocked in and out, strided
  d  = conv3x3(b, 64 -> 16, stride 2)          16 filters, strided: reads
                                               blocks, writes C order
  e  = conv1x1(c, 64 -> 16)                    16 filters, 1x1 on a 10x10 map:
                                               reads blocks, writes C order
  s  = conv10x10(c, 64 -> 64)                  [N, 64, 1, 1]
  t  = c + s                                   a broadcasting Add: the engine
                                               hands it C-order copies
  u  = relu(conv3x3(t, 64 -> 64, pad 1))
  g  = sigmoid(u) * u                          u read by a Sigmoid: C order
  k  = conv3x3(u, 64 -> 16) + d + e            16 filters: the lanes kernel
  y  = maxpool2(cat(g, k))                     Concat and MaxPool: C order

--thin: the layers of a compressed model, which engines that price
(lr_engine_set_pricing) keep in blocks where others use C order; input
[N, 32, 20, 20], output [N, 64, 10, 10]:
  a  = relu(conv3x3(x, 32 -> 16))              thin, stride 1, 20x20
  b  = relu(conv3x3(a, 16 -> 16, stride 2))    thin, strided
  c  = relu(conv3x3(b, 16 -> 32) + conv1x1(b, 16 -> 32))
                                               thin, stride 1, 10x10
  y  = conv1x1(c, 32 -> 64)
"""

import sys

import onnx
import torch
from torch import nn


class BlockMix(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(32, 48, 3, padding=1)
        self.b1 = nn.Conv2d(48, 64, 1)
        self.b2 = nn.Conv2d(32, 64, 1)
        self.c = nn.Conv2d(64, 64, 3, stride=2, padding=1)
        self.s = nn.Conv2d(64, 64, 10)
        self.u = nn.Conv2d(64, 64, 3, padding=1)
        self.k = nn.Conv2d(64, 16, 3, padding=1)
        self.d = nn.Conv2d(64, 16, 3, stride=2, padding=1)
        self.e = nn.Conv2d(64, 16, 1)

    def forward(self, x):
        a = torch.relu(self.a(x))
        b = torch.relu(self.b1(a) + self.b2(x))
        c = self.c(b)
        d = self.d(b)
        t = c + self.s(c)
        u = torch.relu(self.u(t))
        g = torch.sigmoid(u) * u
        return nn.functional.max_pool2d(torch.cat([g, self.k(u) + d + self.e(c)], 1), 2)


class Thin(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(32, 16, 3, padding=1)
        self.b = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(16, 32, 3, padding=1)
        self.c1 = nn.Conv2d(16, 32, 1)
        self.y = nn.Conv2d(32, 64, 1)

    def forward(self, x):
        b = torch.relu(self.b(torch.relu(self.a(x))))
        return self.y(torch.relu(self.c3(b) + self.c1(b)))


def main():
    torch.manual_seed(0)
    m = (Thin() if sys.argv[2:] == ["--thin"] else BlockMix()).eval()
    x = torch.randn(1, 32, 20, 20)
    torch.onnx.export(m, x, sys.argv[1], opset_version=13, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "n"}, "output": {0: "n"}})
    onnx.checker.check_model(onnx.load(sys.argv[1]))


if __name__ == "__main__":
    main()
