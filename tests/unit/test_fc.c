/*
 * test_fc.c - fully connected decomposition (solver/fc.h): an exactly
 * rank-r layer is reproduced at rank r (fit and factors, on inputs the fit
 * never saw); with fewer calibration inputs than output features the
 * shrunk fit beats the pure data fit (PCA of the calibration responses and
 * the conv solver's linear regression) on held-out inputs; the timing
 * models build and run; the no-speedup bound. Every random input comes
 * from one seed, printed first (override with LR_TEST_SEED).
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "solver/cost.h"
#include "solver/fc.h"
#include "solver/lowrank.h"
#include "tests/unit/tap.h"

static uint64_t rng_state;

static uint64_t rng_u64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double rng_normal(void)
{
	double u = ((double)(rng_u64() >> 11) + 0.5) / 9007199254740992.0;
	double v = ((double)(rng_u64() >> 11) + 0.5) / 9007199254740992.0;

	return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* Y (n x d) = X W^T + b for X (n x c). */
static void respond(const lr_fc *fc, const float *X, int64_t n, float *Y)
{
	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < fc->d; j++) {
			double s = fc->b[j];

			for (int64_t k = 0; k < fc->c; k++)
				s += (double)fc->W[j * fc->c + k] * X[i * fc->c + k];
			Y[i * fc->d + j] = (float)s;
		}
}

/* |Y - (M Y + b')| / |Y - mean(Y)| over n rows, M = P Qt. */
static double rel_err(const lr_solve_result *res, const float *Y, int64_t n)
{
	int64_t d = res->d, r = res->r;
	double num = 0, den = 0, *mean = calloc((size_t)d, sizeof(double));
	double *t = malloc(sizeof(double) * (size_t)r);

	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < d; j++)
			mean[j] += Y[i * d + j] / (double)n;
	for (int64_t i = 0; i < n; i++) {
		const float *y = Y + i * d;

		for (int64_t a = 0; a < r; a++) {
			t[a] = 0;
			for (int64_t j = 0; j < d; j++)
				t[a] += res->Qt[a + j * r] * y[j];
		}
		for (int64_t j = 0; j < d; j++) {
			double ya = res->b[j];

			for (int64_t a = 0; a < r; a++)
				ya += res->P[j + a * d] * t[a];
			num += (y[j] - ya) * (y[j] - ya);
			den += (y[j] - mean[j]) * (y[j] - mean[j]);
		}
	}
	free(mean);
	free(t);
	return sqrt(num / den);
}

