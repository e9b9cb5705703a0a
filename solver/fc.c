/*
 * fc.c - low-rank fully connected layers. See fc.h.
 */
#include "config.h"

#include "solver/fc.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/onnx.pb-c.h"
#include "solver/cost.h"

#define FC_BLOCK 512 /* rows / columns converted to double at a time */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int is_op(const lr_node *n, const char *op)
{
	const char *d = n->proto->domain;

	return strcmp(n->op_type, op) == 0 &&
	       (d == NULL || d[0] == '\0' || strcmp(d, "ai.onnx") == 0);
}

void lr_fc_free(lr_fc *fc)
{
	if (fc == NULL)
		return;
	free(fc->W);
	free(fc->b);
	memset(fc, 0, sizeof(*fc));
}

/* The constant behind value v, following Identity nodes; NULL if none. */
static const lr_tensor *const_of(const lr_model *m, int v)
{
	for (int hop = 0; v >= 0 && hop < 8 && m->values[v].init == NULL; hop++) {
		int q = m->values[v].producer;

		v = q >= 0 && is_op(&m->nodes[q], "Identity") ? m->nodes[q].in[0] : -1;
	}
	return v >= 0 ? m->values[v].init : NULL;
}

static int all_finite(const float *p, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		if (!isfinite(p[i]))
			return 0;
	return 1;
}

int lr_fc_extract(const lr_model *m, int node, int a_ndim, lr_fc *fc, char *why, size_t len)
{
	const lr_node *n;
	const lr_tensor *B, *C = NULL;
	int gemm, transb = 0;
	double alpha = 1, beta = 1;
	int64_t c, d;

	memset(fc, 0, sizeof(*fc));
	if (why != NULL && len > 0)
		why[0] = '\0';
#define NOPE(...) do { if (why != NULL && len > 0) snprintf(why, len, __VA_ARGS__); \
		return LR_EUNSUPPORTED; } while (0)
	if (node < 0 || node >= m->nnodes)
		NOPE("node %d is out of range", node);
	n = &m->nodes[node];
	gemm = is_op(n, "Gemm");
	if (!gemm && !is_op(n, "MatMul"))
		NOPE("not a Gemm or MatMul");
	if (n->nin < 2 || n->in[0] < 0 || n->in[1] < 0 || n->nout < 1 || n->out[0] < 0)
		NOPE("lacks an input or its output");
	B = m->values[n->in[1]].init;
	if (B == NULL)
		NOPE("the weight is not a constant initializer");
	if (B->dtype != LR_DT_FLOAT || B->ndim != 2 || B->data == NULL)
		NOPE("the weight is not a 2-D float tensor");
	if (a_ndim != 2)
		NOPE("its input has rank %d; only 2-D inputs (batch x features) are decomposed", a_ndim);
	if (gemm) {
		if (lr_node_attr_int(n, "transA", 0) != 0)
			NOPE("transA = 1 is not decomposed");
		transb = lr_node_attr_int(n, "transB", 0) != 0;
		alpha = lr_node_attr_float(n, "alpha", 1.0f);
		beta = lr_node_attr_float(n, "beta", 1.0f);
		if (!isfinite(alpha) || !isfinite(beta))
			NOPE("alpha or beta is not finite");
	}
	d = transb ? B->dims[0] : B->dims[1];
	c = transb ? B->dims[1] : B->dims[0];
	if (c < 1 || d < 2)
		NOPE("weight of %lld x %lld is too small", (long long)B->dims[0], (long long)B->dims[1]);
	if (gemm && n->nin > 2 && n->in[2] >= 0) {
		C = const_of(m, n->in[2]);
		if (C == NULL)
			NOPE("the bias C is not constant");
		if (C->dtype != LR_DT_FLOAT || C->data == NULL ||
		    !(C->nelem == 1 || (C->nelem == d && (C->ndim == 1 || (C->ndim == 2 && C->dims[0] == 1)))))
			NOPE("the bias C is not a float of d, 1 x d or 1 element");
	}
	if (!all_finite(B->data, B->nelem) || (C != NULL && !all_finite(C->data, C->nelem)))
		NOPE("the weight or bias holds NaN or infinity");
