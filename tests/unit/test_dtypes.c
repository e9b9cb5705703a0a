/*
 * test_dtypes.c - element types beyond float32/int64 (model/tensor.c,
 * model/ops_types.c, the engine's widening and type checks, typed .npy).
 *
 * DESIGN. float16 rounding is checked as a property over every finite
 * half value: the value itself, the exact midpoint to its neighbour (a
 * tie, which must go to the even one) and points just inside either side
 * of it, all built exactly in double. Integer arithmetic is checked at the
 * edges a widening-then-truncating or a C-promotion bug would get wrong
 * (wraparound in the type's width, INT_MIN / -1, unsigned 64-bit values
 * above INT64_MAX, signed Mod). Every model goes through the real path
 * (opcheck.h: protobuf, loader, engine). Random inputs use a fixed seed.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/npy.h"
#include "tests/unit/opcheck.h"
#include "tests/unit/tap.h"

#define D(...) ((const int64_t[]){ __VA_ARGS__ })

/* A tensor of type dt and shape [n] from raw element bytes. */
static lr_tensor *mk(lr_dtype dt, int64_t n, const void *v)
{
	lr_tensor *t = NULL;

	if (lr_tensor_create(&t, dt, 1, &n, 1) != 0)
		abort();
	memcpy(t->data, v, lr_tensor_bytes(t));
	return t;
}

/* Runs a one-node model with inputs a (and b), one output; NULL on failure. */
static lr_tensor *run2(const char *op, int64_t opset, lr_tensor *a, lr_tensor *b,
		       const char *attr, int64_t attr_v, lr_msg *msg)
{
	lrt_node n;
	lr_tensor *y = NULL;

	lrt_init(&n, op, opset);
	if (attr != NULL)
		lrt_attr_int(&n, attr, attr_v);
	lrt_input(&n, a);
	if (b != NULL)
		lrt_input(&n, b);
	memset(msg, 0, sizeof(*msg));
	if (lrt_run(&n, 1, &y, msg) != 0) {
		lr_tensor_free(y);
		return NULL;
	}
	return y;
}

/* 1 when y has type dt, n elements and exactly the bytes `want`. */
static int is(const lr_tensor *y, lr_dtype dt, int64_t n, const void *want)
{
	return y != NULL && y->dtype == dt && y->nelem == n &&
	       memcmp(y->data, want, (size_t)n * lr_dtype_size(dt)) == 0;
}

/* ---- float16 ----------------------------------------------------------- */

static void test_half(void)
{
	int bad_exact = 0, bad_tie = 0, bad_near = 0, bad_back = 0;

	for (uint32_t h = 0; h < 0x7c00; h++) { /* every finite non-negative half */
		double v = lr_half_to_float((uint16_t)h), next, mid, eps;

		if (lr_double_to_half(v) != h || lr_double_to_half(-v) != (h | 0x8000))
			bad_exact++;
		if ((uint16_t)h != lr_double_to_half((double)(float)v))
			bad_back++;
		next = h + 1 < 0x7c00 ? lr_half_to_float((uint16_t)(h + 1)) : 65536.0;
		mid = (v + next) / 2;   /* exact in double */
		eps = (next - v) / 1024; /* far below the gap, far above double's ulp */
		/* The tie goes to the even significand; 65520 rounds to infinity. */
		if (lr_double_to_half(mid) != ((h & 1) ? h + 1 : h))
			bad_tie++;
		if (lr_double_to_half(mid - eps) != h || lr_double_to_half(mid + eps) != h + 1)
			bad_near++;
	}
	tap_ok(bad_exact == 0, "every finite float16 value (and its negative) converts back exactly (%d bad)", bad_exact);
	tap_ok(bad_back == 0, "float16 -> float32 -> float16 is the identity (%d bad)", bad_back);
	tap_ok(bad_tie == 0, "every midpoint between float16 neighbours rounds to even (%d bad)", bad_tie);
	tap_ok(bad_near == 0, "points just inside a midpoint round to the nearer value (%d bad)", bad_near);
	tap_ok(lr_double_to_half(65504.0) == 0x7bff && lr_double_to_half(65519.99) == 0x7bff &&
	       lr_double_to_half(65520.0) == 0x7c00 && lr_double_to_half(-1e300) == 0xfc00 &&
	       lr_double_to_half(INFINITY) == 0x7c00,
	       "float16 overflow: up to 65519.99 is 65504, from 65520 infinity");
	tap_ok(lr_double_to_half(0x1p-25) == 0x0000 && lr_double_to_half(0x1p-25 + 0x1p-40) == 0x0001 &&
	       lr_double_to_half(3 * 0x1p-25) == 0x0002 && lr_double_to_half(-0.0) == 0x8000,
	       "float16 subnormals: half the smallest is a tie to 0, 1.5 ulp ties up to 2, -0 keeps its sign");
	tap_ok((lr_double_to_half(NAN) & 0x7c00) == 0x7c00 && (lr_double_to_half(NAN) & 0x3ff) != 0,
	       "NaN stays NaN in float16");
	/* Rounding through float32 first would give 1.0 for the first one. */
	tap_ok(lr_double_to_half(1.0 + 0x1p-11 + 0x1p-30) == 0x3c01 &&
	       lr_double_to_half(1.0 + 0x1p-11) == 0x3c00,
	       "double -> float16 rounds once (no double rounding through float32)");
}

/* ---- Cast ------------------------------------------------------------------ */

