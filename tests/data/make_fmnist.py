#!/usr/bin/python3
"""Train a small CNN on Fashion-MNIST and export it to ONNX.

Makes tests/data/fmnist_vgg.onnx, or with --arch resnet
tests/data/fmnist_resnet.onnx (both committed, so tests need no torch), and
prints the test accuracy. The data comes from Debian's dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist). Training is seeded (seed 0) and runs on
the CPU in a few minutes:

    /usr/bin/python3 tests/data/make_fmnist.py [--arch vgg|resnet] [--epochs 3]

The network: 6 convolutions 3x3 with ReLU in three stages (32, 64, 128
channels), max pooling between stages, global average pooling, one linear
layer. The ResNet: a 3x3 stem and three basic residual blocks (32, 64, 128
channels; the last two stride 2 with a 1x1 projection shortcut), every
convolution followed by BatchNormalization, residual Add, global average
pooling, one linear layer. PyTorch's exporter folds each BatchNormalization
into its convolution; to give the solver's BN folding a real model to work
on, the script puts them back: every folded Conv gets its unfolded weights
and a BatchNormalization node with the layer's real statistics after it.
Input 1x28x28, pixel values scaled to [0, 1] then normalised with
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


class Block(nn.Module):
    def __init__(self, ci, co, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(ci, co, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(co)
        self.conv2 = nn.Conv2d(co, co, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(co)
        self.relu = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or ci != co:
            self.down = nn.Sequential(nn.Conv2d(ci, co, 1, stride, bias=False), nn.BatchNorm2d(co))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.down is None else self.down(x)))


class ResNetish(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        self.layer1 = Block(32, 32, 1)
        self.layer2 = Block(32, 64, 2)
        self.layer3 = Block(64, 128, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def unfold_batchnorm(model, path):
    """Undo the exporter's Conv+BN folding in the ONNX file at `path`."""
    import onnx
    from onnx import helper, numpy_helper
    m = onnx.load(path)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    # Match each exported Conv to its PyTorch conv by the folded weights.
    pairs = []
    mods = list(model.modules())
    for i, mod in enumerate(mods[:-1]):
        if isinstance(mod, nn.Conv2d) and isinstance(mods[i + 1], nn.BatchNorm2d):
            bn = mods[i + 1]
            s = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
            pairs.append((mod, bn, mod.weight.detach().numpy() * s[:, None, None, None]))
    nodes = []
    done = 0
    for n in g.node:
        nodes.append(n)
        if n.op_type != "Conv":
            continue
        wf = numpy_helper.to_array(inits[n.input[1]])
        hit = [k for k, (_, _, f) in enumerate(pairs) if f.shape == wf.shape and np.allclose(f, wf, rtol=1e-4, atol=1e-6)]
        if not hit:
            continue
        assert len(hit) == 1, n.name
        conv, bn, _ = pairs.pop(hit[0])
        w = conv.weight.detach().numpy().astype(np.float32)
        inits[n.input[1]].CopyFrom(numpy_helper.from_array(w, n.input[1]))
        if len(n.input) > 2:
            inits[n.input[2]].CopyFrom(numpy_helper.from_array(np.zeros(w.shape[0], np.float32), n.input[2]))
        pre = n.output[0] + "_prebn"
        out = n.output[0]
        n.output[0] = pre
        stats = []
        for suffix, v in (("scale", bn.weight), ("bias", bn.bias), ("mean", bn.running_mean), ("var", bn.running_var)):
            t = numpy_helper.from_array(v.detach().numpy().astype(np.float32), n.name + "_bn_" + suffix)
            g.initializer.append(t)
            stats.append(t.name)
        nodes.append(helper.make_node("BatchNormalization", [pre] + stats, [out],
                                      name=n.name.replace("/Conv", "/BatchNormalization"), epsilon=bn.eps))
        done += 1
    assert not pairs, "%d convolutions not found in the export" % len(pairs)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return done


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--arch", choices=("vgg", "resnet"), default="vgg")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.out is None:
        args.out = os.path.join(HERE, "fmnist_%s.onnx" % args.arch)
    torch.manual_seed(0)
    np.random.seed(0)
    torch.set_num_threads(2)
    xtr, ytr = fmnist.load("train")
    xte, yte = fmnist.load("t10k")
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr.astype(np.int64))
    model = VGGish() if args.arch == "vgg" else ResNetish()
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
    if args.arch == "resnet":
        print("unfolded %d BatchNormalization nodes" % unfold_batchnorm(model, tmp))
    os.replace(tmp, args.out)
    print("wrote %s (%d bytes), test accuracy %.4f" % (args.out, os.path.getsize(args.out), acc))


if __name__ == "__main__":
    sys.exit(main())