#undef NOPE
	fc->c = c;
	fc->d = d;
	fc->matmul = !gemm;
	fc->has_bias = C != NULL;
	fc->W = malloc(sizeof(float) * (size_t)(c * d));
	fc->b = calloc((size_t)d, sizeof(float));
	if (fc->W == NULL || fc->b == NULL) {
		lr_fc_free(fc);
		return LR_ENOMEM;
	}
	{
		const float *w = B->data;

		if (transb) {
			for (int64_t i = 0; i < d * c; i++)
				fc->W[i] = (float)(alpha * (double)w[i]);
		} else {
			/* B is c x d: W = B^T, in cache-sized tiles. */
			for (int64_t k0 = 0; k0 < c; k0 += 64)
				for (int64_t j0 = 0; j0 < d; j0 += 64)
					for (int64_t k = k0; k < c && k < k0 + 64; k++)
						for (int64_t j = j0; j < d && j < j0 + 64; j++)
							fc->W[j * c + k] = (float)(alpha * (double)w[k * d + j]);
		}
	}
	for (int64_t j = 0; C != NULL && j < d; j++)
		fc->b[j] = (float)(beta * (double)((const float *)C->data)[C->nelem == 1 ? 0 : j]);
	return 0;
}

int64_t lr_fc_max_rank(int64_t c, int64_t d)
{
	/* r (c + d) < c d  <=>  r < c d / (c + d) */
	double bound = (double)c * (double)d / (double)(c + d);
	int64_t r = (int64_t)bound;

	if ((double)r >= bound)
		r--;
	if (r >= d)
		r = d - 1;
	return r > 0 ? r : 0;
}

/* ---- the fit ------------------------------------------------------------- */

/* G (d x d, lower, column-major) = W W^T, W (d x c row-major float) read
 * in blocks of FC_BLOCK features converted to double. */
static int weight_gram(const lr_fc *fc, double *G, volatile int *cancel, lr_msg *msg)
{
	int64_t c = fc->c, d = fc->d;
	double *blk = malloc(sizeof(double) * (size_t)(d * FC_BLOCK));

	if (blk == NULL)
		return LR_ENOMEM;
	memset(G, 0, sizeof(double) * (size_t)(d * d));
	for (int64_t k0 = 0; k0 < c; k0 += FC_BLOCK) {
		int64_t kb = c - k0 < FC_BLOCK ? c - k0 : FC_BLOCK;

		if (cancel != NULL && *cancel) {
			free(blk);
			return lr_fail(msg, LR_ECANCELED, "canceled");
		}
		/* blk: kb x d column-major (ld kb): blk[k + j kb] = W[j, k0 + k] */
		for (int64_t j = 0; j < d; j++)
			for (int64_t k = 0; k < kb; k++)
				blk[k + j * kb] = fc->W[j * c + k0 + k];
		cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, (int)d, (int)kb, 1.0, blk, (int)kb,
			    1.0, G, (int)d);
	}
	free(blk);
	return 0;
}

/* Mean, centred covariance C (lower; divided by n) and sum_k |y_k - ybar|^4. */
static int response_moments(const float *Y, int64_t n, int64_t d, double *mean, double *C,
			    double *fourth, volatile int *cancel, lr_msg *msg)
{
	double *blk = malloc(sizeof(double) * (size_t)(d * FC_BLOCK));

	if (blk == NULL)
		return LR_ENOMEM;
	memset(mean, 0, sizeof(double) * (size_t)d);
	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < d; j++) {
			float v = Y[i * d + j];

			if (!isfinite(v)) {
				free(blk);
				return lr_fail(msg, LR_ENUMERIC, "response of sample %lld, feature %lld is %g",
					       (long long)i, (long long)j, (double)v);
			}
			mean[j] += v;
		}
	for (int64_t j = 0; j < d; j++)
		mean[j] /= (double)n;
	memset(C, 0, sizeof(double) * (size_t)(d * d));
	*fourth = 0;
	for (int64_t i0 = 0; i0 < n; i0 += FC_BLOCK) {
		int64_t nb = n - i0 < FC_BLOCK ? n - i0 : FC_BLOCK;

		if (cancel != NULL && *cancel) {
			free(blk);
			return lr_fail(msg, LR_ECANCELED, "canceled");
		}
		for (int64_t i = 0; i < nb; i++) {
			double s2 = 0;

			for (int64_t j = 0; j < d; j++) {
				double v = (double)Y[(i0 + i) * d + j] - mean[j];

				blk[j + i * d] = v;
				s2 += v * v;
			}
			*fourth += s2 * s2;
		}
		cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, (int)d, (int)nb, 1.0 / (double)n,
			    blk, (int)d, 1.0, C, (int)d);
	}
	free(blk);
	return 0;
}

