/*
 * test_winograd.c - the Winograd 3x3 convolution (model/conv_winograd.c)
 * against a double-precision direct convolution written here, and against
 * the im2col path (LR_NO_WINOGRAD=1), over fixed and random shapes: odd
 * and even sizes, images smaller than a tile, asymmetric and SAME_UPPER
 * padding, batches of 1..3, channel counts that are not multiples of 8,
 * with and without bias. Each case is a one-node Conv model run through
 * the real loader and engine (tests/unit/opcheck.h, 2 threads). Small
 * shapes, which the engine leaves to im2col, are forced through Winograd
 * with LR_WINOGRAD_FORCE=1; both forced paths set LR_NO_CONV_DIRECT,
 * since the direct kernels take these shapes first on AVX2 and AVX-512
 * CPUs (the unforced "default path" cases then cover those kernels).
 * Every random choice comes from one seed
 * (printed; LR_TEST_SEED overrides it).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/opcheck.h"
#include "tests/unit/tap.h"

/*
 * Tolerance: |err| <= tol * (1 + |ref|) with tol = 1e-5 * sqrt(C / 16)
 * (C >= 16). Float32 accumulation over 9C products is already about
 * 1e-5 off for C = 64 on the im2col path (1.7e-5 at C = 256), so a flat
 * 1e-5 would fail im2col too; F(2x2,3x3) stays within 1.5x of im2col.
 * F(4x4,3x3) (1e-4 .. 3e-4 at C = 64 .. 256) fails this bound.
 */
static double tol_for(int64_t c)
{
	return 1e-5 * sqrt((double)(c < 16 ? 16 : c) / 16.0);
}