/* A layer whose W = A B has rank r is reproduced at rank r. */
static void test_exact(void)
{
	int64_t c = 60, d = 40, r = 8, n = 100, nh = 50;
	lr_fc fc = { 0 };
	float *X = malloc(sizeof(float) * (size_t)((n + nh) * c));
	float *Y = malloc(sizeof(float) * (size_t)((n + nh) * d));
	float *A = malloc(sizeof(float) * (size_t)(d * r)), *B = malloc(sizeof(float) * (size_t)(r * c));
	float *wa = malloc(sizeof(float) * (size_t)(r * c)), *ba = malloc(sizeof(float) * (size_t)r);
	float *wb = malloc(sizeof(float) * (size_t)(d * r)), *bb = malloc(sizeof(float) * (size_t)d);
	lr_solve_result res;
	lr_msg msg = { { 0 } };
	double alpha = -1, worst = 0, scale = 0;
	int rc;

	fc.c = c;
	fc.d = d;
	fc.W = malloc(sizeof(float) * (size_t)(d * c));
	fc.b = malloc(sizeof(float) * (size_t)d);
	for (int64_t i = 0; i < d * r; i++)
		A[i] = (float)rng_normal();
	for (int64_t i = 0; i < r * c; i++)
		B[i] = (float)(rng_normal() / 8);
	for (int64_t j = 0; j < d; j++) {
		fc.b[j] = (float)rng_normal();
		for (int64_t k = 0; k < c; k++) {
			double s = 0;

			for (int64_t a = 0; a < r; a++)
				s += (double)A[j * r + a] * B[a * c + k];
			fc.W[j * c + k] = (float)s;
		}
	}
	for (int64_t i = 0; i < (n + nh) * c; i++)
		X[i] = (float)rng_normal();
	respond(&fc, X, n + nh, Y);
	rc = lr_fc_fit(&fc, Y, n, r, -1.0, NULL, &res, &alpha, &msg);
	if (!tap_ok(rc == 0, "exact: fit at rank %lld (rc %d, %s)", (long long)r, rc, msg.text))
		goto out;
	tap_ok(alpha >= 0 && alpha <= 1, "exact: data-driven shrinkage %.4f in [0, 1]", alpha);
	tap_ok(fabs(res.energy - 1) < 1e-9 && res.lin_err_after < 1e-4,
	       "exact: all energy kept (%.12f), linear error %.2e", res.energy, res.lin_err_after);
	/* The two Gemms reproduce the layer on inputs the fit never saw. */
	tap_ok(lr_fc_factors(&fc, &res, wa, ba, wb, bb) == 0, "exact: factors");
	for (int64_t i = n; i < n + nh; i++) {
		float mid[8];

		for (int64_t a = 0; a < r; a++) {
			double s = ba[a];

			for (int64_t k = 0; k < c; k++)
				s += (double)wa[a * c + k] * X[i * c + k];
			mid[a] = (float)s;
		}
		for (int64_t j = 0; j < d; j++) {
			double s = bb[j], e;

			for (int64_t a = 0; a < r; a++)
				s += (double)wb[j * r + a] * mid[a];
			e = fabs(s - Y[i * d + j]);
			worst = e > worst ? e : worst;
			scale = fabs(Y[i * d + j]) > scale ? fabs(Y[i * d + j]) : scale;
		}
	}
	tap_ok(worst < 1e-4 * scale, "exact: Gemm(r x c) then Gemm(d x r) reproduce held-out outputs (max error %.2e of %.2e)",
	       worst, scale);
	lr_solve_result_free(&res);
	rc = lr_fc_fit(&fc, Y, n, r - 1, 1.0, NULL, &res, &alpha, &msg);
	tap_ok(rc == 0 && res.energy < 1 - 1e-6 && alpha == 1.0,
	       "exact: one rank less loses energy (%.6f; weight SVD, alpha %.1f)", res.energy, alpha);
	lr_solve_result_free(&res);
	rc = lr_fc_fit(&fc, Y, n, d, -1.0, NULL, &res, NULL, &msg);
	tap_ok(rc == LR_EINVAL && strstr(msg.text, "rank") != NULL, "exact: rank d refused (%s)", msg.text);
	Y[5 * d + 3] = NAN;
	memset(&msg, 0, sizeof(msg));
	rc = lr_fc_fit(&fc, Y, n, r, -1.0, NULL, &res, NULL, &msg);
	tap_ok(rc == LR_ENUMERIC && strstr(msg.text, "sample 5, feature 3") != NULL,
	       "exact: NaN response named (%s)", msg.text);
out:
	lr_fc_free(&fc);
	free(X);
	free(Y);
	free(A);
	free(B);
	free(wa);
	free(ba);
	free(wb);
	free(bb);
}

/*
 * N = 40 calibration inputs, d = 128 outputs, rank 32: the calibration
 * responses span at most 39 directions, so PCA on them (alpha = 0) and the
 * conv solver's linear data fit pick directions by noise; the shrunk fit
 * generalises. Inputs are correlated (x = L z, L with a decaying
 * spectrum) and W has decaying singular values, as in trained layers.
 */
