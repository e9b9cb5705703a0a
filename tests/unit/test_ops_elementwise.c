/*
 * test_ops_elementwise.c - the kernels of ops_elementwise.c and ops_math.c
 * (activations, broadcasting arithmetic, BatchNormalization, LRN,
 * Softmax/LogSoftmax, ReduceMean, Resize, Upsample).
 *
 * DESIGN. Most cases run a one-node model through the real loader and
 * engine (opcheck.h) on seeded random data and compare with a reference
 * computed here by plain double loops that share no code with the kernels
 * (broadcasting by explicit index arithmetic, Resize separably one axis at
 * a time, softmax per lane). A few literal values from the ONNX operator
 * documentation pin the formulas. Shapes are chosen to hit the kernels'
 * paths: lengths not a multiple of 16 (vector tails), tensors above the
 * 16K-element parallel grain, per-channel and both-sided broadcasts, and
 * every opset-dependent signature on both sides of its change. The last
 * group calls kernels directly with a hand-made context to check the
 * contract: dry runs, in-place reuse through lr_op_take(), errors.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"
#include "tests/unit/opcheck.h"
#include "tests/unit/tap.h"

#define D(...) ((const int64_t[]){ __VA_ARGS__ })
#define F(...) ((const float[]){ __VA_ARGS__ })

static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* Uniform in [-1, 1). */
static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static lr_tensor *rand_t(int ndim, const int64_t *dims, float scale)
{
	lr_tensor *t = lrt_f(ndim, dims, NULL);

	for (int64_t i = 0; i < t->nelem; i++)
		((float *)t->data)[i] = frand() * scale;
	return t;
}

static const float *fd(const lr_tensor *t)
{
	return t->data;
}

static int shape_is(const lr_tensor *t, int ndim, const int64_t *dims)
{
	if (t == NULL || t->ndim != ndim)
		return 0;
	for (int i = 0; i < ndim; i++)
		if (t->dims[i] != dims[i])
			return 0;
	return 1;
}

/*
 * Checks y (float, shape ndim/dims) against ref within atol + rtol*|ref|;
 * reports the first mismatch as a diagnostic.
 */
static int check(const lr_tensor *y, int ndim, const int64_t *dims,
		 const double *ref, double atol, double rtol, const char *what,
		 int rc, const lr_msg *msg)
{
	char buf[160];

	if (rc != 0) {
		tap_ok(0, "%s: rc %d: %s", what, rc, msg ? msg->text : "");
		return 0;
	}
	if (!shape_is(y, ndim, dims) || y->dtype != LR_DT_FLOAT || y->data == NULL) {
		tap_ok(0, "%s: wrong output shape %s", what,
		       y ? lr_shape_str(y->ndim, y->dims, buf, sizeof(buf)) : "(null)");
		return 0;
	}
	for (int64_t i = 0; i < y->nelem; i++) {
		double got = fd(y)[i];

		if (isnan(ref[i]) && isnan(got))
			continue;
		if (isinf(ref[i]) && got == ref[i])
			continue;
		if (!tap_close(got, ref[i], atol, rtol)) {
			tap_ok(0, "%s: element %lld is %.9g, expected %.9g", what,
			       (long long)i, got, ref[i]);
			return 0;
		}
	}
	return tap_ok(1, "%s", what);
}

static double *dalloc(int64_t n)
{
	double *p = calloc((size_t)(n > 0 ? n : 1), sizeof(double));

	if (p == NULL)
		abort();
	return p;
}

/* Runs a node with one output. */
static int run1(lrt_node *n, lr_tensor **y, lr_msg *msg)
{
	memset(msg, 0, sizeof(*msg));
	return lrt_run(n, 1, y, msg);
}

/* ---- unary ------------------------------------------------------------- */

enum uop { RELU, LEAKY, SIGMOID, HSIG, HSWISH, TANH, ELU, CLIP };

static double ref_unary(enum uop op, double x, double p0, double p1)
{
	switch (op) {
	case RELU:
		return x > 0 ? x : 0;
	case LEAKY:
		return x < 0 ? p0 * x : x;
	case SIGMOID:
		return 1.0 / (1.0 + exp(-x));
	case HSIG:
		return fmax(0.0, fmin(1.0, p0 * x + p1));
	case HSWISH:
		return x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
	case TANH:
		return tanh(x);
	case ELU:
		return x < 0 ? p0 * (exp(x) - 1.0) : x;
	case CLIP:
		return fmin(fmax(x, p0), p1);
	}
	return 0;
}

static void unary_case(const char *op_type, enum uop op, int64_t opset,
		       const char *a0, double v0, const char *a1, double v1,
		       double p0, double p1, int ndim, const int64_t *dims,
		       float scale)
{
	lr_tensor *x = rand_t(ndim, dims, scale), *y = NULL;
	double *ref = dalloc(x->nelem);
	char what[200], sb[100];
	lr_msg msg;
	lrt_node n;
	int rc;

	/* exact corner values */
	if (x->nelem > 4) {
		((float *)x->data)[0] = 0.f;
		((float *)x->data)[1] = -3.f;
		((float *)x->data)[2] = 3.f;
		((float *)x->data)[3] = -0.f;
	}
	for (int64_t i = 0; i < x->nelem; i++)
		ref[i] = ref_unary(op, fd(x)[i], p0, p1);
	lrt_init(&n, op_type, opset);
	if (a0)
		lrt_attr_float(&n, a0, (float)v0);
	if (a1)
		lrt_attr_float(&n, a1, (float)v1);
	lrt_input(&n, x);
	rc = run1(&n, &y, &msg);
	snprintf(what, sizeof(what), "%s-%lld%s%s on %s", op_type, (long long)opset,
		 a0 ? " with " : "", a0 ? a0 : "",
		 lr_shape_str(ndim, dims, sb, sizeof(sb)));
	check(y, ndim, dims, ref, 1e-6, 2e-6, what, rc, &msg);
	lr_tensor_free(x);
	lr_tensor_free(y);
	free(ref);
}

/* x_i for i in [0, 4000] and the reference, of the sweeps below. */
static float sweep_sigmoid_x(int i)
{
	return (float)(i - 2000) * 0.05f;
}

static double sweep_sigmoid_ref(double v)
{
	return 1.0 / (1.0 + exp(-v));
}

static float sweep_tanh_x(int i)
{
	double t = (double)(i - 2000) / 2000.0; /* [-1, 1], dense around 0 */

	return (float)(t * t * t * 30.0);
}

/* op on 4001 values xi(0..4000), within 1e-6 relative of ref in double. */
static void sweep_case(const char *op, float (*xi)(int), double (*ref)(double), const char *what)
{
	lr_tensor *x = lrt_f(1, D(4001), NULL), *y = NULL;
	double *r = dalloc(4001);
	lr_msg msg;
	lrt_node n;
	int rc;

	for (int i = 0; i <= 4000; i++) {
		((float *)x->data)[i] = xi(i);
		r[i] = ref((double)fd(x)[i]);
	}
	lrt_init(&n, op, 13);
	lrt_input(&n, x);
	rc = run1(&n, &y, &msg);
	check(y, 1, D(4001), r, 1e-30, 1e-6, what, rc, &msg);
	lr_tensor_free(x);
	lr_tensor_free(y);
	free(r);
}

static void test_unary(void)
{
	const int64_t small[3] = { 3, 4, 5 }, big[4] = { 2, 8, 41, 33 };

	for (int k = 0; k < 2; k++) {
		const int64_t *d = k ? big : small;
		int nd = k ? 4 : 3;

		unary_case("Relu", RELU, 13, NULL, 0, NULL, 0, 0, 0, nd, d, 4);
		unary_case("LeakyRelu", LEAKY, 16, NULL, 0, NULL, 0, 0.01, 0, nd, d, 4);
		unary_case("LeakyRelu", LEAKY, 7, "alpha", 0.3, NULL, 0,
			   (double)0.3f, 0, nd, d, 4);
		unary_case("Sigmoid", SIGMOID, 13, NULL, 0, NULL, 0, 0, 0, nd, d, 8);
		unary_case("HardSigmoid", HSIG, 7, NULL, 0, NULL, 0, (double)0.2f,
			   0.5, nd, d, 8);
		unary_case("HardSigmoid", HSIG, 7, "alpha", 0.4, "beta", 0.3,
			   (double)0.4f, (double)0.3f, nd, d, 8);
		unary_case("HardSwish", HSWISH, 14, NULL, 0, NULL, 0, 0, 0, nd, d, 8);
		unary_case("Tanh", TANH, 13, NULL, 0, NULL, 0, 0, 0, nd, d, 4);
		unary_case("Elu", ELU, 7, NULL, 0, NULL, 0, 1.0, 0, nd, d, 4);
		unary_case("Elu", ELU, 7, "alpha", 2.0, NULL, 0, 2.0, 0, nd, d, 4);
	}
	/* Sigmoid over a wide sweep (the vectorised exp's whole range); Tanh
	 * over one dense around 0 and across its 0.625 switch (the vectorised
	 * polynomial and exp). */
	sweep_case("Sigmoid", sweep_sigmoid_x, sweep_sigmoid_ref,
		   "Sigmoid over [-100, 100] (relative 1e-6)");
	sweep_case("Tanh", sweep_tanh_x, tanh, "Tanh over [-30, 30] (relative 1e-6)");
	{
		lr_tensor *x = lrt_f(1, D(7), F(INFINITY, -INFINITY, NAN, 0.f, -0.f, 1e-30f, -100.f));
		lr_tensor *y = NULL;
		lr_msg msg;
		lrt_node n;
		int rc;

		lrt_init(&n, "Tanh", 13);
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == 0 && fd(y)[0] == 1.f && fd(y)[1] == -1.f && isnan(fd(y)[2]) &&
		       fd(y)[3] == 0.f && !signbit(fd(y)[3]) && fd(y)[4] == 0.f && signbit(fd(y)[4]) &&
		       fd(y)[5] == 1e-30f && fd(y)[6] == -1.f,
		       "Tanh of inf, -inf, NaN, +-0, 1e-30, -100");
		lr_tensor_free(x);
		lr_tensor_free(y);
	}
	{
		lr_tensor *x = lrt_f(1, D(5), F(INFINITY, -INFINITY, NAN, 0.f, -0.f)), *y = NULL;
		lr_msg msg;
		lrt_node n;
		int rc;

		lrt_init(&n, "Sigmoid", 13);
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == 0 && fd(y)[0] == 1.f && fd(y)[1] == 0.f && isnan(fd(y)[2]) &&
		       fd(y)[3] == 0.5f && fd(y)[4] == 0.5f, "Sigmoid of inf, -inf, NaN, +-0");
		lr_tensor_free(x);
		lr_tensor_free(y);
	}
	/* Sigmoid saturates without NaN. */
	{
		lr_tensor *x = lrt_f(1, D(4), F(-200.f, 200.f, -88.f, 0.f)), *y = NULL;
		lr_msg msg;
		lrt_node n;
		int rc;

		lrt_init(&n, "Sigmoid", 13);
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == 0 && fd(y)[0] == 0.f && fd(y)[1] == 1.f && fd(y)[3] == 0.5f &&
		       !isnan(fd(y)[2]), "Sigmoid of +-200 is 0 and 1");
		lr_tensor_free(x);
		lr_tensor_free(y);
	}
}

