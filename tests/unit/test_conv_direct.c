/*
 * test_conv_direct.c - the direct convolution kernels (model/conv_direct.c)
 * against a double-precision convolution written here and against the
 * im2col path (LR_NO_CONV_DIRECT and LR_NO_WINOGRAD), with the AVX-512
 * and the AVX2 kernels (LR_CONV_ISA=avx2) on CPUs that have them.
 * Shapes cover what the kernels special-case: thin outputs (1..17
 * filters, counts that are not multiples of the block of 8), 1x1 with
 * and without padding (the no-copy path), 3x3 and 5x5, asymmetric
 * kernels and pads, 1-D, output counts around the tile of 48 and 8
 * positions, strides 1..4 (also asymmetric and above the kernel size),
 * depthwise 3x3 at strides 1..3 (MobileNet shapes and odd pads;
 * plane-wise and 16 channels at a time), the NCHW pointwise 1x1 and the
 * few-channel (stem) kernel of ops_conv.c, the positions-in-lanes kernel
 * of conv_lanes.c (thin stride-1 layers; its runs turn the NCHW
 * pointwise and few-channel kernels off, and the direct runs turn it
 * off), batches of 1..3, with and without bias, 1 and 2 threads.
 * Every case runs twice on one engine, so the second run uses the
 * weights packed into the node's cache. The skinny Gemm kernel
 * (model/ops_conv.c: 3..16 rows, transB) is checked the same way against
 * a double-precision product and OpenBLAS (LR_NO_SKINNY_GEMM). Random
 * choices come from one seed (printed; LR_TEST_SEED overrides it).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"
#include "tests/unit/opcheck.h"
#include "tests/unit/tap.h"

/*
 * Tolerance: |err| <= 1e-5 * sqrt(K / 144) * (1 + |ref|) for K = C*kh*kw
 * products (at least 144), the bound test_winograd.c gives im2col.
 */
static double tol_for(int64_t k)
{
	return 1e-5 * sqrt((double)(k < 144 ? 144 : k) / 144.0);
}

