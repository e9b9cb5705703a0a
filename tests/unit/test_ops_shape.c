/*
 * test_ops_shape.c - unit tests of the data-movement kernels (ops_shape.c)
 * through one-node models run by the real loader and engine (opcheck.h),
 * plus a few multi-node graphs for dry runs, where int64 shape arithmetic
 * must be computed while float tensors stay shape-only.
 *
 * DESIGN. Each test states the expected output literally (values worked
 * out by hand or with numpy), so that a kernel bug changes a checked value.
 * The opset-dependent signatures (attributes that became inputs, new
 * attributes) are tested at both sides of each change.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/opcheck.h"
#include "tests/unit/tap.h"

#define D(...) ((const int64_t[]){ __VA_ARGS__ })
#define F(...) ((const float[]){ __VA_ARGS__ })
#define NARG(...) (int)(sizeof((const int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t))

/* ---- helpers ------------------------------------------------------------ */

static int same_shape(const lr_tensor *t, int ndim, const int64_t *dims)
{
	if (t == NULL || t->ndim != ndim)
		return 0;
	for (int i = 0; i < ndim; i++)
		if (t->dims[i] != dims[i])
			return 0;
	return 1;
}

static void show(const char *what, const lr_tensor *t)
{
	char buf[200];

	if (t == NULL) {
		tap_diag("%s: (null)", what);
		return;
	}
	tap_diag("%s: %s %s", what, lr_dtype_name(t->dtype),
		 lr_shape_str(t->ndim, t->dims, buf, sizeof(buf)));
	for (int64_t i = 0; t->data != NULL && i < t->nelem && i < 40; i++) {
		if (lr_dtype_is_float(t->dtype))
			tap_diag("  [%lld] %.9g", (long long)i, lr_tensor_get_f64(t, i));
		else
			tap_diag("  [%lld] %lld", (long long)i, (long long)lr_tensor_get_i64(t, i));
	}
}

/* Checks a float output's shape and values (exact, NaN-aware). */
static int check_f(const lr_tensor *t, int ndim, const int64_t *dims,
		   const float *v, const char *name)
{
	int ok = same_shape(t, ndim, dims) && lr_dtype_is_float(t->dtype) && t->data != NULL;

	for (int64_t i = 0; ok && i < t->nelem; i++) {
		float a = (float)lr_tensor_get_f64(t, i); /* float32, float16 or double */

		ok = (isnan(a) && isnan(v[i])) || a == v[i];
		if (ok && a == 0.0f)
			ok = signbit(a) == signbit(v[i]);
	}
	if (!tap_ok(ok, "%s", name))
		show("got", t);
	return ok;
}

static int check_i(const lr_tensor *t, int ndim, const int64_t *dims,
		   const int64_t *v, const char *name)
{
	int ok = same_shape(t, ndim, dims) && !lr_dtype_is_float(t->dtype) && t->data != NULL;

	for (int64_t i = 0; ok && i < t->nelem; i++)
		ok = lr_tensor_get_i64(t, i) == v[i]; /* any integer type or bool */
	if (!tap_ok(ok, "%s", name))
		show("got", t);
	return ok;
}

/* Runs n with one output and checks float results; frees everything. */
static void run_f(lrt_node *n, int ndim, const int64_t *dims, const float *v,
		  const char *name)
{
	lr_tensor *out[1];
	lr_msg msg = { "" };
	int rc = lrt_run(n, 1, out, &msg);

	if (rc != 0) {
		tap_ok(0, "%s (rc %d: %s)", name, rc, msg.text);
	} else {
		check_f(out[0], ndim, dims, v, name);
		lr_tensor_free(out[0]);
	}
	lrt_fini(n);
}

static void run_i(lrt_node *n, int ndim, const int64_t *dims, const int64_t *v,
		  const char *name)
{
	lr_tensor *out[1];
	lr_msg msg = { "" };
	int rc = lrt_run(n, 1, out, &msg);

	if (rc != 0) {
		tap_ok(0, "%s (rc %d: %s)", name, rc, msg.text);
	} else {
		check_i(out[0], ndim, dims, v, name);
		lr_tensor_free(out[0]);
	}
	lrt_fini(n);
}

/* Expects failure `code` (0 = any) with `sub` (and sub2) in the message. */
static void run_fail(lrt_node *n, int nout, int code, const char *sub,
		     const char *sub2, const char *name)
{
	lr_tensor *out[4] = { NULL };
	lr_msg msg = { "" };
	int rc = lrt_run(n, nout, out, &msg);
	int ok = rc != 0 && (code == 0 || rc == code) &&
		 (sub == NULL || strstr(msg.text, sub) != NULL) &&
		 (sub2 == NULL || strstr(msg.text, sub2) != NULL);

	if (!tap_ok(ok, "%s", name))
		tap_diag("rc %d, message: %s", rc, msg.text);
	for (int i = 0; i < nout; i++)
		lr_tensor_free(out[i]);
	lrt_fini(n);
}

static lr_tensor *iota_f(int ndim, const int64_t *dims)
{
	lr_tensor *t = lrt_f(ndim, dims, NULL);

	for (int64_t i = 0; i < t->nelem; i++)
		((float *)t->data)[i] = (float)i;
	return t;
}

/* ---- Concat / Split ----------------------------------------------------- */

static void test_concat(void)
{
	lr_tensor *a = lrt_f(2, D(2, 2), F(1, 2, 3, 4));
	lr_tensor *b = lrt_f(2, D(2, 3), F(5, 6, 7, 8, 9, 10));
	lr_tensor *c3 = lrt_f(2, D(1, 2), F(-1, -2));
	lr_tensor *e = lrt_f(2, D(2, 0), NULL);
	lr_tensor *ia = lrt_i(1, D(2), D(4, 5)), *ib = lrt_i(1, D(1), D(-1));
	lrt_node n;

	lrt_init(&n, "Concat", 13);
	lrt_attr_int(&n, "axis", 1);
	lrt_input(&n, a);
	lrt_input(&n, b);
	lrt_input(&n, e);
	run_f(&n, 2, D(2, 5), F(1, 2, 5, 6, 7, 3, 4, 8, 9, 10),
	      "Concat axis 1 with an empty input");

	lrt_init(&n, "Concat", 11);
	lrt_attr_int(&n, "axis", -2);
	lrt_input(&n, a);
	lrt_const(&n, c3);
	run_f(&n, 2, D(3, 2), F(1, 2, 3, 4, -1, -2), "Concat axis -2 (opset 11)");

	lrt_init(&n, "Concat", 7);
	lrt_attr_int(&n, "axis", 0);
	lrt_input(&n, ia);
	lrt_const(&n, ib);
	lrt_input(&n, ia);
	run_i(&n, 1, D(5), D(4, 5, -1, 4, 5), "Concat int64 (shape vectors)");

	lrt_init(&n, "Concat", 13);
	lrt_attr_int(&n, "axis", 0);
	lrt_input(&n, a);
	lrt_input(&n, b);
	run_fail(&n, 1, LR_ESHAPE, "[2,3]", "[2,2]", "Concat mismatch names both shapes");

	lrt_init(&n, "Concat", 13);
	lrt_input(&n, a);
	lrt_input(&n, a);
	run_fail(&n, 1, LR_EMODEL, "'axis'", NULL, "Concat without axis fails");

	lrt_init(&n, "Concat", 13);
	lrt_attr_int(&n, "axis", 2);
	lrt_input(&n, a);
	lrt_input(&n, a);
	run_fail(&n, 1, LR_EMODEL, "axis 2", NULL, "Concat axis out of range fails");

	lrt_init(&n, "Concat", 13);
	lrt_attr_int(&n, "axis", 0);
	lrt_input(&n, a);
	lrt_input(&n, ia);
	run_fail(&n, 1, LR_EMODEL, "int64", NULL, "Concat of float and int64 fails");

	lr_tensor_free(a);
	lr_tensor_free(b);
	lr_tensor_free(c3);
	lr_tensor_free(e);
	lr_tensor_free(ia);
	lr_tensor_free(ib);
}

/* Runs a Split with nout outputs and checks each part's dims and values. */
static void split_check(lrt_node *n, int nout, const int64_t *len,
			const float *vals, int axis_dims_ndim, const int64_t *base,
			int axis, const char *name)
{
	lr_tensor *out[4] = { NULL };
	lr_msg msg = { "" };
	int rc = lrt_run(n, nout, out, &msg), ok = rc == 0;
	int64_t off = 0;

	for (int k = 0; ok && k < nout; k++) {
		int64_t dims[LR_MAX_DIMS];

		memcpy(dims, base, (size_t)axis_dims_ndim * sizeof(int64_t));
		dims[axis] = len[k];
		ok = same_shape(out[k], axis_dims_ndim, dims);
		for (int64_t i = 0; ok && i < out[k]->nelem; i++)
			ok = ((float *)out[k]->data)[i] == vals[off + i];
		if (!ok)
			show("part", out[k]);
		off += ok ? out[k]->nelem : 0;
	}
	tap_ok(ok, "%s%s%s", name, rc ? ": " : "", rc ? msg.text : "");
	for (int k = 0; k < nout; k++)
		lr_tensor_free(out[k]);
	lrt_fini(n);
}

