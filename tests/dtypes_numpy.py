#!/usr/bin/python3
"""Differential test of lowrank's element types against numpy (TAP).

Usage: dtypes_numpy.py LOWRANK TMPDIR

For every numeric type and operator, a one-node ONNX model (the second
operand an initializer) runs through `lowrank run` on seeded random data
that includes the edges (0, 1, -1, the type's min and max, NaN and
infinities for floats), and its output must equal numpy's own result in
that type: integers exactly (ONNX semantics: Div truncates toward zero,
Mod takes the divisor's sign unless fmod=1, everything wraps in the
type's width), double exactly, float16 within one unit in the last place
(numpy's float16 arithmetic rounds through float32 first; lowrank rounds
once from double), comparisons and casts exactly.
"""
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto as T, helper as H, numpy_helper as NH

LOWRANK, TMP = sys.argv[1], sys.argv[2]
SEED = 20261203
N = 257

INTS = [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64, np.uint64]
FLOATS = [np.float16, np.float64]
ONNX_T = {np.uint8: T.UINT8, np.int8: T.INT8, np.uint16: T.UINT16, np.int16: T.INT16,
          np.int32: T.INT32, np.uint32: T.UINT32, np.int64: T.INT64, np.uint64: T.UINT64,
          np.float16: T.FLOAT16, np.float32: T.FLOAT, np.float64: T.DOUBLE, np.bool_: T.BOOL}

n_test = 0
n_failed = 0


def ok(cond, desc):
    global n_test, n_failed
    n_test += 1
    if not cond:
        n_failed += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n_test, desc))
    sys.stdout.flush()


def sample(dt, rng, nonzero=False):
    """N values of dt: random over the range plus the edge values."""
    if dt in INTS:
        info = np.iinfo(dt)
        edges = [0, 1, info.max, info.min, info.max - 1, info.min + 1]
        if info.min < 0:
            edges.append(-1)
        v = rng.integers(info.min, info.max, size=N, dtype=dt, endpoint=True)
        v[:len(edges)] = np.array(edges, dtype=object).astype(dt)
        if nonzero:
            v[v == 0] = 3
    else:
        v = (rng.standard_normal(N) * 10.0 ** rng.integers(-3, 4, N)).astype(dt)
        edges = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, np.finfo(dt).max, np.finfo(dt).tiny]
        v[:len(edges)] = np.array(edges).astype(dt)
    return v


def run(name, node, x, init, out_t):
    """Runs a one-node model on x; returns the output array or an error."""
    inits = [NH.from_array(init, "b")] if init is not None else []
    g = H.make_graph([node], name, [H.make_tensor_value_info("a", ONNX_T[x.dtype.type], [N])],
                     [H.make_tensor_value_info("y", out_t, None)], inits)
    m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
    m.ir_version = 8
    path = "%s/%s.onnx" % (TMP, name)
    onnx.save(m, path)
    np.save("%s/x.npy" % TMP, x.reshape(1, N)[0])
    r = subprocess.run([LOWRANK, "run", path, "%s/x.npy" % TMP, "-o", "%s/y.npy" % TMP,
                        "--threads", "1"], capture_output=True, text=True)
    if r.returncode != 0:
        return r.stderr.strip()
    return np.load("%s/y.npy" % TMP)


def int_ref(op, a, b, dt, fmod=0):
    """ONNX integer semantics, computed on Python ints, wrapped to dt."""
    bits = np.iinfo(dt).bits
    signed = np.iinfo(dt).min < 0
    out = []
    for x, y in zip(a.tolist(), b.tolist()):
        if op == "Add":
            r = x + y
        elif op == "Sub":
            r = x - y
        elif op == "Mul":
            r = x * y
        elif op == "Max":
            r = max(x, y)
        elif op == "Min":
            r = min(x, y)
        elif op == "Div":
            q = abs(x) // abs(y)
            r = q if (x >= 0) == (y >= 0) else -q
        else:  # Mod
            q = abs(x) // abs(y)
            q = q if (x >= 0) == (y >= 0) else -q
            r = x - y * q                       # sign of the dividend
            if not fmod and r != 0 and (r < 0) != (y < 0):
                r += y                          # sign of the divisor
        r &= (1 << bits) - 1
        if signed and r >= 1 << (bits - 1):
            r -= 1 << bits
        out.append(r)
    return np.array(out, dtype=object).astype(dt)


def same(got, want):
    if isinstance(got, str) or got.dtype != want.dtype or got.shape != want.shape:
        return False
    if want.dtype == np.float16:
        g, w = got.astype(np.float64), want.astype(np.float64)
        both_nan = np.isnan(g) & np.isnan(w)
        with np.errstate(all="ignore"):
            ulp = np.abs(np.spacing(want)).astype(np.float64)
            close = (g == w) | (np.abs(g - w) <= ulp)
        return bool(np.all(both_nan | close))
    if want.dtype.kind == "f":
        return bool(np.all((got == want) | (np.isnan(got) & np.isnan(want))))
    return bool(np.array_equal(got, want))


def describe(got, want):
    if isinstance(got, str):
        return got[:200]
    bad = np.flatnonzero(~((got == want) | (np.isnan(got.astype(np.float64)) if got.dtype.kind == "f" else False)))
    k = int(bad[0]) if len(bad) else 0
    return "%d differ; first [%d]: got %r, want %r" % (len(bad), k, got.flat[k], want.flat[k])