/* The data-driven shrinkage (fc.h): alpha* for C toward F = (trC/trG) G. */
static double shrinkage_alpha(const double *C, const double *G, int64_t d, int64_t n, double fourth)
{
	double trc = 0, trg = 0, cf2 = 0, dist = 0, noise, s;

	if (n < 2)
		return 1.0;
	for (int64_t j = 0; j < d; j++) {
		trc += C[j + j * d];
		trg += G[j + j * d];
	}
	if (!(trg > 0))
		return 0.0;
	if (!(trc > 0))
		return 1.0;
	s = trc / trg;
	for (int64_t j = 0; j < d; j++)
		for (int64_t i = j; i < d; i++) {
			double w = i == j ? 1.0 : 2.0, cv = C[i + j * d], e = cv - s * G[i + j * d];

			cf2 += w * cv * cv;
			dist += w * e * e;
		}
	noise = (fourth - (double)n * cf2) / ((double)n * (double)(n - 1));
	if (!(noise > 0))
		return 0.0;
	if (!(dist > 0))
		return 1.0;
	return noise / dist > 1.0 ? 1.0 : noise / dist;
}

void lr_fc_cov_free(lr_fc_cov *cov)
{
	if (cov == NULL)
		return;
	free(cov->A);
	free(cov->C);
	free(cov->mean);
	memset(cov, 0, sizeof(*cov));
}