static void test_split(void)
{
	lr_tensor *x6 = iota_f(1, D(6)), *x7 = iota_f(1, D(7)), *x23 = iota_f(2, D(2, 3));
	lr_tensor *sp = lrt_i(1, D(2), D(1, 2)), *sp3 = lrt_i(1, D(3), D(1, 2, 2));
	lrt_node n;

	lrt_init(&n, "Split", 11);
	lrt_attr_ints(&n, "split", 2, D(2, 4));
	lrt_input(&n, x6);
	split_check(&n, 2, D(2, 4), F(0, 1, 2, 3, 4, 5), 1, D(6), 0,
		    "Split 'split' attribute (opset 11)");

	lrt_init(&n, "Split", 13);
	lrt_attr_int(&n, "axis", -1);
	lrt_input(&n, x23);
	lrt_const(&n, sp);
	split_check(&n, 2, D(1, 2), F(0, 3, 1, 2, 4, 5), 2, D(2, 3), 1,
		    "Split 'split' input, axis -1 (opset 13)");

	lrt_init(&n, "Split", 13);
	lrt_input(&n, x6);
	split_check(&n, 3, D(2, 2, 2), F(0, 1, 2, 3, 4, 5), 1, D(6), 0,
		    "Split equal parts without sizes (opset 13)");

	lrt_init(&n, "Split", 13);
	lrt_input(&n, x7);
	run_fail(&n, 3, LR_ESHAPE, "equal", NULL, "Split 7 into 3 equal parts fails at opset 13");

	lrt_init(&n, "Split", 18);
	lrt_attr_int(&n, "num_outputs", 3);
	lrt_input(&n, x7);
	split_check(&n, 3, D(3, 3, 1), F(0, 1, 2, 3, 4, 5, 6), 1, D(7), 0,
		    "Split num_outputs=3 of 7: last chunk smaller (opset 18)");

	lrt_init(&n, "Split", 18);
	lrt_attr_int(&n, "num_outputs", 2);
	lrt_input(&n, x7);
	run_fail(&n, 3, LR_EMODEL, "num_outputs", NULL, "Split num_outputs != outputs fails");

	lrt_init(&n, "Split", 18);
	lrt_attr_int(&n, "num_outputs", 3);
	lrt_input(&n, x7);
	lrt_const(&n, sp3);
	run_fail(&n, 3, LR_EMODEL, "both", NULL, "Split with split and num_outputs fails");

	lrt_init(&n, "Split", 13);
	lrt_input(&n, x6);
	lrt_const(&n, sp3);
	run_fail(&n, 3, LR_ESHAPE, "add up to 5", NULL, "Split sizes not summing to the axis fail");

	lrt_init(&n, "Split", 11);
	lrt_input(&n, x6);
	lrt_const(&n, sp);
	run_fail(&n, 2, LR_EMODEL, "opset 13", NULL, "Split input before opset 13 fails");

	lr_tensor_free(x6);
	lr_tensor_free(x7);
	lr_tensor_free(x23);
	lr_tensor_free(sp);
	lr_tensor_free(sp3);
}

/* ---- Flatten / Reshape / Squeeze / Unsqueeze / Identity / Dropout ------- */

static void test_flatten(void)
{
	lr_tensor *x = iota_f(3, D(2, 3, 2));
	const float *v = x->data;
	lrt_node n;

	lrt_init(&n, "Flatten", 9);
	lrt_input(&n, x);
	run_f(&n, 2, D(2, 6), v, "Flatten default axis 1");

	lrt_init(&n, "Flatten", 13);
	lrt_attr_int(&n, "axis", 0);
	lrt_input(&n, x);
	run_f(&n, 2, D(1, 12), v, "Flatten axis 0");

	lrt_init(&n, "Flatten", 13);
	lrt_attr_int(&n, "axis", 3);
	lrt_input(&n, x);
	run_f(&n, 2, D(12, 1), v, "Flatten axis = rank");

	lrt_init(&n, "Flatten", 11);
	lrt_attr_int(&n, "axis", -1);
	lrt_input(&n, x);
	run_f(&n, 2, D(6, 2), v, "Flatten axis -1 (opset 11)");

	lrt_init(&n, "Flatten", 13);
	lrt_attr_int(&n, "axis", 4);
	lrt_input(&n, x);
	run_fail(&n, 1, LR_EMODEL, "'axis'", NULL, "Flatten axis 4 of rank 3 fails");
	lr_tensor_free(x);
}

static void test_reshape(void)
{
	lr_tensor *x = iota_f(3, D(2, 3, 4)), *e = lrt_f(2, D(0, 3), NULL);
	lr_tensor *s1 = lrt_i(1, D(3), D(4, 0, -1)), *s2 = lrt_i(1, D(2), D(3, 0));
	lr_tensor *s3 = lrt_i(1, D(2), D(-1, -1)), *s4 = lrt_i(1, D(2), D(5, -1));
	lr_tensor *s5 = lrt_i(1, D(2), D(0, -1)), *s6 = lrt_i(1, D(4), D(0, 0, 0, 0));
	lr_tensor *s7 = lrt_i(1, D(1), D(-1)), *s8 = lrt_i(1, D(2), D(4, -2));
	const float *v = x->data;
	lrt_node n;

	lrt_init(&n, "Reshape", 13);
	lrt_input(&n, x);
	lrt_const(&n, s1);
	run_f(&n, 3, D(4, 3, 2), v, "Reshape [4,0,-1]: 0 copies, -1 inferred");

	lrt_init(&n, "Reshape", 14);
	lrt_input(&n, x);
	lrt_const(&n, s7);
	run_f(&n, 1, D(24), v, "Reshape [-1] flattens");

	lrt_init(&n, "Reshape", 14);
	lrt_attr_int(&n, "allowzero", 1);
	lrt_input(&n, e);
	lrt_const(&n, s2);
	run_f(&n, 2, D(3, 0), v, "Reshape allowzero=1 keeps 0 as a size (opset 14)");

	lrt_init(&n, "Reshape", 14);
	lrt_input(&n, e);
	lrt_const(&n, s2);
	run_fail(&n, 1, LR_ESHAPE, "[0,3]", "[3,0]", "Reshape allowzero=0: 0 copies the input dim");

	lrt_init(&n, "Reshape", 13);
	lrt_attr_int(&n, "allowzero", 1);
	lrt_input(&n, e);
	lrt_const(&n, s2);
	run_fail(&n, 1, LR_ESHAPE, "[0,3]", "[3,0]", "Reshape ignores allowzero before opset 14");

	lrt_init(&n, "Reshape", 14);
	lrt_attr_int(&n, "allowzero", 1);
	lrt_input(&n, x);
	lrt_const(&n, s5);
	run_fail(&n, 1, LR_EMODEL, "both 0 and -1", NULL, "Reshape allowzero with 0 and -1 fails");

	lrt_init(&n, "Reshape", 14);
	lrt_input(&n, x);
	lrt_const(&n, s3);
	run_fail(&n, 1, LR_EMODEL, "more than one -1", NULL, "Reshape with two -1 fails");

	lrt_init(&n, "Reshape", 14);
	lrt_input(&n, x);
	lrt_const(&n, s4);
	run_fail(&n, 1, LR_ESHAPE, "[2,3,4]", "[5,-1]", "Reshape impossible names both shapes");

	lrt_init(&n, "Reshape", 14);
	lrt_input(&n, x);
	lrt_const(&n, s6);
	run_fail(&n, 1, LR_ESHAPE, "dimension 3", NULL, "Reshape 0 beyond the input rank fails");

	lrt_init(&n, "Reshape", 14);
	lrt_input(&n, x);
	lrt_const(&n, s8);
	run_fail(&n, 1, LR_EMODEL, "-2", NULL, "Reshape with -2 fails");

	lr_tensor_free(x);
	lr_tensor_free(e);
	lr_tensor_free(s1);
	lr_tensor_free(s2);
	lr_tensor_free(s3);
	lr_tensor_free(s4);
	lr_tensor_free(s5);
	lr_tensor_free(s6);
	lr_tensor_free(s7);
	lr_tensor_free(s8);
}

