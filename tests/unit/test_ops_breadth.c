/*
 * test_ops_breadth.c - the kernels added for operator breadth: N-D and
 * Lp pooling with MaxPool's Indices (ops_pool.c), the math functions
 * (ops_unary.c), Pow, Mod and the variadic Max/Min/Sum/Mean
 * (ops_elementwise.c), the reductions and ArgMax/ArgMin (ops_reduce.c),
 * the generators and TfIdfVectorizer (ops_gen.c), the normalisations (ops_norm.c),
 * ConvTranspose (ops_convtranspose.c), the two losses (ops_loss.c) and
 * TopK, GatherND and the scatters (ops_index.c), NonMaxSuppression,
 * RoiAlign and GridSample (ops_detect.c), Det, ReverseSequence, Unique and
 * MaxUnpool (ops_misc.c), RNN, GRU and LSTM (ops_rnn.c).
 *
 * DESIGN. Each case runs a one-node model through the real loader and
 * engine (opcheck.h) and compares with a reference computed here by the
 * plainest loops: windows and scatters walked position by position with
 * explicit index arithmetic, reductions by visiting every element and
 * asking whether it belongs to the output element, functions from their
 * mathematical definitions in double. None of it shares code with the
 * kernels. Every opset-dependent signature is exercised on both sides of
 * its change (axes as attribute or input, LpPool's float p, Hardmax's 2-D
 * coercion), and every kernel has at least one error case whose message
 * must name the node's offending input or attribute. The last group calls
 * kernels directly to check the dry-run contract (ops.h).
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

static uint64_t rng = 0x2545f4914f6cdd1dull;

/* Uniform in [lo, hi). */
static double urand(double lo, double hi)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return lo + (double)(rng >> 11) / 9007199254740992.0 * (hi - lo);
}

static lr_tensor *rand_t(int ndim, const int64_t *dims, double lo, double hi)
{
	lr_tensor *t = lrt_f(ndim, dims, NULL);

	for (int64_t i = 0; i < t->nelem; i++)
		((float *)t->data)[i] = (float)urand(lo, hi);
	return t;
}

static const float *fd(const lr_tensor *t)
{
	return t->data;
}

static const int64_t *id(const lr_tensor *t)
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

static double *dalloc(int64_t n)
{
	double *p = calloc((size_t)(n > 0 ? n : 1), sizeof(double));

	if (p == NULL)
		abort();
	return p;
}

/* Checks float y against ref within atol + rtol * |ref| (NaN == NaN). */
static int check(const lr_tensor *y, int ndim, const int64_t *dims,
		 const double *ref, double atol, double rtol, const char *what,
		 int rc, const lr_msg *msg)
{
	char buf[160];

	if (rc != 0)
		return tap_ok(0, "%s: rc %d: %s", what, rc, msg ? msg->text : "");
	if (!shape_is(y, ndim, dims) || y->dtype != LR_DT_FLOAT || y->data == NULL)
		return tap_ok(0, "%s: wrong output shape %s", what,
			      y ? lr_shape_str(y->ndim, y->dims, buf, sizeof(buf)) : "(null)");
	for (int64_t i = 0; i < y->nelem; i++) {
		double got = fd(y)[i];

		if (isnan(ref[i]) && isnan(got))
			continue;
		if (isinf(ref[i]) && got == ref[i])
			continue;
		if (!tap_close(got, ref[i], atol, rtol))
			return tap_ok(0, "%s: element %lld is %.9g, expected %.9g", what,
				      (long long)i, got, ref[i]);
	}
	return tap_ok(1, "%s", what);
}

/* Checks int64 y against ref exactly. */
static int check_i(const lr_tensor *y, int ndim, const int64_t *dims,
		   const int64_t *ref, const char *what, int rc, const lr_msg *msg)
{
	if (rc != 0)
		return tap_ok(0, "%s: rc %d: %s", what, rc, msg ? msg->text : "");
	if (!shape_is(y, ndim, dims) || y->dtype != LR_DT_INT64 || y->data == NULL)
		return tap_ok(0, "%s: wrong output shape or type", what);
	for (int64_t i = 0; i < y->nelem; i++)
		if (id(y)[i] != ref[i])
			return tap_ok(0, "%s: element %lld is %lld, expected %lld", what,
				      (long long)i, (long long)id(y)[i], (long long)ref[i]);
	return tap_ok(1, "%s", what);
}

/* Expects failure rc with a message containing every given fragment. */
static int check_err(int rc, int want, const lr_msg *msg, const char *what,
		     const char *frag1, const char *frag2)
{
	int ok = rc == want && strstr(msg->text, "node '") != NULL &&
		 (frag1 == NULL || strstr(msg->text, frag1) != NULL) &&
		 (frag2 == NULL || strstr(msg->text, frag2) != NULL);

	return tap_ok(ok, "%s fails (rc %d, want %d): %s", what, rc, want, msg->text);
}

static int run_n(lrt_node *n, int nout, lr_tensor **y, lr_msg *msg)
{
	memset(msg, 0, sizeof(*msg));
	return lrt_run(n, nout, y, msg);
}

static int run1(lrt_node *n, lr_tensor **y, lr_msg *msg)
{
	return run_n(n, 1, y, msg);
}

/* Row-major flat index of idx in dims. */
static int64_t flat(int nd, const int64_t *dims, const int64_t *idx)
{
	int64_t f = 0;

	for (int k = 0; k < nd; k++)
		f = f * dims[k] + idx[k];
	return f;
}

/* idx = the coordinates of flat index f in dims. */
static void unflat(int nd, const int64_t *dims, int64_t f, int64_t *idx)
{
	for (int k = nd - 1; k >= 0; k--) {
		idx[k] = f % dims[k];
		f /= dims[k];
	}
}

/* ---- pooling ------------------------------------------------------------ */

enum pref { P_MAX, P_AVG, P_AVG_PAD, P_LP };

/*
 * Reference pooling over X [N, C, spatial...] with explicit geometry:
 * visits every kernel offset of every output position. For P_MAX also
 * fills ind (row-major or column-major within the plane).
 */
static void ref_pool(const lr_tensor *x, int nsp, const int64_t *k,
		     const int64_t *s, const int64_t *dl, const int64_t *pb,
		     const int64_t *pe, const int64_t *od, enum pref kind, double p,
		     int col_major, double *ref, int64_t *ind)
{
	int nd = nsp + 2;
	int64_t total = 1, o[8], kk = 1;

	for (int a = 0; a < nd; a++)
		total *= od[a];
	for (int a = 0; a < nsp; a++)
		kk *= k[a];
	for (int64_t e = 0; e < total; e++) {
		double acc = 0, best = 0;
		int64_t cnt = 0, cnt_pad = 0, best_at = -1;

		unflat(nd, od, e, o);
		for (int64_t w = 0; w < kk; w++) {
			int64_t kw[8], xi[8];
			int inside = 1, in_pad = 1;

			unflat(nsp, k, w, kw);
			xi[0] = o[0];
			xi[1] = o[1];
			for (int a = 0; a < nsp; a++) {
				int64_t t = o[2 + a] * s[a] - pb[a] + kw[a] * dl[a];

				xi[2 + a] = t;
				if (t < 0 || t >= x->dims[2 + a])
					inside = 0;
				if (t < -pb[a] || t >= x->dims[2 + a] + pe[a])
					in_pad = 0;
			}
			cnt_pad += in_pad;
			if (!inside)
				continue;
			{
				double v = fd(x)[flat(nd, x->dims, xi)];

				cnt++;
				if (kind == P_MAX) {
					if (best_at < 0 || v > best) {
						int64_t pos = 0, m = 1;

						best = v;
						if (col_major) {
							for (int a = 0; a < nsp; a++) {
								pos += xi[2 + a] * m;
								m *= x->dims[2 + a];
							}
							pos += (o[0] * x->dims[1] + o[1]) * m;
						} else {
							pos = flat(nd, x->dims, xi);
						}
						best_at = pos;
					}
				} else if (kind == P_LP) {
					acc += pow(fabs(v), p);
				} else {
					acc += v;
				}
			}
		}
		if (kind == P_MAX) {
			ref[e] = best;
			if (ind)
				ind[e] = best_at;
		} else if (kind == P_LP) {
			ref[e] = pow(acc, 1.0 / p);
		} else {
			ref[e] = acc / (double)(kind == P_AVG_PAD ? cnt_pad : cnt);
		}
	}
}

static void test_pool(void)
{
	lr_tensor *x, *y[2] = { NULL, NULL };
	double *ref;
	int64_t *ind;
	lr_msg msg;
	lrt_node n;
	int rc;

	/* 3-D MaxPool with Indices, strides, dilations, asymmetric pads */
	x = rand_t(5, D(2, 3, 5, 6, 7), -2, 2);
	{
		const int64_t od[5] = { 2, 3, 3, 3, 4 };

		ref = dalloc(2 * 3 * 3 * 3 * 4);
		ind = calloc(2 * 3 * 3 * 3 * 4, sizeof(int64_t));
		ref_pool(x, 3, D(2, 3, 2), D(2, 1, 2), D(1, 2, 1), D(1, 0, 1), D(0, 1, 1),
			 od, P_MAX, 0, 0, ref, ind);
		lrt_init(&n, "MaxPool", 12);
		lrt_attr_ints(&n, "kernel_shape", 3, D(2, 3, 2));
		lrt_attr_ints(&n, "strides", 3, D(2, 1, 2));
		lrt_attr_ints(&n, "dilations", 3, D(1, 2, 1));
		lrt_attr_ints(&n, "pads", 6, D(1, 0, 1, 0, 1, 1));
		lrt_input(&n, x);
		rc = run_n(&n, 2, y, &msg);
		check(y[0], 5, od, ref, 0, 0, "3-D MaxPool with dilations and pads", rc, &msg);
		check_i(y[1], 5, od, ind, "3-D MaxPool Indices (storage_order 0)", rc, &msg);
		lr_tensor_free(y[0]);
		lr_tensor_free(y[1]);
		free(ref);
		free(ind);
	}
	/* 3-D AveragePool, both count_include_pad, ceil_mode */
	for (int inc = 0; inc < 2; inc++) {
		const int64_t od[5] = { 2, 3, 3, 4, 4 };
		char what[80];

		ref = dalloc(2 * 3 * 3 * 4 * 4);
		ref_pool(x, 3, D(3, 2, 2), D(2, 2, 2), D(1, 1, 1), D(1, 1, 0), D(1, 0, 1),
			 od, inc ? P_AVG_PAD : P_AVG, 0, 0, ref, NULL);
		lrt_init(&n, "AveragePool", 11);
		lrt_attr_ints(&n, "kernel_shape", 3, D(3, 2, 2));
		lrt_attr_ints(&n, "strides", 3, D(2, 2, 2));
		lrt_attr_ints(&n, "pads", 6, D(1, 1, 0, 1, 0, 1));
		lrt_attr_int(&n, "count_include_pad", inc);
		lrt_attr_int(&n, "ceil_mode", 1);
		lrt_input(&n, x);
		rc = run1(&n, y, &msg);
		snprintf(what, sizeof(what), "3-D AveragePool ceil_mode=1 count_include_pad=%d", inc);
		check(y[0], 5, od, ref, 1e-6, 1e-6, what, rc, &msg);
		lr_tensor_free(y[0]);
		free(ref);
	}
	lr_tensor_free(x);

	/* 2-D MaxPool Indices with storage_order=1 (column-major in the plane) */
	x = rand_t(4, D(2, 2, 5, 4), -1, 1);
	{
		const int64_t od[4] = { 2, 2, 4, 3 };

		ref = dalloc(48);
		ind = calloc(48, sizeof(int64_t));
		ref_pool(x, 2, D(2, 2), D(1, 1), D(1, 1), D(0, 0), D(0, 0), od, P_MAX, 0, 1,
			 ref, ind);
		lrt_init(&n, "MaxPool", 10);
		lrt_attr_ints(&n, "kernel_shape", 2, D(2, 2));
		lrt_attr_int(&n, "storage_order", 1);
		lrt_input(&n, x);
		rc = run_n(&n, 2, y, &msg);
		check(y[0], 4, od, ref, 0, 0, "2-D MaxPool through the N-D path", rc, &msg);
		check_i(y[1], 4, od, ind, "2-D MaxPool Indices with storage_order=1", rc, &msg);
		lr_tensor_free(y[0]);
		lr_tensor_free(y[1]);
		free(ref);
		free(ind);
	}
	/* LpPool: int p (opset 11) and float p (opset 1), padding counts as 0 */
	for (int v = 0; v < 2; v++) {
		const int64_t od[4] = { 2, 2, 3, 2 };
		char what[80];

		ref = dalloc(24);
		ref_pool(x, 2, D(3, 2), D(2, 2), D(1, 1), D(1, 0), D(1, 0), od, P_LP,
			 v ? 2.0 : 3.0, 0, ref, NULL);
		lrt_init(&n, "LpPool", v ? 1 : 11);
		lrt_attr_ints(&n, "kernel_shape", 2, D(3, 2));
		lrt_attr_ints(&n, "strides", 2, D(2, 2));
		lrt_attr_ints(&n, "pads", 4, D(1, 0, 1, 0));
		if (v)
			lrt_attr_float(&n, "p", 2.0f);
		else
			lrt_attr_int(&n, "p", 3);
		lrt_input(&n, x);
		rc = run1(&n, y, &msg);
		snprintf(what, sizeof(what), "LpPool-%d with p=%d", v ? 1 : 11, v ? 2 : 3);
		check(y[0], 4, od, ref, 1e-6, 1e-5, what, rc, &msg);
		lr_tensor_free(y[0]);
		free(ref);
	}
	/* GlobalLpPool */
	{
		double r[4] = { 0, 0, 0, 0 };

		for (int64_t i = 0; i < x->nelem; i++)
			r[i / 20] += fd(x)[i] * (double)fd(x)[i];
		for (int i = 0; i < 4; i++)
			r[i] = sqrt(r[i]);
		lrt_init(&n, "GlobalLpPool", 2);
		lrt_input(&n, x);
		rc = run1(&n, y, &msg);
		check(y[0], 4, D(2, 2, 1, 1), r, 1e-6, 1e-6, "GlobalLpPool p=2", rc, &msg);
		lr_tensor_free(y[0]);
	}
	/* errors */
	lrt_init(&n, "MaxPool", 12);
	lrt_attr_ints(&n, "kernel_shape", 3, D(2, 2, 2));
	lrt_input(&n, x);
	rc = run1(&n, y, &msg);
	check_err(rc, LR_EMODEL, &msg, "MaxPool with 3 kernel_shape entries on 2-D input",
		  "kernel_shape", "2 entries");
	lr_tensor_free(y[0]);
	lrt_init(&n, "MaxPool", 12);
	lrt_attr_ints(&n, "kernel_shape", 2, D(2, 2));
	lrt_attr_int(&n, "storage_order", 2);
	lrt_input(&n, x);
	rc = run_n(&n, 2, y, &msg);
	check_err(rc, LR_EMODEL, &msg, "MaxPool storage_order=2", "storage_order", NULL);
	lrt_init(&n, "LpPool", 11);
	lrt_attr_ints(&n, "kernel_shape", 2, D(2, 2));
	lrt_attr_int(&n, "p", 0);
	lrt_input(&n, x);
	rc = run1(&n, y, &msg);
	check_err(rc, LR_EUNSUPPORTED, &msg, "LpPool p=0", "'p'", NULL);
	lrt_init(&n, "AveragePool", 11);
	lrt_attr_ints(&n, "kernel_shape", 3, D(9, 2, 2));
	lr_tensor *x3 = rand_t(5, D(1, 1, 4, 4, 4), 0, 1);
	lrt_input(&n, x3);
	rc = run1(&n, y, &msg);
	check_err(rc, LR_ESHAPE, &msg, "3-D AveragePool window larger than the input",
		  "does not fit", "axis 2");
	lr_tensor_free(x3);
	/* a hostile window: 2^21 positions on each of 3 axes */
	x3 = rand_t(5, D(1, 1, 1, 1, 1), 0, 1);
	lrt_init(&n, "MaxPool", 12);
	lrt_attr_ints(&n, "kernel_shape", 3, D(1 << 20, 1 << 20, 1 << 20));
	lrt_attr_ints(&n, "pads", 6, D(1 << 20, 1 << 20, 1 << 20, 0, 0, 0));
	lrt_input(&n, x3);
	rc = run1(&n, y, &msg);
	check_err(rc, LR_ELIMIT, &msg, "3-D MaxPool with 2^60 window positions", "too much work", NULL);
	lr_tensor_free(x3);
	lr_tensor_free(x);
}

