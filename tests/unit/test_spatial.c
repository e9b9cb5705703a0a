/*
 * test_spatial.c - the spatial split's filter reconstruction (solver/spatial.h):
 * exact at full d'', optimal below it (Eckart-Young: the error is the tail of
 * the singular values, and no perturbation of the factors does better), the
 * channel split's first layer A = Qt H (lr_spatial_project), the cost
 * formula, and the errors. Seeded (LR_TEST_SEED replays).
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "solver/spatial.h"
#include "tests/unit/tap.h"

static uint64_t rng_state;

static double urand(double lo, double hi)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

/* ||w - compose(wv, wh)||_F^2 in double. */
static double split_err2(const float *w, const float *wv, const float *wh, int64_t d,
			 int64_t c, int64_t kh, int64_t kw, int64_t r2)
{
	int64_t n = d * c * kh * kw;
	float *ws = malloc((size_t)n * sizeof(float));
	double e = 0;

	if (ws == NULL)
		abort();
	lr_spatial_compose(wv, wh, d, c, kh, kw, r2, ws);
	for (int64_t i = 0; i < n; i++)
		e += ((double)w[i] - ws[i]) * ((double)w[i] - ws[i]);
	free(ws);
	return e;
}

static void test_case(int64_t d, int64_t c, int64_t kh, int64_t kw, int64_t r2)
{
	int64_t n = d * c * kh * kw, m = c * kh, k = m < d * kw ? m : d * kw;
	float *w = malloc((size_t)n * sizeof(float));
	float *wv = malloc((size_t)(r2 * m) * sizeof(float));
	float *wh = malloc((size_t)(d * r2 * kw) * sizeof(float));
	double *sv = malloc((size_t)k * sizeof(double)), norm2 = 0, tail = 0, e, worse = INFINITY;
	lr_msg msg = { { 0 } };
	int rc, sorted = 1;

	if (!w || !wv || !wh || !sv)
		abort();
	for (int64_t i = 0; i < n; i++) {
		w[i] = (float)urand(-1, 1);
		norm2 += (double)w[i] * w[i];
	}
	rc = lr_spatial_split(w, d, c, kh, kw, r2, wv, wh, sv, &msg);
	if (!tap_ok(rc == 0, "%lldx%lldx%lldx%lld at d'' %lld splits (%s)", (long long)d,
		    (long long)c, (long long)kh, (long long)kw, (long long)r2, msg.text))
		goto out;
	for (int64_t j = 0; j < k; j++) {
		if (j > 0 && sv[j] > sv[j - 1])
			sorted = 0;
		if (j >= r2)
			tail += sv[j] * sv[j];
	}
	e = split_err2(w, wv, wh, d, c, kh, kw, r2);
	if (r2 == k) {
		tap_ok(e <= 1e-9 * norm2,
		       "%lldx%lldx%lldx%lld: full d'' = %lld reconstructs W (rel err^2 %.3g)",
		       (long long)d, (long long)c, (long long)kh, (long long)kw, (long long)k,
		       e / norm2);
	} else {
		tap_ok(sorted && fabs(e - tail) <= 1e-5 * norm2,
		       "%lldx%lldx%lldx%lld at d'' %lld: error^2 %.6g is the singular value tail %.6g",
		       (long long)d, (long long)c, (long long)kh, (long long)kw, (long long)r2, e, tail);
		/* no nearby pair is better (first-order optimality, both sides) */
		for (int t = 0; t < 40; t++) {
			float *pv = malloc((size_t)(r2 * m) * sizeof(float));
			float *ph = malloc((size_t)(d * r2 * kw) * sizeof(float));
			double step = t < 20 ? 1e-2 : 1e-3;

			if (!pv || !ph)
				abort();
			for (int64_t i = 0; i < r2 * m; i++)
				pv[i] = wv[i] + (float)urand(-step, step);
			for (int64_t i = 0; i < d * r2 * kw; i++)
				ph[i] = wh[i] + (float)urand(-step, step);
			worse = fmin(worse, split_err2(w, pv, ph, d, c, kh, kw, r2) - e);
			free(pv);
			free(ph);
		}
		tap_ok(worse >= -1e-6 * norm2,
		       "%lldx%lldx%lldx%lld at d'' %lld: 40 random perturbations of the factors are no better (best gain %.3g)",
		       (long long)d, (long long)c, (long long)kh, (long long)kw, (long long)r2, -worse);
	}
out:
	free(w);
	free(wv);
	free(wh);
	free(sv);
}

/*
 * A = Qt H and its bias Qt b0 (lr_spatial_project): for random v, the
 * (1 x kw, r2 -> r) layer gives Qt (H v + b0), so with B = P the pair
 * computes M (H v + b0) + b, the solver's prediction.
 */