static void test_squeeze(void)
{
	lr_tensor *x = iota_f(4, D(1, 3, 1, 2));
	lr_tensor *ax = lrt_i(1, D(1), D(-2)), *bad = lrt_i(1, D(1), D(1));
	lr_tensor *u1 = lrt_i(1, D(1), D(-1)), *u2 = lrt_i(1, D(2), D(5, 0));
	lr_tensor *dup = lrt_i(1, D(2), D(0, -6)), *u0 = lrt_i(1, D(0), NULL);
	const float *v = x->data;
	lrt_node n;

	lrt_init(&n, "Squeeze", 11);
	lrt_attr_ints(&n, "axes", 2, D(0, 2));
	lrt_input(&n, x);
	run_f(&n, 2, D(3, 2), v, "Squeeze 'axes' attribute (opset 11)");

	lrt_init(&n, "Squeeze", 13);
	lrt_input(&n, x);
	lrt_const(&n, ax);
	run_f(&n, 3, D(1, 3, 2), v, "Squeeze axes input [-2] (opset 13)");

	lrt_init(&n, "Squeeze", 13);
	lrt_input(&n, x);
	run_f(&n, 2, D(3, 2), v, "Squeeze without axes removes every 1 (opset 13)");

	lrt_init(&n, "Squeeze", 13);
	lrt_input(&n, x);
	lrt_const(&n, u0);
	run_f(&n, 2, D(3, 2), v, "Squeeze with empty axes removes every 1");

	lrt_init(&n, "Squeeze", 13);
	lrt_attr_ints(&n, "axes", 1, D(0));
	lrt_input(&n, x);
	run_f(&n, 2, D(3, 2), v, "Squeeze ignores the 'axes' attribute at opset 13");

	lrt_init(&n, "Squeeze", 13);
	lrt_input(&n, x);
	lrt_const(&n, bad);
	run_fail(&n, 1, LR_ESHAPE, "[1,3,1,2]", NULL, "Squeeze of a size-3 axis fails");

	lrt_init(&n, "Squeeze", 11);
	lrt_input(&n, x);
	lrt_const(&n, ax);
	run_fail(&n, 1, LR_EMODEL, "opset 13", NULL, "Squeeze axes input before opset 13 fails");

	lrt_init(&n, "Unsqueeze", 11);
	lrt_attr_ints(&n, "axes", 2, D(0, 5));
	lrt_input(&n, x);
	run_f(&n, 6, D(1, 1, 3, 1, 2, 1), v, "Unsqueeze 'axes' attribute (opset 11)");

	lrt_init(&n, "Unsqueeze", 13);
	lrt_input(&n, x);
	lrt_const(&n, u1);
	run_f(&n, 5, D(1, 3, 1, 2, 1), v, "Unsqueeze [-1] counts from the output rank");

	lrt_init(&n, "Unsqueeze", 13);
	lrt_input(&n, x);
	lrt_const(&n, u2);
	run_f(&n, 6, D(1, 1, 3, 1, 2, 1), v, "Unsqueeze unsorted axes [5,0]");

	lrt_init(&n, "Unsqueeze", 13);
	lrt_input(&n, x);
	lrt_const(&n, dup);
	run_fail(&n, 1, LR_EMODEL, "repeats", NULL, "Unsqueeze repeated axis (0 and -6) fails");

	lrt_init(&n, "Unsqueeze", 13);
	lrt_attr_ints(&n, "axes", 1, D(0));
	lrt_input(&n, x);
	run_fail(&n, 1, LR_EMODEL, "input 1", NULL, "Unsqueeze needs the axes input at opset 13");

	lrt_init(&n, "Unsqueeze", 11);
	lrt_input(&n, x);
	run_fail(&n, 1, LR_EMODEL, "attribute 'axes'", NULL, "Unsqueeze needs 'axes' at opset 11");

	lr_tensor_free(x);
	lr_tensor_free(ax);
	lr_tensor_free(bad);
	lr_tensor_free(u1);
	lr_tensor_free(u2);
	lr_tensor_free(dup);
	lr_tensor_free(u0);
}

static void test_identity_dropout(void)
{
	lr_tensor *x = lrt_f(2, D(2, 2), F(1, -2, 3, -4));
	lr_tensor *ix = lrt_i(1, D(3), D(7, 8, 9));
	lr_tensor *ratio = lrt_f(0, NULL, F(0.5f));
	lr_tensor *on = lrt_i(0, NULL, D(1)), *off = lrt_i(0, NULL, D(0));
	lr_tensor *out[2];
	lr_msg msg = { "" };
	lrt_node n;
	int rc;

	lrt_init(&n, "Identity", 13);
	lrt_input(&n, x);
	run_f(&n, 2, D(2, 2), F(1, -2, 3, -4), "Identity float");

	lrt_init(&n, "Identity", 13);
	lrt_const(&n, ix);
	run_i(&n, 1, D(3), D(7, 8, 9), "Identity of an int64 initializer");

	lrt_init(&n, "Dropout", 7);
	lrt_attr_float(&n, "ratio", 0.9f);
	lrt_input(&n, x);
	run_f(&n, 2, D(2, 2), F(1, -2, 3, -4), "Dropout (opset 7) is the identity");

	lrt_init(&n, "Dropout", 13);
	lrt_input(&n, x);
	lrt_const(&n, ratio);
	lrt_const(&n, off);
	run_f(&n, 2, D(2, 2), F(1, -2, 3, -4), "Dropout ratio/training_mode=false inputs (opset 13)");

	lrt_init(&n, "Dropout", 13);
	lrt_input(&n, x);
	rc = lrt_run(&n, 2, out, &msg);
	tap_ok(rc == 0 && check_f(out[0], 2, D(2, 2), F(1, -2, 3, -4), "Dropout output with mask") &&
	       check_i(out[1], 2, D(2, 2), D(1, 1, 1, 1), "Dropout mask (bool) is all ones"),
	       "Dropout mask (opset 13)%s", msg.text);
	lr_tensor_free(out[0]);
	lr_tensor_free(out[1]);

	lrt_init(&n, "Dropout", 7);
	lrt_input(&n, x);
	rc = lrt_run(&n, 2, out, &msg);
	tap_ok(rc == 0 && check_f(out[1], 2, D(2, 2), F(1, 1, 1, 1), "Dropout opset 7 mask is float ones"),
	       "Dropout mask (opset 7)%s", msg.text);
	lr_tensor_free(out[0]);
	lr_tensor_free(out[1]);

	lrt_init(&n, "Dropout", 13);
	lrt_input(&n, x);
	lrt_skip(&n);
	lrt_const(&n, on);
	run_fail(&n, 1, LR_EUNSUPPORTED, "training_mode", NULL, "Dropout training_mode=true is unsupported");

	lrt_init(&n, "Dropout", 10);
	lrt_input(&n, x);
	lrt_const(&n, ratio);
	run_fail(&n, 1, LR_EMODEL, "opset 12", NULL, "Dropout ratio input before opset 12 fails");

	lr_tensor_free(x);
	lr_tensor_free(ix);
	lr_tensor_free(ratio);
	lr_tensor_free(on);
	lr_tensor_free(off);
}

/* ---- Transpose ---------------------------------------------------------- */

/*
 * Naive reference transpose of an iota tensor, compared to the kernel.
 * With name == NULL only returns whether it matched.
 */
static int transpose_check(int r, const int64_t *dims, const int64_t *perm,
			   int use_int, const char *name)
{
	lr_tensor *x, *out[1];
	int64_t od[LR_MAX_DIMS], ist[LR_MAX_DIMS], idx[LR_MAX_DIMS] = { 0 }, s = 1;
	lr_msg msg = { "" };
	lrt_node n;
	int rc, ok;

	if (use_int) {
		x = lrt_i(r, dims, NULL);
		for (int64_t i = 0; i < x->nelem; i++)
			((int64_t *)x->data)[i] = i * 3 + 1;
	} else {
		x = iota_f(r, dims);
	}
	for (int k = r - 1; k >= 0; k--) {
		ist[k] = s;
		s *= dims[k];
	}
	for (int k = 0; k < r; k++)
		od[k] = dims[perm ? perm[k] : r - 1 - k];
	lrt_init(&n, "Transpose", 13);
	if (perm != NULL)
		lrt_attr_ints(&n, "perm", r, perm);
	lrt_input(&n, x);
	rc = lrt_run(&n, 1, out, &msg);
	ok = rc == 0 && same_shape(out[0], r, od);
	for (int64_t i = 0; ok && i < out[0]->nelem; i++) {
		int64_t src = 0;

		for (int k = 0; k < r; k++)
			src += idx[k] * ist[perm ? perm[k] : r - 1 - k];
		if (use_int)
			ok = ((int64_t *)out[0]->data)[i] == ((int64_t *)x->data)[src];
		else
			ok = ((float *)out[0]->data)[i] == ((float *)x->data)[src];
		for (int k = r - 1; k >= 0; k--) {
			if (++idx[k] < od[k])
				break;
			idx[k] = 0;
		}
	}
	if (name != NULL)
		tap_ok(ok, "%s%s%s", name, rc ? ": " : "", msg.text);
	else if (!ok)
		tap_diag("rc %d %s", rc, msg.text);
	if (rc == 0)
		lr_tensor_free(out[0]);
	lr_tensor_free(x);
	return ok;
}

