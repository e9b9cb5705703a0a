#!/usr/bin/python3
"""Write the single-layer ONNX models that bench/layers.sh times.

Usage: /usr/bin/python3 layers_models.py OUTDIR [--only group,group] [--chain] [--list]

Each case is an original layer and its low-rank replacements, as lowrank
compress writes them: a k x k Conv with d filters becomes a k x k Conv with
d' filters and a 1x1 Conv back to d (both with bias); a Gemm K -> N becomes
Gemm K -> r and Gemm r -> N (transB = 1, as torchvision exports Linear).
Weights are seeded random (numpy seed 0), scaled so outputs stay of order 1.
Files: OUTDIR/<group>_<name>.onnx, opset 13, input "x" with batch axis "N".

--list prints one line per model:
    group name kind input_shape(without batch) flops_per_image
where kind is "orig" for the original layer and "pair" for a replacement.

--chain adds, for the conv groups whose layer keeps its channel count
(c = d: VGG's), models of the original followed by a second original
("chain_orig") or by a pair ("chain_r<d'>"), kind "chain". Their time minus
the original's is what the second layer costs inside a network, where
ONNX Runtime keeps its blocked layout between layers instead of
converting from and to NCHW around every single-layer model.
"""

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# (group, c, d, hw, k, [d' ...]): conv layers at their input size.
CONVS = [
    # torchvision VGG-16 at 224x224
    ("vgg_conv2", 128, 128, 112, 3, [16, 32, 64]),
    ("vgg_conv3", 256, 256, 56, 3, [16, 32, 64, 128]),
    ("vgg_conv4", 512, 512, 28, 3, [16, 32, 64, 128]),
    ("vgg_conv5", 512, 512, 14, 3, [16, 32, 64, 128]),
    # tests/data/fmnist_vgg.onnx (28x28 Fashion-MNIST)
    ("fm_conv2", 32, 32, 28, 3, [8, 16]),
    ("fm_conv4", 64, 64, 14, 3, [16, 32]),
    ("fm_conv6", 128, 128, 7, 3, [16, 32, 64]),
    # ResNet-50 1x1 convolutions (a 1x1 pair is 1x1 c->d' then 1x1 d'->d)
    ("r50_1x1_56", 256, 64, 56, 1, [16, 32]),
    ("r50_1x1_28", 128, 512, 28, 1, [32, 64]),
    ("r50_1x1_14", 1024, 256, 14, 1, [32, 64]),
    ("r50_1x1_7", 512, 2048, 7, 1, [64, 128]),
]
# (group, K, N, [r ...]): Linear layers (VGG-16's fc6).
GEMMS = [
    ("vgg_fc6", 25088, 4096, [64, 256]),
]


def rnd(rng, shape, fan_in):
    return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)


def conv_node(name, x, y, k):
    pad = k // 2
    return helper.make_node("Conv", [x, name + ".w", name + ".b"], [y], name=name,
                            kernel_shape=[k, k], pads=[pad] * 4, strides=[1, 1])


def conv_model(rng, c, d, hw, k, dp):
    inits, nodes = [], []
    if dp is None:
        nodes.append(conv_node("conv", "x", "y", k))
        inits += [numpy_helper.from_array(rnd(rng, (d, c, k, k), c * k * k), "conv.w"),
                  numpy_helper.from_array(rnd(rng, (d,), 1.0), "conv.b")]
    else:
        nodes.append(conv_node("conv_a", "x", "t", k))
        nodes.append(conv_node("conv_b", "t", "y", 1))
        inits += [numpy_helper.from_array(rnd(rng, (dp, c, k, k), c * k * k), "conv_a.w"),
                  numpy_helper.from_array(rnd(rng, (dp,), 1.0), "conv_a.b"),
                  numpy_helper.from_array(rnd(rng, (d, dp, 1, 1), dp), "conv_b.w"),
                  numpy_helper.from_array(rnd(rng, (d,), 1.0), "conv_b.b")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, hw, hw])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", d, hw, hw])
    return helper.make_graph(nodes, "layer", [x], [y], inits)