int lr_fc_cov_build(const lr_fc *fc, const float *Y, int64_t n, double alpha,
		    volatile int *cancel, lr_fc_cov *cov, lr_msg *msg)
{
	int64_t d = fc->d;
	double fourth = 0, trg = 0, a;
	int rc;

	memset(cov, 0, sizeof(*cov));
	if (n < 1 || d < 2 || !(alpha <= 1.0) || fc->W == NULL || fc->b == NULL)
		return lr_fail(msg, LR_EINVAL, "fc fit: bad sizes (n %lld, d %lld) or alpha %g",
			       (long long)n, (long long)d, alpha);
	cov->d = d;
	cov->n = n;
	cov->A = malloc(sizeof(double) * (size_t)(d * d));
	cov->C = malloc(sizeof(double) * (size_t)(d * d));
	cov->mean = malloc(sizeof(double) * (size_t)d);
	if (cov->A == NULL || cov->C == NULL || cov->mean == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	rc = response_moments(Y, n, d, cov->mean, cov->C, &fourth, cancel, msg);
	if (rc == 0)
		rc = weight_gram(fc, cov->A, cancel, msg);
	if (rc != 0)
		goto out;
	a = alpha < 0 ? shrinkage_alpha(cov->C, cov->A, d, n, fourth) : alpha;
	cov->alpha = a;
	for (int64_t j = 0; j < d; j++) {
		cov->trc += cov->C[j + j * d];
		trg += cov->A[j + j * d];
	}
	/* A <- A(alpha) (lower triangle); C and G symmetric, read from theirs. */
	for (int64_t j = 0; j < d; j++)
		for (int64_t i = j; i < d; i++)
			cov->A[i + j * d] = (cov->trc > 0 ? (1 - a) * cov->C[i + j * d] / cov->trc : 0) +
					    (trg > 0 ? a * cov->A[i + j * d] / trg : 0);
	for (int64_t j = 0; j < d; j++)
		for (int64_t i = 0; i < j; i++)
			cov->C[i + j * d] = cov->C[j + i * d];
out:
	if (rc != 0)
		lr_fc_cov_free(cov);
	return rc;
}

int lr_fc_cov_eigenvalues(const lr_fc_cov *cov, double *eig_desc, lr_msg *msg)
{
	int64_t d = cov->d;
	double *K = malloc(sizeof(double) * (size_t)(d * d)), *w = malloc(sizeof(double) * (size_t)d);
	lapack_int *isuppz = malloc(sizeof(lapack_int) * (size_t)(2 * d)), m = 0, info;
	int rc = 0;

	if (K == NULL || w == NULL || isuppz == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	memcpy(K, cov->A, sizeof(double) * (size_t)(d * d));
	info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'N', 'A', 'L', (lapack_int)d, K, (lapack_int)d, 0, 0,
			      0, 0, 0.0, &m, w, NULL, (lapack_int)d, isuppz);
	if (info != 0) {
		rc = lr_fail(msg, LR_ELAPACK, "dsyevr failed on the shrunk response covariance (info=%d)",
			     (int)info);
		goto out;
	}
	for (int64_t k = 0; k < d; k++)
		eig_desc[k] = w[d - 1 - k];
out:
	free(K);
	free(w);
	free(isuppz);
	return rc;
}

int lr_fc_fit_cov(const lr_fc_cov *cov, const float *Y, int64_t n, int64_t r,
		  lr_solve_result *res, lr_msg *msg)
{
	int64_t d = cov->d;
	double *K = NULL, *w = NULL, *U = NULL, *t = NULL, *blk = NULL;
	lapack_int *isuppz = NULL, mfound = 0, info;
	double kept = 0, t0 = lr_now(), num = 0, den = 0;
	int rc = 0, all;

	memset(res, 0, sizeof(*res));
	if (r < 1 || r >= d)
		return lr_fail(msg, LR_EINVAL, "fc fit: rank %lld must be in 1..%lld", (long long)r,
			       (long long)(d - 1));
	K = malloc(sizeof(double) * (size_t)(d * d));
	w = malloc(sizeof(double) * (size_t)d);
	/*
	 * dsyevr computes a subset of eigenvectors by bisection and inverse
	 * iteration, which is quadratic in their number: VGG-16's fc6 at
	 * r = 2992 of 4096 took 40-50 s that way, against seconds for all of
	 * them by MRRR. So past d/8 all are computed and the top r kept.
	 */
	all = r > d / 8;
	U = malloc(sizeof(double) * (size_t)(d * (all ? d : r)));
	t = malloc(sizeof(double) * (size_t)r * FC_BLOCK);
	blk = malloc(sizeof(double) * (size_t)d * 2 * FC_BLOCK);
	isuppz = malloc(sizeof(lapack_int) * (size_t)(2 * d));
	res->P = malloc(sizeof(double) * (size_t)(d * r));
	res->Qt = malloc(sizeof(double) * (size_t)(r * d));
	res->b = malloc(sizeof(double) * (size_t)d);
	if (K == NULL || w == NULL || U == NULL || t == NULL || blk == NULL || isuppz == NULL ||
	    res->P == NULL || res->Qt == NULL || res->b == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	res->d = d;
	res->r = r;
	memcpy(K, cov->A, sizeof(double) * (size_t)(d * d));
	info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', all ? 'A' : 'I', 'L', (lapack_int)d, K,
			      (lapack_int)d, 0, 0, (lapack_int)(d - r + 1), (lapack_int)d, 0.0, &mfound,
			      w, U, (lapack_int)d, isuppz);
	if (info == 0 && all && mfound == d) {
		/* keep the top r: the last r columns, ascending as 'I' gives them */
		memmove(U, U + (d - r) * d, sizeof(double) * (size_t)(d * r));
		mfound = (lapack_int)r;
	}
	if (info != 0 || mfound != r) {
		rc = lr_fail(msg, LR_ELAPACK,
			     "dsyevr failed on the shrunk response covariance (top %lld eigenvectors; info=%d, found %d)",
			     (long long)r, (int)info, (int)mfound);
		goto out;
	}
	/* P = U with the largest eigenvalue first; Qt = U^T. */
	for (int64_t k = 0; k < r; k++)
		for (int64_t j = 0; j < d; j++) {
			double u = U[j + (r - 1 - k) * d];

			res->P[j + k * d] = u;
			res->Qt[k + j * r] = u;
		}
	/* b = (I - U U^T) ybar */
	cblas_dgemv(CblasColMajor, CblasTrans, (int)d, (int)r, 1.0, res->P, (int)d, cov->mean, 1, 0.0,
		    t, 1);
	memcpy(res->b, cov->mean, sizeof(double) * (size_t)d);
	cblas_dgemv(CblasColMajor, CblasNoTrans, (int)d, (int)r, -1.0, res->P, (int)d, t, 1, 1.0,
		    res->b, 1);
	/*
	 * Energy kept: tr(U^T C U) / tr C, FC_BLOCK columns of U at a time:
	 * one symmetric product per block reads C once per block instead of
	 * once per column (fc6 of VGG-16 at r = 2992: 2992 passes over a
	 * 134 MB matrix took minutes).
	 */
	for (int64_t k0 = 0; k0 < r; k0 += FC_BLOCK) {
		int64_t kb = r - k0 < FC_BLOCK ? r - k0 : FC_BLOCK;

		cblas_dsymm(CblasColMajor, CblasLeft, CblasLower, (int)d, (int)kb, 1.0, cov->C, (int)d,
			    res->P + k0 * d, (int)d, 0.0, blk, (int)d);
		for (int64_t k = 0; k < kb; k++)
			kept += cblas_ddot((int)d, res->P + (k0 + k) * d, 1, blk + k * d, 1);
	}
	res->energy = cov->trc > 0 ? kept / cov->trc : 1.0;
	if (res->energy > 1)
		res->energy = 1;
	res->lin_err_before = res->lin_err_after = sqrt(1 - res->energy);
	/* Nonlinear response error on Y: |relu(y) - relu(M y + b')|, for
	 * FC_BLOCK inputs at a time (two matrix products per block). */
	for (int64_t i0 = 0; Y != NULL && i0 < n; i0 += FC_BLOCK) {
		int64_t nb = n - i0 < FC_BLOCK ? n - i0 : FC_BLOCK;
		double *yb = blk, *ya = blk + d * FC_BLOCK;

		for (int64_t i = 0; i < nb; i++)
			for (int64_t j = 0; j < d; j++)
				yb[j + i * d] = Y[(i0 + i) * d + j];
		/* T = P^T Yb (r x nb), then Ya = P T (d x nb). */
		cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)r, (int)nb, (int)d, 1.0,
			    res->P, (int)d, yb, (int)d, 0.0, t, (int)r);
		cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)nb, (int)r, 1.0,
			    res->P, (int)d, t, (int)r, 0.0, ya, (int)d);
		for (int64_t i = 0; i < nb; i++)
			for (int64_t j = 0; j < d; j++) {
				double y = yb[j + i * d], v = ya[j + i * d] + res->b[j];
				double a0 = y > 0 ? y : 0, a1 = v > 0 ? v : 0;

				num += (a0 - a1) * (a0 - a1);
				den += a0 * a0;
			}
	}
	res->err_before = res->err_after = sqrt(num / (den > 0 ? den : 1));
	res->seconds = lr_now() - t0;