def main():
    rng = np.random.default_rng(SEED)
    print("# seed %d" % SEED)
    for dt in INTS + FLOATS:
        name = np.dtype(dt).name
        for op in ["Add", "Sub", "Mul", "Div", "Mod", "Max", "Min"]:
            for fmod in ([0, 1] if op == "Mod" and dt in INTS else [1] if op == "Mod" else [0]):
                a = sample(dt, rng)
                b = sample(dt, rng, nonzero=op in ("Div", "Mod") and dt in INTS)
                kw = {"fmod": fmod} if op == "Mod" else {}
                got = run("%s_%s" % (op, name), H.make_node(op, ["a", "b"], ["y"], **kw), a, b,
                          ONNX_T[dt])
                if dt in INTS:
                    want = int_ref(op, a, b, dt, fmod)
                else:
                    with np.errstate(all="ignore"):
                        want = {"Add": a + b, "Sub": a - b, "Mul": a * b, "Div": a / b,
                                "Mod": np.fmod(a, b), "Max": np.where(np.isnan(a) | np.isnan(b), np.nan, np.maximum(a, b)).astype(dt),
                                "Min": np.where(np.isnan(a) | np.isnan(b), np.nan, np.minimum(a, b)).astype(dt)}[op]
                ok(same(got, want), "%s %s%s%s" % (name, op, " fmod=%d" % fmod if op == "Mod" else "",
                                                    "" if same(got, want) else ": " + describe(got, want)))
        for op, f in [("Equal", np.equal), ("Less", np.less), ("Greater", np.greater),
                      ("LessOrEqual", np.less_equal), ("GreaterOrEqual", np.greater_equal)]:
            a, b = sample(dt, rng), sample(dt, rng)
            b[::3] = a[::3]                     # some equal pairs
            got = run("%s_%s" % (op, name), H.make_node(op, ["a", "b"], ["y"]), a, b, T.BOOL)
            want = f(a, b)
            ok(same(got, want), "%s %s%s" % (name, op, "" if same(got, want) else ": " + describe(got, want)))
    # Unary functions: integers (Abs, Neg, Sign wrap in the type) and the
    # float types (computed in double, rounded once; libm and numpy may
    # differ in the last place of a double transcendental).
    for dt in INTS + FLOATS:
        name = np.dtype(dt).name
        ops = [("Abs", np.abs), ("Neg", np.negative), ("Sign", np.sign)]
        if dt in FLOATS or np.iinfo(dt).min < 0:
            ops.append(("Relu", lambda v: np.where(v > 0, v, 0).astype(v.dtype)))
        if dt in FLOATS:
            ops.append(("Sigmoid", lambda v: (1 / (1 + np.exp(-v.astype(np.float64)))).astype(v.dtype)))
        if dt in FLOATS:
            ops += [("Exp", np.exp), ("Log", np.log), ("Sqrt", np.sqrt), ("Sin", np.sin),
                    ("Floor", np.floor), ("Ceil", np.ceil), ("Round", np.round),
                    ("Reciprocal", np.reciprocal), ("Tanh", np.tanh)]
        for op, f in ops:
            if dt in INTS and np.iinfo(dt).min == 0 and op == "Neg":
                continue                        # ONNX Neg is for signed types
            a = sample(dt, rng)
            got = run("%s_%s" % (op, name), H.make_node(op, ["a"], ["y"]), a, None, ONNX_T[dt])
            with np.errstate(all="ignore"):
                want = f(a).astype(dt)
            good = same(got, want)
            if not good and dt == np.float64 and not isinstance(got, str):
                with np.errstate(all="ignore"):
                    good = bool(np.all((got == want) | (np.isnan(got) & np.isnan(want)) |
                                       (np.abs(got - want) <= 2 * np.abs(np.spacing(want)))))
            ok(good, "%s %s%s" % (name, op, "" if good else ": " + describe(got, want)))

    # Reductions of the integer types wrap in the type (numpy with dtype=).
    for dt in INTS:
        for op, f in [("ReduceSum", np.sum), ("ReduceProd", np.prod), ("ReduceMax", np.max),
                      ("ReduceMin", np.min)]:
            if dt == np.uint64 and op in ("ReduceMax", "ReduceMin"):
                continue                        # refused (see ops_reduce.c)
            a = sample(dt, rng)
            got = run("%s_%s" % (op, np.dtype(dt).name),
                      H.make_node(op, ["a"], ["y"], keepdims=0), a, None, ONNX_T[dt])
            want = np.array(f(a, dtype=dt) if op in ("ReduceSum", "ReduceProd") else f(a), dtype=dt)
            ok(same(got, want), "%s %s%s" % (np.dtype(dt).name, op,
                                             "" if same(got, want) else ": " + describe(got, want)))

    # Cast between every pair (floats to integers only within range).
    for src in INTS + FLOATS + [np.float32, np.bool_]:
        for dst in INTS + FLOATS + [np.float32, np.bool_]:
            if src == np.bool_:
                a = rng.integers(0, 2, N).astype(np.bool_)
            else:
                a = sample(src, rng)
            if np.dtype(src).kind == "f" and dst in INTS:
                info = np.iinfo(dst)
                lo, hi = max(float(info.min), -6e4), min(float(info.max), 6e4)
                a = np.where(np.isfinite(a) & (a >= lo) & (a <= hi), a, 7).astype(src)
            got = run("Cast_%s_%s" % (np.dtype(src).name, np.dtype(dst).name),
                      H.make_node("Cast", ["a"], ["y"], to=ONNX_T[dst]), a, None, ONNX_T[dst])
            with np.errstate(all="ignore"):
                want = a.astype(dst)
            exact = same(got, want) and (dst != np.float16 or
                                         np.array_equal(got.view(np.uint16), want.view(np.uint16)))
            ok(exact, "Cast %s -> %s%s" % (np.dtype(src).name, np.dtype(dst).name,
                                           "" if exact else ": " + describe(got, want)))
    print("1..%d" % n_test)
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
