/*
 * spatial.c - filter reconstruction for the spatial split (see spatial.h):
 * one LAPACK dgesdd on the (c*kh) x (d*kw) re-arranged weights.
 */
#include "config.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "solver/spatial.h"

int lr_spatial_split(const float *w, int64_t d, int64_t c, int64_t kh, int64_t kw,
		     int64_t r2, float *wv, float *wh, double *sv, lr_msg *msg)
{
	int64_t m = c * kh, n = d * kw, k, ldvt;
	double *a = NULL, *s = NULL, *u = NULL, *vt = NULL;
	lapack_int info;
	int rc = 0;

	if (d < 1 || c < 1 || kh < 1 || kw < 1 || m > INT32_MAX / 4 || n > INT32_MAX / 4 ||
	    m * n > ((int64_t)1 << 31))
		return lr_fail(msg, LR_EINVAL, "spatial split: bad weight shape %lld x %lld x %lld x %lld",
			       (long long)d, (long long)c, (long long)kh, (long long)kw);
	k = m < n ? m : n;
	if (r2 < 1 || r2 > k)
		return lr_fail(msg, LR_EINVAL,
			       "spatial split: d'' = %lld must be between 1 and %lld (min(c*kh, d*kw))",
			       (long long)r2, (long long)k);
	ldvt = k;
	a = malloc((size_t)(m * n) * sizeof(*a));
	s = malloc((size_t)k * sizeof(*s));
	u = malloc((size_t)(m * k) * sizeof(*u));
	vt = malloc((size_t)(k * n) * sizeof(*vt));
	if (a == NULL || s == NULL || u == NULL || vt == NULL) {
		rc = lr_fail(msg, LR_ENOMEM, "spatial split: out of memory for a %lld x %lld SVD",
			     (long long)m, (long long)n);
		goto out;
	}
	/* A[(ci,h), (o,x)] = W[o,ci,h,x], column-major with leading dimension m. */
	for (int64_t o = 0; o < d; o++)
		for (int64_t ci = 0; ci < c; ci++)
			for (int64_t h = 0; h < kh; h++)
				for (int64_t x = 0; x < kw; x++) {
					float v = w[((o * c + ci) * kh + h) * kw + x];

					if (!isfinite(v)) {
						rc = lr_fail(msg, LR_ENUMERIC,
							     "spatial split: weight [%lld,%lld,%lld,%lld] is not finite",
							     (long long)o, (long long)ci, (long long)h,
							     (long long)x);
						goto out;
					}
					a[(o * kw + x) * m + ci * kh + h] = v;
				}
	info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', (lapack_int)m, (lapack_int)n, a,
			      (lapack_int)m, s, u, (lapack_int)m, vt, (lapack_int)ldvt);
	if (info != 0) {
		rc = lr_fail(msg, info > 0 ? LR_ENUMERIC : LR_ELAPACK,
			     "spatial split: LAPACK dgesdd on %lld x %lld returned info %d%s",
			     (long long)m, (long long)n, (int)info,
			     info > 0 ? " (no convergence)" : "");
		goto out;
	}
	for (int64_t j = 0; j < r2; j++) {
		double g = sqrt(s[j]);

		for (int64_t i = 0; i < m; i++) /* wv[j, ci, h, 0] = U[(ci,h), j] sqrt(s_j) */
			wv[j * m + i] = (float)(u[j * m + i] * g);
		for (int64_t o = 0; o < d; o++) /* wh[o, j, 0, x] = sqrt(s_j) VT[j, (o,x)] */
			for (int64_t x = 0; x < kw; x++)
				wh[(o * r2 + j) * kw + x] = (float)(g * vt[(o * kw + x) * ldvt + j]);
	}
	if (sv != NULL)
		memcpy(sv, s, (size_t)k * sizeof(*s));
out:
	free(a);
	free(s);
	free(u);
	free(vt);
	return rc;
}

void lr_spatial_compose(const float *wv, const float *wh, int64_t d, int64_t c,
			int64_t kh, int64_t kw, int64_t r2, float *ws)
{
	for (int64_t o = 0; o < d; o++)
		for (int64_t ci = 0; ci < c; ci++)
			for (int64_t h = 0; h < kh; h++)
				for (int64_t x = 0; x < kw; x++) {
					double acc = 0.0;

					for (int64_t j = 0; j < r2; j++)
						acc += (double)wh[(o * r2 + j) * kw + x] *
						       (double)wv[(j * c + ci) * kh + h];
					ws[((o * c + ci) * kh + h) * kw + x] = (float)acc;
				}
}

double lr_spatial_macs(int64_t d, int64_t c, int64_t kh, int64_t kw, int64_t r2,
		       int64_t r, int64_t hout, int64_t wout, int64_t win)
{
	double first = (double)r2 * (double)c * (double)kh * (double)hout * (double)win;

	if (r <= 0)
		return first + (double)d * (double)r2 * (double)kw * (double)hout * (double)wout;
	return first + (double)r * (double)r2 * (double)kw * (double)hout * (double)wout +
	       (double)d * (double)r * (double)hout * (double)wout;
}

void lr_spatial_project(const double *Qt, int64_t r, const float *wh, int64_t d, int64_t r2,
			int64_t kw, const float *b0, float *wa, float *ba)
{
	int64_t row = r2 * kw;
	double *acc = malloc(sizeof(double) * (size_t)(row > 0 ? row : 1));

	for (int64_t i = 0; i < r; i++) {
		double bacc = 0;

		if (acc != NULL) {
			memset(acc, 0, sizeof(double) * (size_t)row);
			for (int64_t o = 0; o < d; o++) {
				double q = Qt[i + o * r];
				const float *w = wh + o * row;

				for (int64_t k = 0; k < row; k++)
					acc[k] += q * (double)w[k];
			}
			for (int64_t k = 0; k < row; k++)
				wa[i * row + k] = (float)acc[k];
		} else {
			/* no scratch: the same sums, one entry at a time */
			for (int64_t k = 0; k < row; k++) {
				double a = 0;

				for (int64_t o = 0; o < d; o++)
					a += Qt[i + o * r] * (double)wh[o * row + k];
				wa[i * row + k] = (float)a;
			}
		}
		for (int64_t o = 0; o < d && b0 != NULL; o++)
			bacc += Qt[i + o * r] * (double)b0[o];
		ba[i] = (float)bacc;
	}
	free(acc);
}