/* ---- Clip -------------------------------------------------------------- */

/* bounds: 0 none, 1 min only, 2 max only, 3 both; as attrs or inputs. */
static void clip_case(int64_t opset, int bounds, float lo, float hi)
{
	lr_tensor *x = rand_t(3, D(2, 3, 37), 2.f), *y = NULL;
	lr_tensor *tlo = lrt_f(0, NULL, &lo), *thi = lrt_f(0, NULL, &hi);
	double *ref = dalloc(x->nelem);
	double rlo = (bounds & 1) ? lo : -FLT_MAX, rhi = (bounds & 2) ? hi : FLT_MAX;
	char what[160];
	lr_msg msg;
	lrt_node n;
	int rc;

	for (int64_t i = 0; i < x->nelem; i++)
		ref[i] = ref_unary(CLIP, fd(x)[i], rlo, rhi);
	lrt_init(&n, "Clip", opset);
	if (opset < 11) {
		if (bounds & 1)
			lrt_attr_float(&n, "min", lo);
		if (bounds & 2)
			lrt_attr_float(&n, "max", hi);
		lrt_input(&n, x);
	} else {
		lrt_input(&n, x);
		if (bounds & 1)
			lrt_const(&n, tlo);
		else if (bounds & 2)
			lrt_skip(&n);
		if (bounds & 2)
			lrt_input(&n, thi);
	}
	rc = run1(&n, &y, &msg);
	snprintf(what, sizeof(what), "Clip-%lld %s min=%g max=%g", (long long)opset,
		 opset < 11 ? "attrs" : "inputs", (bounds & 1) ? lo : -INFINITY,
		 (bounds & 2) ? hi : INFINITY);
	check(y, 3, D(2, 3, 37), ref, 0, 0, what, rc, &msg);
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_tensor_free(tlo);
	lr_tensor_free(thi);
	free(ref);
}

static void test_clip(void)
{
	for (int b = 0; b < 4; b++) {
		clip_case(6 + 1, b, -0.5f, 0.7f);
		clip_case(11, b, -0.5f, 0.7f);
		clip_case(13, b, -0.25f, 0.5f);
	}
	clip_case(13, 3, 0.5f, -0.5f); /* min > max: everything becomes max */
	clip_case(12, 3, 0.0f, 6.0f);  /* relu6 */
	{
		lr_tensor *x = lrt_f(1, D(3), F(1, 2, 3)), *b = lrt_f(1, D(2), F(0, 1)), *y = NULL;
		lr_msg msg;
		lrt_node n;
		int rc;

		lrt_init(&n, "Clip", 13);
		lrt_input(&n, x);
		lrt_const(&n, b);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == LR_ESHAPE && strstr(msg.text, "min") != NULL,
		       "Clip with a 2-element min fails naming it: %s", msg.text);
		lr_tensor_free(x);
		lr_tensor_free(b);
		lr_tensor_free(y);
	}
}

/* ---- Add / Sub / Mul / Div / PRelu ------------------------------------- */

/* Offset of output index `o` in an input of shape (nd, d) broadcast to (n, od). */
static int64_t bidx(int64_t o, int n, const int64_t *od, int nd, const int64_t *d)
{
	int64_t off = 0, stride = 1;

	for (int i = n - 1; i >= 0; i--) {
		int64_t c = o % od[i];
		int j = i - (n - nd);

		o /= od[i];
		if (j >= 0) {
			if (d[j] != 1)
				off += c * stride;
			stride *= d[j];
		}
	}
	return off;
}

static double ref_bin(const char *op, double a, double b)
{
	switch (op[0]) {
	case 'A':
		return a + b;
	case 'S':
		return a - b;
	case 'M':
		return a * b;
	case 'D':
		return a / b;
	default: /* PRelu */
		return a < 0 ? a * b : a;
	}
}

static void bin_case(const char *op, int na, const int64_t *da, int nb,
		     const int64_t *db, int n, const int64_t *od, int b_const)
{
	lr_tensor *a = rand_t(na, da, 3.f), *b = rand_t(nb, db, 3.f), *y = NULL;
	int64_t nout = 1;
	double *ref;
	char what[240], s1[80], s2[80];
	lr_msg msg;
	lrt_node nd;
	int rc;

	for (int i = 0; i < n; i++)
		nout *= od[i];
	ref = dalloc(nout);
	if (op[0] == 'D')
		for (int64_t i = 0; i < b->nelem; i++)
			((float *)b->data)[i] += ((float *)b->data)[i] < 0 ? -0.5f : 0.5f;
	for (int64_t o = 0; o < nout; o++)
		ref[o] = ref_bin(op, fd(a)[bidx(o, n, od, na, da)],
				 fd(b)[bidx(o, n, od, nb, db)]);
	lrt_init(&nd, op, op[0] == 'P' ? 16 : 14);
	lrt_input(&nd, a);
	if (b_const)
		lrt_const(&nd, b);
	else
		lrt_input(&nd, b);
	rc = run1(&nd, &y, &msg);
	snprintf(what, sizeof(what), "%s %s (op) %s%s", op,
		 lr_shape_str(na, da, s1, sizeof(s1)),
		 lr_shape_str(nb, db, s2, sizeof(s2)), b_const ? " (initializer)" : "");
	check(y, n, od, ref, 1e-6, 1e-6, what, rc, &msg);
	lr_tensor_free(a);
	lr_tensor_free(b);
	lr_tensor_free(y);
	free(ref);
}

/*
 * Opset 1-6 broadcasting: B [nb, db] placed at 'axis' of A (axis < -1000:
 * no attribute, so aligned at the end), computed like numpy broadcasting
 * with B seen as [ne, de] (same data).
 */
static void legacy_case(const char *op, int64_t opset, int na, const int64_t *da, int nb,
			const int64_t *db, int64_t axis, int ne, const int64_t *de)
{
	lr_tensor *a = rand_t(na, da, 3.f), *b = rand_t(nb, db, 3.f), *y = NULL;
	double *ref = dalloc(a->nelem);
	char what[240], s1[80], s2[80];
	lr_msg msg;
	lrt_node nd;
	int rc;

	for (int64_t o = 0; o < a->nelem; o++)
		ref[o] = ref_bin(op, fd(a)[o], fd(b)[bidx(o, na, da, ne, de)]);
	lrt_init(&nd, op, opset);
	if (op[0] != 'P')
		lrt_attr_int(&nd, "broadcast", 1);
	if (axis > -1000)
		lrt_attr_int(&nd, "axis", axis);
	lrt_input(&nd, a);
	lrt_const(&nd, b);
	rc = run1(&nd, &y, &msg);
	snprintf(what, sizeof(what), "%s-%lld %s (op) %s, axis %lld (legacy broadcast)", op,
		 (long long)opset, lr_shape_str(na, da, s1, sizeof(s1)),
		 lr_shape_str(nb, db, s2, sizeof(s2)), (long long)axis);
	check(y, na, da, ref, 1e-6, 1e-6, what, rc, &msg);
	lr_tensor_free(a);
	lr_tensor_free(b);
	lr_tensor_free(y);
	free(ref);
}

static void test_legacy_binary(void)
{
	lr_tensor *a = rand_t(2, D(2, 3), 1), *b = rand_t(1, D(2), 1), *y = NULL;
	lr_msg msg;
	lrt_node n;
	int rc;

	legacy_case("Add", 6, 4, D(2, 3, 4, 5), 2, D(3, 4), 1, 3, D(3, 4, 1));
	legacy_case("Sub", 1, 4, D(2, 3, 4, 5), 1, D(5), -2000, 1, D(5));
	legacy_case("Mul", 6, 4, D(2, 3, 4, 5), 1, D(2), 0, 4, D(2, 1, 1, 1));
	legacy_case("Div", 6, 2, D(2, 3), 2, D(2, 1), 0, 2, D(2, 1));
	legacy_case("Add", 6, 2, D(2, 3), 2, D(1, 3), 0, 2, D(1, 3));
	legacy_case("Add", 6, 3, D(2, 3, 4), 0, NULL, -2000, 0, NULL);
	legacy_case("PRelu", 6, 4, D(2, 3, 4, 5), 1, D(3), -2000, 3, D(3, 1, 1));
	legacy_case("PRelu", 6, 3, D(2, 3, 4), 1, D(1), -2000, 1, D(1));

	/* Opset 6 without broadcast=1 needs equal shapes, even where numpy broadcasts. */
	lrt_init(&n, "Add", 6);
	lrt_input(&n, a);
	lrt_const(&n, rand_t(1, D(3), 1));
	rc = run1(&n, &y, &msg);
	tap_ok(rc == LR_ESHAPE && strstr(msg.text, "broadcast=1"),
	       "Add-6 [2,3] + [3] without broadcast=1 fails: %s", msg.text);
	lr_tensor_free(n.t[1]);
	lr_tensor_free(y);
	y = NULL;
	/* B [2] at the end of A [2,3] does not fit: numpy would fail too, with axis=0 it fits. */
	lrt_init(&n, "Mul", 6);
	lrt_attr_int(&n, "broadcast", 1);
	lrt_input(&n, a);
	lrt_const(&n, b);
	rc = run1(&n, &y, &msg);
	tap_ok(rc == LR_ESHAPE && strstr(msg.text, "from axis 1"),
	       "Mul-6 [2,3] * [2] at the end fails naming the axis: %s", msg.text);
	lr_tensor_free(y);
	y = NULL;
	lrt_init(&n, "PRelu", 6);
	lrt_input(&n, a);
	lrt_const(&n, b);
	rc = run1(&n, &y, &msg);
	tap_ok(rc == LR_ESHAPE && strstr(msg.text, "one per channel (3)"),
	       "PRelu-6 slope [2] on [2,3] fails naming the channel count: %s", msg.text);
	lr_tensor_free(y);
	lr_tensor_free(a);
	lr_tensor_free(b);
}