static void test_transpose(void)
{
	lr_tensor *x = iota_f(2, D(2, 3));
	lrt_node n;

	lrt_init(&n, "Transpose", 13);
	lrt_input(&n, x);
	run_f(&n, 2, D(3, 2), F(0, 3, 1, 4, 2, 5), "Transpose 2-D default perm");
	transpose_check(3, D(2, 3, 4), NULL, 0, "Transpose default perm reverses 3-D");
	transpose_check(3, D(2, 3, 4), D(1, 2, 0), 0, "Transpose perm [1,2,0]");
	transpose_check(4, D(2, 16, 9, 10), D(0, 2, 3, 1), 0, "Transpose NCHW->NHWC (tiled)");
	transpose_check(4, D(2, 9, 10, 16), D(0, 3, 1, 2), 0, "Transpose NHWC->NCHW (tiled)");
	transpose_check(2, D(37, 70), D(1, 0), 0, "Transpose 2-D 37x70 (tiles with edges)");
	transpose_check(2, D(33, 65), D(1, 0), 1, "Transpose int64 33x65");
	transpose_check(5, D(2, 3, 1, 4, 5), D(3, 0, 4, 2, 1), 0, "Transpose 5-D with a unit dim");
	transpose_check(4, D(3, 1, 4, 1), D(1, 0, 3, 2), 0, "Transpose that keeps the order");
	transpose_check(4, D(3, 2, 4, 5), D(0, 1, 3, 2), 1, "Transpose last two dims, int64");
	transpose_check(3, D(2, 0, 3), D(2, 1, 0), 0, "Transpose of an empty tensor");

	lrt_init(&n, "Transpose", 13);
	lrt_attr_ints(&n, "perm", 2, D(0, 0));
	lrt_input(&n, x);
	run_fail(&n, 1, LR_EMODEL, "permutation", NULL, "Transpose perm [0,0] fails");

	lrt_init(&n, "Transpose", 13);
	lrt_attr_ints(&n, "perm", 3, D(0, 1, 2));
	lrt_input(&n, x);
	run_fail(&n, 1, LR_EMODEL, "3 entries", NULL, "Transpose perm of the wrong length fails");
	lr_tensor_free(x);
}

/* ---- Constant / Shape / Gather ----------------------------------------- */

static void test_constant(void)
{
	lr_tensor *t = lrt_f(2, D(2, 2), F(1.5f, -2, 0, 7));
	lr_tensor *ti = lrt_i(1, D(2), D(INT64_MAX, -3));
	lrt_node n;

	lrt_init(&n, "Constant", 13);
	lrt_attr_tensor(&n, "value", t);
	run_f(&n, 2, D(2, 2), F(1.5f, -2, 0, 7), "Constant 'value' float tensor");

	lrt_init(&n, "Constant", 9);
	lrt_attr_tensor(&n, "value", ti);
	run_i(&n, 1, D(2), D(INT64_MAX, -3), "Constant 'value' int64 tensor");

	lrt_init(&n, "Constant", 12);
	lrt_attr_float(&n, "value_float", 0.25f);
	run_f(&n, 0, NULL, F(0.25f), "Constant value_float is a scalar (opset 12)");

	lrt_init(&n, "Constant", 13);
	lrt_attr_floats(&n, "value_floats", 3, F(1, 2, 3));
	run_f(&n, 1, D(3), F(1, 2, 3), "Constant value_floats");

	lrt_init(&n, "Constant", 13);
	lrt_attr_int(&n, "value_int", -7);
	run_i(&n, 0, NULL, D(-7), "Constant value_int is a scalar");

	lrt_init(&n, "Constant", 13);
	lrt_attr_ints(&n, "value_ints", 4, D(1, -1, 0, 5));
	run_i(&n, 1, D(4), D(1, -1, 0, 5), "Constant value_ints");

	lrt_init(&n, "Constant", 13);
	lrt_attr_str(&n, "value_string", "hello");
	run_fail(&n, 1, LR_EUNSUPPORTED, "value_string", NULL, "Constant value_string is unsupported");

	lrt_init(&n, "Constant", 13);
	run_fail(&n, 1, LR_EMODEL, "value", NULL, "Constant without a value fails");
	lr_tensor_free(t);
	lr_tensor_free(ti);
}

static void test_shape(void)
{
	lr_tensor *x = lrt_f(3, D(2, 3, 4), NULL);
	lrt_node n;

	memset(x->data, 0, lr_tensor_bytes(x));
	lrt_init(&n, "Shape", 13);
	lrt_input(&n, x);
	run_i(&n, 1, D(3), D(2, 3, 4), "Shape");

	lrt_init(&n, "Shape", 13);
	lrt_attr_int(&n, "start", 1);
	lrt_input(&n, x);
	run_i(&n, 1, D(3), D(2, 3, 4), "Shape ignores 'start' before opset 15");

	lrt_init(&n, "Shape", 15);
	lrt_attr_int(&n, "start", 1);
	lrt_input(&n, x);
	run_i(&n, 1, D(2), D(3, 4), "Shape start=1 (opset 15)");

	lrt_init(&n, "Shape", 15);
	lrt_attr_int(&n, "end", -1);
	lrt_input(&n, x);
	run_i(&n, 1, D(2), D(2, 3), "Shape end=-1");

	lrt_init(&n, "Shape", 15);
	lrt_attr_int(&n, "start", -10);
	lrt_attr_int(&n, "end", 10);
	lrt_input(&n, x);
	run_i(&n, 1, D(3), D(2, 3, 4), "Shape start/end clamped");

	lrt_init(&n, "Shape", 19);
	lrt_attr_int(&n, "start", 2);
	lrt_attr_int(&n, "end", 1);
	lrt_input(&n, x);
	run_i(&n, 1, D(0), D(0), "Shape start > end is empty");
	lr_tensor_free(x);
}

static void test_gather(void)
{
	lr_tensor *x = lrt_f(2, D(3, 2), F(1, 2, 3, 4, 5, 6));
	lr_tensor *i2 = lrt_i(1, D(2), D(2, 0)), *is = lrt_i(0, NULL, D(-1));
	lr_tensor *i22 = lrt_i(2, D(2, 2), D(0, 1, 1, -3)), *ibad = lrt_i(1, D(2), D(0, 3));
	lr_tensor *shp = lrt_i(1, D(4), D(1, 3, 224, 224)), *fi = lrt_f(1, D(1), F(0));
	lrt_node n;

	lrt_init(&n, "Gather", 13);
	lrt_input(&n, x);
	lrt_const(&n, i2);
	run_f(&n, 2, D(2, 2), F(5, 6, 1, 2), "Gather axis 0");

	lrt_init(&n, "Gather", 11);
	lrt_attr_int(&n, "axis", -1);
	lrt_input(&n, x);
	lrt_const(&n, is);
	run_f(&n, 1, D(3), F(2, 4, 6), "Gather scalar index -1 on axis -1 drops the axis");

	lrt_init(&n, "Gather", 13);
	lrt_input(&n, x);
	lrt_const(&n, i22);
	run_f(&n, 3, D(2, 2, 2), F(1, 2, 3, 4, 3, 4, 1, 2), "Gather 2-D indices with -3");

	lrt_init(&n, "Gather", 13);
	lrt_input(&n, shp);
	lrt_const(&n, is);
	run_i(&n, 0, NULL, D(224), "Gather on an int64 shape vector");

	lrt_init(&n, "Gather", 13);
	lrt_input(&n, x);
	lrt_const(&n, ibad);
	run_fail(&n, 1, LR_EMODEL, "index 3", "Gather", "Gather index out of range names the node");

	lrt_init(&n, "Gather", 13);
	lrt_input(&n, x);
	lrt_const(&n, fi);
	run_fail(&n, 1, LR_EMODEL, "indices", NULL, "Gather with float indices fails");

	lr_tensor_free(x);
	lr_tensor_free(i2);
	lr_tensor_free(is);
	lr_tensor_free(i22);
	lr_tensor_free(ibad);
	lr_tensor_free(shp);
	lr_tensor_free(fi);
}

/* ---- Slice -------------------------------------------------------------- */

