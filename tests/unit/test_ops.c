/*
 * test_ops.c - Conv, pooling, Gemm and MatMul against plain double-precision
 * reference loops written here, over randomised shapes (seeded; the seed is
 * printed). Each case runs a one-node model through the real loader and
 * engine (tests/unit/opcheck.h).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"
#include "tests/unit/opcheck.h"
#include "tests/unit/tap.h"

static uint64_t rng = 42;

static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static lr_tensor *rand_tensor(int ndim, const int64_t *dims)
{
	lr_tensor *t = lrt_f(ndim, dims, NULL);

	for (int64_t i = 0; i < t->nelem; i++)
		((float *)t->data)[i] = frand();
	return t;
}

/* Max |a-b| / (1 + |ref|) style check with tolerance. */
static int close_all(const lr_tensor *a, const double *ref, int64_t n, double tol,
		     double *worst)
{
	*worst = 0;
	if (a == NULL || a->nelem != n)
		return 0;
	for (int64_t i = 0; i < n; i++) {
		double e = fabs((double)((const float *)a->data)[i] - ref[i]) / (1.0 + fabs(ref[i]));

		if (!(e <= *worst))
			*worst = e;
	}
	return *worst <= tol;
}

struct conv_case {
	int64_t n, c, h, w, m, kh, kw, group, sh, sw, dh, dw;
	int64_t pads[4];         /* top, left, bottom, right */
	const char *auto_pad;    /* NULL = explicit pads */
	int bias;
	int one_d;               /* 1-D convolution over w (h = kh = 1) */
};