static void test_heldout(void)
{
	int64_t c = 256, d = 128, r = 32, n = 40, nh = 1000;
	lr_fc fc = { 0 };
	float *Z = malloc(sizeof(float) * (size_t)((n + nh) * c));
	float *X = malloc(sizeof(float) * (size_t)((n + nh) * c));
	float *Y = malloc(sizeof(float) * (size_t)((n + nh) * d));
	float *L = malloc(sizeof(float) * (size_t)(c * c));
	lr_solve_result res;
	lr_solve_opts so;
	lr_msg msg = { { 0 } };
	double e_shrink, e_pca, e_svd, e_data, alpha = -1;
	int rc;

	fc.c = c;
	fc.d = d;
	fc.W = malloc(sizeof(float) * (size_t)(d * c));
	fc.b = malloc(sizeof(float) * (size_t)d);
	for (int64_t j = 0; j < d; j++) {
		fc.b[j] = (float)(0.1 * rng_normal());
		for (int64_t k = 0; k < c; k++)
			fc.W[j * c + k] = (float)(rng_normal() / sqrt((double)c) / (1.0 + 0.1 * (double)j));
	}
	for (int64_t a = 0; a < c; a++)
		for (int64_t k = 0; k < c; k++)
			L[a * c + k] = (float)(rng_normal() / (1.0 + 0.05 * (double)k));
	for (int64_t i = 0; i < (n + nh) * c; i++)
		Z[i] = (float)rng_normal();
	for (int64_t i = 0; i < n + nh; i++)
		for (int64_t a = 0; a < c; a++) {
			double s = 0;

			for (int64_t k = 0; k < c; k++)
				s += (double)L[a * c + k] * Z[i * c + k];
			X[i * c + a] = (float)s;
		}
	respond(&fc, X, n + nh, Y);

	rc = lr_fc_fit(&fc, Y, n, r, -1.0, NULL, &res, &alpha, &msg);
	e_shrink = rc == 0 ? rel_err(&res, Y + n * d, nh) : 1e9;
	lr_solve_result_free(&res);
	rc |= lr_fc_fit(&fc, Y, n, r, 0.0, NULL, &res, NULL, &msg);
	e_pca = rc == 0 ? rel_err(&res, Y + n * d, nh) : 1e9;
	lr_solve_result_free(&res);
	rc |= lr_fc_fit(&fc, Y, n, r, 1.0, NULL, &res, NULL, &msg);
	e_svd = rc == 0 ? rel_err(&res, Y + n * d, nh) : 1e9;
	lr_solve_result_free(&res);
	lr_solve_opts_init(&so);
	rc |= lr_lowrank_solve(Y, Y, n, d, r, &so, &res, &msg);
	e_data = rc == 0 ? rel_err(&res, Y + n * d, nh) : 1e9;
	lr_solve_result_free(&res);
	tap_ok(rc == 0, "held-out: all four fits run (%s)", msg.text);
	tap_diag("held-out relative error at rank %lld, N=%lld < d=%lld: shrinkage %.4f (alpha %.3f), "
		 "weight SVD %.4f, PCA of calibration responses %.4f, linear data fit %.4f",
		 (long long)r, (long long)n, (long long)d, e_shrink, alpha, e_svd, e_pca, e_data);
	tap_ok(alpha > 0 && alpha < 1, "held-out: data-driven shrinkage strictly inside (0, 1): %.3f", alpha);
	tap_ok(e_shrink < 0.9 * e_pca && e_shrink < 0.9 * e_data,
	       "held-out: shrinkage beats the data fits by > 10%% (%.4f vs %.4f, %.4f)", e_shrink, e_pca,
	       e_data);
	tap_ok(e_shrink <= e_svd * 1.001, "held-out: shrinkage no worse than the plain weight SVD (%.4f vs %.4f)",
	       e_shrink, e_svd);
	lr_fc_free(&fc);
	free(Z);
	free(X);
	free(Y);
	free(L);
}

static void test_timing_models(void)
{
	lr_model *m0 = NULL, *m1 = NULL;
	lr_msg msg = { { 0 } };
	int64_t dims[2] = { 1, 96 };
	double t0 = 0, t1 = 0;
	int rc = lr_fc_timing_model(1, 96, 64, 0, 13, 1, &m0, &msg);
	char key[256];

	rc |= lr_fc_timing_model(1, 96, 64, 16, 13, 2, &m1, &msg);
	if (!tap_ok(rc == 0 && m0->nnodes == 1 && m1->nnodes == 2,
		    "timing models: one Gemm, and the pair (%s)", msg.text))
		goto out;
	rc = lr_time_forward(m0, 2, dims, 1, 1, NULL, &t0, &msg);
	rc |= lr_time_forward(m1, 2, dims, 1, 1, NULL, &t1, &msg);
	tap_ok(rc == 0 && t0 > 0 && t1 > 0, "timing models run (%.2g s, %.2g s)", t0, t1);
	{
		lr_model *m2 = NULL;

		rc = lr_fc_timing_model(1, 96, 64, 64, 13, 2, &m2, &msg);
		tap_ok(rc == LR_EINVAL && m2 == NULL, "timing models: rank d refused (%s)", msg.text);
	}
	lr_fc_cost_key(8, 96, 64, 16, "cpu=x", key, sizeof(key));
	tap_ok(strcmp(key, "cpu=x|fc|c=96|d=64|b=8|r=16") == 0, "cost key: %s", key);
out:
	lr_model_free(m0);
	lr_model_free(m1);
}

/*
 * The fit's statistics against plain loops, with more inputs than one
 * block of the fit's blocked products (512), at a rank below d/8 (a subset
 * of eigenvectors) and one above (all, and more than a block): energy =
 * sum_k p_k^T C p_k / tr C, and the relative error of max(., 0) of the
 * responses against max(P P^T y + b, 0).
 */