static void test_cast(void)
{
	lr_msg msg;
	float f[] = { 1.7f, -1.7f, 300.0f, -1.0f, 255.5f, NAN, -0.0f, 65520.0f };
	lr_tensor *x = mk(LR_DT_FLOAT, 8, f), *y;
	int32_t big[] = { INT32_MAX, INT32_MIN, -1, 256 };
	lr_tensor *xi = mk(LR_DT_INT32, 4, big);

	y = run2("Cast", 13, x, NULL, "to", 2, &msg);
	tap_ok(is(y, LR_DT_UINT8, 8, (uint8_t[]){ 1, 255, 44, 255, 255, 0, 0, 240 }),
	       "Cast float -> uint8 truncates toward zero and wraps (-1.7 -> -1 -> 255, 300 -> 44)");
	lr_tensor_free(y);
	y = run2("Cast", 13, x, NULL, "to", 9, &msg);
	tap_ok(is(y, LR_DT_BOOL, 8, (uint8_t[]){ 1, 1, 1, 1, 1, 1, 0, 1 }),
	       "Cast float -> bool: nonzero and NaN are true, -0 is false");
	lr_tensor_free(y);
	y = run2("Cast", 13, x, NULL, "to", 10, &msg);
	tap_ok(is(y, LR_DT_FLOAT16, 8, (uint16_t[]){ 0x3ecd, 0xbecd, 0x5cb0, 0xbc00, 0x5bfc,
						     ((uint16_t *)y->data)[5], 0x8000, 0x7c00 }) &&
	       (((uint16_t *)y->data)[5] & 0x7fff) > 0x7c00,
	       "Cast float -> float16 as IEEE bits (NaN stays NaN, 65520 -> inf)");
	lr_tensor_free(y);
	y = run2("Cast", 13, xi, NULL, "to", 3, &msg);
	tap_ok(is(y, LR_DT_INT8, 4, (int8_t[]){ -1, 0, -1, 0 }), "Cast int32 -> int8 keeps the low byte");
	lr_tensor_free(y);
	y = run2("Cast", 13, xi, NULL, "to", 13, &msg);
	tap_ok(is(y, LR_DT_UINT64, 4, (uint64_t[]){ 2147483647u, 0xffffffff80000000u,
						    0xffffffffffffffffu, 256 }),
	       "Cast int32 -> uint64 sign-extends then reinterprets");
	lr_tensor_free(y);
	y = run2("Cast", 13, xi, NULL, "to", 11, &msg);
	tap_ok(is(y, LR_DT_DOUBLE, 4, (double[]){ 2147483647.0, -2147483648.0, -1.0, 256.0 }),
	       "Cast int32 -> double is exact");
	lr_tensor_free(y);
	{
		double d[] = { 0.1, 1e300, -2.5 };
		lr_tensor *xd = mk(LR_DT_DOUBLE, 3, d);

		y = run2("Cast", 13, xd, NULL, "to", 1, &msg);
		tap_ok(is(y, LR_DT_FLOAT, 3, (float[]){ 0.1f, INFINITY, -2.5f }),
		       "Cast double -> float rounds (1e300 -> inf)");
		lr_tensor_free(y);
		y = run2("CastLike", 15, xd, xi, NULL, 0, &msg);
		tap_ok(is(y, LR_DT_INT32, 3, (int32_t[]){ 0, 0, -2 }),
		       "CastLike takes input 1's type (double -> int32; 1e300 is out of range: 0)");
		lr_tensor_free(y);
		lr_tensor_free(xd);
	}
	lr_tensor_free(x);
	lr_tensor_free(xi);
}

/* ---- integer and double arithmetic -------------------------------------- */