static void conv_case_run(const struct conv_case *cc, const char *label)
{
	int64_t pt = cc->pads[0], pl = cc->pads[1], pb = cc->pads[2], pr = cc->pads[3];
	int64_t oh, ow, cg = cc->c / cc->group, mg = cc->m / cc->group;
	int64_t xd[4] = { cc->n, cc->c, cc->h, cc->w }, wd[4] = { cc->m, cg, cc->kh, cc->kw };
	int64_t xd1[3] = { cc->n, cc->c, cc->w }, wd1[3] = { cc->m, cg, cc->kw };
	lr_tensor *x = cc->one_d ? rand_tensor(3, xd1) : rand_tensor(4, xd);
	lr_tensor *w = cc->one_d ? rand_tensor(3, wd1) : rand_tensor(4, wd);
	lr_tensor *b = rand_tensor(1, (int64_t[]){ cc->m });
	lr_tensor *y = NULL;
	lr_msg msg = { { 0 } };
	lrt_node nd;
	double *ref, worst = 0;
	int rc;

	if (cc->auto_pad != NULL && strncmp(cc->auto_pad, "SAME", 4) == 0) {
		int64_t eh = cc->dh * (cc->kh - 1) + 1, ew = cc->dw * (cc->kw - 1) + 1;
		int64_t th, tw;

		oh = (cc->h + cc->sh - 1) / cc->sh;
		ow = (cc->w + cc->sw - 1) / cc->sw;
		th = (oh - 1) * cc->sh + eh - cc->h;
		tw = (ow - 1) * cc->sw + ew - cc->w;
		th = th < 0 ? 0 : th;
		tw = tw < 0 ? 0 : tw;
		if (strcmp(cc->auto_pad, "SAME_UPPER") == 0) {
			pt = th / 2; pb = th - pt; pl = tw / 2; pr = tw - pl;
		} else {
			pb = th / 2; pt = th - pb; pr = tw / 2; pl = tw - pr;
		}
	} else if (cc->auto_pad != NULL) {
		pt = pl = pb = pr = 0;
	}
	oh = (cc->h + pt + pb - cc->dh * (cc->kh - 1) - 1) / cc->sh + 1;
	ow = (cc->w + pl + pr - cc->dw * (cc->kw - 1) - 1) / cc->sw + 1;
	ref = calloc((size_t)(cc->n * cc->m * oh * ow), sizeof(double));
	for (int64_t n = 0; n < cc->n; n++)
		for (int64_t m = 0; m < cc->m; m++)
			for (int64_t oy = 0; oy < oh; oy++)
				for (int64_t ox = 0; ox < ow; ox++) {
					double acc = cc->bias ? ((float *)b->data)[m] : 0.0;
					int64_t g = m / mg;

					for (int64_t ci = 0; ci < cg; ci++)
						for (int64_t ki = 0; ki < cc->kh; ki++)
							for (int64_t kj = 0; kj < cc->kw; kj++) {
								int64_t iy = oy * cc->sh - pt + ki * cc->dh;
								int64_t ix = ox * cc->sw - pl + kj * cc->dw;

								if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w)
									continue;
								acc += (double)((float *)x->data)[((n * cc->c + g * cg + ci) * cc->h + iy) * cc->w + ix] *
								       (double)((float *)w->data)[((m * cg + ci) * cc->kh + ki) * cc->kw + kj];
							}
					ref[((n * cc->m + m) * oh + oy) * ow + ox] = acc;
				}
	lrt_init(&nd, "Conv", 13);
	lrt_input(&nd, x);
	lrt_const(&nd, w);
	if (cc->bias)
		lrt_const(&nd, b);
	if (cc->group != 1)
		lrt_attr_int(&nd, "group", cc->group);
	if (cc->one_d) {
		lrt_attr_ints(&nd, "strides", 1, (int64_t[]){ cc->sw });
		lrt_attr_ints(&nd, "dilations", 1, (int64_t[]){ cc->dw });
		if (cc->auto_pad == NULL)
			lrt_attr_ints(&nd, "pads", 2, (int64_t[]){ pl, pr });
	} else {
		lrt_attr_ints(&nd, "strides", 2, (int64_t[]){ cc->sh, cc->sw });
		lrt_attr_ints(&nd, "dilations", 2, (int64_t[]){ cc->dh, cc->dw });
		if (cc->auto_pad == NULL)
			lrt_attr_ints(&nd, "pads", 4, (int64_t[]){ pt, pl, pb, pr });
	}
	if (cc->auto_pad != NULL)
		lrt_attr_str(&nd, "auto_pad", cc->auto_pad);
	rc = lrt_run(&nd, 1, &y, &msg);
	rc = rc == 0 && close_all(y, ref, cc->n * cc->m * oh * ow, 1e-5, &worst) ? 0 : (rc ? rc : -1);
	tap_ok(rc == 0 && y->ndim == (cc->one_d ? 3 : 4) &&
	       y->dims[cc->one_d ? 2 : 3] == ow && (cc->one_d || y->dims[2] == oh),
	       "Conv %s: output %lldx%lld matches reference (worst %.2g) %s", label,
	       (long long)oh, (long long)ow, worst, msg.text);
	free(ref);
	lr_tensor_free(x);
	lr_tensor_free(w);
	lr_tensor_free(b);
	lr_tensor_free(y);
}