/* Slice through inputs (opset 13) with a naive reference. */
static void slice_check(int r, const int64_t *dims, int ns, const int64_t *starts,
			const int64_t *ends, const int64_t *axes, const int64_t *steps,
			const int64_t *od, const float *expect, const char *name)
{
	lr_tensor *x = iota_f(r, dims);
	lr_tensor *ts = lrt_i(1, (int64_t[]){ ns }, starts), *te = lrt_i(1, (int64_t[]){ ns }, ends);
	lr_tensor *ta = axes ? lrt_i(1, (int64_t[]){ ns }, axes) : NULL;
	lr_tensor *tp = steps ? lrt_i(1, (int64_t[]){ ns }, steps) : NULL;
	lrt_node n;

	lrt_init(&n, "Slice", 13);
	lrt_input(&n, x);
	lrt_const(&n, ts);
	lrt_const(&n, te);
	if (ta != NULL)
		lrt_const(&n, ta);
	else if (tp != NULL)
		lrt_skip(&n);
	if (tp != NULL)
		lrt_const(&n, tp);
	run_f(&n, r, od, expect, name);
	lr_tensor_free(x);
	lr_tensor_free(ts);
	lr_tensor_free(te);
	lr_tensor_free(ta);
	lr_tensor_free(tp);
}

static void test_slice(void)
{
	lr_tensor *x = iota_f(2, D(3, 4));
	lr_tensor *s0 = lrt_i(1, D(1), D(0)), *e0 = lrt_i(1, D(1), D(1)), *z = lrt_i(1, D(1), D(0));
	lr_tensor *shp = lrt_i(1, D(4), D(1, 3, 224, 224));
	lrt_node n;

	lrt_init(&n, "Slice", 9);
	lrt_attr_ints(&n, "starts", 2, D(1, 1));
	lrt_attr_ints(&n, "ends", 2, D(3, -1));
	lrt_input(&n, x);
	run_f(&n, 2, D(2, 2), F(5, 6, 9, 10), "Slice attributes, default axes (opset 9)");

	lrt_init(&n, "Slice", 9);
	lrt_attr_ints(&n, "starts", 1, D(-2));
	lrt_attr_ints(&n, "ends", 1, D(INT64_MAX));
	lrt_attr_ints(&n, "axes", 1, D(1));
	lrt_input(&n, x);
	run_f(&n, 2, D(3, 2), F(2, 3, 6, 7, 10, 11), "Slice attribute axes, INT64_MAX end (opset 9)");

	lrt_init(&n, "Slice", 9);
	lrt_input(&n, x);
	lrt_const(&n, s0);
	lrt_const(&n, e0);
	run_fail(&n, 1, LR_EMODEL, "opset 10", NULL, "Slice inputs before opset 10 fail");

	slice_check(2, D(3, 4), 2, D(0, 1), D(3, 4), D(0, 1), D(2, 2), D(2, 2),
		    F(1, 3, 9, 11), "Slice steps 2");
	slice_check(1, D(5), 1, D(-1), D(INT64_MIN), NULL, D(-1), D(5),
		    F(4, 3, 2, 1, 0), "Slice reverse with INT64_MIN end");
	slice_check(1, D(5), 1, D(INT64_MAX), D(-INT64_MAX), D(0), D(-2), D(3),
		    F(4, 2, 0), "Slice step -2 from INT64_MAX");
	slice_check(2, D(3, 4), 2, D(-1, 3), D(-4, 0), D(-1, 0), D(-1, -1), D(2, 3),
		    F(11, 10, 9, 7, 6, 5), "Slice negative axes and steps");
	slice_check(2, D(3, 4), 1, D(10), D(20), D(1), NULL, D(3, 0), F(0),
		    "Slice start beyond the end is empty");
	slice_check(2, D(3, 4), 1, D(1), D(1000), D(0), D(INT64_MAX), D(1, 4),
		    F(4, 5, 6, 7), "Slice huge step takes one row");
	slice_check(2, D(3, 4), 1, D(1), D(-1000), D(0), D(INT64_MIN), D(1, 4),
		    F(4, 5, 6, 7), "Slice INT64_MIN step takes one row");
	slice_check(3, D(2, 3, 4), 2, D(1, -3), D(2, 100), D(0, 2), NULL, D(1, 3, 3),
		    F(13, 14, 15, 17, 18, 19, 21, 22, 23), "Slice rows of a 3-D tensor");
	slice_check(2, D(3, 4), 2, D(0, 0), D(INT64_MAX, INT64_MAX), NULL, NULL, D(3, 4),
		    F(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), "Slice of everything");

	lrt_init(&n, "Slice", 13);
	lrt_input(&n, x);
	lrt_const(&n, s0);
	lrt_const(&n, e0);
	lrt_skip(&n);
	lrt_const(&n, z);
	run_fail(&n, 1, LR_EMODEL, "step", NULL, "Slice step 0 fails");

	lrt_init(&n, "Slice", 13);
	lrt_input(&n, shp);
	lrt_const(&n, s0);
	lrt_const(&n, e0);
	run_i(&n, 1, D(1), D(1), "Slice of an int64 shape vector");

	lr_tensor_free(x);
	lr_tensor_free(s0);
	lr_tensor_free(e0);
	lr_tensor_free(z);
	lr_tensor_free(shp);
}

/* ---- randomized checks against naive references ------------------------ */

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

/* A random slice (in-range starts, ends that may run past either end). */
static int slice_random_ok(void)
{
	int r = 1 + (int)(rnd() % 5), ns = 0;
	int64_t dims[LR_MAX_DIMS], st[LR_MAX_DIMS], en[LR_MAX_DIMS], ax[LR_MAX_DIMS];
	int64_t sp[LR_MAX_DIMS], first[LR_MAX_DIMS], step[LR_MAX_DIMS], od[LR_MAX_DIMS];
	int64_t ist[LR_MAX_DIMS], idx[LR_MAX_DIMS] = { 0 }, s = 1;
	lr_tensor *x, *ts, *te, *ta, *tp, *out[1];
	lr_msg msg = { "" };
	lrt_node n;
	int rc, ok;

	for (int k = 0; k < r; k++)
		dims[k] = 1 + (int64_t)(rnd() % (k == r - 1 ? 40 : 7));
	for (int k = r - 1; k >= 0; k--) {
		ist[k] = s;
		s *= dims[k];
	}
	for (int k = 0; k < r; k++) {
		first[k] = 0;
		step[k] = 1;
		od[k] = dims[k];
		if (rnd() % 3 == 0)
			continue;
		/* Reference: walk from b by stp while inside [lo, hi). */
		int64_t d = dims[k], b = (int64_t)(rnd() % (uint32_t)d);
		int64_t stp = (int64_t)(rnd() % 3) + 1, e, cnt = 0;

		if (rnd() % 2)
			stp = -stp;
		if (stp > 0) {
			e = b + (int64_t)(rnd() % (uint32_t)(d + 3)); /* may pass the end */
			for (int64_t i = b; i < e && i < d; i += stp)
				cnt++;
		} else {
			e = b - (int64_t)(rnd() % (uint32_t)(d + 3)); /* may pass 0 */
			for (int64_t i = b; i > e && i >= 0; i += stp)
				cnt++;
		}
		/* Encode: negative start sometimes, end below 0 as -(d+1)-... */
		st[ns] = rnd() % 2 ? b - d : b;
		en[ns] = e < 0 ? e - d - 1000 : (e >= d ? INT64_MAX : e);
		ax[ns] = rnd() % 2 ? k - r : k;
		sp[ns] = stp;
		ns++;
		first[k] = b;
		step[k] = stp;
		od[k] = cnt;
	}
	x = iota_f(r, dims);
	ts = lrt_i(1, (int64_t[]){ ns }, st);
	te = lrt_i(1, (int64_t[]){ ns }, en);
	ta = lrt_i(1, (int64_t[]){ ns }, ax);
	tp = lrt_i(1, (int64_t[]){ ns }, sp);
	lrt_init(&n, "Slice", 13);
	lrt_input(&n, x);
	lrt_const(&n, ts);
	lrt_const(&n, te);
	lrt_const(&n, ta);
	lrt_const(&n, tp);
	rc = lrt_run(&n, 1, out, &msg);
	ok = rc == 0 && same_shape(out[0], r, od);
	for (int64_t i = 0; ok && i < out[0]->nelem; i++) {
		int64_t src = 0;

		for (int k = 0; k < r; k++)
			src += (first[k] + idx[k] * step[k]) * ist[k];
		ok = ((float *)out[0]->data)[i] == (float)src;
		for (int k = r - 1; k >= 0; k--) {
			if (++idx[k] < od[k])
				break;
			idx[k] = 0;
		}
	}
	if (!ok) {
		tap_diag("rc %d %s", rc, msg.text);
		show("input", x);
		show("starts", ts);
		show("ends", te);
		show("axes", ta);
		show("steps", tp);
		if (rc == 0)
			show("got", out[0]);
	}
	if (rc == 0)
		lr_tensor_free(out[0]);
	lr_tensor_free(x);
	lr_tensor_free(ts);
	lr_tensor_free(te);
	lr_tensor_free(ta);
	lr_tensor_free(tp);
	return ok;
}