static void test_binary(void)
{
	static const char *const ops[4] = { "Add", "Sub", "Mul", "Div" };

	for (int k = 0; k < 4; k++) {
		const char *op = ops[k];

		bin_case(op, 3, D(3, 4, 5), 3, D(3, 4, 5), 3, D(3, 4, 5), 0);
		bin_case(op, 4, D(2, 16, 33, 31), 4, D(2, 16, 33, 31), 4, D(2, 16, 33, 31), 0);
		bin_case(op, 4, D(2, 5, 7, 9), 4, D(1, 5, 1, 1), 4, D(2, 5, 7, 9), 1);
		bin_case(op, 4, D(2, 64, 19, 17), 3, D(64, 1, 1), 4, D(2, 64, 19, 17), 1);
		bin_case(op, 3, D(64, 1, 1), 4, D(2, 64, 19, 17), 4, D(2, 64, 19, 17), 0);
		bin_case(op, 3, D(3, 4, 5), 1, D(5), 3, D(3, 4, 5), 0);
		bin_case(op, 1, D(5), 3, D(3, 4, 5), 3, D(3, 4, 5), 0);
		bin_case(op, 3, D(3, 1, 5), 3, D(1, 4, 1), 3, D(3, 4, 5), 0);
		bin_case(op, 2, D(7, 1), 2, D(1, 9), 2, D(7, 9), 0);
		bin_case(op, 0, NULL, 2, D(3, 17), 2, D(3, 17), 0);
		bin_case(op, 2, D(3, 17), 0, NULL, 2, D(3, 17), 1);
		bin_case(op, 0, NULL, 0, NULL, 0, NULL, 0);
		bin_case(op, 2, D(3, 40000), 2, D(1, 40000), 2, D(3, 40000), 0);
		bin_case(op, 3, D(2, 3, 40000), 3, D(2, 1, 1), 3, D(2, 3, 40000), 0);
		bin_case(op, 2, D(0, 3), 2, D(1, 3), 2, D(0, 3), 0);
		bin_case(op, 5, D(2, 1, 3, 1, 5), 4, D(4, 1, 6, 1), 5, D(2, 4, 3, 6, 5), 0);
	}
	bin_case("PRelu", 4, D(2, 6, 5, 7), 3, D(6, 1, 1), 4, D(2, 6, 5, 7), 1);
	bin_case("PRelu", 3, D(3, 4, 5), 1, D(5), 3, D(3, 4, 5), 1);
	bin_case("PRelu", 3, D(3, 4, 5), 3, D(3, 4, 5), 3, D(3, 4, 5), 0);
	bin_case("PRelu", 3, D(3, 4, 5), 1, D(1), 3, D(3, 4, 5), 1);
	bin_case("PRelu", 4, D(2, 32, 30, 30), 3, D(32, 1, 1), 4, D(2, 32, 30, 30), 1);

	/* errors */
	{
		lr_tensor *a = rand_t(4, D(1, 4, 5, 5), 1), *s = rand_t(1, D(4), 1);
		lr_tensor *b = rand_t(2, D(3, 4), 1), *i = lrt_i(1, D(4), D(1, 2, 3, 4));
		lr_tensor *big = rand_t(4, D(2, 4, 1, 1), 1), *y = NULL;
		lr_msg msg;
		lrt_node n;
		int rc;

		lrt_init(&n, "PRelu", 16);
		lrt_input(&n, a);
		lrt_const(&n, s);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == LR_ESHAPE &&
		       strstr(msg.text, "input 1 (slope) of shape [4] does not broadcast to [1,4,5,5]"),
		       "PRelu with slope [4] on [1,4,5,5] fails: %s", msg.text);
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "PRelu", 9);
		lrt_input(&n, a);
		lrt_const(&n, big);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == LR_ESHAPE && strstr(msg.text, "slope"),
		       "PRelu slope [2,4,1,1] does not broadcast unidirectionally: %s", msg.text);
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "Add", 14);
		lrt_input(&n, a);
		lrt_input(&n, b);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == LR_ESHAPE && strstr(msg.text, "[1,4,5,5]") && strstr(msg.text, "[3,4]"),
		       "Add [1,4,5,5] + [3,4] fails naming both shapes: %s", msg.text);
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "Mul", 14);
		lrt_input(&n, s);
		lrt_const(&n, i);
		rc = run1(&n, &y, &msg);
		tap_ok(rc != 0 && strstr(msg.text, "int64") != NULL,
		       "Mul float * int64 fails naming the types: %s", msg.text);
		lr_tensor_free(y);
		lr_tensor_free(a);
		lr_tensor_free(s);
		lr_tensor_free(b);
		lr_tensor_free(i);
		lr_tensor_free(big);
	}
}

static void test_int64(void)
{
	static const int64_t av[6] = { 7, -7, 9, -9, INT64_MIN, 100 };
	static const int64_t bv[6] = { 2, 2, -4, -4, -1, 7 };
	static const char *const ops[4] = { "Add", "Sub", "Mul", "Div" };
	lr_tensor *a = lrt_i(2, D(2, 3), av), *b = lrt_i(2, D(2, 3), bv), *y = NULL;
	lr_tensor *s = lrt_i(0, NULL, D(3)), *z = lrt_i(1, D(3), D(1, 0, 2));
	lr_msg msg;
	lrt_node n;
	int rc;

	for (int k = 0; k < 4; k++) {
		int ok;

		lrt_init(&n, ops[k], 14);
		lrt_input(&n, a);
		lrt_input(&n, b);
		rc = run1(&n, &y, &msg);
		ok = rc == 0 && y->dtype == LR_DT_INT64 && shape_is(y, 2, D(2, 3));
		for (int i = 0; ok && i < 6; i++) {
			int64_t want;
			uint64_t ua = (uint64_t)av[i], ub = (uint64_t)bv[i];

			switch (k) {
			case 0:
				want = (int64_t)(ua + ub);
				break;
			case 1:
				want = (int64_t)(ua - ub);
				break;
			case 2:
				want = (int64_t)(ua * ub);
				break;
			default:
				want = av[i] == INT64_MIN ? INT64_MIN : av[i] / bv[i];
				break;
			}
			ok = ((const int64_t *)y->data)[i] == want;
		}
		tap_ok(ok, "int64 %s (wrapping; Div truncates toward zero)%s%s", ops[k],
		       rc ? ": " : "", msg.text);
		lr_tensor_free(y);
		y = NULL;
	}
	/* int64 broadcast with a scalar */
	lrt_init(&n, "Mul", 13);
	lrt_input(&n, a);
	lrt_const(&n, s);
	rc = run1(&n, &y, &msg);
	tap_ok(rc == 0 && shape_is(y, 2, D(2, 3)) && ((int64_t *)y->data)[0] == 21 &&
	       ((int64_t *)y->data)[5] == 300, "int64 Mul by a scalar broadcasts");
	lr_tensor_free(y);
	y = NULL;
	lrt_init(&n, "Div", 13);
	lrt_input(&n, a);
	lrt_const(&n, z);
	rc = run1(&n, &y, &msg);
	tap_ok(rc == LR_ENUMERIC && strstr(msg.text, "division by zero") &&
	       strstr(msg.text, "node '"), "int64 Div by zero fails naming the node: %s",
	       msg.text);
	lr_tensor_free(y);
	lr_tensor_free(a);
	lr_tensor_free(b);
	lr_tensor_free(s);
	lr_tensor_free(z);
}

/* ---- BatchNormalization ------------------------------------------------ */