static uint64_t rng;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static float frand(void)
{
	return (float)((double)(next() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int64_t irand(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(next() % (uint64_t)(hi - lo + 1));
}

struct dcase {
	int64_t n, c, h, w, m, kh, kw;
	int64_t pads[4];         /* top, left, bottom, right */
	int oned;                /* 1-D: h = kh = 1, pads left/right only */
	int bias;
	int threads;
	int64_t sh, sw;          /* strides (0: 1) */
	int dw;                  /* depthwise: group = C = M, W [M, 1, kh, kw] */
};

static lr_tensor *rand_tensor(int ndim, const int64_t *dims)
{
	lr_tensor *t = lrt_f(ndim, dims, NULL);

	for (int64_t i = 0; i < t->nelem; i++)
		((float *)t->data)[i] = frand();
	return t;
}

static double worst_err(const lr_tensor *a, const double *ref, int64_t n)
{
	double worst = 0;

	if (a == NULL || a->nelem != n)
		return INFINITY;
	for (int64_t i = 0; i < n; i++) {
		double e = fabs((double)((const float *)a->data)[i] - ref[i]) / (1.0 + fabs(ref[i]));

		if (!(e <= worst))
			worst = e;
	}
	return worst;
}

static const char *const envs[] = { "LR_NO_CONV_DIRECT", "LR_CONV_DIRECT_FORCE",
				    "LR_NO_WINOGRAD", "LR_CONV_ISA", "LR_NO_CONV_LANES",
				    "LR_NO_PW1X1", "LR_NO_SMALLC" };

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++)
		unsetenv(envs[i]);
}

/*
 * path: 0 im2col, 1 direct (best ISA), 2 direct with AVX2, 3 positions in
 * lanes (conv_lanes.c; the NCHW pointwise and few-channel kernels off so
 * that it takes every shape it accepts).
 */
static lr_tensor *run_conv(const struct dcase *k, lr_tensor *x, lr_tensor *w, lr_tensor *b,
			   int path)
{
	lrt_node nd;
	lr_msg msg = { { 0 } };
	lr_tensor *y = NULL;
	int rc;

	clear_env();
	if (path == 0) {
		setenv("LR_NO_CONV_DIRECT", "1", 1);
		setenv("LR_NO_WINOGRAD", "1", 1);
	} else if (path == 3) {
		setenv("LR_NO_PW1X1", "1", 1);
		setenv("LR_NO_SMALLC", "1", 1);
	} else {
		setenv("LR_CONV_DIRECT_FORCE", "1", 1);
		setenv("LR_NO_CONV_LANES", "1", 1);
		if (path == 2)
			setenv("LR_CONV_ISA", "avx2", 1);
	}
	lrt_init(&nd, "Conv", 13);
	if (k->dw)
		lrt_attr_int(&nd, "group", k->c);
	lrt_input(&nd, x);
	lrt_const(&nd, w);
	if (k->bias)
		lrt_const(&nd, b);
	if (k->oned) {
		lrt_attr_ints(&nd, "kernel_shape", 1, (int64_t[]){ k->kw });
		lrt_attr_ints(&nd, "pads", 2, (int64_t[]){ k->pads[1], k->pads[3] });
		lrt_attr_ints(&nd, "strides", 1, (int64_t[]){ k->sw > 0 ? k->sw : 1 });
	} else {
		lrt_attr_ints(&nd, "kernel_shape", 2, (int64_t[]){ k->kh, k->kw });
		lrt_attr_ints(&nd, "pads", 4, k->pads);
		lrt_attr_ints(&nd, "strides", 2,
			      (int64_t[]){ k->sh > 0 ? k->sh : 1, k->sw > 0 ? k->sw : 1 });
	}
	rc = lrt_run_n(&nd, 1, &y, &msg, k->threads, 2);
	lrt_fini(&nd);
	clear_env();
	if (rc != 0) {
		tap_diag("run failed (%d): %s", rc, msg.text);
		lr_tensor_free(y);
		return NULL;
	}
	return y;
}

/* The convolution of case k in double precision: [n][m][oh][ow], malloc'd. */
static double *ref_conv(const struct dcase *k, const lr_tensor *x, const lr_tensor *w,
			const lr_tensor *b)
{
	int64_t pt = k->pads[0], pl = k->pads[1], pb = k->pads[2], pr = k->pads[3];
	int64_t sh = k->sh > 0 ? k->sh : 1, sw = k->sw > 0 ? k->sw : 1;
	int64_t oh = (k->h + pt + pb - k->kh) / sh + 1, ow = (k->w + pl + pr - k->kw) / sw + 1;
	int64_t wc = k->dw ? 1 : k->c;
	double *ref = malloc((size_t)(k->n * k->m * oh * ow) * sizeof(double));

	if (ref == NULL)
		abort();
	{
		const float *xv = x->data, *wv = w->data, *bv = b->data;

		for (int64_t n = 0; n < k->n; n++)
			for (int64_t m = 0; m < k->m; m++)
				for (int64_t oy = 0; oy < oh; oy++)
					for (int64_t ox = 0; ox < ow; ox++) {
						double acc = k->bias ? bv[m] : 0.0;

						for (int64_t ci = 0; ci < k->c; ci++)
							for (int64_t ki = 0; ki < k->kh; ki++) {
								int64_t wi = k->dw ? 0 : ci;

								if (k->dw && ci != m)
									break;
								int64_t iy = oy * sh - pt + ki;

								if (iy < 0 || iy >= k->h)
									continue;
								for (int64_t kj = 0; kj < k->kw; kj++) {
									int64_t ix = ox * sw - pl + kj;

									if (ix < 0 || ix >= k->w)
										continue;
									acc += (double)xv[((n * k->c + ci) * k->h + iy) * k->w + ix] *
									       (double)wv[((m * wc + wi) * k->kh + ki) * k->kw + kj];
								}
							}
						ref[((n * k->m + m) * oh + oy) * ow + ox] = acc;
					}
	}
	return ref;
}

static double worst_overall;

static void run_case(const struct dcase *k, int isa)
{
	int64_t pt = k->pads[0], pl = k->pads[1], pb = k->pads[2], pr = k->pads[3];
	int64_t sh = k->sh > 0 ? k->sh : 1, sw = k->sw > 0 ? k->sw : 1;
	int64_t oh = (k->h + pt + pb - k->kh) / sh + 1, ow = (k->w + pl + pr - k->kw) / sw + 1, ny;
	int64_t wc = k->dw ? 1 : k->c;
	int64_t xd4[4] = { k->n, k->c, k->h, k->w }, wd4[4] = { k->m, wc, k->kh, k->kw };
	int64_t xd3[3] = { k->n, k->c, k->w }, wd3[3] = { k->m, wc, k->kw };
	lr_tensor *x, *w, *b, *yi, *yd, *y2 = NULL, *yl = NULL;
	double *ref, tol = tol_for(k->c * k->kh * k->kw), ei, ed, e2 = 0, el = 0;
	struct lr_geom geo = { k->n, k->c, k->oned ? 1 : k->h, k->w, k->oned ? 1 : k->kh, k->kw,
			       sh, sw, 1, 1, k->oned ? 0 : pt, pl, k->oned ? 0 : pb, pr,
			       k->oned ? 1 : oh, ow };
	int lanes = isa == 2 && !k->dw && lr__conv_lanes_worth(&geo, k->m);
	char label[200];

	if (k->h + pt + pb < k->kh || k->w + pl + pr < k->kw)
		return;
	x = k->oned ? rand_tensor(3, xd3) : rand_tensor(4, xd4);
	w = k->oned ? rand_tensor(3, wd3) : rand_tensor(4, wd4);
	b = rand_tensor(1, (int64_t[]){ k->m });
	ny = k->n * k->m * oh * ow;
	ref = ref_conv(k, x, w, b);
	snprintf(label, sizeof(label),
		 "%sN=%lld C=%lld M=%lld %lldx%lld k%lldx%lld s%lldx%lld pads %lld,%lld,%lld,%lld%s%s t%d",
		 k->dw ? "depthwise " : "",
		 (long long)k->n, (long long)k->c, (long long)k->m, (long long)k->h,
		 (long long)k->w, (long long)k->kh, (long long)k->kw, (long long)sh,
		 (long long)sw, (long long)pt,
		 (long long)pl, (long long)pb, (long long)pr, k->oned ? " 1-D" : "",
		 k->bias ? " bias" : "", k->threads);
	yi = run_conv(k, x, w, b, 0);
	yd = run_conv(k, x, w, b, 1);
	ei = worst_err(yi, ref, ny);
	ed = worst_err(yd, ref, ny);
	if (isa == 2) {
		y2 = run_conv(k, x, w, b, 2);
		e2 = worst_err(y2, ref, ny);
	}
	if (lanes) {
		yl = run_conv(k, x, w, b, 3);
		el = worst_err(yl, ref, ny);
	}
	if (!(ed <= worst_overall))
		worst_overall = ed;
	if (!(el <= worst_overall))
		worst_overall = el;
	if (!(e2 <= worst_overall))
		worst_overall = e2;
	tap_ok(yd != NULL && yd->dims[1] == k->m && yd->dims[yd->ndim - 1] == ow &&
	       ed <= tol && ei <= tol,
	       "direct %s: worst %.3g, im2col %.3g (tol %.2g)", label, ed, ei, tol);
	if (isa == 2)
		tap_ok(y2 != NULL && e2 <= tol, "direct AVX2 %s: worst %.3g", label, e2);
	if (lanes)
		tap_ok(yl != NULL && el <= tol, "lanes %s: worst %.3g", label, el);
	free(ref);
	lr_tensor_free(x);
	lr_tensor_free(w);
	lr_tensor_free(b);
	lr_tensor_free(yi);
	lr_tensor_free(yd);
	lr_tensor_free(y2);
	lr_tensor_free(yl);
}

/*
 * One engine, one Conv node, inputs of three spatial sizes in turn (the
 * input's shape left open): the kernels that cache per-geometry tables
 * with the packed weights (conv_lanes.c's masks) must rebuild them when the
 * size changes. 8x8 and 4x16 give tables of the same size (4 vectors of 16
 * outputs), so only the geometry check tells them apart; the third run
 * (8x8 again) must not reuse the second's. Each output is checked against
 * the double-precision reference.
 */
static void cache_across_sizes(void)
{
	static const int64_t sizes[3][2] = { { 8, 8 }, { 4, 16 }, { 8, 8 } };
	int64_t c = 6, m = 20, wd[4] = { 20, 6, 3, 3 };
	lr_tensor *w = rand_tensor(4, wd), *b = rand_tensor(1, (int64_t[]){ 20 });
	lr_tensor *x0 = rand_tensor(4, (int64_t[]){ 1, c, 8, 8 });
	lrt_node nd;
	lr_model *mod = NULL;
	lr_engine *e = NULL;
	lr_msg msg = { { 0 } };
	double worst = 0;
	int rc, runs = 0;

	clear_env();
	lrt_init(&nd, "Conv", 13);
	lrt_input(&nd, x0);
	lrt_const(&nd, w);
	lrt_const(&nd, b);
	lrt_attr_ints(&nd, "pads", 4, (int64_t[]){ 1, 1, 1, 1 });
	nd.open_shapes = 1;
	rc = lrt_load(&nd, 1, &mod, &msg);
	if (rc == 0)
		rc = lr_engine_create(&e, mod, 1);
	for (int r = 0; r < 3 && rc == 0; r++) {
		int64_t h = sizes[r][0], wi = sizes[r][1];
		struct dcase k = { 1, c, h, wi, m, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 0, 0, 0 };
		lr_tensor *x = rand_tensor(4, (int64_t[]){ 1, c, h, wi }), *y = NULL;
		double *ref = ref_conv(&k, x, w, b), err;

		rc = lr_engine_run(e, &x, 1, &y, 1, 0, &msg);
		err = rc == 0 ? worst_err(y, ref, m * h * wi) : INFINITY;
		if (!(err <= worst))
			worst = err;
		runs += rc == 0;
		free(ref);
		lr_tensor_free(x);
		lr_tensor_free(y);
	}
	tap_ok(rc == 0 && runs == 3 && worst <= tol_for(c * 9),
	       "one engine, inputs 8x8, 4x16, 8x8 (tables of one size): every output right (worst %.3g)%s%s",
	       worst, rc ? ": " : "", rc ? msg.text : "");
	lr_engine_free(e);
	lr_model_free(mod);
	lr_tensor_free(x0);
	lr_tensor_free(w);
	lr_tensor_free(b);
}

/*
 * A context that prices (lr_engine_set_pricing) does not take the lanes
 * kernel for a thin stride-1 layer on a 14x14 map, which it takes
 * otherwise (with AVX-512), and the engine's direct kernels then give the
 * same output; on a 112x112 map it takes it either way.
 */
static void pricing_skips_lanes(void)
{
	struct dcase k = { 1, 24, 14, 14, 16, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 0, 0, 0 };
	struct lr_geom geo = { 1, 24, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 14, 14 };
	lr_tensor *x = rand_tensor(4, (int64_t[]){ 1, 24, 14, 14 });
	lr_tensor *w = rand_tensor(4, (int64_t[]){ 16, 24, 3, 3 });
	lr_tensor *b = rand_tensor(1, (int64_t[]){ 16 });
	lr_tensor *y = rand_tensor(4, (int64_t[]){ 1, 16, 14, 14 }), *ye = NULL;
	double *ref = ref_conv(&k, x, w, b), err;
	lr_msg msg = { { 0 } };
	lr_model *mod = NULL;
	lr_engine *e = NULL;
	lrt_node nd;
	lr_opctx c;
	int plain, priced, rc, avx512 = lr__conv_direct_isa() == 2;

	clear_env();
	memset(&c, 0, sizeof(c));
	plain = lr__conv_lanes(&c, x, w, b, y, &geo);
	err = plain == 1 ? worst_err(y, ref, 16 * 14 * 14) : 0;
	c.pricing = 1;
	priced = lr__conv_lanes(&c, x, w, b, y, &geo);
	tap_ok(plain == avx512 && priced == 0 && err <= tol_for(24 * 9),
	       "lanes kernel at 14x14: taken %d without pricing (AVX-512: %d, worst %.3g), %d with",
	       plain, avx512, err, priced);
	{
		struct dcase kb = { 1, 4, 112, 112, 16, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 0, 0, 0 };
		struct lr_geom gb = { 1, 4, 112, 112, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 112, 112 };
		lr_tensor *xb = rand_tensor(4, (int64_t[]){ 1, 4, 112, 112 });
		lr_tensor *wb = rand_tensor(4, (int64_t[]){ 16, 4, 3, 3 });
		lr_tensor *yb = rand_tensor(4, (int64_t[]){ 1, 16, 112, 112 });
		double *rb = ref_conv(&kb, xb, wb, b), eb;
		int big = lr__conv_lanes(&c, xb, wb, b, yb, &gb);

		eb = big == 1 ? worst_err(yb, rb, 16 * 112 * 112) : 0;
		tap_ok(big == avx512 && eb <= tol_for(4 * 9),
		       "lanes kernel at 112x112 with pricing: taken %d (AVX-512: %d, worst %.3g)",
		       big, avx512, eb);
		free(rb);
		lr_tensor_free(xb);
		lr_tensor_free(wb);
		lr_tensor_free(yb);
	}

	lrt_init(&nd, "Conv", 13);
	lrt_input(&nd, x);
	lrt_const(&nd, w);
	lrt_const(&nd, b);
	lrt_attr_ints(&nd, "pads", 4, (int64_t[]){ 1, 1, 1, 1 });
	rc = lrt_load(&nd, 1, &mod, &msg);
	if (rc == 0)
		rc = lr_engine_create(&e, mod, 2);
	if (rc == 0) {
		lr_engine_set_pricing(e, 1);
		rc = lr_engine_run(e, &x, 1, &ye, 1, 0, &msg);
	}
	err = rc == 0 ? worst_err(ye, ref, 16 * 14 * 14) : INFINITY;
	tap_ok(rc == 0 && err <= tol_for(24 * 9),
	       "an engine that prices runs the layer right (worst %.3g)%s%s", err,
	       rc ? ": " : "", rc ? msg.text : "");
	lr_engine_free(e);
	lr_model_free(mod);
	lr_tensor_free(ye);
	free(ref);
	lr_tensor_free(x);
	lr_tensor_free(w);
	lr_tensor_free(b);
	lr_tensor_free(y);
}

struct gcase {
	int64_t m, k, n;
	int cshape;              /* 0 no C, 1 C [n], 2 C [m, n] */
	float alpha, beta;
	int threads;
};

static lr_tensor *run_gemm(const struct gcase *g, lr_tensor *a, lr_tensor *b, lr_tensor *cc,
			   int skinny)
{
	lrt_node nd;
	lr_msg msg = { { 0 } };
	lr_tensor *y = NULL;
	int rc;

	unsetenv("LR_NO_SKINNY_GEMM");
	if (!skinny)
		setenv("LR_NO_SKINNY_GEMM", "1", 1);
	lrt_init(&nd, "Gemm", 13);
	lrt_input(&nd, a);
	lrt_const(&nd, b);
	if (g->cshape)
		lrt_const(&nd, cc);
	lrt_attr_int(&nd, "transB", 1);
	lrt_attr_float(&nd, "alpha", g->alpha);
	lrt_attr_float(&nd, "beta", g->beta);
	rc = lrt_run_n(&nd, 1, &y, &msg, g->threads, 2);
	lrt_fini(&nd);
	unsetenv("LR_NO_SKINNY_GEMM");
	if (rc != 0) {
		tap_diag("run failed (%d): %s", rc, msg.text);
		lr_tensor_free(y);
		return NULL;
	}
	return y;
}

static void run_gemm_case(const struct gcase *g)
{
	lr_tensor *a = rand_tensor(2, (int64_t[]){ g->m, g->k });
	lr_tensor *b = rand_tensor(2, (int64_t[]){ g->n, g->k });
	lr_tensor *cc = g->cshape == 2 ? rand_tensor(2, (int64_t[]){ g->m, g->n })
				       : rand_tensor(1, (int64_t[]){ g->n });
	lr_tensor *ys, *yb;
	double *ref = malloc((size_t)(g->m * g->n) * sizeof(double));
	double tol = 1e-5 * sqrt((double)(g->k < 144 ? 144 : g->k) / 144.0), es, eb;

	if (ref == NULL)
		abort();
	for (int64_t i = 0; i < g->m; i++)
		for (int64_t j = 0; j < g->n; j++) {
			const float *av = a->data, *bv = b->data, *cv = cc->data;
			double acc = 0;

			for (int64_t t = 0; t < g->k; t++)
				acc += (double)av[i * g->k + t] * (double)bv[j * g->k + t];
			acc *= g->alpha;
			if (g->cshape)
				acc += g->beta * (double)cv[g->cshape == 2 ? i * g->n + j : j];
			ref[i * g->n + j] = acc;
		}
	ys = run_gemm(g, a, b, cc, 1);
	yb = run_gemm(g, a, b, cc, 0);
	es = worst_err(ys, ref, g->m * g->n);
	eb = worst_err(yb, ref, g->m * g->n);
	tap_ok(ys != NULL && ys->ndim == 2 && ys->dims[0] == g->m && ys->dims[1] == g->n &&
	       es <= tol && eb <= tol,
	       "skinny Gemm %lldx%lld * (%lldx%lld)^T C%d alpha %g beta %g t%d: worst %.3g, OpenBLAS %.3g (tol %.2g)",
	       (long long)g->m, (long long)g->k, (long long)g->n, (long long)g->k, g->cshape,
	       (double)g->alpha, (double)g->beta, g->threads, es, eb, tol);
	free(ref);
	lr_tensor_free(a);
	lr_tensor_free(b);
	lr_tensor_free(cc);
	lr_tensor_free(ys);
	lr_tensor_free(yb);
}

/*
 * Channel-blocked X (NCHW16c, as the engine keeps activations between
 * the direct convolutions), read in place: every output sums only its
 * taps inside the image (model/conv_direct.c, output classes). lr_op_conv
 * is called directly, X blocked, asking for blocked Y (C-order Y when M
 * is not a multiple of 16), Relu fused on odd cases; against the
 * double-precision reference. Shapes: 3x3 at 8x8 and 7x7, the pairs' 1x3
 * and 3x1, asymmetric pads above k / 2, stride 2, 5x5, a 7x7 window at
 * stride 2, a map smaller than the window whose corner outputs read no
 * tap at all (bias only), reductions over CD_KC taps split inside a row,
 * on 1 and 2 threads; again as engines that price run them (outputs in
 * row order, runs of one class); and the padded copy (LR_BLK_PAD_COPY) on
 * two.
 */
static void blocked_in_place(void)
{
	static const struct dcase bc[] = {
		/* n, c, h, w, m, kh, kw, pads{t,l,b,r}, oned, bias, threads, sh, sw, dw */
		{ 1, 16, 8, 8, 16, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 0, 0, 0 },
		{ 2, 32, 7, 7, 48, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 0, 0, 0 },
		{ 1, 16, 10, 12, 32, 1, 3, { 0, 1, 0, 1 }, 0, 1, 1, 0, 0, 0 },
		{ 1, 32, 9, 7, 16, 3, 1, { 1, 0, 1, 0 }, 0, 0, 2, 0, 0, 0 },
		{ 1, 16, 9, 11, 16, 3, 3, { 2, 0, 0, 1 }, 0, 1, 1, 0, 0, 0 },
		{ 1, 16, 11, 10, 32, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 2, 2, 0 },
		{ 1, 32, 5, 6, 16, 5, 5, { 2, 2, 2, 2 }, 0, 1, 1, 0, 0, 0 },
		{ 1, 16, 15, 13, 16, 7, 7, { 3, 3, 3, 3 }, 0, 1, 2, 2, 2, 0 },
		{ 1, 16, 1, 2, 16, 3, 3, { 3, 3, 3, 3 }, 0, 1, 1, 0, 0, 0 },
		{ 1, 64, 28, 28, 64, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 0, 0, 0 },
		{ 3, 48, 14, 14, 13, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 0, 0, 0 },
		{ 1, 16, 7, 9, 40, 3, 3, { 0, 2, 1, 0 }, 0, 0, 1, 1, 2, 0 },
	};
	lr_pool *pools[3] = { NULL, lr_pool_create(1), lr_pool_create(2) };

	clear_env();
	setenv("LR_CONV_DIRECT_FORCE", "1", 1);
	const size_t nbc = sizeof(bc) / sizeof(bc[0]);

	for (size_t i = 0; i < 2 * nbc + 2; i++) {
		const struct dcase *k = &bc[i < 2 * nbc ? i % nbc : nbc - (2 * nbc + 2 - i)];
		int copy = i >= 2 * nbc, pricing = i >= nbc && !copy, relu = (int)(i % 2);
		int64_t sh = k->sh > 0 ? k->sh : 1, sw = k->sw > 0 ? k->sw : 1;
		int64_t oh = (k->h + k->pads[0] + k->pads[2] - k->kh) / sh + 1;
		int64_t ow = (k->w + k->pads[1] + k->pads[3] - k->kw) / sw + 1, ny = k->n * k->m * oh * ow;
		lr_tensor *x = rand_tensor(4, (int64_t[]){ k->n, k->c, k->h, k->w });
		lr_tensor *w = rand_tensor(4, (int64_t[]){ k->m, k->c, k->kh, k->kw });
		lr_tensor *b = rand_tensor(1, (int64_t[]){ k->m });
		lr_tensor *xb = NULL, *in[3], *out[1] = { NULL }, *y = NULL;
		double *ref = ref_conv(k, x, w, b), err = -1, tol = tol_for(k->c * k->kh * k->kw);
		lrt_node nd;
		lr_model *mod = NULL;
		lr_msg msg = { { 0 } };
		int rc, yblk = -1;

		if (copy)
			setenv("LR_BLK_PAD_COPY", "1", 1);
		lrt_init(&nd, "Conv", 13);
		lrt_input(&nd, x);
		lrt_const(&nd, w);
		if (k->bias)
			lrt_const(&nd, b);
		lrt_attr_ints(&nd, "kernel_shape", 2, (int64_t[]){ k->kh, k->kw });
		lrt_attr_ints(&nd, "pads", 4, k->pads);
		lrt_attr_ints(&nd, "strides", 2, (int64_t[]){ sh, sw });
		rc = lrt_load(&nd, 1, &mod, &msg);
		if (rc == 0)
			rc = lr_tensor_block(&xb, x, 16);
		if (rc == 0) {
			lr_opctx c;

			memset(&c, 0, sizeof(c));
			c.node = &mod->nodes[0];
			c.opset = 13;
			c.pool = pools[k->threads];
			c.msg = &msg;
			c.out_blocked = 1;
			c.pricing = pricing;
			c.act = relu ? LR_ACT_RELU : LR_ACT_NONE;
			in[0] = xb;
			in[1] = w;
			in[2] = b;
			rc = lr_op_conv(&c, in, k->bias ? 3 : 2, out, 1);
			yblk = rc == 0 && out[0] != NULL ? out[0]->blocked : -1;
			if (rc == 0 && out[0] != NULL && out[0]->blocked)
				rc = lr_tensor_unblock(&y, out[0]);
			else if (rc == 0) {
				y = out[0];
				out[0] = NULL;
			}
		}
		if (rc == 0 && y != NULL && y->dims[1] == k->m && y->dims[3] == ow) {
			if (relu)
				for (int64_t t = 0; t < ny; t++)
					ref[t] = ref[t] > 0 ? ref[t] : 0;
			err = worst_err(y, ref, ny);
		}
		tap_ok(rc == 0 && err >= 0 && err <= tol && yblk == (k->m % 16 == 0 ? 16 : 0),
		       "blocked X %s: N=%lld C=%lld M=%lld %lldx%lld k%lldx%lld s%lldx%lld pads %lld,%lld,%lld,%lld%s t%d: worst %.3g (tol %.2g), Y %s",
		       copy ? "through a padded copy" : pricing ? "in place, in row order (pricing)" :
		       "in place", (long long)k->n, (long long)k->c,
		       (long long)k->m, (long long)k->h, (long long)k->w, (long long)k->kh,
		       (long long)k->kw, (long long)sh, (long long)sw, (long long)k->pads[0],
		       (long long)k->pads[1], (long long)k->pads[2], (long long)k->pads[3],
		       relu ? " relu" : "", k->threads, err, tol, yblk == 16 ? "blocked" : "C order");
		if (rc != 0)
			tap_diag("rc %d: %s", rc, msg.text);
		unsetenv("LR_BLK_PAD_COPY");
		lrt_fini(&nd);
		lr_model_free(mod);
		free(ref);
		lr_tensor_free(x);
		lr_tensor_free(w);
		lr_tensor_free(b);
		lr_tensor_free(xb);
		lr_tensor_free(out[0]);
		lr_tensor_free(y);
	}
	clear_env();
	lr_pool_free(pools[1]);
	lr_pool_free(pools[2]);
}

int main(void)
{
	const char *s = getenv("LR_TEST_SEED");
	uint64_t seed = s != NULL ? strtoull(s, NULL, 0) : 20261203u;
	int isa;
	static const struct dcase fixed[] = {
		/* n, c, h, w, m, kh, kw, pads{t,l,b,r}, oned, bias, threads, sh, sw, dw */
		{ 1, 20, 8, 9, 40, 1, 1, { 0, 0, 0, 0 }, 0, 1, 1, 0, 0, 0 },     /* 72: one strip */
		{ 1, 12, 1, 73, 24, 1, 1, { 0, 0, 0, 0 }, 0, 1, 2, 0, 0, 0 },    /* 73: two */
		{ 1, 512, 7, 7, 512, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 0, 0, 0 },  /* ResNet 7x7 */
		{ 1, 16, 8, 8, 16, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 0, 0, 0 },
		{ 1, 32, 7, 7, 16, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 0, 0, 0 },     /* thin, 7x7 */
		{ 2, 64, 14, 14, 8, 3, 3, { 1, 1, 1, 1 }, 0, 0, 2, 0, 0, 0 },
		{ 1, 64, 28, 28, 13, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 0, 0, 0 },   /* M % 8 != 0 */
		{ 1, 40, 9, 11, 1, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 0, 0, 0 },     /* one filter */
		{ 3, 24, 5, 6, 17, 3, 3, { 0, 0, 0, 0 }, 0, 1, 2, 0, 0, 0 },     /* unpadded 3x3 */
		{ 1, 16, 1, 1, 24, 3, 3, { 1, 1, 1, 1 }, 0, 0, 1, 0, 0, 0 },     /* one pixel */
		{ 1, 256, 56, 56, 16, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 0, 0, 0 },  /* VGG conv3 r16 */
		{ 1, 512, 14, 14, 64, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 0, 0, 0 },  /* deep: accuracy */
		/* weights over 512 KiB: long strips (up to 1008 outputs) with a
		 * short last one, on 2 threads and strided on 1 */
		{ 1, 128, 45, 47, 130, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 0, 0, 0 },
		{ 1, 128, 70, 66, 144, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 2, 2, 0 },
		/* ... one filter group, 100 outputs cut for 2 threads into
		 * strips of equal length (12: 9 strips, the last of 4),
		 * stride 1 and 2 */
		{ 1, 256, 10, 10, 64, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 0, 0, 0 },
		{ 1, 256, 20, 19, 64, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 2, 2, 0 },
		/* 2 threads, layers of up to 8 blocks in strips only (the
		 * compressed ResNet-50's 32-filter 3x3 at 14x14, 128 filters at
		 * 7x7), 9 blocks in filter groups */
		{ 1, 256, 14, 14, 32, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 0, 0, 0 },
		{ 1, 64, 7, 7, 128, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 0, 0, 0 },
		{ 1, 64, 7, 7, 144, 3, 3, { 1, 1, 1, 1 }, 0, 0, 2, 0, 0, 0 },
		{ 1, 16, 56, 56, 256, 1, 1, { 0, 0, 0, 0 }, 0, 1, 2, 0, 0, 0 },  /* pair's 1x1 */
		{ 2, 64, 7, 7, 2048, 1, 1, { 0, 0, 0, 0 }, 0, 1, 2, 0, 0, 0 },
		{ 1, 1024, 14, 14, 32, 1, 1, { 0, 0, 0, 0 }, 0, 0, 1, 0, 0, 0 },
		{ 1, 8, 3, 5, 9, 1, 1, { 1, 0, 0, 2 }, 0, 1, 1, 0, 0, 0 },       /* padded 1x1 */
		{ 2, 12, 17, 13, 20, 5, 5, { 2, 2, 2, 2 }, 0, 1, 2, 0, 0, 0 },
		{ 1, 10, 12, 19, 11, 1, 3, { 0, 1, 0, 1 }, 0, 1, 1, 0, 0, 0 },   /* 1x3 */
		{ 1, 10, 19, 12, 11, 3, 1, { 1, 0, 1, 0 }, 0, 0, 2, 0, 0, 0 },   /* 3x1 */
		{ 2, 20, 1, 50, 24, 1, 3, { 0, 1, 0, 1 }, 1, 1, 2, 0, 0, 0 },    /* 1-D */
		{ 1, 9, 6, 8, 16, 3, 3, { 2, 0, 0, 1 }, 0, 1, 1, 0, 0, 0 },      /* asymmetric */
		/* strided (ResNet's and MobileNet's) */
		{ 1, 64, 56, 56, 128, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 2, 2, 0 },
		{ 2, 256, 14, 14, 64, 1, 1, { 0, 0, 0, 0 }, 0, 0, 1, 2, 2, 0 },
		{ 1, 3, 33, 31, 64, 7, 7, { 3, 3, 3, 3 }, 0, 1, 2, 2, 2, 0 },  /* stem */
		{ 1, 3, 15, 16, 32, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 2, 2, 0 },
		{ 1, 5, 11, 13, 7, 2, 3, { 0, 1, 1, 0 }, 0, 1, 1, 3, 2, 0 },   /* s > k */
		{ 2, 6, 9, 10, 9, 1, 1, { 1, 0, 0, 1 }, 0, 1, 2, 3, 3, 0 },
		{ 1, 8, 1, 40, 10, 1, 3, { 0, 1, 0, 1 }, 1, 1, 2, 1, 2, 0 },   /* 1-D s2 */
		{ 1, 4, 5, 5, 3, 4, 4, { 0, 0, 0, 0 }, 0, 1, 1, 4, 4, 0 },     /* one output */
		/* depthwise 3x3 (AVX-512 on a padded plane; LR_CONV_ISA=avx2: scalar edges) */
		{ 1, 32, 112, 112, 32, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 1, 1, 1 },
		{ 1, 24, 112, 112, 24, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 2, 2, 1 },
		{ 2, 20, 14, 14, 20, 3, 3, { 1, 1, 1, 1 }, 0, 0, 2, 2, 2, 1 },
		{ 1, 17, 7, 7, 17, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 1, 1, 1 },
		{ 1, 5, 33, 35, 5, 3, 3, { 2, 0, 1, 3 }, 0, 1, 2, 1, 1, 1 },
		{ 1, 6, 37, 40, 6, 3, 3, { 0, 1, 2, 0 }, 0, 1, 1, 2, 2, 1 },
		{ 1, 3, 20, 50, 3, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 3, 3, 1 },
		{ 1, 4, 2, 2, 4, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 1, 1, 1 },
		/* depthwise 5x5, 16 channels at a time (EfficientNet's):
		 * stride 1 and 2, a ring of 5 rows, bands on 2 threads, odd
		 * widths, asymmetric pads, a map smaller than the window */
		{ 1, 32, 14, 14, 32, 5, 5, { 2, 2, 2, 2 }, 0, 1, 2, 1, 1, 1 },
		{ 1, 48, 29, 31, 48, 5, 5, { 2, 2, 2, 2 }, 0, 1, 1, 2, 2, 1 },
		{ 2, 16, 7, 9, 16, 5, 5, { 1, 2, 3, 2 }, 0, 0, 2, 1, 1, 1 },
		{ 1, 16, 3, 3, 16, 5, 5, { 2, 2, 2, 2 }, 0, 1, 1, 1, 1, 1 },
		/* depthwise 3x3, 16 channels at a time (C % 16 == 0, any width):
		 * ring of rows, bands of rows on 2 threads, odd widths */
		{ 1, 32, 28, 28, 32, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 1, 1, 1 },
		{ 1, 48, 28, 28, 48, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 2, 2, 1 },
		{ 2, 16, 7, 7, 16, 3, 3, { 1, 1, 1, 1 }, 0, 0, 2, 1, 1, 1 },
		{ 1, 64, 13, 17, 64, 3, 3, { 0, 1, 2, 0 }, 0, 1, 2, 2, 2, 1 },
		{ 3, 16, 5, 32, 16, 3, 3, { 2, 0, 1, 3 }, 0, 1, 1, 1, 1, 1 },
		{ 1, 32, 9, 31, 32, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 3, 3, 1 },
		{ 1, 16, 40, 113, 16, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 2, 2, 1 },
		{ 2, 32, 57, 57, 32, 3, 3, { 1, 0, 1, 1 }, 0, 1, 2, 1, 1, 1 },
		/* pointwise 1x1 in NCHW (< 64 channels or filters and >= 196
		 * positions, or >= 3136 positions): filter tails, position
		 * tails, channel blocks */
		{ 2, 24, 15, 15, 19, 1, 1, { 0, 0, 0, 0 }, 0, 1, 2, 0, 0, 0 },
		{ 1, 64, 56, 57, 72, 1, 1, { 0, 0, 0, 0 }, 0, 1, 2, 0, 0, 0 },
		{ 2, 80, 57, 56, 64, 1, 1, { 0, 0, 0, 0 }, 0, 0, 1, 0, 0, 0 },
		{ 1, 40, 14, 14, 70, 1, 1, { 0, 0, 0, 0 }, 0, 0, 1, 0, 0, 0 },
		{ 3, 300, 20, 20, 12, 1, 1, { 0, 0, 0, 0 }, 0, 1, 2, 0, 0, 0 },
		{ 1, 16, 112, 112, 96, 1, 1, { 0, 0, 0, 0 }, 0, 1, 2, 0, 0, 0 },
		/* ... in bands of strips: several bands and a short last one,
		 * with a position tail (16 channels: bands of 32 strips; 150:
		 * two channel blocks, bands of 5 strips) */
		{ 1, 16, 101, 103, 40, 1, 1, { 0, 0, 0, 0 }, 0, 1, 1, 0, 0, 0 },
		{ 2, 150, 31, 29, 20, 1, 1, { 0, 0, 0, 0 }, 0, 1, 2, 0, 0, 0 },
		/* at most 4 input channels, >= 196 outputs: phases, positions
		 * in lanes (ops_conv.c, conv_smallc); ResNet's and MobileNet's
		 * stems, odd sizes, asymmetric pads, strides 1..3, 1x1 s2 */
		{ 1, 3, 64, 61, 64, 7, 7, { 3, 3, 3, 3 }, 0, 1, 2, 2, 2, 0 },
		{ 2, 3, 40, 37, 32, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 2, 2, 0 },
		{ 1, 4, 30, 30, 13, 5, 5, { 2, 1, 0, 2 }, 0, 0, 1, 1, 1, 0 },
		{ 1, 1, 50, 47, 8, 3, 3, { 0, 2, 1, 0 }, 0, 1, 2, 3, 3, 0 },
		{ 1, 1, 28, 28, 32, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 1, 1, 0 },
		{ 3, 3, 64, 64, 24, 1, 1, { 0, 0, 0, 0 }, 0, 1, 1, 2, 2, 0 },
		/* ... bands of 32 strips: three, the last short, on 2 threads */
		{ 1, 3, 60, 70, 20, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 1, 1, 0 },
		/* positions in lanes (conv_lanes.c, <= 32 filters, stride 1):
		 * output as wide as the input (lanes run across rows: 7x7 is 4
		 * vectors, the last of 1 lane), rows in pieces otherwise (ow !=
		 * w), the low-rank pairs' kx1 / 1xk, asymmetric and oversized
		 * pads, filter tails, the longest reduction (1152), 2 threads */
		{ 1, 64, 7, 7, 32, 3, 3, { 1, 1, 1, 1 }, 0, 1, 1, 0, 0, 0 },
		{ 2, 32, 28, 28, 24, 3, 1, { 1, 0, 1, 0 }, 0, 1, 2, 0, 0, 0 },
		{ 1, 16, 28, 28, 20, 1, 3, { 0, 1, 0, 1 }, 0, 0, 1, 0, 0, 0 },
		{ 1, 128, 7, 7, 29, 3, 3, { 1, 1, 1, 1 }, 0, 1, 2, 0, 0, 0 },
		{ 3, 7, 10, 33, 19, 3, 3, { 0, 0, 0, 0 }, 0, 1, 1, 0, 0, 0 },
		{ 1, 5, 9, 20, 27, 2, 4, { 3, 0, 0, 2 }, 0, 1, 2, 0, 0, 0 },
		{ 1, 6, 4, 5, 21, 5, 5, { 2, 3, 2, 1 }, 0, 0, 1, 0, 0, 0 },
		{ 1, 2, 3, 3, 31, 1, 1, { 1, 1, 1, 1 }, 0, 1, 1, 0, 0, 0 },
	};

	rng = seed ? seed : 1;
	isa = lr__conv_direct_isa();
	tap_diag("seed %llu (set LR_TEST_SEED to repeat); kernels: %s",
		 (unsigned long long)seed, isa == 2 ? "AVX-512 and AVX2" : isa == 1 ? "AVX2" : "none");
	if (isa == 0) {
		printf("1..0 # SKIP no AVX2 on this CPU: the direct kernels are not used\n");
		return 0;
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		run_case(&fixed[i], isa);
	for (int i = 0; i < 30; i++) {
		struct dcase k;

		memset(&k, 0, sizeof(k));
		k.n = irand(1, 3);
		k.c = irand(1, 80);
		k.m = irand(1, 40);
		k.kh = irand(1, 3);
		k.kw = irand(1, 3);
		k.h = irand(1, 30);
		k.w = irand(1, 70);
		for (int p = 0; p < 4; p++)
			k.pads[p] = irand(0, 2) == 0 ? irand(0, 2) : 0;
		if (i % 5 == 4) {
			k.oned = 1;
			k.h = k.kh = 1;
			k.pads[0] = k.pads[2] = 0;
		}
		k.bias = (int)irand(0, 1);
		k.threads = (int)irand(1, 2);
		if (i % 3 == 1) {
			k.sh = k.oned ? 1 : irand(1, 3);
			k.sw = irand(1, 3);
		}
		run_case(&k, isa);
	}
	tap_diag("worst relative error of the direct kernels: %.3g", worst_overall);
	cache_across_sizes();
	pricing_skips_lanes();
	if (isa == 2)
		blocked_in_place();
	{
		/* lr__phase_plane (the padded / stride-phase copies of every
		 * direct and few-channel conv) against the definition, on
		 * widths around the 16-lane chunks and offsets past both
		 * edges: a wrong lane mask reads outside the row or drops a
		 * value. */
		int bad = 0, ncase = 0;

		for (int i = 0; i < 400; i++) {
			int64_t h = irand(1, 9), w = irand(1, 40), sy = irand(1, 3), sx = irand(1, 3);
			int64_t ro = irand(-3, 3), co = irand(-4, 4), hq = irand(1, 8), wq = irand(1, 37);
			float *src = malloc((size_t)(h * w) * sizeof(float));
			float *dst = malloc((size_t)(hq * wq + 1) * sizeof(float));

			if (src == NULL || dst == NULL) {
				free(src);
				free(dst);
				bad++;
				break;
			}
			for (int64_t t = 0; t < h * w; t++)
				src[t] = (float)(t + 1);
			dst[hq * wq] = -7.f; /* must stay */
			lr__phase_plane(src, h, w, sy, sx, ro, co, dst, hq, wq);
			for (int64_t r = 0; r < hq; r++)
				for (int64_t cc = 0; cc < wq; cc++) {
					int64_t iy = r * sy + ro, ix = cc * sx + co;
					float want = iy >= 0 && iy < h && ix >= 0 && ix < w ? src[iy * w + ix] : 0.f;

					bad += dst[r * wq + cc] != want;
				}
			bad += dst[hq * wq] != -7.f;
			ncase++;
			free(src);
			free(dst);
		}
		tap_ok(bad == 0 && ncase == 400,
		       "lr__phase_plane: %d random planes (strides 1-3, offsets past both edges) match the definition (%d wrong values)",
		       ncase, bad);
	}
	{
		static const struct gcase gc[] = {
			/* m, k, n, cshape, alpha, beta, threads */
			{ 8, 25088, 64, 1, 1.0f, 1.0f, 1 },    /* VGG fc6 pair, batch 8 */
			{ 8, 256, 130, 1, 1.0f, 1.0f, 2 },
			{ 3, 16, 1, 0, 1.0f, 1.0f, 1 },
			{ 5, 17, 7, 2, 0.5f, 2.0f, 2 },
			{ 9, 2049, 33, 1, 1.0f, 0.0f, 1 },
			{ 4, 8193, 9, 0, 1.0f, 1.0f, 2 },     /* a 1-wide last block of k */
			{ 16, 4100, 65, 2, -1.5f, 0.25f, 2 },
			{ 13, 100, 2, 1, 1.0f, 1.0f, 1 },
		};

		for (size_t i = 0; i < sizeof(gc) / sizeof(gc[0]); i++)
			run_gemm_case(&gc[i]);
	}
	return tap_done();
}