static void test_arith(void)
{
	lr_msg msg;
	lr_tensor *a, *b, *y;

	a = mk(LR_DT_UINT8, 4, (uint8_t[]){ 200, 255, 0, 7 });
	b = mk(LR_DT_UINT8, 4, (uint8_t[]){ 100, 1, 1, 2 });
	y = run2("Add", 14, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_UINT8, 4, (uint8_t[]){ 44, 0, 1, 9 }), "uint8 Add wraps mod 256");
	lr_tensor_free(y);
	{
		/* A lower-rank first input: [3] + [2,3] broadcasts to [2,3]. */
		lr_tensor *r1 = mk(LR_DT_UINT16, 3, (uint16_t[]){ 1, 2, 3 }), *r2 = NULL;

		lr_tensor_create(&r2, LR_DT_UINT16, 2, D(2, 3), 1);
		memcpy(r2->data, (uint16_t[]){ 10, 20, 30, 40, 50, 60 }, 12);
		y = run2("Add", 14, r1, r2, NULL, 0, &msg);
		tap_ok(is(y, LR_DT_UINT16, 6, (uint16_t[]){ 11, 22, 33, 41, 52, 63 }) &&
		       y->ndim == 2 && y->dims[0] == 2 && y->dims[1] == 3,
		       "uint16 Add broadcasts [3] + [2,3]%s", msg.text);
		lr_tensor_free(y);
		lr_tensor_free(r1);
		lr_tensor_free(r2);
	}
	y = run2("Sub", 14, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_UINT8, 4, (uint8_t[]){ 100, 254, 255, 5 }), "uint8 Sub wraps (0 - 1 = 255)");
	lr_tensor_free(y);
	y = run2("Mul", 14, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_UINT8, 4, (uint8_t[]){ 32, 255, 0, 14 }), "uint8 Mul wraps (200 * 100 = 20000 -> 32)");
	lr_tensor_free(y);
	y = run2("Div", 14, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_UINT8, 4, (uint8_t[]){ 2, 255, 0, 3 }), "uint8 Div truncates");
	lr_tensor_free(y);
	lr_tensor_free(a);
	lr_tensor_free(b);

	a = mk(LR_DT_INT32, 4, (int32_t[]){ INT32_MAX, INT32_MIN, -7, 7 });
	b = mk(LR_DT_INT32, 4, (int32_t[]){ 1, -1, 2, -2 });
	y = run2("Add", 14, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_INT32, 4, (int32_t[]){ INT32_MIN, INT32_MAX, -5, 5 }),
	       "int32 Add wraps in 32 bits (not widened to int64)");
	lr_tensor_free(y);
	y = run2("Mul", 14, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_INT32, 4, (int32_t[]){ INT32_MAX, INT32_MIN, -14, -14 }),
	       "int32 Mul: INT32_MIN * -1 wraps to INT32_MIN");
	lr_tensor_free(y);
	y = run2("Div", 14, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_INT32, 4, (int32_t[]){ INT32_MAX, INT32_MIN, -3, -3 }),
	       "int32 Div truncates toward zero; INT32_MIN / -1 wraps");
	lr_tensor_free(y);
	y = run2("Mod", 13, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_INT32, 4, (int32_t[]){ 0, 0, 1, -1 }),
	       "int32 Mod (fmod=0) takes the divisor's sign: -7 mod 2 = 1, 7 mod -2 = -1");
	lr_tensor_free(y);
	y = run2("Mod", 13, a, b, "fmod", 1, &msg);
	tap_ok(is(y, LR_DT_INT32, 4, (int32_t[]){ 0, 0, -1, 1 }),
	       "int32 Mod fmod=1 takes the dividend's sign");
	lr_tensor_free(y);
	lr_tensor_free(b);
	b = mk(LR_DT_INT32, 4, (int32_t[]){ 1, 0, 2, 2 });
	y = run2("Div", 14, a, b, NULL, 0, &msg);
	tap_ok(y == NULL && strstr(msg.text, "division by zero") != NULL,
	       "int32 Div by zero fails naming the problem: %s", msg.text);
	lr_tensor_free(y);
	lr_tensor_free(a);
	lr_tensor_free(b);

	a = mk(LR_DT_INT8, 3, (int8_t[]){ -128, 127, -5 });
	b = mk(LR_DT_INT8, 3, (int8_t[]){ -1, 127, 3 });
	y = run2("Mul", 14, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_INT8, 3, (int8_t[]){ -128, 1, -15 }), "int8 Mul wraps in 8 bits");
	lr_tensor_free(y);
	lr_tensor_free(a);
	lr_tensor_free(b);

	a = mk(LR_DT_UINT64, 2, (uint64_t[]){ 0xfffffffffffffffeu, 10 });
	b = mk(LR_DT_UINT64, 2, (uint64_t[]){ 2, 0x8000000000000000u });
	y = run2("Div", 14, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_UINT64, 2, (uint64_t[]){ 0x7fffffffffffffffu, 0 }),
	       "uint64 Div is unsigned above INT64_MAX");
	lr_tensor_free(y);
	y = run2("Max", 13, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_UINT64, 2, (uint64_t[]){ 0xfffffffffffffffeu, 0x8000000000000000u }),
	       "uint64 Max compares unsigned");
	lr_tensor_free(y);
	y = run2("Less", 13, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_BOOL, 2, (uint8_t[]){ 0, 1 }), "uint64 Less compares unsigned");
	lr_tensor_free(y);
	lr_tensor_free(a);
	lr_tensor_free(b);

	a = mk(LR_DT_DOUBLE, 2, (double[]){ 0.1, 1e-300 });
	b = mk(LR_DT_DOUBLE, 2, (double[]){ 0.2, 1e-300 });
	y = run2("Add", 14, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_DOUBLE, 2, (double[]){ 0.1 + 0.2, 2e-300 }),
	       "double Add computes in double (0.1 + 0.2 = 0.30000000000000004, 1e-300 survives)");
	lr_tensor_free(y);
	lr_tensor_free(a);
	lr_tensor_free(b);

	{
		/* Add-6 with broadcast=1, axis=0: B [2] is aligned with A's axis 0. */
		lrt_node n;

		a = NULL;
		lr_tensor_create(&a, LR_DT_DOUBLE, 2, D(2, 3), 1);
		memcpy(a->data, (double[]){ 1, 2, 3, 4, 5, 6 }, 6 * sizeof(double));
		b = mk(LR_DT_DOUBLE, 2, (double[]){ 10, 20 });
		lrt_init(&n, "Add", 6);
		lrt_attr_int(&n, "broadcast", 1);
		lrt_attr_int(&n, "axis", 0);
		lrt_input(&n, a);
		lrt_input(&n, b);
		y = NULL;
		lrt_run(&n, 1, &y, &msg);
		tap_ok(is(y, LR_DT_DOUBLE, 6, (double[]){ 11, 12, 13, 24, 25, 26 }),
		       "double Add-6 honours broadcast=1 with axis=0%s", msg.text);
		lr_tensor_free(y);
		lr_tensor_free(a);
		lr_tensor_free(b);
	}

	a = mk(LR_DT_FLOAT16, 2, (uint16_t[]){ 0x3c00, 0x7bff });   /* 1, 65504 */
	b = mk(LR_DT_FLOAT16, 2, (uint16_t[]){ 0x1400, 0x5000 });   /* 2^-10, 32 */
	y = run2("Add", 14, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_FLOAT16, 2, (uint16_t[]){ 0x3c01, 0x7c00 }),
	       "float16 Add rounds to float16 (1 + 2^-10 exact, 65504 + 32 overflows to inf)");
	lr_tensor_free(y);
	lr_tensor_free(a);
	lr_tensor_free(b);

	a = mk(LR_DT_INT8, 4, (int8_t[]){ -100, 0, 100, 5 });
	{
		lrt_node n;
		lr_tensor *lo = NULL, *hi = NULL;

		lr_tensor_create(&lo, LR_DT_INT8, 0, NULL, 1);
		lr_tensor_create(&hi, LR_DT_INT8, 0, NULL, 1);
		*(int8_t *)lo->data = -10;
		*(int8_t *)hi->data = 10;
		lrt_init(&n, "Clip", 13);
		lrt_input(&n, a);
		lrt_const(&n, lo);
		lrt_const(&n, hi);
		y = NULL;
		memset(&msg, 0, sizeof(msg));
		lrt_run(&n, 1, &y, &msg);
		tap_ok(is(y, LR_DT_INT8, 4, (int8_t[]){ -10, 0, 10, 5 }), "int8 Clip with int8 bounds%s", msg.text);
		lr_tensor_free(y);
		lrt_init(&n, "Clip", 13);
		lrt_input(&n, a);
		y = NULL;
		lrt_run(&n, 1, &y, &msg);
		tap_ok(is(y, LR_DT_INT8, 4, (int8_t[]){ -100, 0, 100, 5 }), "int8 Clip without bounds is the identity");
		lr_tensor_free(y);
		lr_tensor_free(lo);
		lr_tensor_free(hi);
	}
	lr_tensor_free(a);
}

/* ---- reductions and CumSum in double and narrow integers ---------------- */