static void bn_case(int64_t opset, int ndim, const int64_t *dims, int spatial,
		    float eps, int set_eps)
{
	int64_t C = ndim >= 2 ? dims[1] : 1, S = 1, N = dims[0];
	lr_tensor *x = rand_t(ndim, dims, 2.f), *y = NULL, *p[4];
	int64_t np;
	double *ref = dalloc(x->nelem);
	char what[160], sb[80];
	lr_msg msg;
	lrt_node n;
	int rc;

	for (int i = 2; i < ndim; i++)
		S *= dims[i];
	np = spatial ? C : C * S;
	for (int k = 0; k < 4; k++) {
		if (spatial)
			p[k] = rand_t(1, &C, 1.f);
		else
			p[k] = rand_t(ndim - 1, dims + 1, 1.f);
	}
	for (int64_t i = 0; i < np; i++)
		((float *)p[3]->data)[i] = fabsf(fd(p[3])[i]) + 0.1f;
	for (int64_t nn = 0; nn < N; nn++)
		for (int64_t c = 0; c < C; c++)
			for (int64_t s = 0; s < S; s++) {
				int64_t i = (nn * C + c) * S + s, k = spatial ? c : c * S + s;

				ref[i] = ((double)fd(x)[i] - fd(p[2])[k]) /
					 sqrt((double)fd(p[3])[k] + (double)eps) * fd(p[0])[k] +
					 fd(p[1])[k];
			}
	lrt_init(&n, "BatchNormalization", opset);
	if (set_eps)
		lrt_attr_float(&n, "epsilon", eps);
	if (opset < 9)
		lrt_attr_int(&n, "spatial", spatial);
	if (opset < 7)
		lrt_attr_int(&n, "is_test", 1);
	lrt_input(&n, x);
	for (int k = 0; k < 4; k++)
		lrt_const(&n, p[k]);
	rc = run1(&n, &y, &msg);
	snprintf(what, sizeof(what), "BatchNormalization-%lld on %s%s", (long long)opset,
		 lr_shape_str(ndim, dims, sb, sizeof(sb)), spatial ? "" : " spatial=0");
	check(y, ndim, dims, ref, 1e-5, 1e-5, what, rc, &msg);
	for (int k = 0; k < 4; k++)
		lr_tensor_free(p[k]);
	lr_tensor_free(x);
	lr_tensor_free(y);
	free(ref);
}

static void test_batchnorm(void)
{
	lr_tensor *x = rand_t(4, D(1, 3, 2, 2), 1), *p3 = rand_t(1, D(3), 1);
	lr_tensor *p4 = rand_t(1, D(4), 1), *y[3] = { NULL, NULL, NULL };
	lr_msg msg;
	lrt_node n;
	int rc;

	bn_case(15, 4, D(2, 3, 4, 5), 1, 1e-5f, 0);
	bn_case(15, 4, D(2, 3, 4, 5), 1, 1e-2f, 1);
	bn_case(9, 3, D(2, 3, 7), 1, 1e-5f, 0);
	bn_case(14, 2, D(4, 3), 1, 1e-5f, 0);
	bn_case(9, 1, D(6), 1, 1e-3f, 1);
	bn_case(7, 4, D(2, 3, 4, 5), 1, 1e-5f, 0);
	bn_case(7, 4, D(2, 3, 4, 5), 0, 1e-5f, 0);
	bn_case(8, 3, D(3, 2, 5), 0, 1e-4f, 1);
	bn_case(15, 4, D(2, 32, 28, 28), 1, 1e-5f, 0);

	for (int i = 0; i < 3; i++)
		((float *)p3->data)[i] = 1.f;
	lrt_init(&n, "BatchNormalization", 15);
	lrt_attr_int(&n, "training_mode", 1);
	lrt_input(&n, x);
	for (int k = 0; k < 4; k++)
		lrt_const(&n, p3);
	rc = run1(&n, y, &msg);
	{
		/* Batch statistics: every channel of y has mean B = 1 and variance ~1. */
		int ok = rc == 0 && y[0] != NULL && y[0]->ndim >= 2;

		for (int64_t ch = 0; ok && ch < y[0]->dims[1]; ch++) {
			int64_t N = y[0]->dims[0], C = y[0]->dims[1], S = y[0]->nelem / (N * C);
			double m = 0, v = 0;

			for (int64_t i = 0; i < N; i++)
				for (int64_t k = 0; k < S; k++)
					m += ((float *)y[0]->data)[(i * C + ch) * S + k];
			m /= (double)(N * S);
			for (int64_t i = 0; i < N; i++)
				for (int64_t k = 0; k < S; k++) {
					double d = ((float *)y[0]->data)[(i * C + ch) * S + k] - m;

					v += d * d;
				}
			v /= (double)(N * S);
			ok = fabs(m - 1.0) < 1e-5 && fabs(v - 1.0) < 1e-3;
		}
		tap_ok(ok, "BatchNormalization training_mode=1 normalises with the batch's statistics%s%s",
		       rc ? ": " : "", rc ? msg.text : "");
	}
	lr_tensor_free(y[0]);
	y[0] = NULL;

	bn_case(6, 4, D(2, 3, 4, 5), 1, 1e-5f, 0);
	lrt_init(&n, "BatchNormalization", 6);
	lrt_attr_int(&n, "is_test", 0);
	lrt_input(&n, x);
	for (int k = 0; k < 4; k++)
		lrt_const(&n, p3);
	rc = run1(&n, y, &msg);
	tap_ok(rc == LR_EUNSUPPORTED && strstr(msg.text, "is_test=0"),
	       "BatchNormalization-6 in training mode (is_test=0) is refused: %s", msg.text);
	lr_tensor_free(y[0]);
	y[0] = NULL;

	lrt_init(&n, "BatchNormalization", 9);
	lrt_input(&n, x);
	for (int k = 0; k < 4; k++)
		lrt_const(&n, p3);
	memset(&msg, 0, sizeof(msg));
	rc = lrt_run(&n, 3, y, &msg);
	tap_ok(rc == LR_EUNSUPPORTED && strstr(msg.text, "training"),
	       "BatchNormalization-9 asked for its mean/var outputs fails: %s", msg.text);
	for (int i = 0; i < 3; i++)
		lr_tensor_free(y[i]);
	y[0] = NULL;

	lrt_init(&n, "BatchNormalization", 15);
	lrt_input(&n, x);
	lrt_const(&n, p3);
	lrt_const(&n, p4);
	lrt_const(&n, p3);
	lrt_const(&n, p3);
	rc = run1(&n, y, &msg);
	tap_ok(rc == LR_ESHAPE && strstr(msg.text, "input 2 (B) of shape [4]"),
	       "BatchNormalization with B of shape [4] for C=3 fails: %s", msg.text);
	lr_tensor_free(y[0]);
	lr_tensor_free(x);
	lr_tensor_free(p3);
	lr_tensor_free(p4);
}

/* ---- LRN ----------------------------------------------------------------- */

static void lrn_case(int64_t size, int custom, const int64_t *dims)
{
	lr_tensor *x = rand_t(4, dims, 3.f), *y = NULL;
	double alpha = custom ? (double)0.002f : (double)1e-4f;
	double beta = custom ? (double)0.5f : 0.75, bias = custom ? 2.0 : 1.0;
	int64_t N = dims[0], C = dims[1], S = dims[2] * dims[3];
	double *ref = dalloc(x->nelem);
	char what[120];
	lr_msg msg;
	lrt_node n;
	int rc;

	for (int64_t a = 0; a < N; a++)
		for (int64_t c = 0; c < C; c++)
			for (int64_t s = 0; s < S; s++) {
				double sq = 0;
				int64_t lo = c - (size - 1) / 2;
				int64_t hi = c + (size - 1) - (size - 1) / 2;

				for (int64_t k = lo; k <= hi; k++) {
					if (k < 0 || k >= C)
						continue;
					sq += pow(fd(x)[(a * C + k) * S + s], 2);
				}
				ref[(a * C + c) * S + s] = fd(x)[(a * C + c) * S + s] /
					pow(bias + alpha / (double)size * sq, beta);
			}
	lrt_init(&n, "LRN", 13);
	lrt_attr_int(&n, "size", size);
	if (custom) {
		lrt_attr_float(&n, "alpha", 0.002f);
		lrt_attr_float(&n, "beta", 0.5f);
		lrt_attr_float(&n, "bias", 2.0f);
	}
	lrt_input(&n, x);
	rc = run1(&n, &y, &msg);
	snprintf(what, sizeof(what), "LRN size=%lld%s", (long long)size,
		 custom ? " alpha/beta/bias" : " defaults");
	check(y, 4, dims, ref, 1e-6, 1e-5, what, rc, &msg);
	lr_tensor_free(x);
	lr_tensor_free(y);
	free(ref);
}

static void test_lrn(void)
{
	lrn_case(3, 0, D(2, 7, 4, 5));
	lrn_case(5, 1, D(2, 7, 4, 5));
	lrn_case(4, 1, D(1, 6, 3, 3));
	lrn_case(1, 0, D(1, 3, 2, 2));
	lrn_case(5, 0, D(2, 16, 30, 30));
	{
		lr_tensor *x = rand_t(4, D(1, 3, 2, 2), 1), *y = NULL;
		lr_msg msg;
		lrt_node n;
		int rc;

		lrt_init(&n, "LRN", 13);
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == LR_EMODEL && strstr(msg.text, "size"),
		       "LRN without size fails: %s", msg.text);
		lr_tensor_free(x);
		lr_tensor_free(y);
	}
}

/* ---- Softmax / LogSoftmax ---------------------------------------------- */

static void softmax_case(int lg, int64_t opset, int has_axis, int64_t axis,
			 int ndim, const int64_t *dims, float scale)
{
	lr_tensor *x = rand_t(ndim, dims, scale), *y = NULL;
	int64_t outer = 1, n = 1, inner = 1;
	int a;
	double *ref = dalloc(x->nelem);
	char what[160], sb[80];
	lr_msg msg;
	lrt_node nd;
	int rc;

	a = (int)(has_axis ? axis : (opset < 13 ? 1 : -1));
	if (a < 0)
		a += ndim;
	for (int i = 0; i < ndim; i++) {
		if (i < a)
			outer *= dims[i];
		else if (i == a || opset < 13)
			n *= dims[i];
		else
			inner *= dims[i];
	}
	for (int64_t o = 0; o < outer; o++)
		for (int64_t j = 0; j < inner; j++) {
			double mx = -INFINITY, sum = 0;

			for (int64_t k = 0; k < n; k++)
				mx = fmax(mx, fd(x)[(o * n + k) * inner + j]);
			for (int64_t k = 0; k < n; k++)
				sum += exp(fd(x)[(o * n + k) * inner + j] - mx);
			for (int64_t k = 0; k < n; k++) {
				double v = fd(x)[(o * n + k) * inner + j];

				ref[(o * n + k) * inner + j] = lg ? v - mx - log(sum)
							  : exp(v - mx) / sum;
			}
		}
	lrt_init(&nd, lg ? "LogSoftmax" : "Softmax", opset);
	if (has_axis)
		lrt_attr_int(&nd, "axis", axis);
	lrt_input(&nd, x);
	rc = run1(&nd, &y, &msg);
	snprintf(what, sizeof(what), "%s-%lld axis=%s%lld on %s", lg ? "LogSoftmax" : "Softmax",
		 (long long)opset, has_axis ? "" : "default ", (long long)(has_axis ? axis : a),
		 lr_shape_str(ndim, dims, sb, sizeof(sb)));
	check(y, ndim, dims, ref, 1e-6, 1e-5, what, rc, &msg);
	lr_tensor_free(x);
	lr_tensor_free(y);
	free(ref);
}