static void pool_case(const char *op, int64_t h, int64_t w, int64_t k, int64_t s,
		      int64_t pad, int ceil_mode, int include_pad)
{
	int64_t xd[4] = { 2, 3, h, w };
	lr_tensor *x = rand_tensor(4, xd), *y = NULL;
	int is_max = strcmp(op, "MaxPool") == 0;
	int64_t oh, ow, span = h + 2 * pad - k;
	lr_msg msg = { { 0 } };
	lrt_node nd;
	double *ref, worst = 0;
	int rc;

	oh = ceil_mode ? (span + s - 1) / s + 1 : span / s + 1;
	if (ceil_mode && (oh - 1) * s >= h + pad)
		oh--;
	span = w + 2 * pad - k;
	ow = ceil_mode ? (span + s - 1) / s + 1 : span / s + 1;
	if (ceil_mode && (ow - 1) * s >= w + pad)
		ow--;
	ref = calloc((size_t)(6 * oh * ow), sizeof(double));
	for (int64_t p = 0; p < 6; p++)
		for (int64_t oy = 0; oy < oh; oy++)
			for (int64_t ox = 0; ox < ow; ox++) {
				double acc = is_max ? -INFINITY : 0;
				int64_t cnt = 0, cntpad = 0;

				for (int64_t i = 0; i < k; i++)
					for (int64_t j = 0; j < k; j++) {
						int64_t iy = oy * s - pad + i, ix = ox * s - pad + j;

						if (iy < h + pad && ix < w + pad)
							cntpad++;
						if (iy < 0 || ix < 0 || iy >= h || ix >= w)
							continue;
						double v = ((float *)x->data)[(p * h + iy) * w + ix];

						acc = is_max ? fmax(acc, v) : acc + v;
						cnt++;
					}
				ref[(p * oh + oy) * ow + ox] = is_max ? acc : acc / (double)(include_pad ? cntpad : cnt);
			}
	lrt_init(&nd, op, 11);
	lrt_input(&nd, x);
	lrt_attr_ints(&nd, "kernel_shape", 2, (int64_t[]){ k, k });
	lrt_attr_ints(&nd, "strides", 2, (int64_t[]){ s, s });
	lrt_attr_ints(&nd, "pads", 4, (int64_t[]){ pad, pad, pad, pad });
	lrt_attr_int(&nd, "ceil_mode", ceil_mode);
	if (!is_max)
		lrt_attr_int(&nd, "count_include_pad", include_pad);
	rc = lrt_run(&nd, 1, &y, &msg);
	rc = rc == 0 && close_all(y, ref, 6 * oh * ow, 1e-6, &worst) ? 0 : (rc ? rc : -1);
	tap_ok(rc == 0 && y->dims[2] == oh && y->dims[3] == ow,
	       "%s %lldx%lld k%lld s%lld pad%lld ceil%d incl%d -> %lldx%lld (worst %.2g) %s", op,
	       (long long)h, (long long)w, (long long)k, (long long)s, (long long)pad, ceil_mode,
	       include_pad, (long long)oh, (long long)ow, worst, msg.text);
	free(ref);
	lr_tensor_free(x);
	lr_tensor_free(y);
}

/* GlobalAveragePool on [2, 3, h, w] values in [2, 4]: against the mean in
 * double; a dropped or doubled element moves it by at least 2 / (h * w). */
static void gap_case(int64_t h, int64_t w)
{
	int64_t xd[4] = { 2, 3, h, w }, plane = h * w;
	lr_tensor *x = rand_tensor(4, xd), *y = NULL;
	lr_msg msg = { { 0 } };
	lrt_node nd;
	double ref[6], worst = 0;
	int rc;

	for (int64_t p = 0; p < 6; p++) {
		double acc = 0;

		for (int64_t i = 0; i < plane; i++) {
			float *v = (float *)x->data + p * plane + i;

			*v += 3.0f;
			acc += *v;
		}
		ref[p] = acc / (double)plane;
	}
	lrt_init(&nd, "GlobalAveragePool", 1);
	lrt_input(&nd, x);
	rc = lrt_run(&nd, 1, &y, &msg);
	rc = rc == 0 && close_all(y, ref, 6, 1e-6, &worst) ? 0 : (rc ? rc : -1);
	tap_ok(rc == 0 && y->ndim == 4 && y->dims[2] == 1 && y->dims[3] == 1,
	       "GlobalAveragePool %lldx%lld (worst %.2g) %s", (long long)h, (long long)w, worst,
	       msg.text);
	lr_tensor_free(x);
	lr_tensor_free(y);
}

/*
 * GlobalAveragePool and GlobalMaxPool of a channel-blocked X (NCHW16c, as
 * the engine hands them the output of a Conv that writes blocks;
 * ops_pool.c global_blocks): called directly with the blocked tensor, the
 * result must be bit-identical to the C-order run (the same sums in the
 * same order), for planes below, at and past 32 positions (the running
 * sums' tail) and 1x1. AVX-512 only (nothing is blocked otherwise).
 */
