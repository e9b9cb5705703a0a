#!/usr/bin/python3
"""Compare two .npy arrays, or write a random input.

  /usr/bin/python3 compare.py A.npy B.npy [--rtol 1e-4] [--atol 1e-5]
      B is the reference.  Prints both shapes, max|a-b|, the relative error
      max|a-b| / max|b| and whether numpy.allclose(a, b, rtol, atol) holds
      elementwise.  Exits 0 when the shapes are equal and
      max|a-b| <= atol + rtol * max|b|; otherwise exits 1 with a one-line
      reason on stderr.

  /usr/bin/python3 compare.py --random-input 1,3,224,224 OUT.npy [--seed N]
      Writes float32 standard-normal values from numpy.random.default_rng(N)
      (N defaults to 0).

Exit status 2 on usage or file errors.
"""

import argparse
import os
import sys

import numpy as np


def fail(msg, code=1):
    print("compare: " + msg, file=sys.stderr)
    sys.exit(code)


def load(path):
    try:
        a = np.load(path, allow_pickle=False)
    except Exception as e:  # unreadable, not .npy, pickled object array ...
        fail("%s: %s" % (path, e), 2)
    if not isinstance(a, np.ndarray):
        fail("%s: not a single .npy array" % path, 2)
    if a.dtype.kind not in "fiu":
        fail("%s: dtype %s is not numeric" % (path, a.dtype), 2)
    return a


def parse_shape(s):
    try:
        dims = [int(p) for p in s.split(",")]
    except ValueError:
        fail("bad shape %r (want e.g. 1,3,224,224)" % s, 2)
    if not dims or any(d < 1 for d in dims):
        fail("bad shape %r (want e.g. 1,3,224,224)" % s, 2)
    return dims


def random_input(shape, out, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(parse_shape(shape), dtype=np.float32)
    tmp = "%s.tmp.%d.npy" % (out, os.getpid())
    try:
        np.save(tmp, x)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print("wrote %s shape %s float32 seed %d" % (out, x.shape, seed))
    return 0


def compare(pa, pb, rtol, atol):
    a = load(pa)
    b = load(pb)
    print("A %s shape %s dtype %s" % (pa, a.shape, a.dtype))
    print("B %s shape %s dtype %s" % (pb, b.shape, b.dtype))
    if a.shape != b.shape:
        fail("shape mismatch: %s vs %s" % (a.shape, b.shape))
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    if a64.size == 0:
        print("empty arrays: equal")
        return 0
    nan_a = ~np.isfinite(a64)
    nan_b = ~np.isfinite(b64)
    if nan_a.any() or nan_b.any():
        fail("non-finite values: %d in A, %d in B" % (nan_a.sum(), nan_b.sum()))
    diff = np.abs(a64 - b64)
    max_abs = float(diff.max())
    max_b = float(np.abs(b64).max())
    rel = max_abs / max_b if max_b > 0 else (0.0 if max_abs == 0 else float("inf"))
    where = np.unravel_index(int(diff.argmax()), diff.shape)
    close = np.isclose(a64, b64, rtol=rtol, atol=atol)
    n_bad = int(close.size - close.sum())
    print("max abs diff   %.6g at %s (A=%.8g B=%.8g)"
          % (max_abs, tuple(int(i) for i in where), a64[where], b64[where]))
    print("max |B|        %.6g" % max_b)
    print("max rel error  %.6g  (max|A-B| / max|B|)" % rel)
    print("allclose(rtol=%g, atol=%g): %s (%d of %d elements outside)"
          % (rtol, atol, "yes" if n_bad == 0 else "no", n_bad, close.size))
    bound = atol + rtol * max_b
    if max_abs <= bound:
        print("PASS: max|A-B| %.6g <= atol + rtol*max|B| = %.6g" % (max_abs, bound))
        return 0
    fail("max|A-B| %.6g > atol + rtol*max|B| = %.6g (rel error %.6g)" % (max_abs, bound, rel))


def main(argv):
    ap = argparse.ArgumentParser(
        description="Compare two .npy arrays (B is the reference), or write a random input.")
    ap.add_argument("files", nargs="*", help="A.npy B.npy, or OUT.npy with --random-input")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--random-input", metavar="SHAPE",
                    help="write a float32 standard-normal array of SHAPE (e.g. 1,3,224,224)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    if args.random_input is not None:
        if len(args.files) != 1:
            ap.error("--random-input SHAPE needs exactly one OUT.npy")
        return random_input(args.random_input, args.files[0], args.seed)
    if len(args.files) != 2:
        ap.error("need A.npy B.npy")
    if args.rtol < 0 or args.atol < 0:
        ap.error("--rtol and --atol must be >= 0")
    return compare(args.files[0], args.files[1], args.rtol, args.atol)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