static void test_reduce(void)
{
	lr_msg msg;
	lrt_node n;
	lr_tensor *xd = mk(LR_DT_DOUBLE, 3, (double[]){ 0.1, 0.2, 1e-17 });
	lr_tensor *x8 = mk(LR_DT_INT8, 3, (int8_t[]){ 100, 100, 100 });
	lr_tensor *ax = NULL, *y = NULL;

	lr_tensor_create(&ax, LR_DT_INT64, 0, NULL, 1);
	*(int64_t *)ax->data = 0;
	lrt_init(&n, "ReduceSum", 13);
	lrt_attr_int(&n, "keepdims", 0);
	lrt_input(&n, xd);
	memset(&msg, 0, sizeof(msg));
	lrt_run(&n, 1, &y, &msg);
	tap_ok(is(y, LR_DT_DOUBLE, 1, (double[]){ 0.1 + 0.2 + 1e-17 }),
	       "double ReduceSum accumulates and returns double%s", msg.text);
	lr_tensor_free(y);
	y = NULL;
	lrt_init(&n, "ReduceLogSumExp", 13);
	lrt_attr_int(&n, "keepdims", 0);
	lrt_input(&n, xd);
	lrt_run(&n, 1, &y, &msg);
	tap_ok(y != NULL && y->dtype == LR_DT_DOUBLE &&
	       fabs(*(double *)y->data - log(exp(0.1) + exp(0.2) + exp(1e-17))) < 1e-15,
	       "double ReduceLogSumExp to 1e-15");
	lr_tensor_free(y);
	y = NULL;
	lrt_init(&n, "CumSum", 14);
	lrt_input(&n, x8);
	lrt_const(&n, ax);
	lrt_run(&n, 1, &y, &msg);
	tap_ok(is(y, LR_DT_INT8, 3, (int8_t[]){ 100, -56, 44 }), "int8 CumSum wraps in 8 bits%s", msg.text);
	lr_tensor_free(y);
	y = NULL;
	lrt_init(&n, "CumSum", 14);
	lrt_attr_int(&n, "exclusive", 1);
	lrt_input(&n, xd);
	lrt_const(&n, ax);
	lrt_run(&n, 1, &y, &msg);
	tap_ok(is(y, LR_DT_DOUBLE, 3, (double[]){ 0, 0.1, 0.1 + 0.2 }), "double exclusive CumSum");
	lr_tensor_free(y);
	lr_tensor_free(xd);
	lr_tensor_free(x8);
	lr_tensor_free(ax);
}

/* ---- bool ------------------------------------------------------------------ */

static void test_bool(void)
{
	lr_msg msg;
	lr_tensor *a = NULL, *b = mk(LR_DT_BOOL, 2, (uint8_t[]){ 0, 1 }), *y;
	lrt_node n;

	lr_tensor_create(&a, LR_DT_BOOL, 2, D(2, 1), 1);
	memcpy(a->data, (uint8_t[]){ 0, 1 }, 2);
	y = run2("And", 7, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_BOOL, 4, (uint8_t[]){ 0, 0, 0, 1 }) && y->ndim == 2,
	       "And broadcasts [2,1] x [2] to the truth table");
	lr_tensor_free(y);
	y = run2("Or", 7, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_BOOL, 4, (uint8_t[]){ 0, 1, 1, 1 }), "Or truth table");
	lr_tensor_free(y);
	y = run2("Xor", 7, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_BOOL, 4, (uint8_t[]){ 0, 1, 1, 0 }), "Xor truth table");
	lr_tensor_free(y);
	y = run2("Not", 1, b, NULL, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_BOOL, 2, (uint8_t[]){ 1, 0 }), "Not");
	lr_tensor_free(y);
	y = run2("Equal", 11, a, b, NULL, 0, &msg);
	tap_ok(is(y, LR_DT_BOOL, 4, (uint8_t[]){ 1, 0, 0, 1 }), "Equal on bool");
	lr_tensor_free(y);

	{
		lr_tensor *x = mk(LR_DT_FLOAT, 4, (float[]){ 1.0f, NAN, -INFINITY, INFINITY });
		lr_tensor *z = mk(LR_DT_FLOAT, 4, (float[]){ 1.0f, NAN, 0.0f, 0.0f });

		y = run2("Equal", 11, x, z, NULL, 0, &msg);
		tap_ok(is(y, LR_DT_BOOL, 4, (uint8_t[]){ 1, 0, 0, 0 }), "Equal: NaN is not equal to NaN");
		lr_tensor_free(y);
		y = run2("GreaterOrEqual", 16, x, z, NULL, 0, &msg);
		tap_ok(is(y, LR_DT_BOOL, 4, (uint8_t[]){ 1, 0, 0, 1 }), "GreaterOrEqual (NaN: false)");
		lr_tensor_free(y);
		y = run2("IsInf", 10, x, NULL, "detect_negative", 0, &msg);
		tap_ok(is(y, LR_DT_BOOL, 4, (uint8_t[]){ 0, 0, 0, 1 }), "IsInf detect_negative=0");
		lr_tensor_free(y);
		y = run2("IsNaN", 13, x, NULL, NULL, 0, &msg);
		tap_ok(is(y, LR_DT_BOOL, 4, (uint8_t[]){ 0, 1, 0, 0 }), "IsNaN");
		lr_tensor_free(y);

		/* Where(cond [2], X [2,1] float, Y [] float) broadcasts all three. */
		lr_tensor *xs = NULL, *ys = NULL;

		lr_tensor_create(&xs, LR_DT_FLOAT, 2, D(2, 1), 1);
		memcpy(xs->data, (float[]){ 10.0f, 20.0f }, 8);
		lr_tensor_create(&ys, LR_DT_FLOAT, 0, NULL, 1);
		*(float *)ys->data = -1.0f;
		lrt_init(&n, "Where", 16);
		lrt_input(&n, b);
		lrt_input(&n, xs);
		lrt_input(&n, ys);
		y = NULL;
		lrt_run(&n, 1, &y, &msg);
		tap_ok(is(y, LR_DT_FLOAT, 4, (float[]){ -1.0f, 10.0f, -1.0f, 20.0f }),
		       "Where broadcasts condition, X and Y");
		lr_tensor_free(y);
		lr_tensor_free(xs);
		lr_tensor_free(ys);
		lr_tensor_free(x);
		lr_tensor_free(z);
	}
	{
		lr_tensor *m = NULL, *c = mk(LR_DT_BOOL, 2, (uint8_t[]){ 1, 0 });

		lr_tensor_create(&m, LR_DT_INT32, 2, D(2, 3), 1);
		memcpy(m->data, (int32_t[]){ 0, 5, 0, 7, 0, 9 }, 24);
		y = run2("NonZero", 13, m, NULL, NULL, 0, &msg);
		tap_ok(is(y, LR_DT_INT64, 6, (int64_t[]){ 0, 1, 1, 1, 0, 2 }) && y->dims[0] == 2,
		       "NonZero gives [rank, count] int64 indices in row-major order");
		lr_tensor_free(y);
		y = run2("Compress", 11, m, c, "axis", 0, &msg);
		tap_ok(is(y, LR_DT_INT32, 3, (int32_t[]){ 0, 5, 0 }) && y->dims[0] == 1 && y->dims[1] == 3,
		       "Compress along axis 0 keeps the rows the condition selects");
		lr_tensor_free(y);
		lr_tensor_free(m);
		lr_tensor_free(c);
	}
	{
		lr_tensor *x = mk(LR_DT_UINT8, 3, (uint8_t[]){ 0x81, 1, 255 });
		lr_tensor *s = mk(LR_DT_UINT8, 3, (uint8_t[]){ 1, 8, 7 });

		lrt_init(&n, "BitShift", 11);
		lrt_attr_str(&n, "direction", "LEFT");
		lrt_input(&n, x);
		lrt_input(&n, s);
		y = NULL;
		lrt_run(&n, 1, &y, &msg);
		tap_ok(is(y, LR_DT_UINT8, 3, (uint8_t[]){ 0x02, 0, 0x80 }),
		       "uint8 BitShift LEFT drops bits past 8; a shift of 8 gives 0");
		lr_tensor_free(y);
		lrt_init(&n, "BitShift", 11);
		lrt_attr_str(&n, "direction", "RIGHT");
		lrt_input(&n, x);
		lrt_input(&n, s);
		y = NULL;
		lrt_run(&n, 1, &y, &msg);
		tap_ok(is(y, LR_DT_UINT8, 3, (uint8_t[]){ 0x40, 0, 1 }), "uint8 BitShift RIGHT");
		lr_tensor_free(y);
		lr_tensor_free(x);
		lr_tensor_free(s);
	}
	{
		/* Dropout's mask (opset 12+) is bool. */
		lr_tensor *x = mk(LR_DT_FLOAT, 2, (float[]){ 1.0f, 2.0f }), *o[2] = { NULL, NULL };

		lrt_init(&n, "Dropout", 13);
		lrt_input(&n, x);
		lrt_run(&n, 2, o, &msg);
		tap_ok(is(o[1], LR_DT_BOOL, 2, (uint8_t[]){ 1, 1 }), "Dropout's mask is bool ones");
		lr_tensor_free(o[0]);
		lr_tensor_free(o[1]);
		lr_tensor_free(x);
	}
	lr_tensor_free(a);
	lr_tensor_free(b);
}

