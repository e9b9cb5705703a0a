#!/usr/bin/python3
"""Train a small VGG-style CNN on Fashion-MNIST and export it to ONNX.

Makes tests/data/fmnist_vgg.onnx (committed, so tests need no torch) and
prints its test accuracy. The data comes from Debian's dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist). Training is seeded (seed 0) and runs on
the CPU in a few minutes:

    /usr/bin/python3 tests/data/make_fmnist.py [--epochs 3]

The network: 6 convolutions 3x3 with ReLU in three stages (32, 64, 128
channels), max pooling between stages, global average pooling, one linear
layer. Input 1x28x28, pixel values scaled to [0, 1] then normalised with
mean 0.2860 and std 0.3530 (the training-set statistics); the same
normalisation must be applied to calibration and evaluation inputs
(tests/data/fmnist.py does it).
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fmnist  # noqa: E402


class VGGish(nn.Module):
    def __init__(self):
        super().__init__()
        def block(ci, co):
            return [nn.Conv2d(ci, co, 3, padding=1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(
            *block(1, 32), *block(32, 32), nn.MaxPool2d(2),
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
            *block(64, 128), *block(128, 128),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "fmnist_vgg.onnx"))
    args = ap.parse_args()
    torch.manual_seed(0)
    np.random.seed(0)
    torch.set_num_threads(2)
    xtr, ytr = fmnist.load("train")
    xte, yte = fmnist.load("t10k")
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr.astype(np.int64))
    model = VGGish()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.epochs * (len(xtr) // 128 + 1))
    lossf = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)
    for ep in range(args.epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            loss = lossf(model(xtr_t[idx]), ytr_t[idx])
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(torch.from_numpy(xte[i:i + 1000])).argmax(1) for i in range(0, len(xte), 1000)])
        acc = (pred.numpy() == yte).mean()
        print("epoch %d: loss %.3f, test accuracy %.4f (%.0f s)" % (ep + 1, loss.item(), acc, time.time() - t0))
    model.eval()
    tmp = args.out + ".tmp"
    torch.onnx.export(model, torch.from_numpy(xte[:2]), tmp, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    os.replace(tmp, args.out)
    print("wrote %s (%d bytes), test accuracy %.4f" % (args.out, os.path.getsize(args.out), acc))


if __name__ == "__main__":
    sys.exit(main())