/* ---- math functions ----------------------------------------------------- */

enum mfn {
	F_ABS, F_NEG, F_SIGN, F_EXP, F_LOG, F_SQRT, F_RECIP, F_FLOOR, F_CEIL,
	F_ROUND, F_ERF, F_SIN, F_COS, F_TAN, F_ASIN, F_ACOS, F_ATAN, F_SINH,
	F_COSH, F_ASINH, F_ACOSH, F_ATANH, F_SOFTPLUS, F_SOFTSIGN, F_SELU,
	F_CELU, F_GELU, F_GELU_TANH, F_MISH, F_THRELU, F_SHRINK,
};

/* Round half to even, from floor alone. */
static double round_even(double x)
{
	double f = floor(x), d = x - f;

	if (d > 0.5 || (d == 0.5 && fmod(f, 2.0) != 0.0))
		f += 1.0;
	return f;
}

static double ref_math(enum mfn f, double x)
{
	const double pi = 3.14159265358979323846;

	switch (f) {
	case F_ABS: return x < 0 ? -x : x;
	case F_NEG: return -x;
	case F_SIGN: return x > 0 ? 1 : x < 0 ? -1 : 0;
	case F_EXP: return exp(x);
	case F_LOG: return log(x);
	case F_SQRT: return sqrt(x);
	case F_RECIP: return 1 / x;
	case F_FLOOR: return floor(x);
	case F_CEIL: return -floor(-x);
	case F_ROUND: return round_even(x);
	case F_ERF: return erf(x);
	case F_SIN: return sin(x);
	case F_COS: return sin(x + pi / 2);
	case F_TAN: return sin(x) / cos(x);
	case F_ASIN: return atan2(x, sqrt(1 - x * x));
	case F_ACOS: return pi / 2 - atan2(x, sqrt(1 - x * x));
	case F_ATAN: return atan(x);
	case F_SINH: return (exp(x) - exp(-x)) / 2;
	case F_COSH: return (exp(x) + exp(-x)) / 2;
	case F_ASINH: return log(x + sqrt(x * x + 1));
	case F_ACOSH: return log(x + sqrt(x * x - 1));
	case F_ATANH: return 0.5 * log((1 + x) / (1 - x));
	case F_SOFTPLUS: return log(1 + exp(x));
	case F_SOFTSIGN: return x / (1 + fabs(x));
	case F_SELU: return 1.0507009873554804934193349852946 *
			    (x > 0 ? x : 1.6732632423543772848170429916717 * (exp(x) - 1));
	case F_CELU: return x > 0 ? x : 0.7 * (exp(x / 0.7) - 1);  /* alpha 0.7 */
	case F_GELU: return x * 0.5 * (1 + erf(x / sqrt(2.0)));
	case F_GELU_TANH: return 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * pow(x, 3))));
	case F_MISH: return x * tanh(log(1 + exp(x)));
	case F_THRELU: return x > 0.25 ? x : 0;                    /* alpha 0.25 */
	case F_SHRINK: return x < -0.75 ? x + 0.5 : x > 0.75 ? x - 0.5 : 0; /* lambd .75, bias .5 */
	}
	return 0;
}

static void test_math(void)
{
	static const struct {
		const char *op;
		enum mfn f;
		int64_t opset;
		double lo, hi;
	} cases[] = {
		{ "Abs", F_ABS, 13, -5, 5 }, { "Neg", F_NEG, 6, -5, 5 },
		{ "Sign", F_SIGN, 13, -5, 5 }, { "Exp", F_EXP, 13, -20, 20 },
		{ "Log", F_LOG, 13, 1e-3, 100 }, { "Sqrt", F_SQRT, 13, 0, 100 },
		{ "Reciprocal", F_RECIP, 13, 0.1, 10 }, { "Floor", F_FLOOR, 13, -5, 5 },
		{ "Ceil", F_CEIL, 13, -5, 5 }, { "Round", F_ROUND, 11, -5, 5 },
		{ "Erf", F_ERF, 13, -3, 3 }, { "Sin", F_SIN, 7, -6, 6 },
		{ "Cos", F_COS, 7, -6, 6 }, { "Tan", F_TAN, 7, -1.4, 1.4 },
		{ "Asin", F_ASIN, 7, -0.99, 0.99 }, { "Acos", F_ACOS, 7, -0.99, 0.99 },
		{ "Atan", F_ATAN, 7, -10, 10 }, { "Sinh", F_SINH, 9, -5, 5 },
		{ "Cosh", F_COSH, 9, -5, 5 }, { "Asinh", F_ASINH, 9, -10, 10 },
		{ "Acosh", F_ACOSH, 9, 1, 10 }, { "Atanh", F_ATANH, 9, -0.99, 0.99 },
		{ "Softplus", F_SOFTPLUS, 1, -20, 20 }, { "Softsign", F_SOFTSIGN, 1, -5, 5 },
		{ "Selu", F_SELU, 6, -5, 5 }, { "Celu", F_CELU, 12, -5, 5 },
		{ "Gelu", F_GELU, 20, -5, 5 }, { "Gelu", F_GELU_TANH, 20, -5, 5 },
		{ "Mish", F_MISH, 18, -10, 10 }, { "ThresholdedRelu", F_THRELU, 10, -1, 1 },
		{ "Shrink", F_SHRINK, 9, -2, 2 },
	};
	const int64_t dims[3] = { 3, 7, 41 };

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		lr_tensor *x = rand_t(3, dims, cases[k].lo, cases[k].hi), *y = NULL;
		double *ref = dalloc(x->nelem);
		char what[80];
		lr_msg msg;
		lrt_node n;
		int rc;

		if (cases[k].f == F_ROUND || cases[k].f == F_FLOOR || cases[k].f == F_CEIL) {
			/* exact halves and integers */
			for (int i = 0; i < 20; i++)
				((float *)x->data)[i] = (float)(i - 10) * 0.5f;
		}
		for (int64_t i = 0; i < x->nelem; i++)
			ref[i] = ref_math(cases[k].f, fd(x)[i]);
		lrt_init(&n, cases[k].op, cases[k].opset);
		if (cases[k].f == F_CELU)
			lrt_attr_float(&n, "alpha", 0.7f);
		if (cases[k].f == F_GELU_TANH)
			lrt_attr_str(&n, "approximate", "tanh");
		if (cases[k].f == F_THRELU)
			lrt_attr_float(&n, "alpha", 0.25f);
		if (cases[k].f == F_SHRINK) {
			lrt_attr_float(&n, "lambd", 0.75f);
			lrt_attr_float(&n, "bias", 0.5f);
		}
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		snprintf(what, sizeof(what), "%s-%lld%s", cases[k].op, (long long)cases[k].opset,
			 cases[k].f == F_GELU_TANH ? " approximate=tanh" : "");
		check(y, 3, dims, ref, 1e-6, 2e-6, what, rc, &msg);
		lr_tensor_free(x);
		lr_tensor_free(y);
		free(ref);
	}
	/* int64 Abs, Neg, Sign, including INT64_MIN (wraps to itself) */
	{
		const int64_t v[5] = { -7, 0, 9, INT64_MIN, INT64_MAX };
		const int64_t want[3][5] = {
			{ 7, 0, 9, INT64_MIN, INT64_MAX },
			{ 7, 0, -9, INT64_MIN, -INT64_MAX },
			{ -1, 0, 1, -1, 1 },
		};
		static const char *const ops[3] = { "Abs", "Neg", "Sign" };

		for (int k = 0; k < 3; k++) {
			lr_tensor *x = lrt_i(1, D(5), v), *y = NULL;
			char what[40];
			lr_msg msg;
			lrt_node n;
			int rc;

			lrt_init(&n, ops[k], 13);
			lrt_input(&n, x);
			rc = run1(&n, &y, &msg);
			snprintf(what, sizeof(what), "int64 %s", ops[k]);
			check_i(y, 1, D(5), want[k], what, rc, &msg);
			lr_tensor_free(x);
			lr_tensor_free(y);
		}
	}
	/* errors */
	{
		lr_tensor *xi = lrt_i(1, D(2), D(1, 2)), *x = lrt_f(1, D(2), F(1, 2)), *y = NULL;
		lr_msg msg;
		lrt_node n;
		int rc;

		lrt_init(&n, "Exp", 13);
		lrt_input(&n, xi);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EUNSUPPORTED, &msg, "Exp of int64", "input 0", "int64");
		lrt_init(&n, "Gelu", 20);
		lrt_attr_str(&n, "approximate", "fast");
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "Gelu approximate=fast", "approximate", "fast");
		lrt_init(&n, "Celu", 12);
		lrt_attr_float(&n, "alpha", 0.0f);
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "Celu alpha=0", "alpha", NULL);
		lr_tensor_free(xi);
		lr_tensor_free(x);
	}
}

/* ---- Pow, Mod, Max/Min/Sum/Mean ----------------------------------------- */

/* Value of input t at output index o (numpy broadcasting to nd dims). */
static double bval(const lr_tensor *t, int nd, const int64_t *o)
{
	int64_t f = 0;

	for (int k = 0; k < t->ndim; k++) {
		int64_t ok = o[nd - t->ndim + k];

		f = f * t->dims[k] + (t->dims[k] == 1 ? 0 : ok);
	}
	return t->dtype == LR_DT_FLOAT ? fd(t)[f] : (double)id(t)[f];
}