out:
	free(K);
	free(w);
	free(U);
	free(t);
	free(blk);
	free(isuppz);
	if (rc != 0)
		lr_solve_result_free(res);
	return rc;
}

int lr_fc_fit(const lr_fc *fc, const float *Y, int64_t n, int64_t r, double alpha,
	      volatile int *cancel, lr_solve_result *res, double *alpha_used, lr_msg *msg)
{
	lr_fc_cov cov;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = lr_fc_cov_build(fc, Y, n, alpha, cancel, &cov, msg);
	if (rc != 0)
		return rc;
	if (alpha_used != NULL)
		*alpha_used = cov.alpha;
	rc = lr_fc_fit_cov(&cov, Y, n, r, res, msg);
	lr_fc_cov_free(&cov);
	return rc;
}

int lr_fc_factors(const lr_fc *fc, const lr_solve_result *res, float *wa, float *ba,
		  float *wb, float *bb)
{
	int64_t c = fc->c, d = fc->d, r = res->r;
	double *wblk = malloc(sizeof(double) * (size_t)d * FC_BLOCK);
	double *out = malloc(sizeof(double) * (size_t)r * FC_BLOCK);

	if (wblk == NULL || out == NULL) {
		free(wblk);
		free(out);
		return LR_ENOMEM;
	}
	/*
	 * wa = Qt W, FC_BLOCK columns of W at a time, in double: W's block
	 * as a column-major d x kb matrix, one dgemm per block. (A row of Qt
	 * at a time read all of W per row: VGG-16's fc6 at r = 2992 made
	 * 2992 passes over 411 MB, minutes.)
	 */
	for (int64_t k0 = 0; k0 < c; k0 += FC_BLOCK) {
		int64_t kb = c - k0 < FC_BLOCK ? c - k0 : FC_BLOCK;

		for (int64_t j = 0; j < d; j++) {
			const float *wr = fc->W + j * c + k0;

			for (int64_t k = 0; k < kb; k++)
				wblk[j + k * d] = wr[k];
		}
		cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)r, (int)kb, (int)d, 1.0,
			    res->Qt, (int)r, wblk, (int)d, 0.0, out, (int)r);
		for (int64_t i = 0; i < r; i++)
			for (int64_t k = 0; k < kb; k++)
				wa[i * c + k0 + k] = (float)out[i + k * r];
	}
	/* ba = Qt b */
	for (int64_t j = 0; j < d; j++)
		wblk[j] = fc->b[j];
	cblas_dgemv(CblasColMajor, CblasNoTrans, (int)r, (int)d, 1.0, res->Qt, (int)r, wblk, 1, 0.0,
		    out, 1);
	for (int64_t i = 0; i < r; i++)
		ba[i] = (float)out[i];
	for (int64_t j = 0; j < d; j++) {
		for (int64_t i = 0; i < r; i++)
			wb[j * r + i] = (float)res->P[j + i * d];
		bb[j] = (float)res->b[j];
	}
	free(wblk);
	free(out);
	return 0;
}