/* ---- quantization ---------------------------------------------------------- */

static void test_quant(void)
{
	lr_msg msg;
	lrt_node n;
	lr_tensor *x = mk(LR_DT_FLOAT, 6, (float[]){ 5.0f, 7.0f, -5.0f, 1000.0f, -1000.0f, NAN });
	lr_tensor *s = NULL, *z8 = NULL, *y = NULL, *q = NULL;

	lr_tensor_create(&s, LR_DT_FLOAT, 0, NULL, 1);
	*(float *)s->data = 2.0f;
	lr_tensor_create(&z8, LR_DT_INT8, 0, NULL, 1);
	*(int8_t *)z8->data = -1;
	lrt_init(&n, "QuantizeLinear", 13);
	lrt_input(&n, x);
	lrt_const(&n, s);
	lrt_const(&n, z8);
	memset(&msg, 0, sizeof(msg));
	lrt_run(&n, 1, &q, &msg);
	/* 5/2 = 2.5 -> 2 and 7/2 = 3.5 -> 4 (ties to even), -2.5 -> -2, then -1. */
	tap_ok(is(q, LR_DT_INT8, 6, (int8_t[]){ 1, 3, -3, 127, -128, -1 }),
	       "QuantizeLinear to int8: ties to even, saturation, NaN -> zero point%s", msg.text);
	lrt_init(&n, "DequantizeLinear", 13);
	lrt_input(&n, q);
	lrt_const(&n, s);
	lrt_const(&n, z8);
	lrt_run(&n, 1, &y, &msg);
	tap_ok(is(y, LR_DT_FLOAT, 6, (float[]){ 4, 8, -4, 256, -254, 0 }),
	       "DequantizeLinear from int8: (q - zp) * scale");
	lr_tensor_free(y);
	lr_tensor_free(q);
	lr_tensor_free(x);
	lr_tensor_free(s);
	lr_tensor_free(z8);

	{
		/* 1-D ConvInteger, group 2, stride 2, pads 1, x zero point 1. */
		lr_tensor *cx = NULL, *cw = NULL, *zx = NULL;

		lr_tensor_create(&cx, LR_DT_INT8, 3, D(1, 2, 5), 1);
		memcpy(cx->data, (int8_t[]){ 1, 2, 3, 4, 5, -1, -2, -3, -4, -5 }, 10);
		lr_tensor_create(&cw, LR_DT_INT8, 3, D(2, 1, 3), 1);
		memcpy(cw->data, (int8_t[]){ 1, 0, -1, 1, 1, 1 }, 6);
		lr_tensor_create(&zx, LR_DT_INT8, 0, NULL, 1);
		*(int8_t *)zx->data = 1;
		lrt_init(&n, "ConvInteger", 10);
		lrt_attr_int(&n, "group", 2);
		lrt_attr_ints(&n, "strides", 1, (int64_t[]){ 2 });
		lrt_attr_ints(&n, "pads", 2, (int64_t[]){ 1, 1 });
		lrt_input(&n, cx);
		lrt_const(&n, cw);
		lrt_const(&n, zx);
		y = NULL;
		lrt_run(&n, 1, &y, &msg);
		tap_ok(is(y, LR_DT_INT32, 6, (int32_t[]){ -1, -2, 3, -5, -12, -11 }) && y->ndim == 3,
		       "1-D int8 ConvInteger with group, stride, pads and a zero point%s", msg.text);
		lr_tensor_free(y);
		lr_tensor_free(cx);
		lr_tensor_free(cw);
		lr_tensor_free(zx);
	}
	{
		/* MatMulInteger: batch [2] against no batch; per-column b zero point. */
		lr_tensor *ma = NULL, *mb = NULL, *za = NULL, *zb = mk(LR_DT_UINT8, 1, (uint8_t[]){ 2 });

		lr_tensor_create(&ma, LR_DT_UINT8, 3, D(2, 1, 2), 1);
		memcpy(ma->data, (uint8_t[]){ 1, 2, 3, 4 }, 4);
		lr_tensor_create(&mb, LR_DT_UINT8, 2, D(2, 1), 1);
		memcpy(mb->data, (uint8_t[]){ 5, 6 }, 2);
		lr_tensor_create(&za, LR_DT_UINT8, 0, NULL, 1);
		*(uint8_t *)za->data = 1;
		lrt_init(&n, "MatMulInteger", 10);
		lrt_input(&n, ma);
		lrt_input(&n, mb);
		lrt_const(&n, za);
		lrt_const(&n, zb);
		y = NULL;
		lrt_run(&n, 1, &y, &msg);
		tap_ok(is(y, LR_DT_INT32, 2, (int32_t[]){ 4, 18 }) && y->ndim == 3,
		       "MatMulInteger broadcasts the batch and subtracts both zero points%s", msg.text);
		lr_tensor_free(y);
		lr_tensor_free(ma);
		lr_tensor_free(mb);
		lr_tensor_free(za);
		lr_tensor_free(zb);
	}
}