static uint64_t rng;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Uniform in [-1, 1). */
static float frand(void)
{
	return (float)((double)(next() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Uniform integer in [lo, hi]. */
static int64_t irand(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(next() % (uint64_t)(hi - lo + 1));
}

static lr_tensor *rand_tensor(int ndim, const int64_t *dims)
{
	lr_tensor *t = lrt_f(ndim, dims, NULL);

	for (int64_t i = 0; i < t->nelem; i++)
		((float *)t->data)[i] = frand();
	return t;
}

struct wcase {
	int64_t n, c, h, w, m;
	int64_t pads[4];         /* top, left, bottom, right */
	int same_upper;          /* auto_pad SAME_UPPER instead of pads */
	int bias;
};

/* Worst |a - ref| / (1 + |ref|); infinity for a missing/misshaped result. */
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

static double worst_overall;

/*
 * Runs the case with `env` set to "1" (NULL: neither variable set) and
 * returns the output (NULL on failure, with the message printed).
 */
static lr_tensor *run_conv(const struct wcase *k, lr_tensor *x, lr_tensor *w, lr_tensor *b,
			   const char *env)
{
	lrt_node nd;
	lr_msg msg = { { 0 } };
	lr_tensor *y = NULL;
	int rc;

	unsetenv("LR_NO_WINOGRAD");
	unsetenv("LR_WINOGRAD_FORCE");
	unsetenv("LR_NO_CONV_DIRECT");
	if (env != NULL) {
		/* the direct kernels (conv_direct.c) come first otherwise */
		setenv(env, "1", 1);
		setenv("LR_NO_CONV_DIRECT", "1", 1);
	}
	lrt_init(&nd, "Conv", 13);
	lrt_input(&nd, x);
	lrt_const(&nd, w);
	if (k->bias)
		lrt_const(&nd, b);
	lrt_attr_ints(&nd, "kernel_shape", 2, (int64_t[]){ 3, 3 });
	if (k->same_upper)
		lrt_attr_str(&nd, "auto_pad", "SAME_UPPER");
	else
		lrt_attr_ints(&nd, "pads", 4, k->pads);
	rc = lrt_run(&nd, 1, &y, &msg);
	lrt_fini(&nd);
	unsetenv("LR_NO_WINOGRAD");
	unsetenv("LR_WINOGRAD_FORCE");
	unsetenv("LR_NO_CONV_DIRECT");
	if (rc != 0) {
		tap_diag("run failed (%d): %s", rc, msg.text);
		lr_tensor_free(y);
		return NULL;
	}
	return y;
}

static void run_case(const struct wcase *k0, int plain_too)
{
	struct wcase k = *k0;
	int64_t pt, pl, pb, pr, oh, ow, ny;
	lr_tensor *x, *w, *b, *yw, *yi, *yd = NULL;
	double *ref, ew, ei, ewi = 0, ed = 0;
	char label[160];
	double tol = tol_for(k0->c);

	if (k.same_upper) {
		/* stride 1, kernel 3: total pad 2 per axis, the extra one at the end */
		pt = pl = 1;
		pb = pr = 1;
	} else {
		pt = k.pads[0]; pl = k.pads[1]; pb = k.pads[2]; pr = k.pads[3];
	}
	oh = k.h + pt + pb - 2;
	ow = k.w + pl + pr - 2;
	if (oh < 1 || ow < 1)
		return;
	x = rand_tensor(4, (int64_t[]){ k.n, k.c, k.h, k.w });
	w = rand_tensor(4, (int64_t[]){ k.m, k.c, 3, 3 });
	b = rand_tensor(1, (int64_t[]){ k.m });
	ny = k.n * k.m * oh * ow;
	ref = malloc((size_t)ny * sizeof(double));
	if (ref == NULL)
		abort();
	{
		const float *xd = x->data, *wd = w->data, *bd = b->data;

		for (int64_t n = 0; n < k.n; n++)
			for (int64_t m = 0; m < k.m; m++)
				for (int64_t oy = 0; oy < oh; oy++)
					for (int64_t ox = 0; ox < ow; ox++) {
						double acc = k.bias ? bd[m] : 0.0;

						for (int64_t ci = 0; ci < k.c; ci++)
							for (int ki = 0; ki < 3; ki++) {
								int64_t iy = oy - pt + ki;

								if (iy < 0 || iy >= k.h)
									continue;
								for (int kj = 0; kj < 3; kj++) {
									int64_t ix = ox - pl + kj;

									if (ix < 0 || ix >= k.w)
										continue;
									acc += (double)xd[((n * k.c + ci) * k.h + iy) * k.w + ix] *
									       (double)wd[((m * k.c + ci) * 3 + ki) * 3 + kj];
								}
							}
						ref[((n * k.m + m) * oh + oy) * ow + ox] = acc;
					}
	}
	snprintf(label, sizeof(label), "N=%lld C=%lld M=%lld %lldx%lld %s%lld,%lld,%lld,%lld%s",
		 (long long)k.n, (long long)k.c, (long long)k.m, (long long)k.h, (long long)k.w,
		 k.same_upper ? "SAME_UPPER " : "pads ", (long long)pt, (long long)pl,
		 (long long)pb, (long long)pr, k.bias ? " bias" : "");
	yw = run_conv(&k, x, w, b, "LR_WINOGRAD_FORCE");
	yi = run_conv(&k, x, w, b, "LR_NO_WINOGRAD");
	ew = worst_err(yw, ref, ny);
	ei = worst_err(yi, ref, ny);
	if (yw != NULL && yi != NULL && yw->nelem == ny && yi->nelem == ny) {
		for (int64_t i = 0; i < ny; i++) {
			double a = ((const float *)yw->data)[i], c = ((const float *)yi->data)[i];
			double e = fabs(a - c) / (1.0 + fabs(c));

			if (!(e <= ewi))
				ewi = e;
		}
	} else {
		ewi = INFINITY;
	}
	if (plain_too) {
		yd = run_conv(&k, x, w, b, NULL);
		ed = worst_err(yd, ref, ny);
	}
	if (!(ew <= worst_overall))
		worst_overall = ew;
	tap_ok(yw != NULL && yw->ndim == 4 && yw->dims[0] == k.n && yw->dims[1] == k.m &&
	       yw->dims[2] == oh && yw->dims[3] == ow && ew <= tol,
	       "winograd %s: %lldx%lld, worst %.3g (tol %.2g)", label, (long long)oh,
	       (long long)ow, ew, tol);
	tap_ok(ei <= tol && ewi <= 2 * tol,
	       "im2col agrees %s: worst vs ref %.3g, vs winograd %.3g", label, ei, ewi);
	if (plain_too)
		tap_ok(ed <= tol, "default path %s: worst %.3g", label, ed);
	free(ref);
	lr_tensor_free(x);
	lr_tensor_free(w);
	lr_tensor_free(b);
	lr_tensor_free(yw);
	lr_tensor_free(yi);
	lr_tensor_free(yd);
}

int main(void)
{
	const char *s = getenv("LR_TEST_SEED");
	uint64_t seed = s != NULL ? strtoull(s, NULL, 0) : 20240611u;
	static const struct wcase fixed[] = {
		/* n, c, h, w, m, pads{t,l,b,r}, same_upper, bias */
		{ 1, 16, 8, 8, 16, { 1, 1, 1, 1 }, 0, 1 },
		{ 1, 16, 1, 1, 16, { 1, 1, 1, 1 }, 0, 0 },    /* one pixel */
		{ 1, 17, 2, 3, 19, { 1, 1, 1, 1 }, 0, 1 },    /* smaller than a tile */
		{ 2, 24, 3, 5, 40, { 0, 0, 0, 0 }, 0, 1 },    /* 1x3 output */
		{ 1, 32, 7, 7, 32, { 1, 1, 1, 1 }, 0, 1 },    /* ResNet's 7x7 */
		{ 3, 20, 9, 11, 33, { 0, 2, 1, 0 }, 0, 0 },   /* asymmetric */
		{ 1, 16, 10, 13, 24, { 2, 0, 0, 2 }, 0, 1 },
		{ 2, 40, 12, 12, 16, { 2, 2, 2, 2 }, 0, 1 },
		{ 1, 48, 14, 15, 56, { 0, 0, 0, 0 }, 1, 1 },  /* SAME_UPPER */
		{ 1, 64, 28, 28, 64, { 1, 1, 1, 1 }, 0, 1 },
		{ 1, 256, 14, 14, 256, { 1, 1, 1, 1 }, 0, 1 },
		{ 1, 256, 9, 10, 200, { 1, 0, 2, 1 }, 0, 0 },
		{ 1, 512, 6, 6, 24, { 1, 1, 1, 1 }, 0, 1 },   /* deep: accuracy */
	};
	/* Large enough that the engine picks Winograd by itself. */
	static const struct wcase big[] = {
		{ 1, 64, 56, 56, 64, { 1, 1, 1, 1 }, 0, 1 },
		{ 2, 72, 33, 41, 80, { 1, 1, 1, 1 }, 0, 0 },
		{ 1, 128, 57, 46, 128, { 0, 1, 2, 1 }, 0, 1 },
	};

	rng = seed ? seed : 1;
	tap_diag("seed %llu (set LR_TEST_SEED to repeat)", (unsigned long long)seed);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		run_case(&fixed[i], 0);
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		run_case(&big[i], 1);
	for (int i = 0; i < 24; i++) {
		struct wcase k;

		memset(&k, 0, sizeof(k));
		k.n = irand(1, 3);
		k.c = irand(16, 96);
		k.m = irand(16, 96);
		if (i % 6 == 5) {
			k.c = irand(100, 256);
			k.m = irand(100, 256);
		}
		k.h = irand(1, 24);
		k.w = irand(1, 24);
		k.same_upper = irand(0, 3) == 0;
		for (int p = 0; p < 4; p++)
			k.pads[p] = irand(0, 2);
		k.bias = (int)irand(0, 1);
		run_case(&k, 0);
	}
	tap_diag("worst relative error of the Winograd path: %.3g (1e-5 * sqrt(C/16) allowed)",
		 worst_overall);
	return tap_done();
}