static void test_binary(void)
{
	lr_tensor *y = NULL;
	lr_msg msg;
	lrt_node n;
	int rc;

	/* Pow float ^ float with broadcasting */
	{
		lr_tensor *a = rand_t(3, D(2, 3, 4), 0.1, 3), *b = rand_t(1, D(4), -2, 2);
		double ref[24];
		int64_t o[3];

		for (int e = 0; e < 24; e++) {
			unflat(3, D(2, 3, 4), e, o);
			ref[e] = exp(bval(b, 3, o) * log(bval(a, 3, o)));
		}
		lrt_init(&n, "Pow", 15);
		lrt_input(&n, a);
		lrt_input(&n, b);
		rc = run1(&n, &y, &msg);
		check(y, 3, D(2, 3, 4), ref, 1e-6, 1e-5, "Pow float ^ float, broadcast", rc, &msg);
		lr_tensor_free(y);
		lr_tensor_free(a);
		lr_tensor_free(b);
	}
	/* Pow with int64 exponents and int64 bases */
	{
		lr_tensor *a = lrt_f(1, D(4), F(2, -3, 0.5f, 10)), *e = lrt_i(1, D(4), D(3, 2, -2, 0));
		lr_tensor *ai = lrt_i(1, D(5), D(2, -3, 2, 1, -1)), *ei = lrt_i(1, D(5), D(10, 3, -1, -5, -3));
		lr_tensor *ef = lrt_f(1, D(5), F(2.5f, 2, 0.5f, 7, 1));

		lrt_init(&n, "Pow", 15);
		lrt_input(&n, a);
		lrt_input(&n, e);
		rc = run1(&n, &y, &msg);
		check(y, 1, D(4), (const double[]){ 8, 9, 4, 1 }, 0, 1e-7, "Pow float ^ int64", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Pow", 15);
		lrt_input(&n, ai);
		lrt_input(&n, ei);
		rc = run1(&n, &y, &msg);
		check_i(y, 1, D(5), D(1024, -27, 0, 1, -1), "Pow int64 ^ int64 (negative exponents truncate)",
			rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Pow", 15);
		lrt_input(&n, ai);
		lrt_input(&n, ef);
		rc = run1(&n, &y, &msg);
		/* 2^2.5 = 5.66 -> 5; (-3)^2 = 9; 2^0.5 -> 1; 1; -1 */
		check_i(y, 1, D(5), D(5, 9, 1, 1, -1), "Pow int64 ^ float truncates", rc, &msg);
		lr_tensor_free(y);
		lr_tensor_free(a);
		lr_tensor_free(e);
		lr_tensor_free(ai);
		lr_tensor_free(ei);
		lr_tensor_free(ef);
	}
	/* Mod */
	{
		lr_tensor *a = lrt_i(1, D(6), D(-4, 7, 5, 4, -7, 8)), *b = lrt_i(1, D(6), D(3, -3, 8, -2, 3, 5));
		lr_tensor *fa = lrt_f(1, D(3), F(-4.5f, 7, 5.25f)), *fb = lrt_f(1, D(3), F(3, -3, 2));
		lr_tensor *z = lrt_i(1, D(6), D(1, 1, 0, 1, 1, 1));

		lrt_init(&n, "Mod", 13);
		lrt_input(&n, a);
		lrt_input(&n, b);
		rc = run1(&n, &y, &msg);
		/* Python: -4 % 3 = 2, 7 % -3 = -2, 5 % 8 = 5, 4 % -2 = 0, -7 % 3 = 2, 8 % 5 = 3 */
		check_i(y, 1, D(6), D(2, -2, 5, 0, 2, 3), "Mod int64 fmod=0 (sign of divisor)", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Mod", 13);
		lrt_attr_int(&n, "fmod", 1);
		lrt_input(&n, a);
		lrt_input(&n, b);
		rc = run1(&n, &y, &msg);
		check_i(y, 1, D(6), D(-1, 1, 5, 0, -1, 3), "Mod int64 fmod=1 (sign of dividend)", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Mod", 13);
		lrt_attr_int(&n, "fmod", 1);
		lrt_input(&n, fa);
		lrt_input(&n, fb);
		rc = run1(&n, &y, &msg);
		check(y, 1, D(3), (const double[]){ -1.5, 1, 1.25 }, 0, 1e-7, "Mod float fmod=1", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Mod", 13);
		lrt_input(&n, fa);
		lrt_input(&n, fb);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "Mod of floats with fmod=0", "fmod=1", NULL);
		lrt_init(&n, "Mod", 13);
		lrt_input(&n, a);
		lrt_input(&n, z);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_ENUMERIC, &msg, "Mod int64 by zero", "input 1", "is 0");
		lr_tensor_free(a);
		lr_tensor_free(b);
		lr_tensor_free(fa);
		lr_tensor_free(fb);
		lr_tensor_free(z);
	}
	/* variadic, three inputs broadcasting to [2,3,4] */
	{
		lr_tensor *in[3];
		static const char *const ops[4] = { "Max", "Min", "Sum", "Mean" };
		double ref[24];
		int64_t o[3];

		in[0] = rand_t(3, D(2, 1, 4), -1, 1);
		in[1] = rand_t(2, D(3, 1), -1, 1);
		in[2] = rand_t(1, D(4), -1, 1);
		for (int k = 0; k < 4; k++) {
			char what[60];

			for (int e = 0; e < 24; e++) {
				double v[3];

				unflat(3, D(2, 3, 4), e, o);
				for (int i = 0; i < 3; i++)
					v[i] = bval(in[i], 3, o);
				ref[e] = k == 0 ? fmax(v[0], fmax(v[1], v[2])) :
					 k == 1 ? fmin(v[0], fmin(v[1], v[2])) :
					 k == 2 ? v[0] + v[1] + v[2] : (v[0] + v[1] + v[2]) / 3;
			}
			lrt_init(&n, ops[k], 13);
			for (int i = 0; i < 3; i++)
				lrt_input(&n, in[i]);
			rc = run1(&n, &y, &msg);
			snprintf(what, sizeof(what), "%s of [2,1,4], [3,1], [4]", ops[k]);
			check(y, 3, D(2, 3, 4), ref, 1e-6, 1e-6, what, rc, &msg);
			lr_tensor_free(y);
		}
		/* the first two inputs both broadcast along the innermost axis */
		{
			/* each row's minimum is p0's in some rows, p1's in others */
			lr_tensor *p0 = lrt_f(2, D(3, 1), F(0.5f, -0.5f, 0.2f));
			lr_tensor *p1 = lrt_f(2, D(3, 1), F(-0.1f, 0.3f, 0.4f));
			lr_tensor *p2 = rand_t(1, D(4), 2, 3); /* never the minimum */

			for (int e = 0; e < 12; e++)
				ref[e] = fmin(fd(p0)[e / 4], fmin(fd(p1)[e / 4], fd(p2)[e % 4]));
			lrt_init(&n, "Min", 13);
			lrt_input(&n, p0);
			lrt_input(&n, p1);
			lrt_input(&n, p2);
			rc = run1(&n, &y, &msg);
			check(y, 2, D(3, 4), ref, 0, 0, "Min of [3,1], [3,1], [4]", rc, &msg);
			lr_tensor_free(y);
			lr_tensor_free(p0);
			lr_tensor_free(p1);
			lr_tensor_free(p2);
		}
		/* one input: a copy */
		lrt_init(&n, "Sum", 8);
		lrt_input(&n, in[0]);
		rc = run1(&n, &y, &msg);
		for (int e = 0; e < 8; e++)
			ref[e] = fd(in[0])[e];
		check(y, 3, D(2, 1, 4), ref, 0, 0, "Sum of one input", rc, &msg);
		lr_tensor_free(y);
		/* shapes that do not broadcast */
		lrt_init(&n, "Max", 13);
		lrt_input(&n, in[0]);
		lrt_input(&n, in[1]);
		lrt_input(&n, in[0]);
		lrt_input(&n, rand_t(1, D(5), 0, 1)); /* freed below through n.t */
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "Max of [..,4] and [5]", "input 3", "[5]");
		lr_tensor_free(n.t[3]);
		for (int i = 0; i < 3; i++)
			lr_tensor_free(in[i]);
	}
	/* NaN propagates through Max and Min; int64 Max */
	{
		lr_tensor *a = lrt_f(1, D(3), F(NAN, 1, 2)), *b = lrt_f(1, D(3), F(0, NAN, 1));
		lr_tensor *ia = lrt_i(1, D(2), D(-5, INT64_MAX)), *ib = lrt_i(1, D(1), D(3));

		lrt_init(&n, "Max", 13);
		lrt_input(&n, a);
		lrt_input(&n, b);
		rc = run1(&n, &y, &msg);
		check(y, 1, D(3), (const double[]){ NAN, NAN, 2 }, 0, 0, "Max propagates NaN", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Min", 13);
		lrt_input(&n, a);
		lrt_input(&n, b);
		rc = run1(&n, &y, &msg);
		check(y, 1, D(3), (const double[]){ NAN, NAN, 1 }, 0, 0, "Min propagates NaN", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Max", 13);
		lrt_input(&n, ia);
		lrt_input(&n, ib);
		rc = run1(&n, &y, &msg);
		check_i(y, 1, D(2), D(3, INT64_MAX), "int64 Max broadcasts", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Max", 13);
		lrt_input(&n, a);
		lrt_input(&n, ib);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "Max of float and int64", "input 1", "int64");
		lr_tensor_free(a);
		lr_tensor_free(b);
		lr_tensor_free(ia);
		lr_tensor_free(ib);
	}
}

/* ---- reductions --------------------------------------------------------- */

enum rk { K_SUM, K_MAX, K_MIN, K_PROD, K_L1, K_L2, K_LOGSUM, K_LSE, K_SUMSQ };

/*
 * Reference reduction of x over the axes flagged in red: for each output
 * element, visits every input element and keeps those whose kept
 * coordinates match.
 */
static void ref_reduce(const lr_tensor *x, const int *red, enum rk k, double *ref,
		       int64_t nout)
{
	int nd = x->ndim;

	for (int64_t o = 0; o < nout; o++) {
		double acc = k == K_MAX ? -INFINITY : k == K_MIN ? INFINITY : k == K_PROD ? 1 : 0;
		double mx = -INFINITY;
		int64_t kd[8], ko[8], nk = 0;

		for (int a = 0; a < nd; a++)
			if (!red[a])
				kd[nk++] = x->dims[a];
		unflat((int)nk, kd, o, ko);
		for (int pass = 0; pass < (k == K_LSE ? 2 : 1); pass++)
			for (int64_t e = 0; e < x->nelem; e++) {
				int64_t xi[8] = { 0 };
				int match = 1, m = 0;
				double v = fd(x)[e];

				unflat(nd, x->dims, e, xi);
				for (int a = 0; a < nd; a++)
					if (!red[a] && xi[a] != ko[m++])
						match = 0;
				if (!match)
					continue;
				if (k == K_LSE && pass == 0) {
					mx = fmax(mx, v);
					continue;
				}
				switch (k) {
				case K_SUM: case K_LOGSUM: acc += v; break;
				case K_MAX: acc = fmax(acc, v); break;
				case K_MIN: acc = fmin(acc, v); break;
				case K_PROD: acc *= v; break;
				case K_L1: acc += fabs(v); break;
				case K_L2: case K_SUMSQ: acc += v * v; break;
				case K_LSE: acc += exp(v - mx); break;
				}
			}
		ref[o] = k == K_L2 ? sqrt(acc) : k == K_LOGSUM ? log(acc) :
			 k == K_LSE ? mx + log(acc) : acc;
	}
}

static void test_reduce(void)
{
	static const struct {
		const char *op;
		enum rk k;
		int64_t switch_opset; /* axes become an input */
	} ops[] = {
		{ "ReduceSum", K_SUM, 13 }, { "ReduceMax", K_MAX, 18 },
		{ "ReduceMin", K_MIN, 18 }, { "ReduceProd", K_PROD, 18 },
		{ "ReduceL1", K_L1, 18 }, { "ReduceL2", K_L2, 18 },
		{ "ReduceLogSum", K_LOGSUM, 18 }, { "ReduceLogSumExp", K_LSE, 18 },
		{ "ReduceSumSquare", K_SUMSQ, 18 },
	};
	static const struct {
		int n;
		int64_t axes[3];
	} sets[] = { { 1, { 1 } }, { 2, { 0, -1 } }, { 0, { 0 } } };
	lr_tensor *x = rand_t(3, D(3, 4, 5), 0.5, 1.5), *y = NULL;
	lr_msg msg;
	lrt_node n;
	int rc;

	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
		for (size_t s = 0; s < 3; s++)
			for (int keep = 0; keep < 2; keep++)
				for (int as_input = 0; as_input < 2; as_input++) {
					int red[3] = { 0, 0, 0 }, ond = 0;
					int64_t od[3], nout = 1;
					lr_tensor *ax = NULL;
					double ref[60];
					char what[120];

					for (int i = 0; i < sets[s].n; i++)
						red[(sets[s].axes[i] + 3) % 3] = 1;
					if (sets[s].n == 0)
						red[0] = red[1] = red[2] = 1;
					for (int a = 0; a < 3; a++) {
						if (!red[a])
							nout *= x->dims[a];
						if (!red[a] || keep)
							od[ond++] = red[a] ? 1 : x->dims[a];
					}
					ref_reduce(x, red, ops[k].k, ref, nout);
					lrt_init(&n, ops[k].op, as_input ? ops[k].switch_opset : 11);
					if (!keep)
						lrt_attr_int(&n, "keepdims", 0);
					lrt_input(&n, x);
					if (sets[s].n > 0) {
						if (as_input) {
							ax = lrt_i(1, D(sets[s].n), sets[s].axes);
							lrt_const(&n, ax);
						} else {
							lrt_attr_ints(&n, "axes", sets[s].n, sets[s].axes);
						}
					}
					rc = run1(&n, &y, &msg);
					snprintf(what, sizeof(what), "%s-%lld over %d axes%s, keepdims=%d",
						 ops[k].op, (long long)n.opset, sets[s].n,
						 sets[s].n && as_input ? " (input)" : "", keep);
					check(y, ond, od, ref, 1e-6, 1e-5, what, rc, &msg);
					lr_tensor_free(y);
					lr_tensor_free(ax);
				}
	/* noop_with_empty_axes: identity */
	lrt_init(&n, "ReduceMax", 18);
	lrt_attr_int(&n, "noop_with_empty_axes", 1);
	lrt_input(&n, x);
	rc = run1(&n, &y, &msg);
	{
		double ref[60];

		for (int i = 0; i < 60; i++)
			ref[i] = fd(x)[i];
		check(y, 3, D(3, 4, 5), ref, 0, 0, "ReduceMax-18 noop_with_empty_axes=1 is identity", rc, &msg);
	}
	lr_tensor_free(y);
	/* LogSumExp of large values does not overflow */
	{
		lr_tensor *big = lrt_f(1, D(3), F(1000, 1000, 999));

		lrt_init(&n, "ReduceLogSumExp", 13);
		lrt_attr_int(&n, "keepdims", 0);
		lrt_input(&n, big);
		rc = run1(&n, &y, &msg);
		check(y, 0, NULL, (const double[]){ 1000 + log(2 + exp(-1.0)) }, 1e-4, 1e-6,
		      "ReduceLogSumExp of 1000s is finite", rc, &msg);
		lr_tensor_free(y);
		lr_tensor_free(big);
	}
	/* reductions over zero elements give the identity */
	{
		lr_tensor *e = lrt_f(3, D(2, 0, 3), NULL);
		static const char *const eops[4] = { "ReduceSum", "ReduceProd", "ReduceMax", "ReduceLogSumExp" };
		const double want[4] = { 0, 1, -INFINITY, -INFINITY };

		for (int k = 0; k < 4; k++) {
			double ref[6];
			char what[60];

			for (int i = 0; i < 6; i++)
				ref[i] = want[k];
			lrt_init(&n, eops[k], 13);
			if (k > 0)
				lrt_attr_ints(&n, "axes", 1, D(1));
			lrt_input(&n, e);
			if (k == 0)
				lrt_const(&n, lrt_i(1, D(1), D(1)));
			rc = run1(&n, &y, &msg);
			snprintf(what, sizeof(what), "%s over an empty axis", eops[k]);
			check(y, 3, D(2, 1, 3), ref, 0, 0, what, rc, &msg);
			if (k == 0)
				lr_tensor_free(n.t[1]);
			lr_tensor_free(y);
		}
		lr_tensor_free(e);
	}
	/* int64 */
	{
		lr_tensor *xi = lrt_i(2, D(2, 3), D(1, -2, 3, 4, 5, -6));
		static const char *const iops[3] = { "ReduceSum", "ReduceProd", "ReduceMin" };
		const int64_t want[3][2] = { { 2, 3 }, { -6, -120 }, { -2, -6 } };

		for (int k = 0; k < 3; k++) {
			char what[40];

			lrt_init(&n, iops[k], 11);
			lrt_attr_ints(&n, "axes", 1, D(1));
			lrt_attr_int(&n, "keepdims", 0);
			lrt_input(&n, xi);
			rc = run1(&n, &y, &msg);
			snprintf(what, sizeof(what), "int64 %s", iops[k]);
			check_i(y, 1, D(2), want[k], what, rc, &msg);
			lr_tensor_free(y);
		}
		lr_tensor_free(xi);
	}
	/* errors */
	{
		lr_tensor *ax = lrt_i(1, D(1), D(1));

		lrt_init(&n, "ReduceL2", 13);
		lrt_input(&n, x);
		lrt_const(&n, ax);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "ReduceL2-13 with an axes input", "attribute", NULL);
		lrt_init(&n, "ReduceL2", 18);
		lrt_attr_ints(&n, "axes", 1, D(1));
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "ReduceL2-18 with an axes attribute", "input 1", NULL);
		lrt_init(&n, "ReduceSum", 11);
		lrt_attr_ints(&n, "axes", 2, D(1, -2));
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "ReduceSum with a repeated axis", "twice", NULL);
		lrt_init(&n, "ReduceMin", 11);
		lrt_attr_ints(&n, "axes", 1, D(3));
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "ReduceMin axis 3 of rank 3", "axis 3", NULL);
		lr_tensor_free(ax);
	}
	lr_tensor_free(x);

	/* ArgMax / ArgMin with ties, select_last_index */
	{
		lr_tensor *a = lrt_f(2, D(2, 4), F(1, 3, 3, 0, 2, 2, 0, 0));
		const struct {
			const char *op;
			int64_t opset, axis;
			int keep, last;
			int nd;
			int64_t dims[2];
			int64_t want[4];
		} c[] = {
			{ "ArgMax", 11, 1, 0, 0, 1, { 2 }, { 1, 0 } },
			{ "ArgMax", 12, 1, 1, 1, 2, { 2, 1 }, { 2, 1 } },
			{ "ArgMin", 13, -1, 0, 1, 1, { 2 }, { 3, 3 } },
			{ "ArgMin", 13, 1, 0, 0, 1, { 2 }, { 3, 2 } },
			{ "ArgMax", 13, 0, 1, 0, 2, { 1, 4 }, { 1, 0, 0, 0 } },
		};

		for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
			char what[80];

			lrt_init(&n, c[k].op, c[k].opset);
			lrt_attr_int(&n, "axis", c[k].axis);
			lrt_attr_int(&n, "keepdims", c[k].keep);
			if (c[k].last)
				lrt_attr_int(&n, "select_last_index", 1);
			lrt_input(&n, a);
			rc = run1(&n, &y, &msg);
			snprintf(what, sizeof(what), "%s-%lld axis %lld keepdims=%d select_last_index=%d",
				 c[k].op, (long long)c[k].opset, (long long)c[k].axis, c[k].keep, c[k].last);
			check_i(y, c[k].nd, c[k].dims, c[k].want, what, rc, &msg);
			lr_tensor_free(y);
		}
		lrt_init(&n, "ArgMax", 13);
		lrt_attr_int(&n, "axis", 2);
		lrt_input(&n, a);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "ArgMax axis 2 of rank 2", "axis 2", NULL);
		lr_tensor_free(a);
	}
}

/* ---- generators and rearrangements --------------------------------------- */

/* A TfIdfVectorizer node over the pool 2 3 | 5 6 7 8: 1- and 2-grams. */
static void tfidf_node(lrt_node *n, const char *mode, int64_t skips, const int64_t *counts)
{
	lrt_init(n, "TfIdfVectorizer", 9);
	lrt_attr_str(n, "mode", mode);
	lrt_attr_int(n, "min_gram_length", 1);
	lrt_attr_int(n, "max_gram_length", 2);
	lrt_attr_int(n, "max_skip_count", skips);
	lrt_attr_ints(n, "pool_int64s", 6, D(2, 3, 5, 6, 7, 8));
	lrt_attr_ints(n, "ngram_counts", 2, counts);
}