static void test_qlinear(void)
{
	lr_msg msg;
	lrt_node n;
	lr_tensor *a = NULL, *b = NULL, *y = NULL, *t[6] = { NULL };
	float sc[3] = { 1.0f, 1.0f, 2.0f };

	lr_tensor_create(&a, LR_DT_UINT8, 2, D(2, 1), 1);
	memcpy(a->data, (uint8_t[]){ 5, 7 }, 2);
	lr_tensor_create(&b, LR_DT_UINT8, 2, D(1, 1), 1);
	*(uint8_t *)b->data = 1;
	for (int i = 0; i < 3; i++) {
		lr_tensor_create(&t[2 * i], LR_DT_FLOAT, 0, NULL, 1);
		*(float *)t[2 * i]->data = sc[i];
		lr_tensor_create(&t[2 * i + 1], LR_DT_UINT8, 0, NULL, 1);
		*(uint8_t *)t[2 * i + 1]->data = i == 2 ? 10 : 0;
	}
	lrt_init(&n, "QLinearMatMul", 10);
	lrt_input(&n, a);
	lrt_const(&n, t[0]);
	lrt_const(&n, t[1]);
	lrt_input(&n, b);
	lrt_const(&n, t[2]);
	lrt_const(&n, t[3]);
	lrt_const(&n, t[4]);
	lrt_const(&n, t[5]);
	memset(&msg, 0, sizeof(msg));
	lrt_run(&n, 1, &y, &msg);
	/* 5 / 2 = 2.5 -> 2 and 7 / 2 = 3.5 -> 4 (ties to even), + 10. */
	tap_ok(is(y, LR_DT_UINT8, 2, (uint8_t[]){ 12, 14 }),
	       "QLinearMatMul requantizes with ties to even and the output zero point%s", msg.text);
	lr_tensor_free(y);
	lr_tensor_free(a);
	lr_tensor_free(b);
	for (int i = 0; i < 6; i++)
		lr_tensor_free(t[i]);
}

static void test_windows(void)
{
	lr_msg msg;
	lrt_node n;
	lr_tensor *sz = NULL, *y = NULL;

	lr_tensor_create(&sz, LR_DT_INT32, 0, NULL, 1);
	*(int32_t *)sz->data = 4;
	lrt_init(&n, "HannWindow", 17);
	lrt_const(&n, sz);
	memset(&msg, 0, sizeof(msg));
	lrt_run(&n, 1, &y, &msg);
	tap_ok(y != NULL && y->dtype == LR_DT_FLOAT && y->nelem == 4 &&
	       tap_close(((float *)y->data)[0], 0, 1e-7, 0) && tap_close(((float *)y->data)[1], 0.5, 1e-7, 0) &&
	       tap_close(((float *)y->data)[2], 1, 1e-7, 0) && tap_close(((float *)y->data)[3], 0.5, 1e-7, 0),
	       "periodic HannWindow of int32 size 4 is 0, 0.5, 1, 0.5%s", msg.text);
	lr_tensor_free(y);
	y = NULL;
	lrt_init(&n, "HammingWindow", 17);
	lrt_attr_int(&n, "periodic", 0);
	lrt_attr_int(&n, "output_datatype", 11);
	lrt_const(&n, sz);
	lrt_run(&n, 1, &y, &msg);
	tap_ok(y != NULL && y->dtype == LR_DT_DOUBLE && y->nelem == 4 &&
	       tap_close(((double *)y->data)[0], 4.0 / 46.0, 1e-15, 0) &&
	       tap_close(((double *)y->data)[1], 25.0 / 46.0 + 21.0 / 92.0, 1e-15, 0),
	       "symmetric HammingWindow as double (output_datatype 11)%s", msg.text);
	lr_tensor_free(y);
	lr_tensor_free(sz);
}