static void global_blocked_case(const char *op, int64_t n, int64_t c, int64_t h, int64_t w)
{
	int64_t xd[4] = { n, c, h, w };
	lr_tensor *x = rand_tensor(4, xd), *xb = NULL, *yc = NULL, *out[1] = { NULL };
	lr_model *mod = NULL;
	lr_msg msg = { { 0 } };
	lrt_node nd;
	int rc, same = 0;

	lrt_init(&nd, op, 1);
	lrt_input(&nd, x);
	rc = lrt_run(&nd, 1, &yc, &msg);
	if (rc == 0)
		rc = lrt_load(&nd, 1, &mod, &msg);
	if (rc == 0)
		rc = lr_tensor_block(&xb, x, 16);
	if (rc == 0) {
		lr_opctx ctx;
		lr_tensor *in[1] = { xb };

		memset(&ctx, 0, sizeof(ctx));
		ctx.node = &mod->nodes[0];
		ctx.opset = 1;
		ctx.msg = &msg;
		rc = strcmp(op, "GlobalMaxPool") == 0 ? lr_op_globalmaxpool(&ctx, in, 1, out, 1)
						      : lr_op_globalaveragepool(&ctx, in, 1, out, 1);
	}
	if (rc == 0 && out[0] != NULL && !out[0]->blocked && out[0]->ndim == 4 &&
	    lr_tensor_bytes(out[0]) == (size_t)(n * c) * sizeof(float))
		same = memcmp(out[0]->data, yc->data, (size_t)(n * c) * sizeof(float)) == 0;
	tap_ok(rc == 0 && same, "%s of a blocked [%lld, %lld, %lld, %lld]: bit-identical to C order %s",
	       op, (long long)n, (long long)c, (long long)h, (long long)w, msg.text);
	lrt_fini(&nd);
	lr_model_free(mod);
	lr_tensor_free(x);
	lr_tensor_free(xb);
	lr_tensor_free(yc);
	lr_tensor_free(out[0]);
}

static void gemm_case(int64_t m, int64_t k, int64_t n, int ta, int tb, float alpha,
		      float beta, int cshape)
{
	int64_t ad[2] = { ta ? k : m, ta ? m : k }, bd[2] = { tb ? n : k, tb ? k : n };
	int64_t cd[2] = { cshape == 2 ? m : 1, cshape == 2 ? 1 : n };
	lr_tensor *a = rand_tensor(2, ad), *b = rand_tensor(2, bd), *y = NULL;
	lr_tensor *c = cshape == 1 ? rand_tensor(1, (int64_t[]){ n }) : rand_tensor(2, cd);
	lr_msg msg = { { 0 } };
	lrt_node nd;
	double *ref = calloc((size_t)(m * n), sizeof(double)), worst = 0;
	int rc;

	for (int64_t i = 0; i < m; i++)
		for (int64_t j = 0; j < n; j++) {
			double acc = 0;

			for (int64_t q = 0; q < k; q++)
				acc += (double)((float *)a->data)[ta ? q * m + i : i * k + q] *
				       (double)((float *)b->data)[tb ? j * k + q : q * n + j];
			ref[i * n + j] = alpha * acc +
					 beta * ((float *)c->data)[cshape == 1 ? j : (cshape == 2 ? i : j)];
		}
	lrt_init(&nd, "Gemm", 13);
	lrt_input(&nd, a);
	lrt_const(&nd, b);
	lrt_const(&nd, c);
	lrt_attr_int(&nd, "transA", ta);
	lrt_attr_int(&nd, "transB", tb);
	lrt_attr_float(&nd, "alpha", alpha);
	lrt_attr_float(&nd, "beta", beta);
	rc = lrt_run(&nd, 1, &y, &msg);
	rc = rc == 0 && close_all(y, ref, m * n, 1e-5, &worst) ? 0 : (rc ? rc : -1);
	tap_ok(rc == 0,
	       "Gemm %lldx%lldx%lld transA=%d transB=%d alpha=%g beta=%g C%s (worst %.2g) %s",
	       (long long)m, (long long)k, (long long)n, ta, tb, alpha, beta,
	       cshape == 1 ? "[N]" : cshape == 2 ? "[M,1]" : "[1,N]", worst, msg.text);
	free(ref);
	lr_tensor_free(a);
	lr_tensor_free(b);
	lr_tensor_free(c);
	lr_tensor_free(y);
}