static void test_random(void)
{
	int ok = 1;

	for (int t = 0; t < 200 && ok; t++) {
		int r = 1 + (int)(rnd() % 6);
		int64_t dims[LR_MAX_DIMS], perm[LR_MAX_DIMS];

		for (int k = 0; k < r; k++) {
			dims[k] = 1 + (int64_t)(rnd() % (rnd() % 4 == 0 ? 40 : 5));
			perm[k] = k;
		}
		for (int k = r - 1; k > 0; k--) {
			int j = (int)(rnd() % (uint32_t)(k + 1));
			int64_t tmp = perm[k];

			perm[k] = perm[j];
			perm[j] = tmp;
		}
		ok = transpose_check(r, dims, perm, (int)(rnd() % 2), NULL);
		if (!ok)
			tap_diag("failed: rank %d dims %s perm %s", r,
				 lr_shape_str(r, dims, (char[200]){ 0 }, 200),
				 lr_shape_str(r, perm, (char[200]){ 0 }, 200));
	}
	tap_ok(ok, "200 random transposes match the naive reference");
	ok = 1;
	for (int t = 0; t < 300 && ok; t++)
		ok = slice_random_ok();
	tap_ok(ok, "300 random slices match the naive reference");
}

/* ---- Pad ---------------------------------------------------------------- */

static void test_pad(void)
{
	lr_tensor *x = lrt_f(2, D(3, 3), F(1, 2, 3, 4, 5, 6, 7, 8, 9));
	lr_tensor *x4 = lrt_f(1, D(4), F(1, 2, 3, 4));
	lr_tensor *xi = lrt_i(2, D(1, 2), D(5, 6));
	lr_tensor *p_ref = lrt_i(1, D(4), D(1, 2, 2, 1)), *p_edge = lrt_i(1, D(4), D(0, 2, 1, 0));
	lr_tensor *p_wrap = lrt_i(1, D(4), D(1, 0, 0, 4)), *p_big = lrt_i(1, D(2), D(5, 4));
	lr_tensor *p_neg = lrt_i(1, D(4), D(-1, 1, 0, -2)), *p_ax = lrt_i(1, D(2), D(1, 0));
	lr_tensor *ax = lrt_i(1, D(1), D(-1)), *cv = lrt_f(0, NULL, F(-1));
	lr_tensor *p_i = lrt_i(1, D(4), D(0, 1, 1, 0)), *cvi = lrt_i(0, NULL, D(9));
	lrt_node n;

	lrt_init(&n, "Pad", 10);
	lrt_attr_ints(&n, "pads", 4, D(1, 0, 0, 1));
	lrt_attr_float(&n, "value", 0.5f);
	lrt_input(&n, x);
	run_f(&n, 2, D(4, 4), F(0.5f, 0.5f, 0.5f, 0.5f, 1, 2, 3, 0.5f, 4, 5, 6, 0.5f, 7, 8, 9, 0.5f),
	      "Pad 'pads'/'value' attributes (opset 10)");

	lrt_init(&n, "Pad", 11);
	lrt_attr_str(&n, "mode", "reflect");
	lrt_input(&n, x);
	lrt_const(&n, p_ref);
	run_f(&n, 2, D(6, 6), F(6, 5, 4, 5, 6, 5, 3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5,
				9, 8, 7, 8, 9, 8, 6, 5, 4, 5, 6, 5, 3, 2, 1, 2, 3, 2),
	      "Pad reflect (numpy)");

	lrt_init(&n, "Pad", 13);
	lrt_attr_str(&n, "mode", "reflect");
	lrt_input(&n, x4);
	lrt_const(&n, p_big);
	run_f(&n, 1, D(13), F(2, 3, 4, 3, 2, 1, 2, 3, 4, 3, 2, 1, 2),
	      "Pad reflect wider than the input (numpy)");

	lrt_init(&n, "Pad", 11);
	lrt_attr_str(&n, "mode", "edge");
	lrt_input(&n, x);
	lrt_const(&n, p_edge);
	run_f(&n, 2, D(4, 5), F(1, 1, 1, 2, 3, 4, 4, 4, 5, 6, 7, 7, 7, 8, 9, 7, 7, 7, 8, 9),
	      "Pad edge (numpy)");

	lrt_init(&n, "Pad", 19);
	lrt_attr_str(&n, "mode", "wrap");
	lrt_input(&n, x);
	lrt_const(&n, p_wrap);
	run_f(&n, 2, D(4, 7), F(7, 8, 9, 7, 8, 9, 7, 1, 2, 3, 1, 2, 3, 1, 4, 5, 6, 4, 5, 6, 4,
				7, 8, 9, 7, 8, 9, 7),
	      "Pad wrap (opset 19, numpy)");

	lrt_init(&n, "Pad", 18);
	lrt_attr_str(&n, "mode", "wrap");
	lrt_input(&n, x);
	lrt_const(&n, p_wrap);
	run_fail(&n, 1, LR_EUNSUPPORTED, "wrap", NULL, "Pad wrap before opset 19 fails");

	lrt_init(&n, "Pad", 13);
	lrt_input(&n, x);
	lrt_const(&n, p_neg);
	lrt_const(&n, cv);
	run_f(&n, 2, D(2, 2), F(-1, 4, -1, 7), "Pad negative pads crop, constant_value input");

	lrt_init(&n, "Pad", 18);
	lrt_input(&n, x);
	lrt_const(&n, p_ax);
	lrt_skip(&n);
	lrt_const(&n, ax);
	run_f(&n, 2, D(3, 4), F(0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9), "Pad axes input [-1] (opset 18)");

	lrt_init(&n, "Pad", 13);
	lrt_input(&n, x);
	lrt_const(&n, p_ax);
	lrt_skip(&n);
	lrt_const(&n, ax);
	run_fail(&n, 1, LR_EMODEL, "opset 18", NULL, "Pad axes input before opset 18 fails");

	lrt_init(&n, "Pad", 13);
	lrt_input(&n, xi);
	lrt_const(&n, p_i);
	lrt_const(&n, cvi);
	run_i(&n, 2, D(2, 3), D(9, 5, 6, 9, 9, 9), "Pad int64 with an int64 constant");

	lrt_init(&n, "Pad", 13);
	lrt_input(&n, x);
	lrt_const(&n, p_ax);
	run_fail(&n, 1, LR_EMODEL, "pads", NULL, "Pad with too few pads fails");

	lr_tensor_free(x);
	lr_tensor_free(x4);
	lr_tensor_free(xi);
	lr_tensor_free(p_ref);
	lr_tensor_free(p_edge);
	lr_tensor_free(p_wrap);
	lr_tensor_free(p_big);
	lr_tensor_free(p_neg);
	lr_tensor_free(p_ax);
	lr_tensor_free(ax);
	lr_tensor_free(cv);
	lr_tensor_free(p_i);
	lr_tensor_free(cvi);
}

/* ---- Cast --------------------------------------------------------------- */

static void cast_f(lr_tensor *x, int64_t to, const int64_t *dims, const float *v,
		   const char *name)
{
	lrt_node n;

	lrt_init(&n, "Cast", 13);
	lrt_attr_int(&n, "to", to);
	lrt_input(&n, x);
	run_f(&n, x->ndim, dims, v, name);
}

static void cast_i(lr_tensor *x, int64_t to, const int64_t *v, const char *name)
{
	lrt_node n;

	lrt_init(&n, "Cast", 13);
	lrt_attr_int(&n, "to", to);
	lrt_input(&n, x);
	run_i(&n, x->ndim, x->dims, v, name);
}