static void test_fit_stats(int64_t r)
{
	int64_t c = 700, d = 600, n = 1100;
	lr_fc fc = { 0 };
	float *X = malloc(sizeof(float) * (size_t)(n * c)), *Y = malloc(sizeof(float) * (size_t)(n * d));
	double *t = malloc(sizeof(double) * (size_t)r), kept = 0, num = 0, den = 0;
	lr_fc_cov cov;
	lr_solve_result res;
	lr_msg msg = { { 0 } };
	int rc;

	fc.c = c;
	fc.d = d;
	fc.W = malloc(sizeof(float) * (size_t)(d * c));
	fc.b = malloc(sizeof(float) * (size_t)d);
	for (int64_t i = 0; i < d * c; i++)
		fc.W[i] = (float)rng_normal();
	for (int64_t j = 0; j < d; j++)
		fc.b[j] = (float)(rng_normal() / 4);
	for (int64_t i = 0; i < n * c; i++)
		X[i] = (float)rng_normal();
	respond(&fc, X, n, Y);
	memset(&res, 0, sizeof(res));
	rc = lr_fc_cov_build(&fc, Y, n, 0.5, NULL, &cov, &msg);
	if (rc == 0)
		rc = lr_fc_fit_cov(&cov, Y, n, r, &res, &msg);
	tap_ok(rc == 0, "fit at rank %lld of %lld on %lld inputs (%s)", (long long)r, (long long)d,
	       (long long)n, msg.text);
	if (rc == 0) {
		for (int64_t k = 0; k < r; k++) {
			const double *p = res.P + k * d;

			for (int64_t i = 0; i < d; i++)
				for (int64_t j = 0; j < d; j++) {
					/* C holds its lower triangle (column-major). */
					double cij = i >= j ? cov.C[i + j * d] : cov.C[j + i * d];

					kept += p[i] * cij * p[j];
				}
		}
		for (int64_t s = 0; s < n; s++) {
			const float *y = Y + s * d;

			for (int64_t a = 0; a < r; a++) {
				t[a] = 0;
				for (int64_t j = 0; j < d; j++)
					t[a] += res.P[j + a * d] * y[j];
			}
			for (int64_t j = 0; j < d; j++) {
				double v = res.b[j], a0 = y[j] > 0 ? y[j] : 0, a1;

				for (int64_t a = 0; a < r; a++)
					v += res.P[j + a * d] * t[a];
				a1 = v > 0 ? v : 0;
				num += (a0 - a1) * (a0 - a1);
				den += a0 * a0;
			}
		}
		tap_ok(fabs(res.energy - kept / cov.trc) < 1e-9 && res.energy < 1,
		       "energy kept matches tr(P^T C P) / tr C (%.12f vs %.12f)", res.energy,
		       kept / cov.trc);
		tap_ok(fabs(res.err_after - sqrt(num / den)) < 1e-9 * (1 + sqrt(num / den)) &&
			       res.err_after > 0,
		       "response error matches the plain loop (%.12f vs %.12f)", res.err_after,
		       sqrt(num / den));
		/* wa = Qt W over more columns than one block (c = 700 > 512) */
		{
			float *wa = malloc(sizeof(float) * (size_t)(r * c));
			float *ba = malloc(sizeof(float) * (size_t)r);
			float *wb = malloc(sizeof(float) * (size_t)(d * r));
			float *bb = malloc(sizeof(float) * (size_t)d);
			double worst = 0, wbe = 0;

			rc = lr_fc_factors(&fc, &res, wa, ba, wb, bb);
			for (int64_t i = 0; rc == 0 && i < r; i++) {
				double sb = 0;

				for (int64_t k = 0; k < c; k++) {
					double sw = 0;

					for (int64_t j = 0; j < d; j++)
						sw += res.Qt[i + j * r] * fc.W[j * c + k];
					worst = fmax(worst, fabs(wa[i * c + k] - sw) / (1 + fabs(sw)));
				}
				for (int64_t j = 0; j < d; j++)
					sb += res.Qt[i + j * r] * fc.b[j];
				worst = fmax(worst, fabs(ba[i] - sb) / (1 + fabs(sb)));
			}
			for (int64_t j = 0; rc == 0 && j < d; j++)
				for (int64_t i = 0; i < r; i++)
					wbe = fmax(wbe, fabs(wb[j * r + i] - res.P[j + i * d]));
			tap_ok(rc == 0 && worst < 1e-6 && wbe < 1e-6,
			       "factors: Qt W, Qt b and P match plain loops (worst %.2e, %.2e)", worst, wbe);
			free(wa);
			free(ba);
			free(wb);
			free(bb);
		}
	}
	lr_solve_result_free(&res);
	lr_fc_cov_free(&cov);
	free(fc.W);
	free(fc.b);
	free(X);
	free(Y);
	free(t);
}

int main(void)
{
	const char *s = getenv("LR_TEST_SEED");

	rng_state = s ? strtoull(s, NULL, 0) : 20261203;
	tap_diag("seed %llu", (unsigned long long)rng_state);
	tap_ok(lr_fc_max_rank(1024, 256) == 204 && lr_fc_max_rank(128, 10) == 9 &&
	       lr_fc_max_rank(25088, 4096) == 3521 && lr_fc_max_rank(2, 2) == 0,
	       "no-speedup bound r (c + d) < c d");
	test_exact();
	test_heldout();
	test_timing_models();
	test_fit_stats(50);
	test_fit_stats(530);
	return tap_done();
}