static void matmul_case(void)
{
	/* [2,1,3,4] x [3,4,5] -> [2,3,3,5] with broadcasting. */
	lr_tensor *a = rand_tensor(4, (int64_t[]){ 2, 1, 3, 4 });
	lr_tensor *b = rand_tensor(3, (int64_t[]){ 3, 4, 5 });
	lr_tensor *v = rand_tensor(1, (int64_t[]){ 4 });
	lr_tensor *y = NULL;
	lr_msg msg = { { 0 } };
	lrt_node nd;
	double ref[90], worst = 0;
	int rc;

	for (int i0 = 0; i0 < 2; i0++)
		for (int i1 = 0; i1 < 3; i1++)
			for (int r = 0; r < 3; r++)
				for (int col = 0; col < 5; col++) {
					double acc = 0;

					for (int q = 0; q < 4; q++)
						acc += (double)((float *)a->data)[(i0 * 3 + r) * 4 + q] *
						       (double)((float *)b->data)[(i1 * 4 + q) * 5 + col];
					ref[((i0 * 3 + i1) * 3 + r) * 5 + col] = acc;
				}
	lrt_init(&nd, "MatMul", 13);
	lrt_input(&nd, a);
	lrt_input(&nd, b);
	rc = lrt_run(&nd, 1, &y, &msg);
	tap_ok(rc == 0 && y->ndim == 4 && y->dims[0] == 2 && y->dims[1] == 3 && y->dims[2] == 3 &&
	       y->dims[3] == 5 && close_all(y, ref, 90, 1e-5, &worst),
	       "MatMul broadcast [2,1,3,4]x[3,4,5] -> [2,3,3,5] %s", msg.text);
	lr_tensor_free(y);
	y = NULL;
	/* 1-D x [3,4,5]: [4] x [3,4,5] -> [3,5] */
	for (int i1 = 0; i1 < 3; i1++)
		for (int col = 0; col < 5; col++) {
			double acc = 0;

			for (int q = 0; q < 4; q++)
				acc += (double)((float *)v->data)[q] * (double)((float *)b->data)[(i1 * 4 + q) * 5 + col];
			ref[i1 * 5 + col] = acc;
		}
	lrt_init(&nd, "MatMul", 13);
	lrt_input(&nd, v);
	lrt_input(&nd, b);
	rc = lrt_run(&nd, 1, &y, &msg);
	tap_ok(rc == 0 && y->ndim == 2 && y->dims[0] == 3 && y->dims[1] == 5 &&
	       close_all(y, ref, 15, 1e-5, &worst), "MatMul 1-D promotion [4]x[3,4,5] -> [3,5] %s",
	       msg.text);
	lr_tensor_free(y);
	lr_tensor_free(a);
	lr_tensor_free(b);
	lr_tensor_free(v);
}

static void conv_errors(void)
{
	lr_tensor *x = rand_tensor(4, (int64_t[]){ 1, 3, 8, 8 });
	lr_tensor *w = rand_tensor(4, (int64_t[]){ 4, 2, 3, 3 });
	lr_tensor *y = NULL;
	lr_msg msg = { { 0 } };
	lrt_node nd;
	int rc;

	lrt_init(&nd, "Conv", 13);
	lrt_input(&nd, x);
	lrt_const(&nd, w);
	rc = lrt_run(&nd, 1, &y, &msg);
	tap_ok(rc == LR_ESHAPE && strstr(msg.text, "channels") != NULL && y == NULL,
	       "Conv with mismatched channels fails naming them: %s", msg.text);
	lr_tensor_free(x);
	lr_tensor_free(w);
	x = rand_tensor(4, (int64_t[]){ 1, 2, 2, 2 });
	w = rand_tensor(4, (int64_t[]){ 4, 2, 5, 5 });
	memset(&msg, 0, sizeof(msg));
	lrt_init(&nd, "Conv", 13);
	lrt_input(&nd, x);
	lrt_const(&nd, w);
	rc = lrt_run(&nd, 1, &y, &msg);
	tap_ok(rc == LR_ESHAPE && strstr(msg.text, "does not fit") != NULL,
	       "Conv kernel larger than input fails: %s", msg.text);
	lr_tensor_free(x);
	lr_tensor_free(w);
}