static void test_einsum(void)
{
	lr_msg msg;
	lrt_node n;
	lr_tensor *a = NULL, *b = NULL, *y = NULL;

	lr_tensor_create(&a, LR_DT_INT32, 2, D(2, 2), 1);
	memcpy(a->data, (int32_t[]){ 1, 2, 3, 4 }, 16);
	lr_tensor_create(&b, LR_DT_INT32, 2, D(2, 2), 1);
	memcpy(b->data, (int32_t[]){ 5, 6, 7, 8 }, 16);
	lrt_init(&n, "Einsum", 12);
	lrt_attr_str(&n, "equation", "ij,jk");
	lrt_input(&n, a);
	lrt_input(&n, b);
	memset(&msg, 0, sizeof(msg));
	lrt_run(&n, 1, &y, &msg);
	tap_ok(is(y, LR_DT_INT32, 4, (int32_t[]){ 19, 22, 43, 50 }),
	       "int32 Einsum 'ij,jk' (implicit output ik) is the matrix product%s", msg.text);
	lr_tensor_free(y);
	y = NULL;
	lrt_init(&n, "Einsum", 12);
	lrt_attr_str(&n, "equation", "ii");
	lrt_input(&n, a);
	lrt_run(&n, 1, &y, &msg);
	tap_ok(is(y, LR_DT_INT32, 1, (int32_t[]){ 5 }) && y->ndim == 0, "Einsum 'ii' is the trace%s", msg.text);
	lr_tensor_free(y);
	y = NULL;
	lrt_init(&n, "Einsum", 12);
	lrt_attr_str(&n, "equation", "Ba->aB");
	lrt_input(&n, a);
	lrt_run(&n, 1, &y, &msg);
	tap_ok(is(y, LR_DT_INT32, 4, (int32_t[]){ 1, 3, 2, 4 }), "Einsum with an upper-case label transposes%s", msg.text);
	lr_tensor_free(y);
	lr_tensor_free(a);
	lr_tensor_free(b);
}

static void test_dft(void)
{
	lr_msg msg;
	lrt_node n;
	lr_tensor *x = NULL, *y = NULL, *z = NULL;
	const double want[8] = { 10, 0, -2, 2, -2, 0, -2, -2 };
	int ok;

	lr_tensor_create(&x, LR_DT_DOUBLE, 3, D(1, 4, 1), 1);
	memcpy(x->data, (double[]){ 1, 2, 3, 4 }, 32);
	lrt_init(&n, "DFT", 17);
	lrt_input(&n, x);
	memset(&msg, 0, sizeof(msg));
	lrt_run(&n, 1, &y, &msg);
	ok = y != NULL && y->dtype == LR_DT_DOUBLE && y->nelem == 8;
	for (int i = 0; ok && i < 8; i++)
		ok = fabs(((double *)y->data)[i] - want[i]) < 1e-12;
	tap_ok(ok, "double DFT of 1,2,3,4 is 10, -2+2i, -2, -2-2i%s", msg.text);
	lrt_init(&n, "DFT", 17);
	lrt_attr_int(&n, "inverse", 1);
	lrt_input(&n, y);
	lrt_run(&n, 1, &z, &msg);
	ok = z != NULL && z->nelem == 8;
	for (int i = 0; ok && i < 4; i++)
		ok = fabs(((double *)z->data)[2 * i] - (i + 1)) < 1e-12 &&
		     fabs(((double *)z->data)[2 * i + 1]) < 1e-12;
	tap_ok(ok, "the inverse DFT gives the signal back%s", msg.text);
	lr_tensor_free(z);
	z = NULL;
	lrt_init(&n, "DFT", 17);
	lrt_attr_int(&n, "onesided", 1);
	lrt_input(&n, x);
	lrt_run(&n, 1, &z, &msg);
	tap_ok(z != NULL && z->ndim == 3 && z->dims[1] == 3, "onesided keeps length / 2 + 1 bins%s", msg.text);
	lr_tensor_free(z);
	lr_tensor_free(y);
	lr_tensor_free(x);
}

static void test_maxpool(void)
{
	lr_msg msg;
	lrt_node n;
	lr_tensor *x = NULL, *y = NULL;

	lr_tensor_create(&x, LR_DT_UINT8, 4, D(1, 1, 2, 3), 1);
	memcpy(x->data, (uint8_t[]){ 1, 200, 3, 4, 5, 255 }, 6);
	lrt_init(&n, "MaxPool", 12);
	lrt_attr_ints(&n, "kernel_shape", 2, (int64_t[]){ 2, 2 });
	lrt_attr_ints(&n, "pads", 4, (int64_t[]){ 0, 0, 0, 1 });
	lrt_input(&n, x);
	memset(&msg, 0, sizeof(msg));
	lrt_run(&n, 1, &y, &msg);
	tap_ok(is(y, LR_DT_UINT8, 3, (uint8_t[]){ 200, 255, 255 }) && y->dims[3] == 3,
	       "uint8 MaxPool compares unsigned (200 > 5) and padding never wins%s", msg.text);
	lr_tensor_free(y);
	lr_tensor_free(x);
}

/* ---- engine: widening, refusals, declared types ------------------------ */