static void test_project(int64_t d, int64_t r2, int64_t kw, int64_t r, int with_bias)
{
	int64_t row = r2 * kw;
	double *qt = malloc(sizeof(double) * (size_t)(r * d)), worst = 0, scale = 0;
	float *wh = malloc(sizeof(float) * (size_t)(d * row)), *b0 = malloc(sizeof(float) * (size_t)d);
	float *wa = malloc(sizeof(float) * (size_t)(r * row)), *ba = malloc(sizeof(float) * (size_t)r);
	double *v = malloc(sizeof(double) * (size_t)row), *hv = malloc(sizeof(double) * (size_t)d);

	if (!qt || !wh || !b0 || !wa || !ba || !v || !hv)
		abort();
	for (int64_t i = 0; i < r * d; i++)
		qt[i] = urand(-1, 1);
	for (int64_t i = 0; i < d * row; i++)
		wh[i] = (float)urand(-1, 1);
	for (int64_t i = 0; i < d; i++)
		b0[i] = (float)urand(-2, 2);
	lr_spatial_project(qt, r, wh, d, r2, kw, with_bias ? b0 : NULL, wa, ba);
	for (int t = 0; t < 5; t++) {
		for (int64_t k = 0; k < row; k++)
			v[k] = urand(-1, 1);
		for (int64_t o = 0; o < d; o++) {
			hv[o] = with_bias ? b0[o] : 0;
			for (int64_t k = 0; k < row; k++)
				hv[o] += (double)wh[o * row + k] * v[k];
		}
		for (int64_t i = 0; i < r; i++) {
			double got = ba[i], want = 0;

			for (int64_t k = 0; k < row; k++)
				got += (double)wa[i * row + k] * v[k];
			for (int64_t o = 0; o < d; o++)
				want += qt[i + o * r] * hv[o];
			worst = fmax(worst, fabs(got - want));
			scale = fmax(scale, fabs(want));
		}
	}
	tap_ok(worst <= 1e-5 * (scale + 1),
	       "project d %lld, d'' %lld, kw %lld, d' %lld%s: Qt H v + Qt b0 = Qt (H v + b0) (max err %.3g of %.3g)",
	       (long long)d, (long long)r2, (long long)kw, (long long)r, with_bias ? ", bias" : "", worst,
	       scale);
	free(qt);
	free(wh);
	free(b0);
	free(wa);
	free(ba);
	free(v);
	free(hv);
}

static void test_errors(void)
{
	float w[2 * 2 * 3 * 3], wv[16], wh[16];
	lr_msg msg = { { 0 } };
	int rc;

	for (int i = 0; i < 36; i++)
		w[i] = (float)i;
	rc = lr_spatial_split(w, 2, 2, 3, 3, 7, wv, wh, NULL, &msg);
	tap_ok(rc == LR_EINVAL && strstr(msg.text, "d'' = 7") && strstr(msg.text, "6"),
	       "d'' above min(c*kh, d*kw) = 6 is refused: %s", msg.text);
	w[5] = NAN;
	memset(&msg, 0, sizeof(msg)); /* lr_fail keeps the first message */
	rc = lr_spatial_split(w, 2, 2, 3, 3, 2, wv, wh, NULL, &msg);
	tap_ok(rc == LR_ENUMERIC && strstr(msg.text, "not finite"),
	       "a NaN weight is refused (rc %d): %s", rc, msg.text);
}

static void test_macs(void)
{
	/* VGG conv3_2 at 56x56: (3x1, 256 -> 128), (1x3, 128 -> 64), (1x1, 64 -> 256) */
	double got = lr_spatial_macs(256, 256, 3, 3, 128, 64, 56, 56, 56);
	double want = 128.0 * 256 * 3 * 56 * 56 + 64.0 * 128 * 3 * 56 * 56 + 256.0 * 64 * 56 * 56;
	double strided = lr_spatial_macs(8, 4, 3, 3, 2, 0, 5, 6, 13);

	tap_ok(got == want, "macs of a split VGG layer: %.0f", got);
	tap_ok(strided == 2.0 * 4 * 3 * 5 * 13 + 8.0 * 2 * 3 * 5 * 6,
	       "the vertical layer runs over the full input width when the layer strides: %.0f",
	       strided);
}

int main(void)
{
	const char *s = getenv("LR_TEST_SEED");
	uint64_t seed = s != NULL && s[0] ? strtoull(s, NULL, 10)
					  : (uint64_t)time(NULL) ^ (uint64_t)getpid();

	rng_state = seed | 1;
	tap_diag("seed %llu (LR_TEST_SEED=%llu replays)", (unsigned long long)seed,
		 (unsigned long long)seed);
	test_case(6, 4, 3, 3, 12);
	test_case(6, 4, 3, 3, 5);
	test_case(16, 8, 3, 3, 7);
	test_case(5, 7, 5, 3, 15);
	test_case(4, 3, 1, 3, 2);
	test_project(6, 4, 3, 2, 1);
	test_project(16, 7, 3, 5, 0);
	test_project(9, 12, 5, 9, 1);
	test_errors();
	test_macs();
	return tap_done();
}