static void test_softmax(void)
{
	/* -inf entries (masks) get exactly 0; one lane of all -1e30 stays finite */
	{
		lr_tensor *x = lrt_f(2, D(2, 4), F(1, -INFINITY, 2, -INFINITY,
						  -1e30f, -1e30f, -1e30f, -1e30f)), *y = NULL;
		double e = exp(-1.0), s = 1 + e;
		lr_msg msg;
		lrt_node n;
		int rc;

		lrt_init(&n, "Softmax", 13);
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == 0 && fd(y)[1] == 0.f && fd(y)[3] == 0.f &&
		       tap_close(fd(y)[0], e / s, 0, 1e-6) && tap_close(fd(y)[2], 1 / s, 0, 1e-6) &&
		       fd(y)[4] == 0.25f && fd(y)[7] == 0.25f,
		       "Softmax with -inf entries gives 0 there%s%s", rc ? ": " : "", msg.text);
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "LogSoftmax", 13);
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == 0 && fd(y)[1] == -INFINITY && tap_close(fd(y)[2], -log(s), 0, 1e-6),
		       "LogSoftmax with -inf entries gives -inf there");
		lr_tensor_free(y);
		lr_tensor_free(x);
	}
	/* A NaN in a row, or the NaN of inf - inf, makes the row NaN (as in
	 * ONNX Runtime), in contiguous rows (axis 1) and in strided columns
	 * (axis 0 of the transpose); a row with -inf and finite values does
	 * not. The exp used to give 1 for NaN and 0 for negative NaN. */
	for (int lg = 0; lg < 2; lg++) {
		const float rows[12] = { 1, 2, NAN, 1, 2, INFINITY, -INFINITY, -INFINITY,
					 -INFINITY, 1, -INFINITY, 0 };
		float cols[12];

		for (int axis = 1; axis >= 0; axis--) {
			lr_tensor *x, *y = NULL;
			lr_msg msg;
			lrt_node n;
			int rc, ok = 1;

			for (int r = 0; r < 4; r++)
				for (int k = 0; k < 3; k++)
					cols[k * 4 + r] = rows[r * 3 + k];
			x = axis ? lrt_f(2, D(4, 3), rows) : lrt_f(2, D(3, 4), cols);
			lrt_init(&n, lg ? "LogSoftmax" : "Softmax", 13);
			lrt_attr_int(&n, "axis", axis);
			lrt_input(&n, x);
			rc = run1(&n, &y, &msg);
			for (int r = 0; rc == 0 && r < 4; r++)
				for (int k = 0; k < 3; k++) {
					float v = fd(y)[axis ? r * 3 + k : k * 4 + r];
					double want = r < 3 ? NAN : k == 1 ? (lg ? -INFINITY : 0) :
						      lg ? (k == 0 ? -log1p(exp(-1.0)) : -1 - log1p(exp(-1.0)))
							 : (k == 0 ? 1 / (1 + exp(-1.0)) : 1 / (1 + exp(1.0)));

					if (isnan(want) ? !isnan(v) :
					    isinf(want) ? v != want : !tap_close(v, want, 0, 1e-6))
						ok = 0;
				}
			tap_ok(rc == 0 && ok, "%s over axis %d: rows with NaN or inf are NaN, [1, -inf, 0] is finite%s%s",
			       lg ? "LogSoftmax" : "Softmax", axis, rc ? ": " : "", msg.text);
			lr_tensor_free(x);
			lr_tensor_free(y);
		}
	}
	for (int lg = 0; lg < 2; lg++) {
		softmax_case(lg, 11, 0, 0, 3, D(2, 3, 4), 3);
		softmax_case(lg, 11, 1, 1, 3, D(2, 3, 4), 3);
		softmax_case(lg, 9, 1, 0, 3, D(2, 3, 4), 3);
		softmax_case(lg, 12, 1, 2, 3, D(2, 3, 4), 3);
		softmax_case(lg, 12, 1, -1, 3, D(2, 3, 4), 3);
		softmax_case(lg, 13, 0, 0, 3, D(2, 3, 4), 3);
		softmax_case(lg, 13, 1, 1, 3, D(2, 3, 4), 3);
		softmax_case(lg, 13, 1, 0, 3, D(2, 3, 4), 3);
		softmax_case(lg, 13, 1, -2, 4, D(2, 5, 70, 3), 3);
		softmax_case(lg, 13, 1, 1, 4, D(2, 10, 9, 9), 3);
		softmax_case(lg, 13, 0, 0, 2, D(64, 1000), 10);
		softmax_case(lg, 13, 0, 0, 2, D(3, 4), 1000); /* large numbers */
		softmax_case(lg, 7, 0, 0, 2, D(3, 1000), 5);
	}
}

/* ---- ReduceMean -------------------------------------------------------- */

static void rmean_case(int64_t opset, int naxes, const int64_t *axes, int keep,
		       int ndim, const int64_t *dims)
{
	lr_tensor *x = rand_t(ndim, dims, 2), *y = NULL;
	lr_tensor *ax = naxes ? lrt_i(1, (int64_t[]){ naxes }, axes) : NULL;
	int red[LR_MAX_DIMS] = { 0 }, ond = 0;
	int64_t od[LR_MAX_DIMS], nout = 1, cnt = 1;
	double *ref;
	char what[200], sb[80], sa[80];
	lr_msg msg;
	lrt_node n;
	int rc;

	for (int i = 0; i < naxes; i++)
		red[axes[i] < 0 ? axes[i] + ndim : axes[i]] = 1;
	for (int i = 0; i < ndim; i++) {
		if (naxes == 0)
			red[i] = 1;
		if (red[i])
			cnt *= dims[i];
		if (!red[i] || keep)
			od[ond++] = red[i] ? 1 : dims[i];
		if (!red[i])
			nout *= dims[i];
	}
	ref = dalloc(nout);
	for (int64_t i = 0; i < x->nelem; i++) {
		int64_t r = i, o = 0, mul = 1;

		for (int k = ndim - 1; k >= 0; k--) {
			int64_t c = r % dims[k];

			r /= dims[k];
			if (!red[k]) {
				o += c * mul;
				mul *= dims[k];
			}
		}
		ref[o] += fd(x)[i] / (double)cnt;
	}
	lrt_init(&n, "ReduceMean", opset);
	if (keep != 1)
		lrt_attr_int(&n, "keepdims", keep);
	lrt_input(&n, x);
	if (naxes && opset < 18)
		lrt_attr_ints(&n, "axes", naxes, axes);
	else if (naxes)
		lrt_const(&n, ax);
	rc = run1(&n, &y, &msg);
	snprintf(what, sizeof(what), "ReduceMean-%lld axes=%s keepdims=%d on %s",
		 (long long)opset, naxes ? lr_shape_str(naxes, axes, sa, sizeof(sa)) : "all",
		 keep, lr_shape_str(ndim, dims, sb, sizeof(sb)));
	check(y, ond, od, ref, 1e-6, 1e-5, what, rc, &msg);
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_tensor_free(ax);
	free(ref);
}

static void test_reducemean(void)
{
	for (int v = 0; v < 2; v++) {
		int64_t op = v ? 18 : 13;

		rmean_case(op, 1, D(1), 1, 3, D(3, 2, 2));
		rmean_case(op, 1, D(1), 0, 3, D(3, 2, 2));
		rmean_case(op, 0, NULL, 1, 3, D(3, 2, 2));
		rmean_case(op, 0, NULL, 0, 3, D(3, 2, 2));
		rmean_case(op, 1, D(-2), 1, 3, D(3, 2, 2));
		rmean_case(op, 2, D(2, 3), 1, 4, D(2, 64, 7, 7));
		rmean_case(op, 2, D(-1, -2), 0, 4, D(2, 64, 7, 7));
		rmean_case(op, 2, D(1, 3), 1, 4, D(2, 5, 6, 7));
		rmean_case(op, 1, D(0), 0, 4, D(3, 5, 6, 300));
		rmean_case(op, 2, D(0, 2), 1, 4, D(3, 5, 6, 7));
		rmean_case(op, 1, D(2), 1, 4, D(2, 3, 1, 5));
		rmean_case(op, 1, D(1), 0, 2, D(1, 1));
	}
	rmean_case(11, 1, D(1), 1, 3, D(3, 2, 2));
	rmean_case(13, 1, D(1), 1, 3, D(4, 100000, 1));
	rmean_case(13, 2, D(2, 3), 0, 4, D(1, 2, 300, 300));
	{
		lr_tensor *x = rand_t(3, D(2, 3, 4), 1), *y = NULL;
		lr_tensor *xi = lrt_i(2, D(2, 3), D(1, 2, 4, -7, 0, 5)), *emp = lrt_i(1, D(0), NULL);
		lr_msg msg;
		lrt_node n;
		int rc;

		lrt_init(&n, "ReduceMean", 13);
		lrt_attr_ints(&n, "axes", 2, D(1, -2));
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == LR_EMODEL && strstr(msg.text, "twice"),
		       "ReduceMean with a repeated axis fails: %s", msg.text);
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "ReduceMean", 13);
		lrt_attr_ints(&n, "axes", 1, D(3));
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == LR_EMODEL && strstr(msg.text, "axis 3"),
		       "ReduceMean with axis 3 on rank 3 fails: %s", msg.text);
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "ReduceMean", 18);
		lrt_attr_int(&n, "noop_with_empty_axes", 1);
		lrt_input(&n, x);
		lrt_const(&n, emp);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == 0 && shape_is(y, 3, D(2, 3, 4)) &&
		       memcmp(y->data, x->data, lr_tensor_bytes(x)) == 0,
		       "ReduceMean-18 with empty axes and noop_with_empty_axes=1 is identity");
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "ReduceMean", 18);
		lrt_attr_int(&n, "keepdims", 0);
		lrt_input(&n, x);
		lrt_const(&n, emp);
		rc = run1(&n, &y, &msg);
		{
			double s = 0;

			for (int i = 0; i < 24; i++)
				s += fd(x)[i];
			tap_ok(rc == 0 && y->ndim == 0 && tap_close(fd(y)[0], s / 24, 1e-6, 1e-5),
			       "ReduceMean-18 with empty axes reduces everything to a scalar");
		}
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "ReduceMean", 13);
		lrt_attr_ints(&n, "axes", 1, D(1));
		lrt_input(&n, xi);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == 0 && y->dtype == LR_DT_INT64 && shape_is(y, 2, D(2, 1)) &&
		       ((int64_t *)y->data)[0] == 2 && ((int64_t *)y->data)[1] == 0,
		       "ReduceMean on int64 truncates: [7/3, -2/3] = [2, 0]");
		lr_tensor_free(y);
		lr_tensor_free(x);
		lr_tensor_free(xi);
		lr_tensor_free(emp);
	}
}