static void test_engine(void)
{
	lr_msg msg;
	lrt_node n;
	lr_tensor *x = mk(LR_DT_FLOAT, 4, (float[]){ 10, 20, 30, 40 });
	lr_tensor *ix = mk(LR_DT_INT32, 2, (int32_t[]){ 3, -4 });
	lr_tensor *xd = mk(LR_DT_DOUBLE, 2, (double[]){ 1.0, 2.0 });
	lr_tensor *xi = mk(LR_DT_INT32, 2, (int32_t[]){ 1, 2 });
	lr_tensor *xi2 = NULL, *y = NULL;
	int rc;

	lr_tensor_create(&xi2, LR_DT_INT32, 2, D(2, 2), 1);
	memcpy(xi2->data, (int32_t[]){ 1, 2, 3, 4 }, 16);

	lrt_init(&n, "Gather", 13);
	lrt_input(&n, x);
	lrt_input(&n, ix);
	rc = lrt_run(&n, 1, &y, &msg);
	tap_ok(rc == 0 && is(y, LR_DT_FLOAT, 2, (float[]){ 40, 10 }),
	       "int32 Gather indices are widened to int64 for the kernel");
	lr_tensor_free(y);
	y = NULL;

	lrt_init(&n, "Softmax", 13);
	lrt_input(&n, xd);
	memset(&msg, 0, sizeof(msg));
	rc = lrt_run(&n, 1, &y, &msg);
	tap_ok(rc == LR_EUNSUPPORTED && strstr(msg.text, "double") != NULL &&
	       strstr(msg.text, "in0") != NULL && strstr(msg.text, "Softmax") != NULL,
	       "a float32-only kernel refuses double naming node, input and type: %s", msg.text);
	lr_tensor_free(y);
	y = NULL;

	lrt_init(&n, "Trilu", 14);
	lrt_input(&n, xi2);
	n.out_type[0] = 6; /* declared int32; Trilu's kernel computes int64 */
	memset(&msg, 0, sizeof(msg));
	rc = lrt_run(&n, 1, &y, &msg);
	tap_ok(rc == LR_EUNSUPPORTED && strstr(msg.text, "out0") != NULL &&
	       strstr(msg.text, "int32") != NULL && strstr(msg.text, "int64") != NULL,
	       "a graph output in another type than declared is refused: %s", msg.text);
	lr_tensor_free(y);
	y = NULL;

	lrt_init(&n, "Identity", 13);
	lrt_input(&n, xi);
	n.out_type[0] = 6;
	rc = lrt_run(&n, 1, &y, &msg);
	tap_ok(rc == 0 && is(y, LR_DT_INT32, 2, (int32_t[]){ 1, 2 }),
	       "data movement keeps int32 (Identity)");
	lr_tensor_free(y);
	y = NULL;

	lrt_init(&n, "Identity", 13);
	lrt_input(&n, xi);
	n.out_type[0] = 8; /* string */
	memset(&msg, 0, sizeof(msg));
	rc = lrt_run(&n, 1, &y, &msg);
	tap_ok(rc == LR_EUNSUPPORTED && strstr(msg.text, "string") != NULL &&
	       strstr(msg.text, "out0") != NULL,
	       "a graph output of an unsupported type is refused naming it: %s", msg.text);
	lr_tensor_free(y);
	y = NULL;

	lrt_init(&n, "Greater", 13);
	lrt_input(&n, x);
	lrt_const(&n, x);
	rc = lrt_run(&n, 1, &y, &msg);
	tap_ok(rc == 0 && is(y, LR_DT_BOOL, 4, (uint8_t[]){ 0, 0, 0, 0 }),
	       "Greater of a float input and an initializer gives bool");
	lr_tensor_free(y);
	lr_tensor_free(x);
	lr_tensor_free(ix);
	lr_tensor_free(xd);
	lr_tensor_free(xi);
	lr_tensor_free(xi2);
}

/* ---- .npy ------------------------------------------------------------------ */

static void test_npy(void)
{
	static const lr_dtype all[] = { LR_DT_FLOAT, LR_DT_UINT8, LR_DT_INT8, LR_DT_UINT16,
					LR_DT_INT16, LR_DT_INT32, LR_DT_INT64, LR_DT_BOOL,
					LR_DT_FLOAT16, LR_DT_DOUBLE, LR_DT_UINT32, LR_DT_UINT64 };
	char path[] = "/tmp/lr-test-dtypes-XXXXXX";
	int fd = mkstemp(path), bad = 0;
	unsigned seed = 12345; /* fixed: reproducible bytes */

	if (fd < 0) {
		tap_ok(0, "mkstemp");
		return;
	}
	close(fd);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		lr_tensor *t = NULL, *r = NULL;
		lr_msg msg = { { 0 } };
		unsigned char *p;

		lr_tensor_create(&t, all[i], 2, D(3, 5), 1);
		p = t->data;
		for (size_t k = 0; k < lr_tensor_bytes(t); k++) {
			seed = seed * 1103515245u + 12345u;
			p[k] = (unsigned char)(seed >> 16);
		}
		if (all[i] == LR_DT_BOOL)
			for (int64_t k = 0; k < t->nelem; k++)
				p[k] &= 1;
		if (lr_npy_write(path, t, &msg) != 0 || lr_npy_read_typed(path, &r, &msg) != 0 ||
		    r->dtype != all[i] || r->ndim != 2 ||
		    memcmp(r->data, t->data, lr_tensor_bytes(t)) != 0) {
			bad++;
			tap_diag("%s: %s", lr_dtype_name(all[i]), msg.text);
		}
		lr_tensor_free(t);
		lr_tensor_free(r);
	}
	tap_ok(bad == 0, "every element type survives lr_npy_write + lr_npy_read_typed bit for bit");
	{
		/* A bool byte other than 0/1 is normalised; plain reads refuse bool. */
		static const char hdr[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }";
		unsigned char buf[128 + 3];
		lr_tensor *t = NULL;
		lr_msg msg = { { 0 } };
		size_t hl = sizeof(hdr) - 1;

		memcpy(buf, hdr, hl);
		memset(buf + hl, ' ', 127 - hl);
		buf[127] = '\n';
		buf[128] = 0;
		buf[129] = 2;
		buf[130] = 1;
		tap_ok(lr_npy_read_mem_typed(buf, sizeof(buf), "b.npy", &t, &msg) == 0 &&
		       is(t, LR_DT_BOOL, 3, (uint8_t[]){ 0, 1, 1 }),
		       "a '|b1' byte 2 reads as true (1)%s", msg.text);
		lr_tensor_free(t);
		t = NULL;
		tap_ok(lr_npy_read_mem(buf, sizeof(buf), "b.npy", &t, &msg) == LR_ENPY &&
		       strstr(msg.text, "'|b1'") != NULL,
		       "calibration reads (lr_npy_read_mem) still refuse bool: %s", msg.text);
		lr_tensor_free(t);
	}
	unlink(path);
}

int main(void)
{
	test_half();
	test_cast();
	test_arith();
	test_reduce();
	test_bool();
	test_quant();
	test_qlinear();
	test_windows();
	test_einsum();
	test_dft();
	test_maxpool();
	test_engine();
	test_npy();
	return tap_done();
}