static void test_gen(void)
{
	lr_tensor *y = NULL;
	lr_msg msg;
	lrt_node n;
	int rc;

	/* Expand [3,1] to [2,1,4] -> [2,3,4]; Tile [2,3] by [2,2] */
	{
		lr_tensor *x = rand_t(2, D(3, 1), -1, 1), *sh = lrt_i(1, D(3), D(2, 1, 4));
		lr_tensor *t = rand_t(2, D(2, 3), -1, 1), *rep = lrt_i(1, D(2), D(2, 2));
		lr_tensor *ti = lrt_i(1, D(2), D(5, 6)), *rep1 = lrt_i(1, D(1), D(3));
		lr_tensor *bad = lrt_i(1, D(2), D(2, 5));
		double ref[24];
		int64_t o[3];

		for (int e = 0; e < 24; e++) {
			unflat(3, D(2, 3, 4), e, o);
			ref[e] = bval(x, 3, o);
		}
		lrt_init(&n, "Expand", 13);
		lrt_input(&n, x);
		lrt_const(&n, sh);
		rc = run1(&n, &y, &msg);
		check(y, 3, D(2, 3, 4), ref, 0, 0, "Expand [3,1] by [2,1,4]", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Expand", 8);
		lrt_input(&n, x);
		lrt_const(&n, bad);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "Expand [3,1] by [2,5]", "[3,1]", "[2,5]");
		for (int e = 0; e < 24; e++) {
			unflat(2, D(4, 6), e, o);
			ref[e] = fd(t)[(o[0] % 2) * 3 + o[1] % 3];
		}
		lrt_init(&n, "Tile", 13);
		lrt_input(&n, t);
		lrt_const(&n, rep);
		rc = run1(&n, &y, &msg);
		check(y, 2, D(4, 6), ref, 0, 0, "Tile [2,3] by [2,2]", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Tile", 6);
		lrt_input(&n, ti);
		lrt_const(&n, rep1);
		rc = run1(&n, &y, &msg);
		check_i(y, 1, D(6), D(5, 6, 5, 6, 5, 6), "int64 Tile", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Tile", 13);
		lrt_input(&n, t);
		lrt_const(&n, rep1);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "Tile with 1 repeat for rank 2", "input 1 (repeats)", NULL);
		lr_tensor_free(x);
		lr_tensor_free(sh);
		lr_tensor_free(t);
		lr_tensor_free(rep);
		lr_tensor_free(ti);
		lr_tensor_free(rep1);
		lr_tensor_free(bad);
	}
	/* ConstantOfShape, Range, Size, EyeLike */
	{
		lr_tensor *sh = lrt_i(1, D(2), D(2, 3)), *v = lrt_i(1, D(1), D(7));
		lr_tensor *huge = lrt_i(1, D(2), D(65536, 65536)), *empty = lrt_i(1, D(0), NULL);
		double zeros[6] = { 0 };

		lrt_init(&n, "ConstantOfShape", 9);
		lrt_input(&n, sh);
		rc = run1(&n, &y, &msg);
		check(y, 2, D(2, 3), zeros, 0, 0, "ConstantOfShape default float 0", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "ConstantOfShape", 9);
		lrt_attr_tensor(&n, "value", v);
		lrt_input(&n, sh);
		rc = run1(&n, &y, &msg);
		check_i(y, 2, D(2, 3), D(7, 7, 7, 7, 7, 7), "ConstantOfShape int64 7", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "ConstantOfShape", 9);
		lrt_attr_tensor(&n, "value", v);
		lrt_const(&n, empty);
		rc = run1(&n, &y, &msg);
		check_i(y, 0, NULL, D(7), "ConstantOfShape of [] is a scalar", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "ConstantOfShape", 9);
		lrt_const(&n, huge);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_ELIMIT, &msg, "ConstantOfShape [65536,65536]", "limit", NULL);
		lr_tensor_free(sh);
		lr_tensor_free(v);
		lr_tensor_free(huge);
		lr_tensor_free(empty);
	}
	{
		lr_tensor *s = lrt_f(0, NULL, F(1)), *l = lrt_f(0, NULL, F(5)), *d = lrt_f(0, NULL, F(1.5f));
		lr_tensor *si = lrt_i(0, NULL, D(10)), *li = lrt_i(0, NULL, D(4)), *di = lrt_i(0, NULL, D(-3));
		lr_tensor *d0 = lrt_i(0, NULL, D(0)), *x = rand_t(3, D(2, 3, 4), 0, 1);

		lrt_init(&n, "Range", 11);
		lrt_const(&n, s);
		lrt_const(&n, l);
		lrt_const(&n, d);
		rc = run1(&n, &y, &msg);
		check(y, 1, D(3), (const double[]){ 1, 2.5, 4 }, 0, 0, "Range float 1..5 by 1.5", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Range", 11);
		lrt_const(&n, si);
		lrt_const(&n, li);
		lrt_const(&n, di);
		rc = run1(&n, &y, &msg);
		check_i(y, 1, D(2), D(10, 7), "Range int64 10..4 by -3", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "Range", 11);
		lrt_const(&n, si);
		lrt_const(&n, li);
		lrt_const(&n, d0);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "Range with delta 0", "delta", NULL);
		lrt_init(&n, "Size", 13);
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		check_i(y, 0, NULL, D(24), "Size", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "EyeLike", 9);
		lrt_attr_int(&n, "k", 1);
		lrt_attr_int(&n, "dtype", 7);
		lrt_input(&n, rand_t(2, D(3, 4), 0, 1));
		rc = run1(&n, &y, &msg);
		check_i(y, 2, D(3, 4), D(0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1), "EyeLike k=1 as int64", rc, &msg);
		lr_tensor_free(n.t[0]);
		lr_tensor_free(y);
		lr_tensor_free(s);
		lr_tensor_free(l);
		lr_tensor_free(d);
		lr_tensor_free(si);
		lr_tensor_free(li);
		lr_tensor_free(di);
		lr_tensor_free(d0);
		lr_tensor_free(x);
	}
	/* Trilu */
	{
		lr_tensor *x = rand_t(3, D(2, 3, 4), -1, 1);
		const int64_t ks[4] = { 0, -1, 2, 10 };

		for (int up = 0; up < 2; up++)
			for (int k = 0; k < 4; k++) {
				lr_tensor *kt = lrt_i(0, NULL, &ks[k]);
				double ref[24];
				char what[60];
				int64_t o[3];

				for (int e = 0; e < 24; e++) {
					int64_t dlt;

					unflat(3, D(2, 3, 4), e, o);
					dlt = o[2] - o[1];
					ref[e] = (up ? dlt >= ks[k] : dlt <= ks[k]) ? fd(x)[e] : 0;
				}
				lrt_init(&n, "Trilu", 14);
				if (!up)
					lrt_attr_int(&n, "upper", 0);
				lrt_input(&n, x);
				if (k > 0)
					lrt_const(&n, kt);
				rc = run1(&n, &y, &msg);
				snprintf(what, sizeof(what), "Trilu upper=%d k=%lld", up, (long long)ks[k]);
				check(y, 3, D(2, 3, 4), ref, 0, 0, what, rc, &msg);
				lr_tensor_free(y);
				lr_tensor_free(kt);
			}
		lrt_init(&n, "Trilu", 14);
		lrt_input(&n, rand_t(1, D(4), 0, 1));
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "Trilu of a vector", "input 0", "rank >= 2");
		lr_tensor_free(n.t[0]);
		lr_tensor_free(x);
	}
	/* DepthToSpace (DCR, CRD) and SpaceToDepth, against the reshape-transpose
	 * definitions of the ONNX documentation written as index maps */
	{
		const int64_t b = 2, N = 2, C = 8, H = 2, W = 3, Cp = C / (b * b);
		lr_tensor *x = rand_t(4, D(N, C, H, W), -1, 1), *back[1] = { NULL };
		double ref[96];

		for (int crd = 0; crd < 2; crd++) {
			for (int64_t e = 0; e < 96; e++) {
				int64_t o[4], i, j, c;

				unflat(4, D(N, Cp, H * b, W * b), e, o);
				i = o[2] % b;
				j = o[3] % b;
				c = crd ? o[1] * b * b + i * b + j : (i * b + j) * Cp + o[1];
				ref[e] = fd(x)[flat(4, D(N, C, H, W), D(o[0], c, o[2] / b, o[3] / b))];
			}
			lrt_init(&n, "DepthToSpace", 13);
			lrt_attr_int(&n, "blocksize", b);
			if (crd)
				lrt_attr_str(&n, "mode", "CRD");
			lrt_input(&n, x);
			rc = run1(&n, &y, &msg);
			check(y, 4, D(N, Cp, H * b, W * b), ref, 0, 0,
			      crd ? "DepthToSpace CRD" : "DepthToSpace DCR", rc, &msg);
			if (!crd && y != NULL) {
				double r2[96];

				for (int e = 0; e < 96; e++)
					r2[e] = fd(x)[e];
				lrt_init(&n, "SpaceToDepth", 13);
				lrt_attr_int(&n, "blocksize", b);
				lrt_input(&n, y);
				rc = run1(&n, back, &msg);
				check(back[0], 4, D(N, C, H, W), r2, 0, 0,
				      "SpaceToDepth inverts DepthToSpace DCR", rc, &msg);
				lr_tensor_free(back[0]);
			}
			lr_tensor_free(y);
		}
		lrt_init(&n, "DepthToSpace", 13);
		lrt_attr_int(&n, "blocksize", 3);
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "DepthToSpace 8 channels by 3x3", "blocksize^2", NULL);
		lr_tensor_free(x);
	}
	/* CumSum */
	{
		lr_tensor *x = rand_t(3, D(2, 3, 4), -1, 1), *ax = lrt_i(0, NULL, D(1));
		lr_tensor *xi = lrt_i(1, D(4), D(1, 2, 3, 4)), *a0 = lrt_i(1, D(1), D(0));

		for (int ex = 0; ex < 2; ex++)
			for (int rv = 0; rv < 2; rv++) {
				double ref[24];
				char what[60];
				int64_t o[3];

				for (int e = 0; e < 24; e++) {
					double s = 0;

					unflat(3, D(2, 3, 4), e, o);
					for (int64_t k = 0; k < 3; k++) {
						int in = rv ? (ex ? k > o[1] : k >= o[1]) : (ex ? k < o[1] : k <= o[1]);

						if (in)
							s += fd(x)[flat(3, D(2, 3, 4), D(o[0], k, o[2]))];
					}
					ref[e] = s;
				}
				lrt_init(&n, "CumSum", 14);
				lrt_attr_int(&n, "exclusive", ex);
				lrt_attr_int(&n, "reverse", rv);
				lrt_input(&n, x);
				lrt_const(&n, ax);
				rc = run1(&n, &y, &msg);
				snprintf(what, sizeof(what), "CumSum axis 1 exclusive=%d reverse=%d", ex, rv);
				check(y, 3, D(2, 3, 4), ref, 1e-6, 1e-6, what, rc, &msg);
				lr_tensor_free(y);
			}
		lrt_init(&n, "CumSum", 11);
		lrt_input(&n, xi);
		lrt_const(&n, a0);
		rc = run1(&n, &y, &msg);
		check_i(y, 1, D(4), D(1, 3, 6, 10), "int64 CumSum", rc, &msg);
		lr_tensor_free(y);
		lr_tensor_free(x);
		lr_tensor_free(ax);
		lr_tensor_free(xi);
		lr_tensor_free(a0);
	}
	/* GatherElements, OneHot */
	{
		lr_tensor *x = lrt_f(2, D(3, 3), F(1, 2, 3, 4, 5, 6, 7, 8, 9));
		lr_tensor *ix = lrt_i(2, D(2, 3), D(-1, -2, 0, 2, 0, 0));
		lr_tensor *bad = lrt_i(2, D(1, 1), D(3));
		lr_tensor *oi = lrt_i(1, D(3), D(1, -1, 5)), *dep = lrt_i(0, NULL, D(3));
		lr_tensor *val = lrt_f(1, D(2), F(-1, 9));

		lrt_init(&n, "GatherElements", 13);
		lrt_input(&n, x);
		lrt_input(&n, ix);
		rc = run1(&n, &y, &msg);
		/* axis 0: out[i][j] = x[ix[i][j]][j] */
		check(y, 2, D(2, 3), (const double[]){ 7, 5, 3, 7, 2, 3 }, 0, 0,
		      "GatherElements axis 0 with negative indices", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "GatherElements", 13);
		lrt_attr_int(&n, "axis", 1);
		lrt_input(&n, x);
		lrt_input(&n, bad);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "GatherElements index 3 of 3", "input 1 (indices)", "out of range");
		lrt_init(&n, "OneHot", 11);
		lrt_attr_int(&n, "axis", 0);
		lrt_input(&n, oi);
		lrt_const(&n, dep);
		lrt_const(&n, val);
		rc = run1(&n, &y, &msg);
		/* depth along axis 0: [3 depth][3 indices]; 1 -> row 1, -1 -> row 2, 5 -> none */
		check(y, 2, D(3, 3), (const double[]){ -1, -1, -1, 9, -1, -1, -1, 9, -1 }, 0, 0,
		      "OneHot axis 0 with a negative and an out-of-range index", rc, &msg);
		lr_tensor_free(y);
		lr_tensor_free(x);
		lr_tensor_free(ix);
		lr_tensor_free(bad);
		lr_tensor_free(oi);
		lr_tensor_free(dep);
		lr_tensor_free(val);
	}
	/*
	 * TfIdfVectorizer: pool 1-grams {2, 3} and 2-grams {(5,6), (7,8)},
	 * written to columns 3, 0, 1, 2 with weights 0.5, 2, 3, 4; 1- and
	 * 2-grams, skips 0 and 1. Counted by hand: row 0 (2 5 6 3 7 8) has
	 * 2, 3, (5,6) and (7,8) once; row 1 (5 2 6 7 8 2) has 2 twice, (7,8)
	 * at skip 0 and (5,6) at skip 1 (5 _ 6).
	 */
	{
		static const char *const modes[3] = { "TF", "IDF", "TFIDF" };
		static const double want[3][8] = {
			{ 1, 1, 1, 1, 0, 1, 1, 2 },
			{ 2, 3, 4, 0.5, 0, 3, 4, 0.5 },
			{ 2, 3, 4, 0.5, 0, 3, 4, 1 },
		};
		lr_tensor *x = lrt_i(2, D(2, 6), D(2, 5, 6, 3, 7, 8, 5, 2, 6, 7, 8, 2));
		char what[64];

		for (int k = 0; k < 4; k++) {
			tfidf_node(&n, k < 3 ? modes[k] : "BM25", 1, D(0, 2));
			lrt_attr_ints(&n, "ngram_indexes", 4, D(3, 0, 1, 2));
			lrt_attr_floats(&n, "weights", 4, F(0.5, 2, 3, 4));
			lrt_input(&n, x);
			rc = run1(&n, &y, &msg);
			snprintf(what, sizeof(what), "TfIdfVectorizer %s, 1- and 2-grams, skips 0-1",
				 k < 3 ? modes[k] : "BM25");
			if (k < 3)
				check(y, 2, D(2, 4), want[k], 0, 0, what, rc, &msg);
			else
				check_err(rc, LR_EMODEL, &msg, what, "attribute mode", "BM25");
			lr_tensor_free(y);
		}
		tfidf_node(&n, "TF", 0, D(0, 3));
		lrt_attr_ints(&n, "ngram_indexes", 4, D(0, 1, 2, 3));
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "TfIdfVectorizer 2-grams from an odd count of items",
			  "ngram_counts[1] = 3", "2-grams");
		lrt_init(&n, "TfIdfVectorizer", 9);
		lrt_attr_str(&n, "mode", "TF");
		lrt_attr_int(&n, "min_gram_length", 1);
		lrt_attr_int(&n, "max_gram_length", 1);
		lrt_attr_int(&n, "max_skip_count", 0);
		lrt_attr_str(&n, "pool_strings", "a");
		lrt_attr_ints(&n, "ngram_counts", 1, D(0));
		lrt_attr_ints(&n, "ngram_indexes", 1, D(0));
		lrt_input(&n, x);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EUNSUPPORTED, &msg, "TfIdfVectorizer with pool_strings",
			  "pool_strings", "string");
		lr_tensor_free(x);
	}
}

/* ---- normalisations ----------------------------------------------------- */

/* Mean and population variance of n values at p[0], p[s], p[2s], ... */
static void stats(const float *p, int64_t n, int64_t s, double *mean, double *var)
{
	double m = 0, v = 0;

	for (int64_t i = 0; i < n; i++)
		m += p[i * s];
	m /= (double)n;
	for (int64_t i = 0; i < n; i++)
		v += (p[i * s] - m) * (p[i * s] - m);
	*mean = m;
	*var = v / (double)n;
}