/* ---- Resize / Upsample ------------------------------------------------- */

struct rs_ref {
	const char *mode, *ctm, *nearest;
	double A;
	int exclude;
	double extrap;
	int old; /* Resize-10 / Upsample rounding */
};

/* Input coordinate of output j on an axis (in L, out M, scale s). */
static double ref_coord(const struct rs_ref *r, double j, double L, double M,
			double s, double r0, double r1)
{
	double lr = L * s;

	if (r->old || !strcmp(r->ctm, "asymmetric"))
		return j / s;
	if (!strcmp(r->ctm, "half_pixel"))
		return (j + 0.5) / s - 0.5;
	if (!strcmp(r->ctm, "pytorch_half_pixel"))
		return lr > 1 ? (j + 0.5) / s - 0.5 : 0;
	if (!strcmp(r->ctm, "align_corners"))
		return lr == 1 ? 0 : j * (L - 1) / (lr - 1);
	if (!strcmp(r->ctm, "tf_half_pixel_for_nn"))
		return (j + 0.5) / s;
	if (!strcmp(r->ctm, "half_pixel_symmetric")) {
		double adj = M / lr, c = L / 2;

		return c * (1 - adj) + (j + 0.5) / s - 0.5;
	}
	/* tf_crop_and_resize */
	return lr > 1 ? r0 * (L - 1) + j * (r1 - r0) * (L - 1) / (lr - 1)
		      : 0.5 * (r0 + r1) * (L - 1);
}

/* One output value from the line v[0..L-1] (stride st). */
static double ref_interp(const struct rs_ref *r, const double *v, int64_t st,
			 int64_t L, double x, double s, int crop)
{
	double f = floor(x), t = x - f;

	if (crop && (x < 0 || x > (double)(L - 1)))
		return r->extrap;
#define AT(i) v[(int64_t)fmin(fmax((double)(i), 0.0), (double)(L - 1)) * st]
	if (!strcmp(r->mode, "nearest")) {
		double i;

		if (r->old)
			i = s < 1 ? ceil(x) : floor(x);
		else if (!strcmp(r->nearest, "floor"))
			i = f;
		else if (!strcmp(r->nearest, "ceil"))
			i = ceil(x);
		else if (!strcmp(r->nearest, "round_prefer_ceil"))
			i = t == 0.5 ? f + 1 : round(x);
		else
			i = t == 0.5 ? f : round(x);
		return AT(i);
	}
	if (!strcmp(r->mode, "linear"))
		return (1 - t) * AT(f) + t * AT(f + 1);
	{
		double A = r->A, w[4], sum = 0, out = 0;
		double d[4] = { 1 + t, t, 1 - t, 2 - t };

		for (int k = 0; k < 4; k++) {
			double z = d[k];

			w[k] = z <= 1 ? ((A + 2) * z - (A + 3)) * z * z + 1
				      : ((A * z - 5 * A) * z + 8 * A) * z - 4 * A;
			if (r->exclude && (f - 1 + k < 0 || f - 1 + k > L - 1))
				w[k] = 0;
			sum += w[k];
		}
		for (int k = 0; k < 4; k++)
			out += w[k] / (r->exclude ? sum : 1) * AT(f - 1 + k);
		return out;
	}
#undef AT
}

/*
 * Separable reference: resizes a double copy of x one axis at a time.
 * Returns a malloc'd array of the output (dims od).
 */
static double *ref_resize(const struct rs_ref *r, const lr_tensor *x,
			  const int64_t *od, const double *sc, const double *roi)
{
	int R = x->ndim;
	int64_t cur[LR_MAX_DIMS], n = x->nelem;
	double *a = dalloc(n);
	int crop = r->ctm && !strcmp(r->ctm, "tf_crop_and_resize");

	for (int64_t i = 0; i < n; i++)
		a[i] = fd(x)[i];
	memcpy(cur, x->dims, sizeof(int64_t) * (size_t)R);
	for (int ax = 0; ax < R; ax++) {
		int64_t L = cur[ax], M = od[ax], outer = 1, inner = 1, nn;
		double *b;

		for (int i = 0; i < ax; i++)
			outer *= cur[i];
		for (int i = ax + 1; i < R; i++)
			inner *= cur[i];
		nn = outer * M * inner;
		b = dalloc(nn);
		for (int64_t o = 0; o < outer; o++)
			for (int64_t j = 0; j < M; j++)
				for (int64_t k = 0; k < inner; k++) {
					double xc = ref_coord(r, (double)j, (double)L, (double)M,
							      sc[ax], roi ? roi[ax] : 0,
							      roi ? roi[R + ax] : 1);

					b[(o * M + j) * inner + k] =
						ref_interp(r, a + o * L * inner + k, inner, L,
							   xc, sc[ax], crop);
				}
		free(a);
		a = b;
		cur[ax] = M;
	}
	return a;
}

/*
 * Runs Resize with scales (use_sizes = 0) or sizes and compares with the
 * reference. `scales` has one entry per axis.
 */
static void resize_case(int64_t opset, const struct rs_ref *r, int ndim,
			const int64_t *dims, const float *scales,
			const int64_t *sizes, const float *roi)
{
	lr_tensor *x = rand_t(ndim, dims, 4), *y = NULL, *ts = NULL, *tz = NULL, *tr = NULL;
	int64_t od[LR_MAX_DIMS];
	double sc[LR_MAX_DIMS], droi[2 * LR_MAX_DIMS], *ref;
	char what[300], sb[80], so[80];
	lr_msg msg;
	lrt_node n;
	int rc;

	for (int i = 0; i < ndim; i++) {
		if (sizes) {
			od[i] = sizes[i];
			sc[i] = (double)sizes[i] / (double)dims[i];
		} else {
			od[i] = (int64_t)floor((double)dims[i] * (double)scales[i]);
			sc[i] = scales[i];
		}
		if (roi) {
			droi[i] = roi[i];
			droi[ndim + i] = roi[ndim + i];
		}
	}
	ref = ref_resize(r, x, od, sc, roi ? droi : NULL);
	if (scales)
		ts = lrt_f(1, (int64_t[]){ ndim }, scales);
	if (sizes)
		tz = lrt_i(1, (int64_t[]){ ndim }, sizes);
	if (roi)
		tr = lrt_f(1, (int64_t[]){ 2 * ndim }, roi);
	lrt_init(&n, "Resize", opset);
	lrt_attr_str(&n, "mode", r->mode);
	if (!r->old) {
		lrt_attr_str(&n, "coordinate_transformation_mode", r->ctm);
		lrt_attr_str(&n, "nearest_mode", r->nearest);
		if (strcmp(r->mode, "cubic") == 0) {
			lrt_attr_float(&n, "cubic_coeff_a", (float)r->A);
			lrt_attr_int(&n, "exclude_outside", r->exclude);
		}
		if (roi)
			lrt_attr_float(&n, "extrapolation_value", (float)r->extrap);
	}
	lrt_input(&n, x);
	if (opset == 10) {
		lrt_const(&n, ts);
	} else {
		if (roi)
			lrt_const(&n, tr);
		else if (opset >= 13)
			lrt_skip(&n);
		else
			lrt_const(&n, (tr = lrt_f(1, D(0), NULL))); /* empty roi */
		if (ts)
			lrt_const(&n, ts);
		else if (opset >= 13)
			lrt_skip(&n);
		else
			lrt_const(&n, (ts = lrt_f(1, D(0), NULL)));
		if (tz)
			lrt_const(&n, tz);
	}
	rc = run1(&n, &y, &msg);
	snprintf(what, sizeof(what), "Resize-%lld %s %s%s%s %s -> %s", (long long)opset,
		 r->mode, r->old ? "(old)" : r->ctm,
		 r->old || strcmp(r->mode, "nearest") ? "" : " ",
		 r->old || strcmp(r->mode, "nearest") ? "" : r->nearest,
		 lr_shape_str(ndim, dims, sb, sizeof(sb)), lr_shape_str(ndim, od, so, sizeof(so)));
	check(y, ndim, od, ref, 1e-5, 1e-5, what, rc, &msg);
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_tensor_free(ts);
	lr_tensor_free(tz);
	lr_tensor_free(tr);
	free(ref);
}

