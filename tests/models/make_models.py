#!/usr/bin/python3
"""Export torchvision CNNs with random weights to ONNX (opset 13).

Usage: /usr/bin/python3 make_models.py OUTDIR [--only name,name] [--list] [--ops]

Every model is built with weights=None after torch.manual_seed(0), so no
download happens and the output is reproducible on one torch build.  The
BatchNorm running statistics are then set from one seeded random batch (see
calibrate_batchnorm) so that every network's outputs are of order 1.  Each
model is exported in eval mode with input "input", output "output" and a
dynamic batch axis, then checked with onnx.checker.check_model.  Next to
OUTDIR/<name>.onnx goes OUTDIR/<name>.json = {"input_shape": [1,3,H,W]}.

A model whose .onnx (and .json) already exist and are newer than this script
is skipped.  Files are written to a temporary name and renamed into place.
--list prints the model names and exits; --ops prints the ONNX op types of
each selected model (after exporting what is missing).

Needs Debian's python3-torch, python3-torchvision and python3-onnx, which
belong to /usr/bin/python3.
"""

import argparse
import collections
import json
import os
import sys
import time

# name -> (input H/W, extra constructor kwargs)
MODELS = collections.OrderedDict([
    ("vgg16", (224, {})),
    ("resnet18", (224, {})),
    ("resnet50", (224, {})),
    ("alexnet", (224, {})),
    ("squeezenet1_1", (224, {})),
    ("googlenet", (224, {"aux_logits": False, "init_weights": True})),
    ("inception_v3", (299, {"aux_logits": False, "init_weights": True})),
    ("mobilenet_v2", (224, {})),
    ("mnasnet1_0", (224, {})),
    ("efficientnet_b0", (224, {})),
    ("densenet121", (224, {})),
    ("shufflenet_v2_x1_0", (224, {})),
    ("regnet_y_400mf", (224, {})),
])

OPSET = 13


def input_shape(name):
    hw = MODELS[name][0]
    return [1, 3, hw, hw]


def build_model(name):
    import torch
    import torchvision.models as tvm
    torch.manual_seed(0)
    ctor = getattr(tvm, name)
    kwargs = dict(MODELS[name][1])
    model = ctor(weights=None, **kwargs)
    calibrate_batchnorm(model, input_shape(name))
    model.eval()
    return model


def calibrate_batchnorm(model, shape, batch=8, seed=123):
    """Set every BatchNorm's running statistics from one random batch.

    torchvision's default init leaves running_mean=0, running_var=1, and with
    those the eval-mode activations of several of these networks vanish or
    explode (efficientnet_b0 logits ~1e-14, mobilenet_v2 ~1e-9, inception_v3
    ~1e12), which would make any numerical comparison meaningless.  One
    forward pass with only the BN layers in training mode (momentum=None:
    cumulative average, so the stats are exactly this batch's) brings every
    network's logits to O(0.1..10) and gives the folded conv biases real,
    distinct values.  Deterministic: the batch comes from its own seeded
    generator.
    """
    import torch
    bns = [m for m in model.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    model.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    x = torch.randn(batch, *shape[1:], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        model(x)
    for bn in bns:
        bn.momentum = 0.1


def export(name, outdir):
    import torch
    import onnx
    shape = input_shape(name)
    model = build_model(name)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    dst = os.path.join(outdir, name + ".onnx")
    tmp = "%s.tmp.%d" % (dst, os.getpid())
    try:
        with torch.no_grad():
            torch.onnx.export(
                model, (x,), tmp,
                export_params=True,
                training=torch.onnx.TrainingMode.EVAL,
                input_names=["input"],
                output_names=["output"],
                opset_version=OPSET,
                do_constant_folding=True,
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            )
        onnx.checker.check_model(tmp)  # path form: works for any size
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    write_json(name, outdir)
    return dst


def write_json(name, outdir):
    dst = os.path.join(outdir, name + ".json")
    tmp = "%s.tmp.%d" % (dst, os.getpid())
    with open(tmp, "w") as f:
        json.dump({"input_shape": input_shape(name)}, f)
        f.write("\n")
    os.replace(tmp, dst)


def up_to_date(path, script_mtime):
    try:
        return os.stat(path).st_mtime > script_mtime
    except FileNotFoundError:
        return False


def op_summary(path):
    import onnx
    m = onnx.load(path, load_external_data=False)
    counts = collections.Counter(n.op_type for n in m.graph.node)
    return counts


def fmt_size(n):
    return "%.1f MiB" % (n / 1048576.0)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?")
    ap.add_argument("--only", help="comma-separated model names")
    ap.add_argument("--list", action="store_true", help="list model names and exit")
    ap.add_argument("--ops", action="store_true", help="print ONNX op types per model")
    args = ap.parse_args(argv)

    if args.list:
        for name in MODELS:
            print("%s %s" % (name, "x".join(str(d) for d in input_shape(name))))
        return 0
    if not args.outdir:
        ap.error("OUTDIR is required")

    names = list(MODELS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            print("make_models: unknown model(s): %s (see --list)" % ", ".join(unknown),
                  file=sys.stderr)
            return 2

    os.makedirs(args.outdir, exist_ok=True)
    script_mtime = os.stat(os.path.abspath(__file__)).st_mtime
    failed = []
    for name in names:
        onnx_path = os.path.join(args.outdir, name + ".onnx")
        json_path = os.path.join(args.outdir, name + ".json")
        if up_to_date(onnx_path, script_mtime) and up_to_date(json_path, script_mtime):
            print("%-20s %10s  up to date" % (name, fmt_size(os.path.getsize(onnx_path))),
                  flush=True)
            continue
        t0 = time.monotonic()
        try:
            export(name, args.outdir)
        except Exception as e:  # report and go on with the other models
            msg = str(e).strip().splitlines()
            print("%-20s FAILED: %s: %s" % (name, type(e).__name__, msg[0] if msg else ""),
                  flush=True)
            failed.append(name)
            continue
        dt = time.monotonic() - t0
        print("%-20s %10s  %6.1f s" % (name, fmt_size(os.path.getsize(onnx_path)), dt),
              flush=True)

    if args.ops:
        for name in names:
            path = os.path.join(args.outdir, name + ".onnx")
            if name in failed or not os.path.exists(path):
                continue
            counts = op_summary(path)
            total = sum(counts.values())
            ops = " ".join("%s:%d" % kv for kv in sorted(counts.items()))
            print("ops %-20s %4d nodes  %s" % (name, total, ops))

    if failed:
        print("make_models: failed: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