static void test_norm(void)
{
	lr_tensor *x = rand_t(4, D(2, 3, 4, 5), -2, 3), *y[3] = { NULL, NULL, NULL };
	lr_tensor *sc = rand_t(1, D(3), 0.5, 2), *bi = rand_t(1, D(3), -1, 1);
	double *ref = dalloc(120);
	lr_msg msg;
	lrt_node n;
	int rc;

	/* InstanceNormalization */
	for (int64_t g = 0; g < 6; g++) {
		double m, v;

		stats(fd(x) + g * 20, 20, 1, &m, &v);
		for (int i = 0; i < 20; i++)
			ref[g * 20 + i] = (fd(x)[g * 20 + i] - m) / sqrt(v + 1e-3) * fd(sc)[g % 3] +
					  fd(bi)[g % 3];
	}
	lrt_init(&n, "InstanceNormalization", 6);
	lrt_attr_float(&n, "epsilon", 1e-3f);
	lrt_input(&n, x);
	lrt_const(&n, sc);
	lrt_const(&n, bi);
	rc = run1(&n, y, &msg);
	check(y[0], 4, D(2, 3, 4, 5), ref, 1e-5, 1e-5, "InstanceNormalization epsilon=1e-3", rc, &msg);
	lr_tensor_free(y[0]);
	lrt_init(&n, "InstanceNormalization", 6);
	lrt_input(&n, x);
	lrt_const(&n, bi);
	lrt_const(&n, rand_t(1, D(4), 0, 1));
	rc = run1(&n, y, &msg);
	check_err(rc, LR_ESHAPE, &msg, "InstanceNormalization with B of 4 for 3 channels", "input 2 (B)", "[4]");
	lr_tensor_free(n.t[2]);

	/* LayerNormalization over axes 1.. with Mean and InvStdDev */
	{
		lr_tensor *ls = rand_t(3, D(3, 4, 5), 0.5, 2), *lb = rand_t(3, D(3, 4, 5), -1, 1);
		double mref[2], iref[2];

		for (int64_t g = 0; g < 2; g++) {
			double m, v;

			stats(fd(x) + g * 60, 60, 1, &m, &v);
			mref[g] = m;
			iref[g] = 1 / sqrt(v + 1e-5);
			for (int i = 0; i < 60; i++)
				ref[g * 60 + i] = (fd(x)[g * 60 + i] - m) * iref[g] * fd(ls)[i] + fd(lb)[i];
		}
		lrt_init(&n, "LayerNormalization", 17);
		lrt_attr_int(&n, "axis", 1);
		lrt_input(&n, x);
		lrt_const(&n, ls);
		lrt_const(&n, lb);
		rc = run_n(&n, 3, y, &msg);
		check(y[0], 4, D(2, 3, 4, 5), ref, 1e-5, 1e-5, "LayerNormalization axis 1", rc, &msg);
		check(y[1], 4, D(2, 1, 1, 1), mref, 1e-6, 1e-6, "LayerNormalization Mean output", rc, &msg);
		check(y[2], 4, D(2, 1, 1, 1), iref, 1e-6, 1e-6, "LayerNormalization InvStdDev output", rc, &msg);
		for (int i = 0; i < 3; i++)
			lr_tensor_free(y[i]);
		/* axis -1 without B */
		for (int64_t g = 0; g < 24; g++) {
			double m, v;

			stats(fd(x) + g * 5, 5, 1, &m, &v);
			for (int i = 0; i < 5; i++)
				ref[g * 5 + i] = (fd(x)[g * 5 + i] - m) / sqrt(v + 1e-5) * fd(ls)[i];
		}
		lrt_init(&n, "LayerNormalization", 17);
		lrt_input(&n, x);
		lrt_const(&n, rand_t(1, D(5), 0, 0));
		memcpy(n.t[1]->data, ls->data, 5 * sizeof(float));
		rc = run1(&n, y, &msg);
		check(y[0], 4, D(2, 3, 4, 5), ref, 1e-5, 1e-5, "LayerNormalization axis -1 without B", rc, &msg);
		lr_tensor_free(y[0]);
		lr_tensor_free(n.t[1]);
		lrt_init(&n, "LayerNormalization", 17);
		lrt_input(&n, x);
		lrt_const(&n, ls);
		rc = run1(&n, y, &msg);
		check_err(rc, LR_EUNSUPPORTED, &msg, "LayerNormalization Scale [3,4,5] at axis -1",
			  "input 1 (Scale)", "[3,4,5]");
		lr_tensor_free(ls);
		lr_tensor_free(lb);
	}
	/* MeanVarianceNormalization: default axes [0,2,3] and axes [1] */
	for (int k = 0; k < 2; k++) {
		for (int64_t e = 0; e < 120; e++) {
			int64_t o[4];
			double m = 0, v = 0, cnt = 0;

			unflat(4, x->dims, e, o);
			for (int64_t f = 0; f < 120; f++) {
				int64_t q[4];

				unflat(4, x->dims, f, q);
				if (k == 0 ? q[1] != o[1] : (q[0] != o[0] || q[2] != o[2] || q[3] != o[3]))
					continue;
				m += fd(x)[f];
				v += fd(x)[f] * (double)fd(x)[f];
				cnt++;
			}
			m /= cnt;
			v = v / cnt - m * m;
			ref[e] = (fd(x)[e] - m) / (sqrt(v) + 1e-9);
		}
		lrt_init(&n, "MeanVarianceNormalization", 13);
		if (k)
			lrt_attr_ints(&n, "axes", 1, D(1));
		lrt_input(&n, x);
		rc = run1(&n, y, &msg);
		check(y[0], 4, D(2, 3, 4, 5), ref, 1e-5, 1e-5,
		      k ? "MeanVarianceNormalization axes [1]" : "MeanVarianceNormalization default axes", rc, &msg);
		lr_tensor_free(y[0]);
	}
	/* LpNormalization p=1, p=2 along axis 1 */
	for (int p = 1; p <= 2; p++) {
		char what[60];

		for (int64_t e = 0; e < 120; e++) {
			int64_t o[4];
			double s = 0;

			unflat(4, x->dims, e, o);
			for (int64_t c = 0; c < 3; c++) {
				double v = fd(x)[flat(4, x->dims, D(o[0], c, o[2], o[3]))];

				s += p == 1 ? fabs(v) : v * v;
			}
			ref[e] = fd(x)[e] / (p == 1 ? s : sqrt(s));
		}
		lrt_init(&n, "LpNormalization", 1);
		lrt_attr_int(&n, "axis", 1);
		lrt_attr_int(&n, "p", p);
		lrt_input(&n, x);
		rc = run1(&n, y, &msg);
		snprintf(what, sizeof(what), "LpNormalization p=%d axis 1", p);
		check(y[0], 4, D(2, 3, 4, 5), ref, 1e-6, 1e-5, what, rc, &msg);
		lr_tensor_free(y[0]);
	}
	lrt_init(&n, "LpNormalization", 1);
	lrt_attr_int(&n, "p", 3);
	lrt_input(&n, x);
	rc = run1(&n, y, &msg);
	check_err(rc, LR_EMODEL, &msg, "LpNormalization p=3", "'p'", NULL);
	/* Hardmax: opset 11 flattens from axis 1, opset 13 works along axis 1 */
	for (int v13 = 0; v13 < 2; v13++) {
		int64_t best[120];

		for (int64_t e = 0; e < 120; e++)
			ref[e] = 0;
		if (!v13) {
			for (int64_t r = 0; r < 2; r++) {
				best[r] = 0;
				for (int64_t i = 1; i < 60; i++)
					if (fd(x)[r * 60 + i] > fd(x)[r * 60 + best[r]])
						best[r] = i;
				ref[r * 60 + best[r]] = 1;
			}
		} else {
			for (int64_t a = 0; a < 2; a++)
				for (int64_t i = 0; i < 20; i++) {
					int64_t bc = 0;

					for (int64_t c = 1; c < 3; c++)
						if (fd(x)[(a * 3 + c) * 20 + i] > fd(x)[(a * 3 + bc) * 20 + i])
							bc = c;
					ref[(a * 3 + bc) * 20 + i] = 1;
				}
		}
		lrt_init(&n, "Hardmax", v13 ? 13 : 11);
		if (v13)
			lrt_attr_int(&n, "axis", 1);
		lrt_input(&n, x);
		rc = run1(&n, y, &msg);
		check(y[0], 4, D(2, 3, 4, 5), ref, 0, 0,
		      v13 ? "Hardmax-13 along axis 1" : "Hardmax-11 coerced to 2-D at axis 1", rc, &msg);
		lr_tensor_free(y[0]);
	}
	free(ref);
	lr_tensor_free(x);
	lr_tensor_free(sc);
	lr_tensor_free(bi);
}

/* ---- ConvTranspose ------------------------------------------------------ */

/*
 * Reference transposed convolution by direct scatter: every input element
 * times every kernel element lands on out = in * s - pb + k * d.
 */
static void ref_convt(const lr_tensor *x, const lr_tensor *w, const lr_tensor *b,
		      int64_t group, const int64_t *s, const int64_t *d,
		      const int64_t *pb, const int64_t *od, double *ref)
{
	int nd = x->ndim, nsp = nd - 2;
	int64_t total = 1, cg = x->dims[1] / group, mg = w->dims[1];

	for (int a = 0; a < nd; a++)
		total *= od[a];
	for (int64_t e = 0; e < total; e++) {
		int64_t o[8];

		unflat(nd, od, e, o);
		ref[e] = b ? fd(b)[o[1]] : 0;
	}
	for (int64_t e = 0; e < x->nelem; e++) {
		int64_t xi[8] = { 0 };

		unflat(nd, x->dims, e, xi);
		for (int64_t f = 0; f < w->nelem; f++) {
			int64_t wi[8] = { 0 }, o[8];
			int inside = 1;

			unflat(nd, w->dims, f, wi);
			if (wi[0] != xi[1])
				continue;
			o[0] = xi[0];
			o[1] = (xi[1] / cg) * mg + wi[1];
			for (int a = 0; a < nsp; a++) {
				o[2 + a] = xi[2 + a] * s[a] - pb[a] + wi[2 + a] * d[a];
				if (o[2 + a] < 0 || o[2 + a] >= od[2 + a])
					inside = 0;
			}
			if (inside)
				ref[flat(nd, od, o)] += (double)fd(x)[e] * fd(w)[f];
		}
	}
}

static void test_convtranspose(void)
{
	lr_tensor *y = NULL;
	lr_msg msg;
	lrt_node n;
	int rc;

	/* 2-D: groups, strides, dilations, asymmetric pads, output_padding, bias */
	{
		lr_tensor *x = rand_t(4, D(2, 4, 5, 4), -1, 1), *w = rand_t(4, D(4, 3, 3, 2), -1, 1);
		lr_tensor *b = rand_t(1, D(6), -1, 1);
		/* H: 2*4 + 1 + 2*1+1 - 1 - 0 = 11; W: 3*3 + 0 + 1*2+1 - 0 - 1 = 11 */
		const int64_t od[4] = { 2, 6, 11, 11 };
		double *ref = dalloc(2 * 6 * 11 * 11);

		ref_convt(x, w, b, 2, D(2, 3), D(1, 2), D(1, 0), od, ref);
		lrt_init(&n, "ConvTranspose", 11);
		lrt_attr_int(&n, "group", 2);
		lrt_attr_ints(&n, "strides", 2, D(2, 3));
		lrt_attr_ints(&n, "dilations", 2, D(1, 2));
		lrt_attr_ints(&n, "pads", 4, D(1, 0, 0, 1));
		lrt_attr_ints(&n, "output_padding", 2, D(1, 0));
		lrt_input(&n, x);
		lrt_const(&n, w);
		lrt_const(&n, b);
		rc = run1(&n, &y, &msg);
		check(y, 4, od, ref, 1e-5, 1e-5, "ConvTranspose 2-D group 2, strides, dilations, pads, output_padding",
		      rc, &msg);
		lr_tensor_free(y);
		free(ref);
		/* output_shape beyond the natural size: the ONNX reference extends the end */
		lrt_init(&n, "ConvTranspose", 11);
		lrt_attr_int(&n, "group", 2);
		lrt_attr_ints(&n, "strides", 2, D(2, 2));
		lrt_attr_ints(&n, "output_shape", 2, D(12, 10));
		lrt_input(&n, x);
		lrt_const(&n, w);
		rc = run1(&n, &y, &msg);
		/* natural: H 2*4+3 = 11, W 2*3+2 = 8: total -1 and -2 */
		{
			/* W: total -2 -> pads begin -1, end -1: shift by one */
			double *r2 = dalloc(2 * 6 * 12 * 10);

			ref_convt(x, w, NULL, 2, D(2, 2), D(1, 1), D(0, -1), D(2, 6, 12, 10), r2);
			check(y, 4, D(2, 6, 12, 10), r2, 1e-5, 1e-5, "ConvTranspose output_shape beyond the natural size",
			      rc, &msg);
			free(r2);
		}
		lr_tensor_free(y);
		lrt_init(&n, "ConvTranspose", 11);
		lrt_input(&n, x);
		lrt_const(&n, rand_t(4, D(3, 2, 2, 2), 0, 1));
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "ConvTranspose W of 3 channels for 4", "input 1 (W)", "[3,2,2,2]");
		lr_tensor_free(n.t[1]);
		lrt_init(&n, "ConvTranspose", 11);
		lrt_attr_ints(&n, "kernel_shape", 2, D(2, 2));
		lrt_input(&n, x);
		lrt_const(&n, w);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "ConvTranspose kernel_shape not W's", "kernel_shape", NULL);
		lrt_init(&n, "ConvTranspose", 11);
		lrt_attr_ints(&n, "pads", 4, D(9, 9, 9, 9));
		lrt_input(&n, x);
		lrt_const(&n, w);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "ConvTranspose pads larger than the output", "output extent", NULL);
		lr_tensor_free(x);
		lr_tensor_free(w);
		lr_tensor_free(b);
	}
	/* 1-D and 3-D, SAME_UPPER / SAME_LOWER */
	for (int k = 0; k < 3; k++) {
		int nd = k == 0 ? 3 : 5;
		lr_tensor *x = k == 0 ? rand_t(3, D(1, 2, 7), -1, 1) : rand_t(5, D(1, 2, 3, 4, 2), -1, 1);
		lr_tensor *w = k == 0 ? rand_t(3, D(2, 3, 4), -1, 1) : rand_t(5, D(2, 2, 2, 3, 2), -1, 1);
		int64_t od[5], pb[3];
		const int64_t s[3] = { 2, 2, 1 };
		double *ref;

		od[0] = 1;
		od[1] = w->dims[1];
		for (int a = 0; a < nd - 2; a++) {
			/* SAME: output = in * stride; total = full - out, split by floor */
			int64_t full = s[a] * (x->dims[2 + a] - 1) + w->dims[2 + a], total;

			od[2 + a] = x->dims[2 + a] * s[a];
			total = full - od[2 + a];
			pb[a] = k == 2 ? total / 2 : total - total / 2; /* totals are >= 0 here */
		}
		ref = dalloc(1000);
		ref_convt(x, w, NULL, 1, s, D(1, 1, 1), pb, od, ref);
		lrt_init(&n, "ConvTranspose", 1);
		lrt_attr_ints(&n, "strides", nd - 2, s);
		if (k > 0)
			lrt_attr_str(&n, "auto_pad", k == 2 ? "SAME_UPPER" : "SAME_LOWER");
		else
			lrt_attr_ints(&n, "output_shape", 1, D(14));
		lrt_input(&n, x);
		lrt_const(&n, w);
		rc = run1(&n, &y, &msg);
		check(y, nd, od, ref, 1e-5, 1e-5,
		      k == 0 ? "ConvTranspose 1-D with output_shape" :
		      k == 1 ? "ConvTranspose 3-D SAME_LOWER" : "ConvTranspose 3-D SAME_UPPER", rc, &msg);
		lr_tensor_free(y);
		free(ref);
		lr_tensor_free(x);
		lr_tensor_free(w);
	}
	/* more columns than one tile: 64 outputs x 9 taps x 4096 positions */
	{
		lr_tensor *x = rand_t(4, D(1, 2, 64, 64), -1, 1), *w = rand_t(4, D(2, 64, 3, 3), -1, 1);
		const int64_t od[4] = { 1, 64, 66, 66 };
		double *ref = dalloc(64 * 66 * 66);

		ref_convt(x, w, NULL, 1, D(1, 1), D(1, 1), D(0, 0), od, ref);
		lrt_init(&n, "ConvTranspose", 11);
		lrt_input(&n, x);
		lrt_const(&n, w);
		rc = run1(&n, &y, &msg);
		check(y, 4, od, ref, 1e-5, 1e-5, "ConvTranspose in several column tiles", rc, &msg);
		lr_tensor_free(y);
		free(ref);
		lr_tensor_free(x);
		lr_tensor_free(w);
	}
}

/* ---- losses ------------------------------------------------------------- */