static void test_resize(void)
{
	static const char *const ctms[] = { "half_pixel", "asymmetric", "align_corners",
					    "pytorch_half_pixel" };
	static const char *const nms[] = { "round_prefer_floor", "round_prefer_ceil",
					   "floor", "ceil" };
	struct rs_ref r = { "nearest", "half_pixel", "round_prefer_floor", -0.75, 0, 0, 0 };

	for (int c = 0; c < 4; c++) {
		r.ctm = ctms[c];
		r.mode = "nearest";
		for (int k = 0; k < 4; k++) {
			r.nearest = nms[k];
			resize_case(13, &r, 4, D(1, 2, 3, 4), F(1, 1, 2, 3), NULL, NULL);
			resize_case(13, &r, 4, D(1, 2, 5, 7), NULL, D(1, 2, 3, 4), NULL);
		}
		r.nearest = "round_prefer_floor";
		r.mode = "linear";
		resize_case(13, &r, 4, D(2, 3, 4, 5), F(1, 1, 2, 2), NULL, NULL);
		resize_case(13, &r, 4, D(1, 2, 9, 8), F(1, 1, 0.5f, 0.6f), NULL, NULL);
		resize_case(11, &r, 4, D(1, 2, 5, 6), NULL, D(1, 2, 8, 1), NULL);
		resize_case(13, &r, 3, D(3, 4, 5), F(2, 1.5f, 0.8f), NULL, NULL);
		r.mode = "cubic";
		resize_case(13, &r, 4, D(1, 2, 4, 5), F(1, 1, 2, 1.5f), NULL, NULL);
		resize_case(13, &r, 4, D(1, 1, 8, 8), NULL, D(1, 1, 5, 3), NULL);
	}
	r.mode = "cubic";
	r.ctm = "half_pixel";
	r.A = (double)-0.5f;
	r.exclude = 1;
	resize_case(13, &r, 4, D(1, 2, 4, 4), F(1, 1, 2, 2), NULL, NULL);
	resize_case(13, &r, 4, D(1, 2, 4, 4), F(1, 1, 0.75f, 0.75f), NULL, NULL);
	r.A = -0.75;
	r.exclude = 0;
	r.mode = "linear";
	r.ctm = "half_pixel_symmetric";
	resize_case(19, &r, 4, D(1, 1, 5, 7), F(1, 1, 1.7f, 0.7f), NULL, NULL);
	r.ctm = "tf_crop_and_resize";
	r.extrap = 10;
	resize_case(13, &r, 4, D(1, 1, 4, 4), NULL, D(1, 1, 3, 3),
		    F(0, 0, 0.4f, 0.6f, 1, 1, 0.6f, 0.8f));
	resize_case(13, &r, 4, D(1, 1, 4, 5), NULL, D(1, 1, 5, 4),
		    F(0, 0, -0.2f, 0.1f, 1, 1, 1.1f, 1.2f));
	r.mode = "nearest";
	resize_case(11, &r, 4, D(1, 1, 4, 5), NULL, D(1, 1, 5, 4),
		    F(0, 0, -0.2f, 0.1f, 1, 1, 1.1f, 1.2f));
	r.ctm = "tf_half_pixel_for_nn";
	resize_case(11, &r, 4, D(1, 1, 4, 4), NULL, D(1, 1, 3, 2), NULL);
	r.ctm = "half_pixel";
	resize_case(13, &r, 4, D(2, 64, 20, 20), F(1, 1, 2, 2), NULL, NULL);
	r.mode = "linear";
	resize_case(13, &r, 4, D(2, 64, 20, 20), F(1, 1, 2, 2), NULL, NULL);
	/* opset 10: asymmetric, floor when enlarging, ceil when shrinking */
	r.old = 1;
	r.mode = "nearest";
	resize_case(10, &r, 4, D(1, 2, 3, 4), F(1, 1, 2, 3), NULL, NULL);
	resize_case(10, &r, 4, D(1, 2, 6, 5), F(1, 1, 0.5f, 0.7f), NULL, NULL);
	r.mode = "linear";
	resize_case(10, &r, 4, D(1, 2, 3, 4), F(1, 1, 2, 2.5f), NULL, NULL);

	/* literal values from the ONNX operator documentation */
	{
		lr_tensor *x = lrt_f(4, D(1, 1, 2, 2), F(1, 2, 3, 4));
		lr_tensor *s = lrt_f(1, D(4), F(1, 1, 2, 3)), *y = NULL;
		lr_tensor *x2 = lrt_f(4, D(1, 1, 2, 4), F(1, 2, 3, 4, 5, 6, 7, 8));
		lr_tensor *s2 = lrt_f(1, D(4), F(1, 1, 0.6f, 0.6f));
		static const float want[24] = { 1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
						3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4 };
		lr_msg msg;
		lrt_node n;
		int rc;

		lrt_init(&n, "Resize", 13);
		lrt_attr_str(&n, "mode", "nearest");
		lrt_input(&n, x);
		lrt_skip(&n);
		lrt_const(&n, s);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == 0 && shape_is(y, 4, D(1, 1, 4, 6)) &&
		       memcmp(y->data, want, sizeof(want)) == 0,
		       "Resize nearest [1,1,2,2] x [1,1,2,3] matches the ONNX example");
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "Upsample", 9);
		lrt_attr_str(&n, "mode", "nearest");
		lrt_input(&n, x);
		lrt_const(&n, s);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == 0 && shape_is(y, 4, D(1, 1, 4, 6)) &&
		       memcmp(y->data, want, sizeof(want)) == 0,
		       "Upsample-9 nearest matches the ONNX example%s%s", rc ? ": " : "", msg.text);
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "Upsample", 7);
		lrt_attr_str(&n, "mode", "nearest");
		lrt_attr_floats(&n, "scales", 4, F(1, 1, 2, 3));
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == 0 && shape_is(y, 4, D(1, 1, 4, 6)) &&
		       memcmp(y->data, want, sizeof(want)) == 0,
		       "Upsample-7 nearest (scales attribute) matches the ONNX example%s%s",
		       rc ? ": " : "", msg.text);
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "Upsample", 8);
		lrt_attr_str(&n, "mode", "linear");
		lrt_attr_floats(&n, "scales", 4, F(1, 1, 2, 2));
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		{
			static const float wl[16] = { 1, 1.5f, 2, 2, 2, 2.5f, 3, 3,
						      3, 3.5f, 4, 4, 3, 3.5f, 4, 4 };

			tap_ok(rc == 0 && shape_is(y, 4, D(1, 1, 4, 4)) &&
			       memcmp(y->data, wl, sizeof(wl)) == 0,
			       "Upsample-8 linear is asymmetric bilinear (ONNX example)%s%s",
			       rc ? ": " : "", msg.text);
		}
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "Resize", 13);
		lrt_attr_str(&n, "mode", "linear");
		lrt_attr_str(&n, "coordinate_transformation_mode", "align_corners");
		lrt_input(&n, x2);
		lrt_skip(&n);
		lrt_const(&n, s2);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == 0 && shape_is(y, 4, D(1, 1, 1, 2)) && fd(y)[0] == 1.f &&
		       fabsf(fd(y)[1] - 3.142857f) < 1e-5f,
		       "Resize linear align_corners downsample gives [1, 3.142857] (ONNX)");
		lr_tensor_free(y);
		y = NULL;

		/* errors */
		lrt_init(&n, "Upsample", 9);
		lrt_input(&n, x);
		lrt_const(&n, s2);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == LR_EMODEL && strstr(msg.text, ">= 1"),
		       "Upsample with a scale < 1 fails: %s", msg.text);
		lr_tensor_free(y);
		y = NULL;
		lrt_init(&n, "Resize", 18);
		lrt_attr_str(&n, "mode", "linear");
		lrt_attr_int(&n, "antialias", 1);
		lrt_input(&n, x2);
		lrt_skip(&n);
		lrt_const(&n, s2);
		rc = run1(&n, &y, &msg);
		tap_ok(rc == LR_EUNSUPPORTED && strstr(msg.text, "antialias"),
		       "Resize antialias=1 downsampling is unsupported: %s", msg.text);
		lr_tensor_free(y);
		y = NULL;
		{
			lr_tensor *sz = lrt_i(1, D(4), D(1, 1, 4, 8));

			lrt_init(&n, "Resize", 13);
			lrt_input(&n, x2);
			lrt_skip(&n);
			lrt_const(&n, s2);
			lrt_const(&n, sz);
			rc = run1(&n, &y, &msg);
			tap_ok(rc == LR_EMODEL && strstr(msg.text, "only one"),
			       "Resize with both scales and sizes fails: %s", msg.text);
			lr_tensor_free(y);
			lr_tensor_free(sz);
			y = NULL;
		}
		{
			lr_tensor *s3 = lrt_f(1, D(3), F(1, 2, 2));

			lrt_init(&n, "Resize", 13);
			lrt_input(&n, x2);
			lrt_skip(&n);
			lrt_const(&n, s3);
			rc = run1(&n, &y, &msg);
			tap_ok(rc == LR_ESHAPE && strstr(msg.text, "scales"),
			       "Resize with 3 scales for rank 4 fails: %s", msg.text);
			lr_tensor_free(y);
			lr_tensor_free(s3);
			y = NULL;
		}
		lr_tensor_free(x);
		lr_tensor_free(s);
		lr_tensor_free(x2);
		lr_tensor_free(s2);
	}

	/* opset 18: axes and keep_aspect_ratio_policy */
	{
		lr_tensor *x = rand_t(4, D(1, 2, 4, 6), 1), *y = NULL;
		lr_tensor *sz = lrt_i(1, D(2), D(8, 8));
		static const char *const pol[3] = { "stretch", "not_larger", "not_smaller" };
		static const int64_t want[3][2] = { { 8, 8 }, { 5, 8 }, { 8, 12 } };
		lr_msg msg;
		lrt_node n;
		int rc;

		for (int k = 0; k < 3; k++) {
			lrt_init(&n, "Resize", 18);
			lrt_attr_str(&n, "mode", "nearest");
			lrt_attr_ints(&n, "axes", 2, D(2, 3));
			lrt_attr_str(&n, "keep_aspect_ratio_policy", pol[k]);
			lrt_input(&n, x);
			lrt_skip(&n);
			lrt_skip(&n);
			lrt_const(&n, sz);
			rc = run1(&n, &y, &msg);
			tap_ok(rc == 0 && shape_is(y, 4, D(1, 2, want[k][0], want[k][1])),
			       "Resize-18 axes=[2,3] sizes=[8,8] %s gives [1,2,%lld,%lld]%s%s",
			       pol[k], (long long)want[k][0], (long long)want[k][1],
			       rc ? ": " : "", msg.text);
			lr_tensor_free(y);
			y = NULL;
		}
		/* axes=[3,2] with scales: reference via a full scales vector */
		{
			lr_tensor *s = lrt_f(1, D(2), F(1.5f, 2));
			struct rs_ref rl = { "linear", "half_pixel", "round_prefer_floor", -0.75, 0, 0, 0 };
			double *ref = ref_resize(&rl, x, D(1, 2, 8, 9), (const double[]){ 1, 1, 2, 1.5 }, NULL);

			lrt_init(&n, "Resize", 18);
			lrt_attr_str(&n, "mode", "linear");
			lrt_attr_ints(&n, "axes", 2, D(3, 2));
			lrt_input(&n, x);
			lrt_skip(&n);
			lrt_const(&n, s);
			rc = run1(&n, &y, &msg);
			check(y, 4, D(1, 2, 8, 9), ref, 1e-5, 1e-5,
			      "Resize-18 linear axes=[3,2] scales=[1.5,2]", rc, &msg);
			lr_tensor_free(y);
			lr_tensor_free(s);
			free(ref);
		}
		lr_tensor_free(x);
		lr_tensor_free(sz);
	}
}