/* ---- timing models ------------------------------------------------------- */

void lr_fc_cost_key(int64_t batch, int64_t c, int64_t d, int64_t r, const char *prefix,
		    char *buf, size_t len)
{
	snprintf(buf, len, "%s|fc|c=%lld|d=%lld|b=%lld|r=%lld", prefix, (long long)c, (long long)d,
		 (long long)batch, (long long)r);
}

/* A float TensorProto with random values (raw little-endian bytes). */
static int rand_tensor(Onnx__TensorProto *tp, char *name, int ndim, int64_t *dims, uint64_t *s)
{
	int64_t n = 1;

	onnx__tensor_proto__init(tp);
	for (int i = 0; i < ndim; i++)
		n *= dims[i];
	tp->name = name;
	tp->n_dims = (size_t)ndim;
	tp->dims = dims;
	tp->has_data_type = 1;
	tp->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	tp->has_raw_data = 1;
	tp->raw_data.len = (size_t)n * 4;
	tp->raw_data.data = malloc(tp->raw_data.len + 1);
	if (tp->raw_data.data == NULL)
		return LR_ENOMEM;
	for (int64_t i = 0; i < n; i++) {
		float v = (float)(0.02 * ((double)(splitmix(s) >> 11) / 9007199254740992.0 - 0.5));
		uint32_t u;
		uint8_t *p = tp->raw_data.data + 4 * i;

		memcpy(&u, &v, sizeof(u));
		p[0] = (uint8_t)u;
		p[1] = (uint8_t)(u >> 8);
		p[2] = (uint8_t)(u >> 16);
		p[3] = (uint8_t)(u >> 24);
	}
	return 0;
}