static void test_loss(void)
{
	lr_tensor *x = rand_t(3, D(3, 4, 2), -3, 1), *w = rand_t(1, D(4), 0.5, 2);
	lr_tensor *t = lrt_i(2, D(3, 2), D(0, 3, 2, -1, 1, 3)), *y[2] = { NULL, NULL };
	lr_tensor *bad = lrt_i(2, D(3, 2), D(0, 4, 2, 1, 1, 3));
	static const char *const reds[3] = { "none", "sum", "mean" };
	lr_msg msg;
	lrt_node n;
	int rc;

	for (int sm = 0; sm < 2; sm++)
		for (int r = 0; r < 3; r++)
			for (int wt = 0; wt < 2; wt++) {
				double lp[24], ref[6], sum = 0, wsum = 0;
				char what[100];

				/* log-probabilities: the input itself, or log_softmax over C */
				for (int64_t i = 0; i < 3; i++)
					for (int64_t d = 0; d < 2; d++) {
						double z = 0;

						for (int64_t k = 0; k < 4; k++)
							z += exp(fd(x)[(i * 4 + k) * 2 + d]);
						for (int64_t k = 0; k < 4; k++) {
							double v = fd(x)[(i * 4 + k) * 2 + d];

							lp[(i * 4 + k) * 2 + d] = sm ? v - log(z) : v;
						}
					}
				for (int64_t e = 0; e < 6; e++) {
					int64_t cl = id(t)[e], i = e / 2, d = e % 2;
					double wv = cl == -1 ? 0 : wt ? fd(w)[cl] : 1;

					ref[e] = cl == -1 ? 0 : -lp[(i * 4 + cl) * 2 + d] * wv;
					sum += ref[e];
					wsum += wv;
				}
				lrt_init(&n, sm ? "SoftmaxCrossEntropyLoss" : "NegativeLogLikelihoodLoss", 13);
				lrt_attr_str(&n, "reduction", reds[r]);
				lrt_attr_int(&n, "ignore_index", -1);
				lrt_input(&n, x);
				lrt_input(&n, t);
				if (wt)
					lrt_const(&n, w);
				rc = run_n(&n, sm ? 2 : 1, y, &msg);
				snprintf(what, sizeof(what), "%s reduction=%s%s, ignore_index=-1",
					 sm ? "SoftmaxCrossEntropyLoss" : "NegativeLogLikelihoodLoss",
					 reds[r], wt ? " with weights" : "");
				if (r == 0)
					check(y[0], 2, D(3, 2), ref, 1e-5, 1e-5, what, rc, &msg);
				else
					check(y[0], 0, NULL, (const double[]){ r == 1 ? sum : sum / wsum },
					      1e-5, 1e-5, what, rc, &msg);
				if (sm)
					check(y[1], 3, D(3, 4, 2), lp, 1e-5, 1e-5,
					      "SoftmaxCrossEntropyLoss log_prob output", rc, &msg);
				lr_tensor_free(y[0]);
				lr_tensor_free(y[1]);
				y[1] = NULL;
			}
	lrt_init(&n, "NegativeLogLikelihoodLoss", 13);
	lrt_input(&n, x);
	lrt_input(&n, bad);
	rc = run1(&n, y, &msg);
	check_err(rc, LR_EMODEL, &msg, "NegativeLogLikelihoodLoss with target 4 of 4 classes",
		  "input 1 (target)", "outside [0, 4)");
	lrt_init(&n, "SoftmaxCrossEntropyLoss", 13);
	lrt_attr_str(&n, "reduction", "max");
	lrt_input(&n, x);
	lrt_input(&n, t);
	rc = run1(&n, y, &msg);
	check_err(rc, LR_EMODEL, &msg, "SoftmaxCrossEntropyLoss reduction=max", "reduction", "max");
	lr_tensor_free(x);
	lr_tensor_free(w);
	lr_tensor_free(t);
	lr_tensor_free(bad);
}

/* ---- TopK, GatherND, scatters ------------------------------------------- */

static void test_index(void)
{
	lr_tensor *y[2] = { NULL, NULL };
	lr_msg msg;
	lrt_node n;
	int rc;

	/* TopK along axis 1 with ties: equal values keep index order */
	{
		lr_tensor *x = lrt_f(2, D(2, 5), F(3, 1, 3, 2, 5, 0, 0, 1, 0, -1));
		lr_tensor *k = lrt_i(1, D(1), D(3)), *k9 = lrt_i(1, D(1), D(9));
		lr_tensor *xi = lrt_i(1, D(4), D(7, -2, 7, 4));

		lrt_init(&n, "TopK", 11);
		lrt_input(&n, x);
		lrt_const(&n, k);
		rc = run_n(&n, 2, y, &msg);
		check(y[0], 2, D(2, 3), (const double[]){ 5, 3, 3, 1, 0, 0 }, 0, 0, "TopK largest values", rc, &msg);
		check_i(y[1], 2, D(2, 3), D(4, 0, 2, 2, 0, 1), "TopK largest indices (ties in index order)", rc, &msg);
		lr_tensor_free(y[0]);
		lr_tensor_free(y[1]);
		lrt_init(&n, "TopK", 11);
		lrt_attr_int(&n, "largest", 0);
		lrt_attr_int(&n, "axis", 0);
		lrt_input(&n, x);
		lrt_const(&n, lrt_i(1, D(1), D(1)));
		rc = run_n(&n, 2, y, &msg);
		check(y[0], 2, D(1, 5), (const double[]){ 0, 0, 1, 0, -1 }, 0, 0, "TopK smallest along axis 0", rc, &msg);
		check_i(y[1], 2, D(1, 5), D(1, 1, 1, 1, 1), "TopK smallest indices", rc, &msg);
		lr_tensor_free(n.t[1]);
		lr_tensor_free(y[0]);
		lr_tensor_free(y[1]);
		lrt_init(&n, "TopK", 1);
		lrt_attr_int(&n, "k", 2);
		lrt_input(&n, xi);
		rc = run_n(&n, 2, y, &msg);
		check_i(y[0], 1, D(2), D(7, 7), "TopK-1 (k attribute) of int64", rc, &msg);
		check_i(y[1], 1, D(2), D(0, 2), "TopK-1 int64 indices", rc, &msg);
		lr_tensor_free(y[0]);
		lr_tensor_free(y[1]);
		lrt_init(&n, "TopK", 11);
		lrt_input(&n, x);
		lrt_const(&n, k9);
		rc = run_n(&n, 2, y, &msg);
		check_err(rc, LR_EMODEL, &msg, "TopK K=9 of 5", "K = 9", "input 0");
		lr_tensor_free(x);
		lr_tensor_free(k);
		lr_tensor_free(k9);
		lr_tensor_free(xi);
	}
	/* GatherND without and with batch_dims */
	{
		lr_tensor *x = rand_t(3, D(2, 3, 4), -1, 1);
		lr_tensor *ix = lrt_i(2, D(3, 2), D(1, 2, 0, -1, 1, 0));
		lr_tensor *ib = lrt_i(2, D(2, 1), D(2, 0)), *bad = lrt_i(2, D(1, 2), D(2, 0));
		double ref[12];

		for (int t = 0; t < 3; t++) {
			int64_t i0 = id(ix)[2 * t], i1 = id(ix)[2 * t + 1];

			i1 = i1 < 0 ? i1 + 3 : i1;
			for (int q = 0; q < 4; q++)
				ref[t * 4 + q] = fd(x)[(i0 * 3 + i1) * 4 + q];
		}
		lrt_init(&n, "GatherND", 13);
		lrt_input(&n, x);
		lrt_input(&n, ix);
		rc = run1(&n, y, &msg);
		check(y[0], 2, D(3, 4), ref, 0, 0, "GatherND 2-tuples into [2,3,4]", rc, &msg);
		lr_tensor_free(y[0]);
		for (int bt = 0; bt < 2; bt++)
			for (int q = 0; q < 4; q++)
				ref[bt * 4 + q] = fd(x)[(bt * 3 + id(ib)[bt]) * 4 + q];
		lrt_init(&n, "GatherND", 12);
		lrt_attr_int(&n, "batch_dims", 1);
		lrt_input(&n, x);
		lrt_input(&n, ib);
		rc = run1(&n, y, &msg);
		check(y[0], 2, D(2, 4), ref, 0, 0, "GatherND batch_dims=1", rc, &msg);
		lr_tensor_free(y[0]);
		lrt_init(&n, "GatherND", 13);
		lrt_input(&n, x);
		lrt_input(&n, bad);
		rc = run1(&n, y, &msg);
		check_err(rc, LR_EMODEL, &msg, "GatherND index 2 of axis 0 size 2", "input 1 (indices)", "out of range");
		lr_tensor_free(x);
		lr_tensor_free(ix);
		lr_tensor_free(ib);
		lr_tensor_free(bad);
	}
	/* ScatterElements (reductions, duplicates, negative), Scatter, ScatterND */
	{
		lr_tensor *x = lrt_f(2, D(2, 3), F(1, 2, 3, 4, 5, 6));
		lr_tensor *ix = lrt_i(2, D(2, 2), D(2, -1, 0, 0));
		lr_tensor *up = lrt_f(2, D(2, 2), F(10, 20, 30, 40));
		lr_tensor *nix = lrt_i(2, D(2, 1), D(1, 0)), *nup = lrt_f(2, D(2, 3), F(7, 8, 9, 10, 11, 12));
		lr_tensor *bad = lrt_i(2, D(2, 2), D(3, 0, 0, 0));
		static const char *const reds[3] = { "none", "add", "mul" };
		/* axis 1: row 0 gets col 2 <- 10, col 2 <- 20 (dup); row 1 col 0 <- 30, 40 */
		const double want[3][6] = {
			{ 1, 2, 20, 40, 5, 6 },
			{ 1, 2, 33, 74, 5, 6 },
			{ 1, 2, 600, 4800, 5, 6 },
		};

		for (int r = 0; r < 3; r++) {
			char what[60];

			lrt_init(&n, "ScatterElements", 16);
			lrt_attr_int(&n, "axis", 1);
			lrt_attr_str(&n, "reduction", reds[r]);
			lrt_input(&n, x);
			lrt_input(&n, ix);
			lrt_input(&n, up);
			rc = run1(&n, y, &msg);
			snprintf(what, sizeof(what), "ScatterElements axis 1 reduction=%s (duplicates)", reds[r]);
			check(y[0], 2, D(2, 3), want[r], 0, 0, what, rc, &msg);
			lr_tensor_free(y[0]);
		}
		lrt_init(&n, "Scatter", 9);
		lrt_attr_int(&n, "axis", 1);
		lrt_input(&n, x);
		lrt_input(&n, ix);
		lrt_input(&n, up);
		rc = run1(&n, y, &msg);
		check(y[0], 2, D(2, 3), want[0], 0, 0, "Scatter-9", rc, &msg);
		lr_tensor_free(y[0]);
		lrt_init(&n, "ScatterElements", 13);
		lrt_input(&n, x);
		lrt_input(&n, bad);
		lrt_input(&n, up);
		rc = run1(&n, y, &msg);
		check_err(rc, LR_EMODEL, &msg, "ScatterElements index 3 on axis 0 of 2", "input 1 (indices)", "out of range");
		lrt_init(&n, "ScatterND", 16);
		lrt_attr_str(&n, "reduction", "add");
		lrt_input(&n, x);
		lrt_input(&n, nix);
		lrt_input(&n, nup);
		rc = run1(&n, y, &msg);
		check(y[0], 2, D(2, 3), (const double[]){ 11, 13, 15, 11, 13, 15 }, 0, 0,
		      "ScatterND rows with reduction=add", rc, &msg);
		lr_tensor_free(y[0]);
		lrt_init(&n, "ScatterND", 11);
		lrt_input(&n, x);
		lrt_input(&n, nix);
		lrt_input(&n, up);
		rc = run1(&n, y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "ScatterND updates [2,2] for rows of 3", "input 2 (updates)", "[2,2]");
		lr_tensor_free(x);
		lr_tensor_free(ix);
		lr_tensor_free(up);
		lr_tensor_free(nix);
		lr_tensor_free(nup);
		lr_tensor_free(bad);
	}
}

/* ---- NonMaxSuppression, RoiAlign, GridSample ------------------------------ */

/* Bilinear sample of plane p [H, W] at (y, x) in pixels, zeros outside. */
static double bilin(const float *p, int64_t H, int64_t W, double y, double x)
{
	double fy = floor(y), fx = floor(x), v = 0;

	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++) {
			int64_t r = (int64_t)fy + i, c = (int64_t)fx + j;
			double w = (i ? y - fy : 1 - (y - fy)) * (j ? x - fx : 1 - (x - fx));

			if (r >= 0 && r < H && c >= 0 && c < W)
				v += w * p[r * W + c];
		}
	return v;
}