def chain_model(rng, c, hw, k, dp):
    """The original layer, then a second original (dp None) or a pair."""
    first = conv_model(rng, c, c, hw, k, None)
    second = conv_model(rng, c, c, hw, k, dp)
    for n in first.node:
        n.output[0] = "h" if n.output[0] == "y" else n.output[0]
    nodes, inits = list(first.node), list(first.initializer)
    for n in second.node:
        n.name = "s_" + n.name
        n.input[:] = ["h" if i == "x" else ("s_" + i if i != "t" else "s_t") for i in n.input]
        n.output[:] = ["y" if o == "y" else "s_" + o for o in n.output]
        nodes.append(n)
    for t in second.initializer:
        t.name = "s_" + t.name
        inits.append(t)
    return helper.make_graph(nodes, "chain", list(first.input), list(second.output), inits)


def gemm_model(rng, kk, n, r):
    inits, nodes = [], []
    if r is None:
        nodes.append(helper.make_node("Gemm", ["x", "fc.w", "fc.b"], ["y"], name="fc",
                                      transB=1))
        inits += [numpy_helper.from_array(rnd(rng, (n, kk), kk), "fc.w"),
                  numpy_helper.from_array(rnd(rng, (n,), 1.0), "fc.b")]
    else:
        nodes.append(helper.make_node("Gemm", ["x", "fc_a.w", "fc_a.b"], ["t"], name="fc_a",
                                      transB=1))
        nodes.append(helper.make_node("Gemm", ["t", "fc_b.w", "fc_b.b"], ["y"], name="fc_b",
                                      transB=1))
        inits += [numpy_helper.from_array(rnd(rng, (r, kk), kk), "fc_a.w"),
                  numpy_helper.from_array(rnd(rng, (r,), 1.0), "fc_a.b"),
                  numpy_helper.from_array(rnd(rng, (n, r), r), "fc_b.w"),
                  numpy_helper.from_array(rnd(rng, (n,), 1.0), "fc_b.b")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", kk])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n])
    return helper.make_graph(nodes, "layer", [x], [y], inits)


def cases(chain=False):
    """Yields (group, name, kind, input shape, flops per image, builder)."""
    for g, c, d, hw, k, dps in CONVS:
        fl = 2 * c * d * k * k * hw * hw
        yield (g, "orig", "orig", (c, hw, hw), fl,
               lambda rng, c=c, d=d, hw=hw, k=k: conv_model(rng, c, d, hw, k, None))
        for dp in dps:
            fl = 2 * hw * hw * (c * dp * k * k + dp * d)
            yield (g, "r%d" % dp, "pair", (c, hw, hw), fl,
                   lambda rng, c=c, d=d, hw=hw, k=k, dp=dp: conv_model(rng, c, d, hw, k, dp))
        if chain and c == d:
            fl = 2 * c * d * k * k * hw * hw
            yield (g, "chain_orig", "chain", (c, hw, hw), 2 * fl,
                   lambda rng, c=c, hw=hw, k=k: chain_model(rng, c, hw, k, None))
            for dp in dps:
                fp = 2 * hw * hw * (c * dp * k * k + dp * d)
                yield (g, "chain_r%d" % dp, "chain", (c, hw, hw), fl + fp,
                       lambda rng, c=c, hw=hw, k=k, dp=dp: chain_model(rng, c, hw, k, dp))
    for g, kk, n, rs in GEMMS:
        yield (g, "orig", "orig", (kk,), 2 * kk * n,
               lambda rng, kk=kk, n=n: gemm_model(rng, kk, n, None))
        for r in rs:
            yield (g, "r%d" % r, "pair", (kk,), 2 * r * (kk + n),
                   lambda rng, kk=kk, n=n, r=r: gemm_model(rng, kk, n, r))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--only", default="")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--chain", action="store_true")
    a = ap.parse_args()
    only = set(s for s in a.only.split(",") if s)
    os.makedirs(a.outdir, exist_ok=True)
    for g, name, kind, shape, fl, build in cases(a.chain):
        if only and g not in only:
            continue
        path = os.path.join(a.outdir, "%s_%s.onnx" % (g, name))
        if a.list:
            print(g, name, kind, ",".join(str(s) for s in shape), fl)
            continue
        if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(__file__):
            continue
        m = helper.make_model(build(np.random.default_rng(0)),
                              opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="lowrankd-bench")
        m.ir_version = 7
        onnx.checker.check_model(m)
        tmp = path + ".tmp"
        onnx.save(m, tmp)
        os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