int main(void)
{
	const char *env = getenv("LR_TEST_SEED");

	if (env != NULL)
		rng = strtoull(env, NULL, 10) | 1;
	tap_diag("seed %llu (set LR_TEST_SEED to reproduce)", (unsigned long long)rng);
	{
		const struct conv_case cases[] = {
			{ 2, 8, 9, 11, 6, 3, 3, 1, 1, 1, 1, 1, { 1, 1, 1, 1 }, NULL, 1, 0 },
			{ 1, 8, 10, 10, 16, 3, 3, 1, 2, 2, 1, 1, { 1, 1, 1, 1 }, NULL, 1, 0 },
			{ 1, 6, 12, 9, 4, 3, 2, 1, 2, 1, 2, 1, { 2, 0, 1, 3 }, NULL, 0, 0 },
			{ 2, 8, 7, 7, 12, 1, 1, 1, 1, 1, 1, 1, { 0, 0, 0, 0 }, NULL, 1, 0 },
			{ 1, 8, 7, 7, 12, 1, 1, 1, 2, 2, 1, 1, { 0, 0, 0, 0 }, NULL, 1, 0 },
			{ 2, 8, 9, 9, 12, 3, 3, 4, 1, 1, 1, 1, { 1, 1, 1, 1 }, NULL, 1, 0 },
			{ 2, 8, 9, 9, 8, 3, 3, 8, 1, 1, 1, 1, { 1, 1, 1, 1 }, NULL, 1, 0 },
			{ 1, 6, 10, 10, 6, 5, 5, 6, 2, 2, 1, 1, { 2, 2, 2, 2 }, NULL, 0, 0 },
			{ 1, 4, 9, 9, 8, 3, 3, 4, 1, 1, 2, 2, { 2, 2, 2, 2 }, NULL, 1, 0 },
			{ 1, 5, 10, 7, 3, 3, 3, 1, 2, 2, 1, 1, { 0 }, "SAME_UPPER", 1, 0 },
			{ 1, 5, 10, 7, 3, 4, 4, 1, 1, 1, 1, 1, { 0 }, "SAME_LOWER", 1, 0 },
			{ 1, 5, 10, 7, 3, 3, 3, 1, 2, 2, 1, 1, { 0 }, "VALID", 1, 0 },
			{ 2, 4, 1, 20, 6, 1, 5, 1, 1, 2, 1, 2, { 0, 1, 0, 2 }, NULL, 1, 1 },
			{ 1, 6, 11, 13, 6, 3, 3, 6, 2, 2, 1, 1, { 1, 1, 1, 1 }, NULL, 1, 0 },
			{ 1, 4, 8, 9, 8, 3, 3, 4, 1, 1, 1, 1, { 0, 1, 1, 0 }, NULL, 1, 0 },
			{ 1, 3, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, { 1, 1, 1, 1 }, NULL, 0, 0 },
			{ 2, 5, 7, 16, 5, 3, 3, 5, 2, 2, 1, 1, { 0, 0, 0, 0 }, NULL, 1, 0 },
			{ 1, 4, 6, 21, 4, 3, 3, 4, 1, 1, 1, 1, { 2, 3, 2, 3 }, NULL, 1, 0 },
		};
		const char *labels[] = {
			"3x3 pad 1", "3x3 stride 2", "3x2 asym pads dilation", "1x1 direct",
			"1x1 stride 2", "grouped g=4", "depthwise", "depthwise 5x5 stride 2",
			"grouped dilation 2", "SAME_UPPER", "SAME_LOWER even kernel", "VALID",
			"1-D stride 2 dilation 2", "depthwise 3x3 stride 2", "depthwise 3x3 x2 channels asym pads",
			"depthwise 3x3 on 2x2", "depthwise 3x3 stride 2 unpadded", "depthwise 3x3 pads wider than 1",
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			conv_case_run(&cases[i], labels[i]);
	}
	pool_case("MaxPool", 7, 7, 3, 2, 0, 0, 0);
	pool_case("MaxPool", 8, 8, 3, 2, 1, 0, 0);
	pool_case("MaxPool", 7, 7, 3, 2, 0, 1, 0);
	pool_case("MaxPool", 6, 6, 2, 2, 1, 1, 0);
	/* rows wide enough for the AVX-512 stride-2 steps (ops_pool.c):
	 * VGG's 2x2, ResNet's 3x3 pad 1, odd widths, ceil mode */
	pool_case("MaxPool", 9, 112, 2, 2, 0, 0, 0);
	pool_case("MaxPool", 5, 113, 3, 2, 1, 0, 0);
	pool_case("MaxPool", 4, 70, 3, 2, 0, 1, 0);
	pool_case("MaxPool", 3, 99, 2, 2, 1, 1, 0);
	pool_case("MaxPool", 3, 67, 3, 2, 2, 0, 0);
	/* the last 16-output step masked, windows cut by the right edge
	 * reading the -inf past the row: one step, two, a few columns */
	pool_case("MaxPool", 4, 17, 3, 2, 1, 0, 0);
	pool_case("MaxPool", 3, 34, 3, 2, 1, 1, 0);
	pool_case("MaxPool", 3, 65, 3, 2, 0, 1, 0);
	pool_case("MaxPool", 3, 5, 3, 2, 1, 0, 0);
	/* 2x2 stride 2 without pads, whole planes at once (ops_pool.c's
	 * maxpool2x2_512): the Fashion-MNIST widths, one full and one masked
	 * step, a single output column, odd sizes (last row and column
	 * unused), and ceil mode's partial windows (the general path) */
	pool_case("MaxPool", 28, 28, 2, 2, 0, 0, 0);
	pool_case("MaxPool", 14, 14, 2, 2, 0, 0, 0);
	pool_case("MaxPool", 7, 7, 2, 2, 0, 0, 0);
	pool_case("MaxPool", 5, 32, 2, 2, 0, 0, 0);
	pool_case("MaxPool", 6, 35, 2, 2, 0, 0, 0);
	pool_case("MaxPool", 4, 2, 2, 2, 0, 0, 0);
	pool_case("MaxPool", 7, 9, 2, 2, 0, 1, 0);
	pool_case("AveragePool", 7, 7, 3, 2, 1, 0, 0);
	pool_case("AveragePool", 7, 7, 3, 2, 1, 0, 1);
	pool_case("AveragePool", 8, 8, 3, 2, 1, 1, 1);
	pool_case("AveragePool", 8, 8, 3, 2, 0, 1, 0);
	/* planes around the 32 running sums, and a 112 x 112 one */
	gap_case(1, 1);
	gap_case(1, 31);
	gap_case(4, 8);
	gap_case(3, 11);
	gap_case(7, 7);
	gap_case(112, 112);
	if (lr__conv_direct_isa() == 2) {
		global_blocked_case("GlobalAveragePool", 2, 32, 7, 7);
		global_blocked_case("GlobalAveragePool", 1, 48, 9, 9);
		global_blocked_case("GlobalAveragePool", 3, 16, 1, 1);
		global_blocked_case("GlobalAveragePool", 1, 16, 4, 8);
		global_blocked_case("GlobalMaxPool", 2, 32, 7, 7);
		global_blocked_case("GlobalMaxPool", 1, 16, 3, 5);
	} else {
		tap_diag("blocked global pools: no AVX-512, nothing is blocked (not checked)");
	}
	gemm_case(5, 7, 3, 0, 1, 1.0f, 1.0f, 1);
	gemm_case(4, 6, 9, 1, 0, 0.5f, 2.0f, 2);
	gemm_case(3, 5, 4, 1, 1, 1.5f, 0.0f, 0);
	gemm_case(1, 300, 130, 0, 1, 1.0f, 1.0f, 1);  /* matrix-vector path */
	gemm_case(2, 70, 200, 1, 0, 0.5f, 1.0f, 2);
	gemm_case(1, 64, 100, 1, 1, 2.0f, 0.0f, 0);
	matmul_case();
	conv_errors();
	return tap_done();
}