static void test_detect(void)
{
	lr_tensor *y = NULL;
	lr_msg msg;
	lrt_node n;
	int rc;

	/* NMS: the ONNX documentation's example, then center boxes, two classes */
	{
		lr_tensor *bx = lrt_f(3, D(1, 6, 4), F(0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, -0.1f, 1, 0.9f,
							0, 10, 1, 11, 0, 10.1f, 1, 11.1f, 0, 100, 1, 101));
		lr_tensor *cb = lrt_f(3, D(1, 6, 4), F(0.5f, 0.5f, 1, 1, 0.5f, 0.6f, 1, 1, 0.5f, 0.4f, 1, 1,
							0.5f, 10.5f, 1, 1, 0.5f, 10.6f, 1, 1, 0.5f, 100.5f, 1, 1));
		lr_tensor *sc = lrt_f(3, D(1, 1, 6), F(0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f));
		lr_tensor *sc2 = lrt_f(3, D(1, 2, 6), F(0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f,
							0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f));
		lr_tensor *mo = lrt_i(1, D(1), D(3)), *iou = lrt_f(1, D(1), F(0.5f));
		lr_tensor *st = lrt_f(1, D(1), F(0.4f)), *bad = lrt_f(1, D(1), F(1.5f));

		lrt_init(&n, "NonMaxSuppression", 11);
		lrt_input(&n, bx);
		lrt_input(&n, sc);
		lrt_const(&n, mo);
		lrt_const(&n, iou);
		lrt_const(&n, lrt_f(1, D(1), F(0)));
		rc = run1(&n, &y, &msg);
		check_i(y, 2, D(3, 3), D(0, 0, 3, 0, 0, 0, 0, 0, 5), "NonMaxSuppression suppress by IoU", rc, &msg);
		lr_tensor_free(n.t[4]);
		lr_tensor_free(y);
		lrt_init(&n, "NonMaxSuppression", 11);
		lrt_attr_int(&n, "center_point_box", 1);
		lrt_input(&n, cb);
		lrt_input(&n, sc2);
		lrt_const(&n, mo);
		lrt_const(&n, iou);
		lrt_const(&n, st);
		rc = run1(&n, &y, &msg);
		/* class 0 above 0.4: 3, 0 (1 and 4 overlap them); class 1 above 0.4: 5, then 4 */
		check_i(y, 2, D(4, 3), D(0, 0, 3, 0, 0, 0, 0, 1, 5, 0, 1, 4),
			"NonMaxSuppression center boxes, two classes, score threshold", rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "NonMaxSuppression", 11);
		lrt_input(&n, bx);
		lrt_input(&n, sc);
		rc = run1(&n, &y, &msg);
		check_i(y, 2, D(0, 3), NULL, "NonMaxSuppression without max_output_boxes_per_class selects none",
			rc, &msg);
		lr_tensor_free(y);
		lrt_init(&n, "NonMaxSuppression", 11);
		lrt_input(&n, bx);
		lrt_input(&n, sc);
		lrt_const(&n, mo);
		lrt_const(&n, bad);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "NonMaxSuppression iou_threshold 1.5", "input 3 (iou_threshold)", NULL);
		lrt_init(&n, "NonMaxSuppression", 11);
		lrt_input(&n, bx);
		lrt_input(&n, sc2);
		lrt_input(&n, rand_t(3, D(1, 2, 5), 0, 1));
		n.nin = 2;
		n.t[1] = n.t[2];
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "NonMaxSuppression scores for 5 boxes of 6", "input 1 (scores)", "[1,2,5]");
		lr_tensor_free(n.t[2]);
		lr_tensor_free(bx);
		lr_tensor_free(cb);
		lr_tensor_free(sc);
		lr_tensor_free(sc2);
		lr_tensor_free(mo);
		lr_tensor_free(iou);
		lr_tensor_free(st);
		lr_tensor_free(bad);
	}
	/* RoiAlign avg, sampling_ratio 2, rois inside the image, both coordinate modes */
	{
		lr_tensor *x = rand_t(4, D(2, 3, 8, 9), -1, 1);
		lr_tensor *rois = lrt_f(2, D(2, 4), F(1.2f, 0.7f, 6.3f, 5.1f, 2, 2, 4.5f, 7));
		lr_tensor *bi = lrt_i(1, D(2), D(1, 0)), *bbad = lrt_i(1, D(2), D(0, 2));
		double ref[2 * 3 * 2 * 3];

		for (int halfp = 0; halfp < 2; halfp++) {
			for (int64_t r = 0; r < 2; r++)
				for (int64_t ch = 0; ch < 3; ch++)
					for (int64_t py = 0; py < 2; py++)
						for (int64_t px = 0; px < 3; px++) {
							const float *ro = fd(rois) + r * 4;
							double off = halfp ? 0.5 : 0, x0 = ro[0] * 0.5 - off, y0 = ro[1] * 0.5 - off;
							double w = ro[2] * 0.5 - off - x0, h = ro[3] * 0.5 - off - y0, s = 0;
							const float *p = fd(x) + (id(bi)[r] * 3 + ch) * 72;

							if (!halfp) {
								w = fmax(w, 1);
								h = fmax(h, 1);
							}
							for (int iy = 0; iy < 2; iy++)
								for (int ix = 0; ix < 2; ix++)
									s += bilin(p, 8, 9, y0 + (py + (iy + 0.5) / 2) * h / 2,
										   x0 + (px + (ix + 0.5) / 2) * w / 3);
							ref[((r * 3 + ch) * 2 + py) * 3 + px] = s / 4;
						}
			lrt_init(&n, "RoiAlign", halfp ? 16 : 10);
			lrt_attr_int(&n, "output_height", 2);
			lrt_attr_int(&n, "output_width", 3);
			lrt_attr_int(&n, "sampling_ratio", 2);
			lrt_attr_float(&n, "spatial_scale", 0.5f);
			lrt_input(&n, x);
			lrt_input(&n, rois);
			lrt_input(&n, bi);
			rc = run1(&n, &y, &msg);
			check(y, 4, D(2, 3, 2, 3), ref, 1e-5, 1e-5,
			      halfp ? "RoiAlign-16 half_pixel" : "RoiAlign-10 output_half_pixel", rc, &msg);
			lr_tensor_free(y);
		}
		lrt_init(&n, "RoiAlign", 16);
		lrt_input(&n, x);
		lrt_input(&n, rois);
		lrt_input(&n, bbad);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "RoiAlign batch index 2 of 2", "input 2 (batch_indices)", "outside");
		lr_tensor_free(x);
		lr_tensor_free(rois);
		lr_tensor_free(bi);
		lr_tensor_free(bbad);
	}
	/* GridSample */
	{
		lr_tensor *x = rand_t(4, D(1, 2, 5, 6), -1, 1), *g = rand_t(4, D(1, 3, 4, 2), -1.3, 1.3);
		lr_tensor *gc = lrt_f(4, D(1, 1, 3, 2), NULL), *gr = lrt_f(4, D(1, 1, 2, 2), NULL);
		double ref[24];

		/* bilinear, zeros padding, both align_corners */
		for (int al = 0; al < 2; al++) {
			for (int64_t ch = 0; ch < 2; ch++)
				for (int64_t o = 0; o < 12; o++) {
					double gx = fd(g)[o * 2], gy = fd(g)[o * 2 + 1];
					double px = al ? (gx + 1) / 2 * 5 : ((gx + 1) * 6 - 1) / 2;
					double py = al ? (gy + 1) / 2 * 4 : ((gy + 1) * 5 - 1) / 2;

					ref[ch * 12 + o] = bilin(fd(x) + ch * 30, 5, 6, py, px);
				}
			lrt_init(&n, "GridSample", 16);
			lrt_attr_int(&n, "align_corners", al);
			lrt_input(&n, x);
			lrt_input(&n, g);
			rc = run1(&n, &y, &msg);
			check(y, 4, D(1, 2, 3, 4), ref, 1e-5, 1e-5,
			      al ? "GridSample bilinear zeros align_corners=1" : "GridSample bilinear zeros align_corners=0",
			      rc, &msg);
			lr_tensor_free(y);
		}
		/* at pixel centres (align_corners=1) every mode returns the pixel */
		{
			const int64_t px[3][2] = { { 0, 0 }, { 5, 4 }, { 2, 3 } };
			static const char *const modes[3] = { "nearest", "bilinear", "bicubic" };

			for (int k = 0; k < 3; k++) {
				((float *)gc->data)[2 * k] = (float)px[k][0] / 5 * 2 - 1;
				((float *)gc->data)[2 * k + 1] = (float)px[k][1] / 4 * 2 - 1;
			}
			for (int md = 0; md < 3; md++) {
				double r6[6];
				char what[80];

				for (int64_t ch = 0; ch < 2; ch++)
					for (int k = 0; k < 3; k++)
						r6[ch * 3 + k] = fd(x)[ch * 30 + px[k][1] * 6 + px[k][0]];
				lrt_init(&n, "GridSample", 16);
				lrt_attr_int(&n, "align_corners", 1);
				lrt_attr_str(&n, "mode", modes[md]);
				lrt_attr_str(&n, "padding_mode", md == 2 ? "border" : "reflection");
				lrt_input(&n, x);
				lrt_input(&n, gc);
				rc = run1(&n, &y, &msg);
				snprintf(what, sizeof(what), "GridSample %s at pixel centres", modes[md]);
				check(y, 4, D(1, 2, 1, 3), r6, 1e-5, 1e-5, what, rc, &msg);
				lr_tensor_free(y);
			}
		}
		/* reflection mirrors about the edge; border clamps */
		{
			/* align_corners=1: x = 5.5 px mirrors to 4.5; y = -0.75 px mirrors to 0.75 */
			double r4[4];

			((float *)gr->data)[0] = 5.5f / 5 * 2 - 1;
			((float *)gr->data)[1] = 2.25f / 4 * 2 - 1;
			((float *)gr->data)[2] = 1.25f / 5 * 2 - 1;
			((float *)gr->data)[3] = -0.75f / 4 * 2 - 1;
			for (int64_t ch = 0; ch < 2; ch++) {
				r4[ch * 2] = bilin(fd(x) + ch * 30, 5, 6, 2.25, 4.5);
				r4[ch * 2 + 1] = bilin(fd(x) + ch * 30, 5, 6, 0.75, 1.25);
			}
			lrt_init(&n, "GridSample", 16);
			lrt_attr_int(&n, "align_corners", 1);
			lrt_attr_str(&n, "padding_mode", "reflection");
			lrt_input(&n, x);
			lrt_input(&n, gr);
			rc = run1(&n, &y, &msg);
			check(y, 4, D(1, 2, 1, 2), r4, 1e-5, 1e-5, "GridSample bilinear reflection", rc, &msg);
			lr_tensor_free(y);
			for (int64_t ch = 0; ch < 2; ch++) {
				r4[ch * 2] = bilin(fd(x) + ch * 30, 5, 6, 2.25, 5);
				r4[ch * 2 + 1] = bilin(fd(x) + ch * 30, 5, 6, 0, 1.25);
			}
			lrt_init(&n, "GridSample", 16);
			lrt_attr_int(&n, "align_corners", 1);
			lrt_attr_str(&n, "padding_mode", "border");
			lrt_input(&n, x);
			lrt_input(&n, gr);
			rc = run1(&n, &y, &msg);
			check(y, 4, D(1, 2, 1, 2), r4, 1e-5, 1e-5, "GridSample bilinear border", rc, &msg);
			lr_tensor_free(y);
		}
		lrt_init(&n, "GridSample", 16);
		lrt_attr_str(&n, "padding_mode", "wrap");
		lrt_input(&n, x);
		lrt_input(&n, g);
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_EMODEL, &msg, "GridSample padding_mode=wrap", "padding_mode", "wrap");
		lrt_init(&n, "GridSample", 16);
		lrt_input(&n, x);
		lrt_input(&n, gc);
		n.t[1] = x;
		rc = run1(&n, &y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "GridSample with a grid of X's shape", "input 1 (grid)", NULL);
		lr_tensor_free(x);
		lr_tensor_free(g);
		lr_tensor_free(gc);
		lr_tensor_free(gr);
	}
}

/* ---- Det, ReverseSequence, Unique, MaxUnpool ----------------------------- */

static void test_misc(void)
{
	lr_tensor *y[4] = { NULL, NULL, NULL, NULL };
	lr_msg msg;
	lrt_node n;
	int rc;

	/* Det of a batch of 3x3 matrices by cofactor expansion; singular; 2x2 */
	{
		lr_tensor *x = rand_t(3, D(4, 3, 3), -2, 2), *x2 = lrt_f(2, D(2, 2), F(1, 2, 3, 4));
		double ref[4];

		((float *)x->data)[27] = 1;
		((float *)x->data)[28] = 2;
		((float *)x->data)[29] = 3;
		((float *)x->data)[30] = 2;
		((float *)x->data)[31] = 4;
		((float *)x->data)[32] = 6; /* row 1 = 2 * row 0: singular */
		for (int k = 0; k < 4; k++) {
			const float *a = fd(x) + k * 9;

			ref[k] = (double)a[0] * ((double)a[4] * a[8] - (double)a[5] * a[7]) -
				 (double)a[1] * ((double)a[3] * a[8] - (double)a[5] * a[6]) +
				 (double)a[2] * ((double)a[3] * a[7] - (double)a[4] * a[6]);
		}
		lrt_init(&n, "Det", 11);
		lrt_input(&n, x);
		rc = run1(&n, y, &msg);
		check(y[0], 1, D(4), ref, 1e-5, 1e-5, "Det of four 3x3 matrices (one singular)", rc, &msg);
		lr_tensor_free(y[0]);
		lrt_init(&n, "Det", 11);
		lrt_input(&n, x2);
		rc = run1(&n, y, &msg);
		check(y[0], 0, NULL, (const double[]){ -2 }, 1e-6, 1e-6, "Det of [[1,2],[3,4]]", rc, &msg);
		lr_tensor_free(y[0]);
		lrt_init(&n, "Det", 11);
		lrt_input(&n, rand_t(2, D(2, 3), 0, 1));
		rc = run1(&n, y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "Det of a 2x3 matrix", "input 0 (X)", "square");
		lr_tensor_free(n.t[0]);
		lr_tensor_free(x);
		lr_tensor_free(x2);
	}
	/* ReverseSequence, time-major and batch-major */
	for (int tm = 0; tm < 2; tm++) {
		lr_tensor *x = rand_t(3, tm ? D(4, 3, 2) : D(3, 4, 2), -1, 1);
		lr_tensor *sl = lrt_i(1, D(3), D(4, 0, 2));
		double ref[24];

		for (int64_t t = 0; t < 4; t++)
			for (int64_t b = 0; b < 3; b++)
				for (int64_t i = 0; i < 2; i++) {
					int64_t len = id(sl)[b], st = t < len ? len - 1 - t : t;
					int64_t d = tm ? (t * 3 + b) * 2 + i : (b * 4 + t) * 2 + i;
					int64_t s2 = tm ? (st * 3 + b) * 2 + i : (b * 4 + st) * 2 + i;

					ref[d] = fd(x)[s2];
				}
		lrt_init(&n, "ReverseSequence", 10);
		lrt_attr_int(&n, "time_axis", tm ? 0 : 1);
		lrt_attr_int(&n, "batch_axis", tm ? 1 : 0);
		lrt_input(&n, x);
		lrt_input(&n, sl);
		rc = run1(&n, y, &msg);
		check(y[0], 3, x->dims, ref, 0, 0, tm ? "ReverseSequence time-major" : "ReverseSequence batch-major",
		      rc, &msg);
		lr_tensor_free(y[0]);
		if (tm) {
			((int64_t *)sl->data)[1] = 5;
			lrt_init(&n, "ReverseSequence", 10);
			lrt_input(&n, x);
			lrt_input(&n, sl);
			rc = run1(&n, y, &msg);
			check_err(rc, LR_EMODEL, &msg, "ReverseSequence length 5 of 4", "input 1 (sequence_lens)", "outside");
		}
		lr_tensor_free(x);
		lr_tensor_free(sl);
	}
	/* Unique: flattened sorted and unsorted; slices along axis 1 */
	{
		lr_tensor *x = lrt_f(1, D(7), F(2, 1, 1, 3, 4, 3, 1));
		lr_tensor *xa = lrt_f(2, D(2, 4), F(1, 0, 1, 0, 2, 5, 2, 5));

		lrt_init(&n, "Unique", 11);
		lrt_input(&n, x);
		rc = run_n(&n, 4, y, &msg);
		check(y[0], 1, D(4), (const double[]){ 1, 2, 3, 4 }, 0, 0, "Unique sorted values", rc, &msg);
		check_i(y[1], 1, D(4), D(1, 0, 3, 4), "Unique sorted first indices", rc, &msg);
		check_i(y[2], 1, D(7), D(1, 0, 0, 2, 3, 2, 0), "Unique sorted inverse indices", rc, &msg);
		check_i(y[3], 1, D(4), D(3, 1, 2, 1), "Unique sorted counts", rc, &msg);
		for (int i = 0; i < 4; i++)
			lr_tensor_free(y[i]);
		lrt_init(&n, "Unique", 11);
		lrt_attr_int(&n, "sorted", 0);
		lrt_input(&n, x);
		rc = run_n(&n, 4, y, &msg);
		check(y[0], 1, D(4), (const double[]){ 2, 1, 3, 4 }, 0, 0, "Unique unsorted values", rc, &msg);
		check_i(y[1], 1, D(4), D(0, 1, 3, 4), "Unique unsorted first indices", rc, &msg);
		check_i(y[2], 1, D(7), D(0, 1, 1, 2, 3, 2, 1), "Unique unsorted inverse indices", rc, &msg);
		check_i(y[3], 1, D(4), D(1, 3, 2, 1), "Unique unsorted counts", rc, &msg);
		for (int i = 0; i < 4; i++)
			lr_tensor_free(y[i]);
		lrt_init(&n, "Unique", 11);
		lrt_attr_int(&n, "axis", -1);
		lrt_input(&n, xa);
		rc = run_n(&n, 4, y, &msg);
		/* columns (1,2) (0,5) (1,2) (0,5): sorted (0,5) first */
		check(y[0], 2, D(2, 2), (const double[]){ 0, 1, 5, 2 }, 0, 0, "Unique columns (axis -1)", rc, &msg);
		check_i(y[2], 1, D(4), D(1, 0, 1, 0), "Unique columns inverse indices", rc, &msg);
		for (int i = 0; i < 4; i++)
			lr_tensor_free(y[i]);
		lrt_init(&n, "Unique", 11);
		lrt_attr_int(&n, "axis", 2);
		lrt_input(&n, xa);
		rc = run1(&n, y, &msg);
		check_err(rc, LR_EMODEL, &msg, "Unique axis 2 of rank 2", "axis 2", NULL);
		lr_tensor_free(x);
		lr_tensor_free(xa);
	}
	/* MaxUnpool of MaxPool's output and Indices puts each maximum back */
	{
		lr_tensor *x = rand_t(4, D(2, 3, 4, 6), -1, 1), *p[2] = { NULL, NULL }, *os;
		double *ref = dalloc(x->nelem);

		lrt_init(&n, "MaxPool", 12);
		lrt_attr_ints(&n, "kernel_shape", 2, D(2, 2));
		lrt_attr_ints(&n, "strides", 2, D(2, 2));
		lrt_input(&n, x);
		rc = run_n(&n, 2, p, &msg);
		tap_ok(rc == 0, "MaxPool with Indices for MaxUnpool (rc %d %s)", rc, msg.text);
		for (int64_t e = 0; rc == 0 && e < p[1]->nelem; e++)
			ref[id(p[1])[e]] = fd(p[0])[e];
		lrt_init(&n, "MaxUnpool", 11);
		lrt_attr_ints(&n, "kernel_shape", 2, D(2, 2));
		lrt_attr_ints(&n, "strides", 2, D(2, 2));
		lrt_input(&n, p[0]);
		lrt_input(&n, p[1]);
		rc = run1(&n, y, &msg);
		check(y[0], 4, D(2, 3, 4, 6), ref, 0, 0, "MaxUnpool restores the maxima in place", rc, &msg);
		lr_tensor_free(y[0]);
		os = lrt_i(1, D(4), D(2, 3, 5, 6));
		lrt_init(&n, "MaxUnpool", 11);
		lrt_attr_ints(&n, "kernel_shape", 2, D(2, 2));
		lrt_attr_ints(&n, "strides", 2, D(2, 2));
		lrt_input(&n, p[0]);
		lrt_input(&n, p[1]);
		lrt_const(&n, os);
		rc = run1(&n, y, &msg);
		check_err(rc, LR_EUNSUPPORTED, &msg, "MaxUnpool with a larger output_shape", "input 2 (output_shape)", "disagree");
		((int64_t *)p[1]->data)[3] = 1000;
		lrt_init(&n, "MaxUnpool", 11);
		lrt_attr_ints(&n, "kernel_shape", 2, D(2, 2));
		lrt_attr_ints(&n, "strides", 2, D(2, 2));
		lrt_input(&n, p[0]);
		lrt_input(&n, p[1]);
		rc = run1(&n, y, &msg);
		check_err(rc, LR_EMODEL, &msg, "MaxUnpool index 1000 of 144", "input 1 (I)", "1000");
		free(ref);
		lr_tensor_free(os);
		lr_tensor_free(p[0]);
		lr_tensor_free(p[1]);
		lr_tensor_free(x);
	}
}