static void test_cast(void)
{
	lr_tensor *f = lrt_f(1, D(8), F(1.7f, -1.7f, 300.0f, -1.0f, 128.0f, 0.5f, 0.0f, -0.0f));
	lr_tensor *h = lrt_f(1, D(10), F(0.1f, 65519.0f, 65520.0f, 1e-8f, 3.1e-6f, -2.5e-7f,
					  1.00048828125f, 1.000732421875f, 70000.0f, -0.0f));
	lr_tensor *b = lrt_f(1, D(4), F(1.00390625f, 1.01171875f, -3.0e38f, 1.0f));
	lr_tensor *i = lrt_i(1, D(4), D(200, -1, 65537, INT64_MAX));
	lrt_node n;

	cast_i(f, 6, D(1, -1, 300, -1, 128, 0, 0, 0), "Cast float -> int32 truncates");
	cast_i(f, 2, D(1, 255, 44, 255, 128, 0, 0, 0), "Cast float -> uint8 wraps");
	cast_i(f, 3, D(1, -1, 44, -1, -128, 0, 0, 0), "Cast float -> int8 wraps");
	cast_i(f, 9, D(1, 1, 1, 1, 1, 1, 0, 0), "Cast float -> bool is nonzero");
	cast_i(i, 3, D(-56, -1, 1, -1), "Cast int64 -> int8 wraps");
	cast_i(i, 4, D(200, 65535, 1, 65535), "Cast int64 -> uint16 wraps");
	cast_i(i, 12, D(200, 4294967295LL, 65537, 4294967295LL), "Cast int64 -> uint32 wraps");
	cast_i(i, 7, D(200, -1, 65537, INT64_MAX), "Cast int64 -> int64 is exact");
	cast_f(i, 1, i->dims, F(200, -1, 65537, 9.223372e18f), "Cast int64 -> float");
	cast_f(h, 10, h->dims, F(0.0999755859375f, 65504.0f, INFINITY, 0.0f, 3.0994415283203125e-06f,
				 -2.384185791015625e-07f, 1.0f, 1.0009765625f, INFINITY, -0.0f),
	       "Cast float -> float16 rounds like numpy");
	cast_f(b, 16, b->dims, F(1.0f, 1.015625f, -3.00405527047391e+38f, 1.0f),
	       "Cast float -> bfloat16 rounds to nearest even");
	cast_f(f, 11, f->dims, f->data, "Cast float -> double keeps the values");

	lrt_init(&n, "Cast", 13);
	lrt_attr_int(&n, "to", 8);
	lrt_input(&n, f);
	run_fail(&n, 1, LR_EUNSUPPORTED, "string", NULL, "Cast to string is unsupported");

	lrt_init(&n, "Cast", 13);
	lrt_input(&n, f);
	run_fail(&n, 1, LR_EMODEL, "'to'", NULL, "Cast without 'to' fails");
	lr_tensor_free(f);
	lr_tensor_free(h);
	lr_tensor_free(b);
	lr_tensor_free(i);
}

/* ---- multi-node graphs and dry runs ------------------------------------- */

#define GB_MAX 8

/* A small graph builder: nodes with up to 4 inputs, 2 outputs, 2 attrs. */
typedef struct gb {
	Onnx__NodeProto node[GB_MAX], *nodep[GB_MAX];
	char *nin[GB_MAX][4], *nout[GB_MAX][2];
	Onnx__AttributeProto attr[GB_MAX][2], *attrp[GB_MAX][2];
	int nnode;
	Onnx__TensorProto init[GB_MAX], *initp[GB_MAX];
	int ninit;
	struct lrt_vi gin[2], gout[2];
	Onnx__ValueInfoProto *ginp[2], *goutp[2];
	int ngin, ngout;
} gb;

static Onnx__NodeProto *gb_node(gb *g, char *op, int nin, char **in, char *out)
{
	Onnx__NodeProto *p = &g->node[g->nnode];

	onnx__node_proto__init(p);
	p->op_type = op;
	for (int i = 0; i < nin; i++)
		g->nin[g->nnode][i] = in[i];
	g->nout[g->nnode][0] = out;
	p->n_input = (size_t)nin;
	p->input = g->nin[g->nnode];
	p->n_output = 1;
	p->output = g->nout[g->nnode];
	p->attribute = g->attrp[g->nnode];
	g->nodep[g->nnode] = p;
	g->nnode++;
	return p;
}

static void gb_attr_int(gb *g, char *name, int64_t v)
{
	int k = g->nnode - 1;
	Onnx__NodeProto *p = &g->node[k];
	Onnx__AttributeProto *a = &g->attr[k][p->n_attribute];

	onnx__attribute_proto__init(a);
	a->name = name;
	a->has_type = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	a->has_i = 1;
	a->i = v;
	g->attrp[k][p->n_attribute++] = a;
}

static void gb_init(gb *g, char *name, const lr_tensor *t)
{
	Onnx__TensorProto *tp = &g->init[g->ninit];

	onnx__tensor_proto__init(tp);
	tp->name = name;
	tp->n_dims = (size_t)t->ndim;
	tp->dims = (int64_t *)t->dims;
	tp->has_data_type = 1;
	tp->data_type = (int32_t)t->dtype;
	tp->has_raw_data = 1;
	tp->raw_data.data = t->data;
	tp->raw_data.len = lr_tensor_bytes(t);
	g->initp[g->ninit++] = tp;
}

/* Loads the graph (input x fed with `x`), runs it (dry or not), one output. */
static int gb_run(gb *g, int64_t opset, lr_tensor *x, int dry, lr_tensor **out,
		  lr_msg *msg)
{
	char xname[] = "x", yname[] = "y";
	lr_model *m = NULL;
	lr_engine *e = NULL;
	int rc;

	*out = NULL;
	lrt_vi_fill(&g->gin[0], xname, x);
	g->ginp[0] = &g->gin[0].vi;
	lrt_vi_fill(&g->gout[0], yname, NULL);
	g->goutp[0] = &g->gout[0].vi;
	rc = lrt_load_nodes(g->nodep, g->nnode, g->ginp, 1, g->goutp, 1, g->initp, g->ninit, opset,
			    "gb", &m, msg);
	if (rc == 0)
		rc = lr_engine_create(&e, m, 1);
	if (rc == 0)
		rc = lr_engine_run(e, &x, 1, out, 1, dry, msg);
	lr_engine_free(e);
	lr_model_free(m);
	return rc;
}

/*
 * x[2,3,4] -> Shape -> Gather(0) -> Unsqueeze -> Concat(.., [-1]) ->
 * Reshape(x, .) = y[2,12]; and Transpose/Slice/Pad on the way in dry mode.
 */