int lr_fc_timing_model(int64_t batch, int64_t c, int64_t d, int64_t r, int64_t opset,
		       uint64_t seed, lr_model **out, lr_msg *msg)
{
	Onnx__TensorProto t[4], *tp[4];
	int64_t dims[4][2];
	Onnx__NodeProto nd[2], *ndp[2];
	Onnx__AttributeProto tb = ONNX__ATTRIBUTE_PROTO__INIT, *tbp = &tb;
	char *in0[3], *in1[3], *out0[1], *out1[1];
	const int64_t xdims[2] = { batch, c };
	uint64_t s = seed;
	uint8_t *buf = NULL;
	size_t len;
	int nt = r > 0 ? 4 : 2, nn = r > 0 ? 2 : 1, rc = 0;

	*out = NULL;
	memset(t, 0, sizeof(t));
	if (batch < 1 || c < 1 || d < 1 || r < 0 || (r > 0 && r >= d))
		return lr_fail(msg, LR_EINVAL, "fc timing model: bad sizes (batch %lld, c %lld, d %lld, r %lld)",
			       (long long)batch, (long long)c, (long long)d, (long long)r);
	/* W (d x c) and b (d), or Wa (r x c), ba (r), Wb (d x r), bb (d) */
	dims[0][0] = r > 0 ? r : d;
	dims[0][1] = c;
	dims[1][0] = r > 0 ? r : d;
	dims[2][0] = d;
	dims[2][1] = r;
	dims[3][0] = d;
	{
		static char *names[4] = { (char *)"wa", (char *)"ba", (char *)"wb", (char *)"bb" };

		for (int i = 0; i < nt && rc == 0; i++) {
			rc = rand_tensor(&t[i], names[i], i % 2 == 0 ? 2 : 1, dims[i], &s);
			tp[i] = &t[i];
		}
	}
	if (rc != 0)
		goto out;
	tb.name = (char *)"transB";
	tb.has_type = 1;
	tb.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	tb.has_i = 1;
	tb.i = 1;
	for (int i = 0; i < nn; i++) {
		Onnx__NodeProto n0 = ONNX__NODE_PROTO__INIT;

		nd[i] = n0;
		nd[i].op_type = (char *)"Gemm";
		nd[i].n_attribute = 1;
		nd[i].attribute = &tbp;
		nd[i].n_input = 3;
		nd[i].n_output = 1;
		ndp[i] = &nd[i];
	}
	in0[0] = (char *)"x";
	in0[1] = (char *)"wa";
	in0[2] = (char *)"ba";
	out0[0] = r > 0 ? (char *)"mid" : (char *)"y";
	nd[0].input = in0;
	nd[0].output = out0;
	nd[0].name = (char *)"fc_a";
	in1[0] = (char *)"mid";
	in1[1] = (char *)"wb";
	in1[2] = (char *)"bb";
	out1[0] = (char *)"y";
	nd[1].input = in1;
	nd[1].output = out1;
	nd[1].name = (char *)"fc_b";
	rc = lr_cost_model_pack(ndp, (size_t)nn, tp, (size_t)nt, "x", xdims, 2, "y", 7,
				opset >= 7 ? opset : 13, "lowrank_fc_cost", &buf, &len);
	if (rc != 0)
		goto out;
	/* The weights are in buf now (fc6 of VGG-16 is 411 MB). */
	for (int i = 0; i < 4; i++) {
		free(t[i].raw_data.data);
		t[i].raw_data.data = NULL;
	}
	rc = lr_model_load_mem(buf, len, "fc timing model", NULL, out, msg);
out:
	for (int i = 0; i < 4; i++)
		free(t[i].raw_data.data);
	free(buf);
	return rc;
}