/* ---- RNN, GRU, LSTM ----------------------------------------------------- */

static double sigm(double v)
{
	return 1 / (1 + exp(-v));
}

/*
 * Reference recurrent layer, straight from the ONNX equations, for one
 * direction: X [T, B, I], W [G*H, I], R [G*H, H], bias [2*G*H] or NULL,
 * P [3H] or NULL; writes Y [T, B, H] (zeros past a sequence's end) and
 * the final h and c [B, H].
 */
static void ref_rnn(int cell, int lbr, int rev, int64_t T, int64_t B, int64_t I, int64_t H,
		    const float *X, const float *W, const float *R, const float *bias,
		    const float *P, const int64_t *lens, double *Y, double *hf, double *cf)
{
	int G = cell == 0 ? 1 : cell == 1 ? 3 : 4;

	for (int64_t b = 0; b < B; b++) {
		double h[16] = { 0 }, cc[16] = { 0 }, a[64];
		int64_t len = lens ? lens[b] : T;

		for (int64_t s = 0; s < len; s++) {
			int64_t t = rev ? len - 1 - s : s;
			double xw[64], hr[64], hn[16];

			for (int64_t q = 0; q < G * H; q++) {
				xw[q] = bias ? bias[q] : 0;
				hr[q] = bias ? bias[G * H + q] : 0;
				for (int64_t k = 0; k < I; k++)
					xw[q] += X[(t * B + b) * I + k] * (double)W[q * I + k];
				for (int64_t k = 0; k < H; k++)
					hr[q] += h[k] * R[q * H + k];
			}
			for (int64_t j = 0; j < H; j++) {
				if (cell == 0) {
					hn[j] = tanh(xw[j] + hr[j]);
				} else if (cell == 1) {
					double z = sigm(xw[j] + hr[j]), r = sigm(xw[H + j] + hr[H + j]), hh;

					if (lbr) {
						hh = tanh(xw[2 * H + j] + r * hr[2 * H + j]);
					} else {
						double rh = bias ? bias[G * H + 2 * H + j] : 0;

						for (int64_t k = 0; k < H; k++)
							rh += sigm(xw[H + k] + hr[H + k]) * h[k] * R[(2 * H + j) * H + k];
						hh = tanh(xw[2 * H + j] + rh);
					}
					hn[j] = (1 - z) * hh + z * h[j];
				} else {
					double i = sigm(xw[j] + hr[j] + (P ? P[j] * cc[j] : 0));
					double f = sigm(xw[2 * H + j] + hr[2 * H + j] + (P ? P[2 * H + j] * cc[j] : 0));
					double g = tanh(xw[3 * H + j] + hr[3 * H + j]);
					double cn = f * cc[j] + i * g;
					double o = sigm(xw[H + j] + hr[H + j] + (P ? P[H + j] * cn : 0));

					a[j] = cn;
					hn[j] = o * tanh(cn);
				}
			}
			for (int64_t j = 0; j < H; j++) {
				h[j] = hn[j];
				if (cell == 2)
					cc[j] = a[j];
				Y[(t * B + b) * H + j] = h[j];
			}
		}
		for (int64_t j = 0; j < H; j++) {
			hf[b * H + j] = h[j];
			cf[b * H + j] = cc[j];
		}
	}
}

static void test_rnn(void)
{
	static const char *const ops[3] = { "RNN", "GRU", "LSTM" };
	const int64_t T = 4, B = 3, I = 5, H = 3;
	lr_msg msg;
	lrt_node n;
	int rc;

	for (int cell = 0; cell < 3; cell++)
		for (int v = 0; v < 2; v++) {
			int G = cell == 0 ? 1 : cell == 1 ? 3 : 4, bidir = v == 1;
			int ndir = bidir ? 2 : 1, nout = cell == 2 ? 3 : 2;
			lr_tensor *x = rand_t(3, D(T, B, I), -1, 1);
			lr_tensor *w = rand_t(3, D(ndir, G * H, I), -0.7, 0.7);
			lr_tensor *r = rand_t(3, D(ndir, G * H, H), -0.7, 0.7);
			lr_tensor *bs = rand_t(2, D(ndir, 2 * G * H), -0.5, 0.5);
			lr_tensor *sl = lrt_i(1, D(B), D(4, 2, 3));
			lr_tensor *p = rand_t(2, D(ndir, 3 * H), -0.5, 0.5);
			lr_tensor *y[3] = { NULL, NULL, NULL };
			double Y[2][48], hf[2][9], cf[2][9], ry[96], rh[18], rc2[18];
			char what[120];

			for (int d = 0; d < ndir; d++)
				ref_rnn(cell, v, bidir ? d : v, T, B, I, H, fd(x), fd(w) + d * G * H * I,
					fd(r) + d * G * H * H, fd(bs) + d * 2 * G * H,
					cell == 2 && v ? fd(p) + d * 3 * H : NULL, v ? id(sl) : NULL,
					Y[d], hf[d], cf[d]);
			for (int64_t t = 0; t < T; t++)
				for (int d = 0; d < ndir; d++)
					for (int64_t b = 0; b < B; b++)
						for (int64_t j = 0; j < H; j++) {
							int64_t len = v ? id(sl)[b] : T;

							ry[((t * ndir + d) * B + b) * H + j] =
								t < len ? Y[d][(t * B + b) * H + j] : 0;
						}
			for (int d = 0; d < ndir; d++)
				for (int64_t k = 0; k < B * H; k++) {
					rh[d * B * H + k] = hf[d][k];
					rc2[d * B * H + k] = cf[d][k];
				}
			lrt_init(&n, ops[cell], 14);
			lrt_attr_int(&n, "hidden_size", H);
			if (bidir)
				lrt_attr_str(&n, "direction", "bidirectional");
			if (cell == 1 && v)
				lrt_attr_int(&n, "linear_before_reset", 1);
			lrt_input(&n, x);
			lrt_const(&n, w);
			lrt_const(&n, r);
			lrt_const(&n, bs);
			if (v) {
				lrt_const(&n, sl);
				if (cell == 2) {
					lrt_skip(&n); /* initial_h */
					lrt_skip(&n); /* initial_c */
					lrt_const(&n, p);
				}
			}
			rc = run_n(&n, nout, y, &msg);
			snprintf(what, sizeof(what), "%s %s%s", ops[cell],
				 bidir ? "bidirectional with sequence_lens" : "forward",
				 cell == 1 && v ? ", linear_before_reset" : cell == 2 && v ? ", peepholes" : "");
			check(y[0], 4, D(T, ndir, B, H), ry, 1e-5, 1e-5, what, rc, &msg);
			check(y[1], 3, D(ndir, B, H), rh, 1e-5, 1e-5, "... and its final hidden state Y_h", rc, &msg);
			if (cell == 2)
				check(y[2], 3, D(ndir, B, H), rc2, 1e-5, 1e-5, "... and its final cell state Y_c", rc, &msg);
			for (int k = 0; k < 3; k++)
				lr_tensor_free(y[k]);
			lr_tensor_free(x);
			lr_tensor_free(w);
			lr_tensor_free(r);
			lr_tensor_free(bs);
			lr_tensor_free(sl);
			lr_tensor_free(p);
		}
	/* errors */
	{
		lr_tensor *x = rand_t(3, D(2, 1, 3), -1, 1), *w = rand_t(3, D(1, 4, 3), -1, 1);
		lr_tensor *r = rand_t(3, D(1, 4, 4), -1, 1), *y[2] = { NULL, NULL };

		lrt_init(&n, "GRU", 14);
		lrt_attr_int(&n, "hidden_size", 4);
		lrt_input(&n, x);
		lrt_const(&n, w);
		lrt_const(&n, r);
		rc = run_n(&n, 2, y, &msg);
		check_err(rc, LR_ESHAPE, &msg, "GRU with W for one gate", "input 1 (W)", "[1,12,3]");
		lrt_init(&n, "RNN", 14);
		lrt_attr_int(&n, "hidden_size", 4);
		lrt_input(&n, x);
		lrt_const(&n, w);
		lrt_const(&n, r);
		{
			Onnx__AttributeProto *a = lrt_attr(&n, "activations",
							   ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
			static ProtobufCBinaryData nm = { 5, (uint8_t *)"Swish" };

			a->n_strings = 1;
			a->strings = &nm;
		}
		rc = run_n(&n, 2, y, &msg);
		check_err(rc, LR_EUNSUPPORTED, &msg, "RNN with activation Swish", "Swish", NULL);
		lr_tensor_free(x);
		lr_tensor_free(w);
		lr_tensor_free(r);
	}
}

/* ---- the dry-run contract, called directly ------------------------------ */

struct direct {
	Onnx__NodeProto proto;
	Onnx__AttributeProto attr[4], *attrp[4];
	int64_t ints[4][8];
	lr_node node;
	int outs[4];
	lr_opctx c;
	lr_msg msg;
};

static void direct_init(struct direct *d, const char *op, int64_t opset, int nout)
{
	memset(d, 0, sizeof(*d));
	onnx__node_proto__init(&d->proto);
	d->proto.attribute = d->attrp;
	d->node.proto = &d->proto;
	d->node.name = "direct";
	d->node.op_type = op;
	d->node.nout = nout;
	d->node.out = d->outs;
	for (int i = 0; i < nout; i++)
		d->outs[i] = i;
	d->c.node = &d->node;
	d->c.opset = opset;
	d->c.dry = 1;
	d->c.msg = &d->msg;
}

static void direct_ints(struct direct *d, const char *name, int n, const int64_t *v)
{
	int k = (int)d->proto.n_attribute++;
	Onnx__AttributeProto *a = &d->attr[k];

	onnx__attribute_proto__init(a);
	a->name = (char *)name;
	a->has_type = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
	memcpy(d->ints[k], v, (size_t)n * sizeof(int64_t));
	a->n_ints = (size_t)n;
	a->ints = d->ints[k];
	d->attrp[k] = a;
}

static lr_tensor *shape_only(int nd, const int64_t *dims)
{
	lr_tensor *t = NULL;

	if (lr_tensor_create(&t, LR_DT_FLOAT, nd, dims, 0) != 0)
		abort();
	return t;
}

static void free_outs(lr_tensor **o, int n)
{
	for (int i = 0; i < n; i++) {
		lr_tensor_free(o[i]);
		o[i] = NULL;
	}
}

static void test_dry(void)
{
	struct direct d;
	lr_tensor *in[3], *out[3] = { NULL, NULL, NULL };
	lr_tensor *x = shape_only(5, D(1, 2, 4, 4, 4));
	int rc;

	/* 3-D MaxPool: Y shape only, Indices int64 zeros */
	direct_init(&d, "MaxPool", 12, 2);
	direct_ints(&d, "kernel_shape", 3, D(2, 2, 2));
	in[0] = x;
	rc = lr_op_maxpool(&d.c, in, 1, out, 2);
	tap_ok(rc == 0 && shape_is(out[0], 5, D(1, 2, 3, 3, 3)) && out[0]->data == NULL &&
	       shape_is(out[1], 5, D(1, 2, 3, 3, 3)) && out[1]->dtype == LR_DT_INT64 &&
	       out[1]->data != NULL && id(out[1])[0] == 0,
	       "dry 3-D MaxPool: Y shape only, Indices zeros (rc %d %s)", rc, d.msg.text);
	free_outs(out, 2);
	/* ConvTranspose, ReduceL2, LayerNormalization, Exp: shapes only */
	{
		lr_tensor *w = shape_only(5, D(2, 3, 2, 2, 2));

		direct_init(&d, "ConvTranspose", 11, 1);
		direct_ints(&d, "strides", 3, D(2, 2, 2));
		in[1] = w;
		rc = lr_op_convtranspose(&d.c, in, 2, out, 1);
		tap_ok(rc == 0 && shape_is(out[0], 5, D(1, 3, 8, 8, 8)) && out[0]->data == NULL,
		       "dry ConvTranspose gives the shape without data (rc %d %s)", rc, d.msg.text);
		free_outs(out, 1);
		lr_tensor_free(w);
	}
	direct_init(&d, "ReduceL2", 13, 1);
	direct_ints(&d, "axes", 2, D(2, 3));
	rc = lr_op_reducel2(&d.c, in, 1, out, 1);
	tap_ok(rc == 0 && shape_is(out[0], 5, D(1, 2, 1, 1, 4)) && out[0]->data == NULL,
	       "dry ReduceL2 gives the shape without data (rc %d %s)", rc, d.msg.text);
	free_outs(out, 1);
	{
		lr_tensor *sc = shape_only(1, D(4));

		direct_init(&d, "LayerNormalization", 17, 3);
		in[1] = sc;
		rc = lr_op_layernorm(&d.c, in, 2, out, 3);
		tap_ok(rc == 0 && shape_is(out[0], 5, D(1, 2, 4, 4, 4)) && out[0]->data == NULL &&
		       shape_is(out[1], 5, D(1, 2, 4, 4, 1)) && shape_is(out[2], 5, D(1, 2, 4, 4, 1)),
		       "dry LayerNormalization gives the three shapes (rc %d %s)", rc, d.msg.text);
		free_outs(out, 3);
		lr_tensor_free(sc);
	}
	direct_init(&d, "ArgMax", 13, 1);
	rc = lr_op_argmax(&d.c, in, 1, out, 1);
	tap_ok(rc == 0 && shape_is(out[0], 5, D(1, 2, 4, 4, 4)) && out[0]->dtype == LR_DT_INT64 &&
	       out[0]->data != NULL, "dry ArgMax of a shape-only input gives int64 zeros (rc %d %s)",
	       rc, d.msg.text);
	free_outs(out, 1);
	direct_init(&d, "Size", 13, 1);
	rc = lr_op_size(&d.c, in, 1, out, 1);
	tap_ok(rc == 0 && out[0]->ndim == 0 && id(out[0])[0] == 128,
	       "dry Size of a shape-only input is computed");
	free_outs(out, 1);
	/* small known values are computed in a dry run (shape arithmetic) */
	{
		lr_tensor *k = lrt_f(1, D(2), F(0, 1)), *ki = lrt_i(1, D(3), D(4, -5, 6));

		direct_init(&d, "Exp", 13, 1);
		in[0] = k;
		rc = lr_op_exp(&d.c, in, 1, out, 1);
		tap_ok(rc == 0 && out[0]->data != NULL && fd(out[0])[0] == 1.0f,
		       "dry Exp of a known small input is computed");
		free_outs(out, 1);
		direct_init(&d, "ReduceSum", 11, 1);
		in[0] = ki;
		rc = lr_op_reducesum(&d.c, in, 1, out, 1);
		tap_ok(rc == 0 && out[0]->data != NULL && id(out[0])[0] == 5,
		       "dry int64 ReduceSum is computed");
		free_outs(out, 1);
		direct_init(&d, "Neg", 13, 1);
		rc = lr_op_neg(&d.c, in, 1, out, 1);
		tap_ok(rc == 0 && out[0]->data != NULL && id(out[0])[1] == 5, "dry int64 Neg is computed");
		free_outs(out, 1);
		/* int64 ^ (float without data): the int64 result cannot be computed */
		{
			lr_tensor *fe = shape_only(1, D(3));

			direct_init(&d, "Pow", 15, 1);
			in[1] = fe;
			rc = lr_op_pow(&d.c, in, 2, out, 1);
			tap_ok(rc == LR_EUNSUPPORTED && out[0] == NULL,
			       "dry Pow int64 ^ unknown float is refused, not guessed (rc %d %s)", rc, d.msg.text);
			free_outs(out, 1);
			lr_tensor_free(fe);
		}
		lr_tensor_free(k);
		lr_tensor_free(ki);
	}
	lr_tensor_free(x);
}

int main(void)
{
	tap_diag("seed 0x%llx", (unsigned long long)rng);
	test_pool();
	test_math();
	test_binary();
	test_reduce();
	test_gen();
	test_norm();
	test_convtranspose();
	test_loss();
	test_index();
	test_detect();
	test_misc();
	test_rnn();
	test_dry();
	return tap_done();
}