static void test_dry_chain(void)
{
	lr_tensor *x = iota_f(3, D(2, 3, 4)), *xs = NULL, *y = NULL;
	lr_tensor *i0 = lrt_i(0, NULL, D(0)), *ax0 = lrt_i(1, D(1), D(0));
	lr_tensor *m1 = lrt_i(1, D(1), D(-1)), *st = lrt_i(1, D(1), D(1));
	lr_tensor *en = lrt_i(1, D(1), D(INT64_MAX)), *pads = lrt_i(1, D(4), D(0, 1, 0, 2));
	lr_msg msg = { "" };
	gb g;
	int rc, ok;

	lr_tensor_create(&xs, LR_DT_FLOAT, 3, D(2, 3, 4), 0);
	memset(&g, 0, sizeof(g));
	gb_init(&g, "i0", i0);
	gb_init(&g, "ax0", ax0);
	gb_init(&g, "m1", m1);
	gb_node(&g, "Shape", 1, (char *[]){ "x" }, "s");
	gb_node(&g, "Gather", 2, (char *[]){ "s", "i0" }, "n");
	gb_node(&g, "Unsqueeze", 2, (char *[]){ "n", "ax0" }, "n1");
	gb_node(&g, "Concat", 2, (char *[]){ "n1", "m1" }, "shp");
	gb_attr_int(&g, "axis", 0);
	gb_node(&g, "Reshape", 2, (char *[]){ "x", "shp" }, "y");

	rc = gb_run(&g, 13, xs, 1, &y, &msg);
	tap_ok(rc == 0 && same_shape(y, 2, D(2, 12)) && y->data == NULL,
	       "dry run: Shape->Gather->Unsqueeze->Concat->Reshape gives [2,12] without data%s%s",
	       rc ? ": " : "", msg.text);
	lr_tensor_free(y);
	rc = gb_run(&g, 13, x, 0, &y, &msg);
	ok = rc == 0 && same_shape(y, 2, D(2, 12));
	for (int64_t k = 0; ok && k < 24; k++)
		ok = ((float *)y->data)[k] == (float)k;
	tap_ok(ok, "real run of the same chain%s%s", rc ? ": " : "", msg.text);
	lr_tensor_free(y);

	/* Shape -> Slice -> Pad on int64 values in a dry run. */
	memset(&g, 0, sizeof(g));
	gb_init(&g, "st", st);
	gb_init(&g, "en", en);
	gb_init(&g, "pads", pads);
	gb_node(&g, "Shape", 1, (char *[]){ "x" }, "s");
	gb_node(&g, "Slice", 3, (char *[]){ "s", "st", "en" }, "s1");
	gb_init(&g, "ax0", ax0);
	gb_node(&g, "Unsqueeze", 2, (char *[]){ "s1", "ax0" }, "s2");
	gb_node(&g, "Pad", 2, (char *[]){ "s2", "pads" }, "y");
	rc = gb_run(&g, 13, xs, 1, &y, &msg);
	check_i(y, 2, D(1, 5), D(0, 3, 4, 0, 0), "dry run computes int64 Shape->Slice->Unsqueeze->Pad");
	if (rc != 0)
		tap_diag("%s", msg.text);
	lr_tensor_free(y);

	/* Transpose/Squeeze/Flatten/Split stay shape-only in a dry run. */
	memset(&g, 0, sizeof(g));
	gb_node(&g, "Transpose", 1, (char *[]){ "x" }, "t");
	gb_node(&g, "Flatten", 1, (char *[]){ "t" }, "y");
	gb_attr_int(&g, "axis", 2);
	rc = gb_run(&g, 13, xs, 1, &y, &msg);
	tap_ok(rc == 0 && same_shape(y, 2, D(12, 2)) && y->data == NULL,
	       "dry run: Transpose->Flatten shapes only%s%s", rc ? ": " : "", msg.text);
	lr_tensor_free(y);

	/* Real run where each kernel may take its input's buffer. */
	memset(&g, 0, sizeof(g));
	gb_init(&g, "ax0", ax0);
	gb_node(&g, "Identity", 1, (char *[]){ "x" }, "a");
	gb_node(&g, "Unsqueeze", 2, (char *[]){ "a", "ax0" }, "b");
	gb_node(&g, "Dropout", 1, (char *[]){ "b" }, "c");
	gb_node(&g, "Flatten", 1, (char *[]){ "c" }, "d");
	gb_attr_int(&g, "axis", 3);
	gb_node(&g, "Squeeze", 1, (char *[]){ "d" }, "e");
	gb_node(&g, "Transpose", 1, (char *[]){ "e" }, "f");
	gb_node(&g, "Cast", 1, (char *[]){ "f" }, "y");
	gb_attr_int(&g, "to", 1);
	rc = gb_run(&g, 13, x, 0, &y, &msg);
	ok = rc == 0 && same_shape(y, 2, D(4, 6));
	for (int64_t k = 0; ok && k < 24; k++)
		ok = ((float *)y->data)[k] == (float)((k % 6) * 4 + k / 6);
	tap_ok(ok, "real run: Identity->Unsqueeze->Dropout->Flatten->Squeeze->Transpose->Cast%s%s",
	       rc ? ": " : "", msg.text);
	lr_tensor_free(y);

	/* Cast float -> int64 of an activation cannot run dry. */
	memset(&g, 0, sizeof(g));
	gb_node(&g, "Cast", 1, (char *[]){ "x" }, "y");
	gb_attr_int(&g, "to", 7);
	msg.text[0] = '\0';
	rc = gb_run(&g, 13, xs, 1, &y, &msg);
	tap_ok(rc == LR_EUNSUPPORTED && strstr(msg.text, "dry run") != NULL,
	       "dry run: Cast of an activation to int64 fails clearly");
	tap_diag("%s", msg.text);
	lr_tensor_free(y);

	/* A small float Constant keeps its values in a dry run. */
	memset(&g, 0, sizeof(g));
	gb_node(&g, "Shape", 1, (char *[]){ "x" }, "s");
	gb_node(&g, "Cast", 1, (char *[]){ "s" }, "sf");
	gb_attr_int(&g, "to", 1);
	gb_node(&g, "Gather", 2, (char *[]){ "sf", "i0" }, "y");
	gb_init(&g, "i0", i0);
	rc = gb_run(&g, 13, xs, 1, &y, &msg);
	tap_ok(rc == 0 && y != NULL && y->data != NULL && ((float *)y->data)[0] == 2.0f,
	       "dry run: Shape->Cast(float)->Gather keeps small float values%s%s",
	       rc ? ": " : "", msg.text);
	lr_tensor_free(y);

	lr_tensor_free(x);
	lr_tensor_free(xs);
	lr_tensor_free(i0);
	lr_tensor_free(ax0);
	lr_tensor_free(m1);
	lr_tensor_free(st);
	lr_tensor_free(en);
	lr_tensor_free(pads);
}

/* ---- Opsets 1-6: the signatures that changed later ------------------------ */

static void test_legacy(void)
{
	lr_tensor *x = iota_f(2, D(2, 3)), *y = iota_f(2, D(2, 3));
	lr_tensor *sp = lrt_i(1, D(2), D(1, 2)), *sh = lrt_i(1, D(2), D(3, 2));
	lr_tensor *x4 = iota_f(4, D(1, 1, 2, 2));
	lr_tensor *outs[2];
	lr_msg msg = { "" };
	lrt_node n;
	int rc;

	lrt_init(&n, "Reshape", 4);
	lrt_attr_ints(&n, "shape", 2, D(3, -1));
	lrt_input(&n, x);
	run_f(&n, 2, D(3, 2), x->data, "Reshape-4 takes the shape from its attribute");
	lrt_init(&n, "Reshape", 1);
	lrt_input(&n, x);
	lrt_const(&n, sh);
	run_fail(&n, 1, LR_EMODEL, "attribute, not an input", NULL,
		 "Reshape-1 with a shape input fails");

	lrt_init(&n, "Concat", 3);
	lrt_input(&n, x);
	lrt_input(&n, y);
	run_f(&n, 2, D(2, 6), F(0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5),
	      "Concat-3 without 'axis' joins along axis 1");
	lrt_init(&n, "Concat", 4);
	lrt_input(&n, x);
	lrt_input(&n, y);
	run_fail(&n, 1, LR_EMODEL, "'axis' is required", NULL, "Concat-4 without 'axis' fails");

	lrt_init(&n, "Split", 1);
	lrt_attr_int(&n, "axis", 1);
	lrt_input(&n, x);
	lrt_const(&n, sp);
	rc = lrt_run(&n, 2, outs, &msg);
	tap_ok(rc == 0 && outs[0]->dims[1] == 1 && outs[1]->dims[1] == 2 &&
	       ((float *)outs[1]->data)[3] == 5.0f,
	       "Split-1 takes the sizes [1,2] from input 1 (%s)", msg.text);
	if (rc == 0) {
		lr_tensor_free(outs[0]);
		lr_tensor_free(outs[1]);
	}
	lrt_fini(&n);

	lrt_init(&n, "Pad", 1);
	lrt_attr_ints(&n, "paddings", 8, D(0, 0, 1, 0, 0, 0, 0, 1));
	lrt_attr_float(&n, "value", 9.0f);
	lrt_input(&n, x4);
	run_f(&n, 4, D(1, 1, 3, 3), F(9, 9, 9, 0, 1, 9, 2, 3, 9),
	      "Pad-1 reads 'paddings' and 'value'");
	lrt_init(&n, "Pad", 2);
	lrt_attr_ints(&n, "paddings", 8, D(0, 0, 1, 0, 0, 0, 0, 1));
	lrt_input(&n, x4);
	run_fail(&n, 1, LR_EMODEL, "'pads' is required", NULL, "Pad-2 ignores 'paddings'");

	lrt_init(&n, "Cast", 5);
	lrt_attr_str(&n, "to", "INT64");
	lrt_input(&n, x);
	run_i(&n, 2, D(2, 3), D(0, 1, 2, 3, 4, 5), "Cast-5 with to=\"INT64\" (a string)");
	lrt_init(&n, "Cast", 1);
	lrt_attr_str(&n, "to", "COMPLEX");
	lrt_input(&n, x);
	run_fail(&n, 1, LR_EMODEL, "\"COMPLEX\" names no ONNX type", NULL,
		 "Cast-1 to an unknown type name fails naming it");

	lrt_init(&n, "Dropout", 6);
	lrt_attr_int(&n, "is_test", 1);
	lrt_input(&n, x);
	run_f(&n, 2, D(2, 3), x->data, "Dropout-6 with is_test=1 passes X through");
	lrt_init(&n, "Dropout", 6);
	lrt_input(&n, x);
	run_fail(&n, 1, LR_EUNSUPPORTED, "is_test=0", NULL,
		 "Dropout-6 in training mode (is_test=0) is refused");

	lrt_init(&n, "Upsample", 6);
	lrt_attr_float(&n, "height_scale", 2.0f);
	lrt_attr_float(&n, "width_scale", 1.0f);
	lrt_input(&n, x4);
	run_f(&n, 4, D(1, 1, 4, 2), F(0, 1, 0, 1, 2, 3, 2, 3),
	      "Upsample-6 nearest with height_scale=2, width_scale=1");
	lrt_init(&n, "Upsample", 6);
	lrt_attr_float(&n, "height_scale", 2.0f);
	lrt_input(&n, x4);
	run_fail(&n, 1, LR_EMODEL, "'width_scale'", NULL, "Upsample-6 without width_scale fails");

	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_tensor_free(sp);
	lr_tensor_free(sh);
	lr_tensor_free(x4);
}

int main(void)
{
	test_concat();
	test_split();
	test_flatten();
	test_reshape();
	test_squeeze();
	test_identity_dropout();
	test_transpose();
	test_constant();
	test_shape();
	test_gather();
	test_slice();
	test_random();
	test_pad();
	test_cast();
	test_legacy();
	test_dry_chain();
	return tap_done();
}