/* ---- the kernel contract, called directly ----------------------------- */

struct direct {
	Onnx__NodeProto proto;
	lr_node node;
	int outs[4];
	lr_opctx c;
	lr_msg msg;
};

static void direct_init(struct direct *d, const char *op, int64_t opset, int dry,
			unsigned takeable)
{
	memset(d, 0, sizeof(*d));
	onnx__node_proto__init(&d->proto);
	d->node.proto = &d->proto;
	d->node.name = "direct";
	d->node.op_type = op;
	d->node.nout = 1;
	d->node.out = d->outs;
	d->c.node = &d->node;
	d->c.opset = opset;
	d->c.dry = dry;
	d->c.msg = &d->msg;
	d->c.takeable = takeable;
}

static void test_contract(void)
{
	struct direct d;
	lr_tensor *in[5], *out[1];
	int rc;

	/* dry: float outputs have a shape and no data */
	{
		lr_tensor *a = NULL, *b = NULL;

		lr_tensor_create(&a, LR_DT_FLOAT, 4, D(2, 3, 4, 5), 0);
		lr_tensor_create(&b, LR_DT_FLOAT, 3, D(3, 1, 1), 0);
		direct_init(&d, "Add", 14, 1, 0);
		in[0] = a;
		in[1] = b;
		out[0] = NULL;
		rc = lr_op_add(&d.c, in, 2, out, 1);
		tap_ok(rc == 0 && shape_is(out[0], 4, D(2, 3, 4, 5)) && out[0]->data == NULL,
		       "dry Add gives the broadcast shape without data");
		lr_tensor_free(out[0]);
		direct_init(&d, "Relu", 14, 1, 0);
		out[0] = NULL;
		rc = lr_op_relu(&d.c, in, 1, out, 1);
		tap_ok(rc == 0 && shape_is(out[0], 4, D(2, 3, 4, 5)) && out[0]->data == NULL,
		       "dry Relu gives the shape without data");
		lr_tensor_free(out[0]);
		direct_init(&d, "Softmax", 13, 1, 0);
		out[0] = NULL;
		rc = lr_op_softmax(&d.c, in, 1, out, 1);
		tap_ok(rc == 0 && shape_is(out[0], 4, D(2, 3, 4, 5)) && out[0]->data == NULL,
		       "dry Softmax gives the shape without data");
		lr_tensor_free(out[0]);
		lr_tensor_free(a);
		lr_tensor_free(b);
	}
	/* dry: int64 always computed; small known floats computed too */
	{
		lr_tensor *a = lrt_i(1, D(2), D(6, 8)), *b = lrt_i(0, NULL, D(2));
		lr_tensor *fa = lrt_f(1, D(2), F(6, 8)), *fb = lrt_f(0, NULL, F(0.5f));

		direct_init(&d, "Div", 14, 1, 0);
		in[0] = a;
		in[1] = b;
		out[0] = NULL;
		rc = lr_op_div(&d.c, in, 2, out, 1);
		tap_ok(rc == 0 && out[0]->data != NULL && ((int64_t *)out[0]->data)[1] == 4,
		       "dry int64 Div is computed");
		lr_tensor_free(out[0]);
		in[0] = fa;
		in[1] = fb;
		out[0] = NULL;
		rc = lr_op_div(&d.c, in, 2, out, 1);
		tap_ok(rc == 0 && out[0]->data != NULL && fd(out[0])[1] == 16.f,
		       "dry float Div of known small inputs is computed (shape arithmetic)");
		lr_tensor_free(out[0]);
		lr_tensor_free(a);
		lr_tensor_free(b);
		lr_tensor_free(fa);
		lr_tensor_free(fb);
	}
	/* in place: the output is the input's buffer when takeable */
	{
		lr_tensor *x = lrt_f(2, D(2, 3), F(-1, 2, -3, 4, -5, 6)), *keep = x;
		lr_tensor *bias = lrt_f(1, D(3), F(10, 20, 30));

		direct_init(&d, "Relu", 14, 0, 1);
		in[0] = x;
		out[0] = NULL;
		rc = lr_op_relu(&d.c, in, 1, out, 1);
		tap_ok(rc == 0 && out[0] == keep && in[0] == NULL && fd(out[0])[0] == 0.f &&
		       fd(out[0])[5] == 6.f, "Relu works in place when the input is takeable");
		direct_init(&d, "Add", 14, 0, 2);
		in[0] = bias;
		in[1] = out[0];
		out[0] = NULL;
		rc = lr_op_add(&d.c, in, 2, out, 1);
		tap_ok(rc == 0 && out[0] == keep && in[1] == NULL && fd(out[0])[0] == 10.f &&
		       fd(out[0])[5] == 36.f,
		       "Add writes into input 1 when it has the output shape and is takeable");
		direct_init(&d, "Softmax", 13, 0, 1);
		in[0] = out[0];
		out[0] = NULL;
		rc = lr_op_softmax(&d.c, in, 1, out, 1);
		tap_ok(rc == 0 && out[0] == keep &&
		       tap_close(fd(out[0])[0] + fd(out[0])[1] + fd(out[0])[2], 1, 1e-6, 0),
		       "Softmax works in place");
		lr_tensor_free(out[0]);
		/* not takeable: a new tensor, input untouched */
		x = lrt_f(1, D(3), F(-1, 0, 1));
		direct_init(&d, "Relu", 14, 0, 0);
		in[0] = x;
		out[0] = NULL;
		rc = lr_op_relu(&d.c, in, 1, out, 1);
		tap_ok(rc == 0 && out[0] != x && in[0] == x && fd(x)[0] == -1.f &&
		       fd(out[0])[0] == 0.f, "Relu leaves a non-takeable input alone");
		lr_tensor_free(out[0]);
		lr_tensor_free(x);
		lr_tensor_free(bias);
	}
	/* missing inputs and wrong types fail instead of crashing */
	{
		lr_tensor *x = lrt_f(1, D(3), F(1, 2, 3)), *i = lrt_i(1, D(3), D(1, 2, 3));

		direct_init(&d, "Add", 14, 0, 0);
		in[0] = x;
		in[1] = NULL;
		out[0] = NULL;
		rc = lr_op_add(&d.c, in, 2, out, 1);
		tap_ok(rc == LR_EMODEL && out[0] == NULL && strstr(d.msg.text, "input 1"),
		       "Add without input 1 fails: %s", d.msg.text);
		direct_init(&d, "Relu", 14, 0, 0);
		in[0] = i;
		rc = lr_op_relu(&d.c, in, 1, out, 1);
		tap_ok(rc == 0 && out[0] != NULL && out[0]->dtype == LR_DT_INT64,
		       "Relu on int64 (Relu-14) runs: %s", d.msg.text);
		lr_tensor_free(out[0]);
		out[0] = NULL;
		direct_init(&d, "Sigmoid", 13, 0, 0);
		in[0] = i;
		rc = lr_op_sigmoid(&d.c, in, 1, out, 1);
		tap_ok(rc == LR_EUNSUPPORTED && out[0] == NULL, "Sigmoid on int64 fails: %s",
		       d.msg.text);
		direct_init(&d, "BatchNormalization", 15, 0, 0);
		in[0] = x;
		in[1] = in[2] = in[3] = x;
		in[4] = NULL;
		rc = lr_op_batchnorm(&d.c, in, 5, out, 1);
		tap_ok(rc == LR_EMODEL && out[0] == NULL && strstr(d.msg.text, "input_var"),
		       "BatchNormalization without var fails: %s", d.msg.text);
		direct_init(&d, "Resize", 13, 0, 0);
		in[0] = x;
		in[1] = in[2] = in[3] = NULL;
		rc = lr_op_resize(&d.c, in, 4, out, 1);
		tap_ok(rc == LR_EMODEL && out[0] == NULL, "Resize without scales or sizes fails: %s",
		       d.msg.text);
		lr_tensor_free(x);
		lr_tensor_free(i);
	}
}

int main(void)
{
	tap_diag("seed 0x%llx", (unsigned long long)rng);
	test_unary();
	test_clip();
	test_binary();
	test_legacy_binary();
	test_int64();
	test_batchnorm();
	test_lrn();
	test_softmax();
	test_reducemean();
	test_resize();
	test_contract();
	return tap_done();
}
