#!/usr/bin/python3
"""Fashion-MNIST from Debian's dataset-fashion-mnist as normalised arrays.

    fmnist.py calib N OUT.npy [--seed S]   N training images (seeded choice)
    fmnist.py test OUT.npy LABELS.npy      the 10,000 labeled test images

Images become float32 N x 1 x 28 x 28: pixel / 255, minus 0.2860, over
0.3530 (the statistics make_fmnist.py trained with).
"""
import gzip
import os
import sys

import numpy as np

DIR = os.environ.get("LR_FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.2860, 0.3530


def load(split):
    with gzip.open(os.path.join(DIR, "%s-images-idx3-ubyte.gz" % split)) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(DIR, "%s-labels-idx1-ubyte.gz" % split)) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x = ((x.astype(np.float32) / 255.0) - MEAN) / STD
    return x.astype(np.float32), y.astype(np.int64)


def main(argv):
    if len(argv) >= 3 and argv[0] == "calib":
        seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 0
        x, _ = load("train")
        idx = np.random.default_rng(seed).choice(len(x), int(argv[1]), replace=False)
        np.save(argv[2], np.ascontiguousarray(x[np.sort(idx)]))
        return 0
    if len(argv) == 3 and argv[0] == "test":
        x, y = load("t10k")
        np.save(argv[1], x)
        np.save(argv[2], y)
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
