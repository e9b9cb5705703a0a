/*
 * lowrank.c - per-layer nonlinear/asymmetric low-rank solver, response
 * covariance spectra and greedy rank selection (see lowrank.h).
 *
 * DESIGN. The samples stay where the caller has them: T and S are n x d
 * float row-major, i.e. column-major d x n with one column per sample, the
 * paper's Y. Every pass over the samples walks blocks of BLK = 512 columns.
 * The first pass computes the means (in double) and rejects NaN/Inf; the
 * second ("init") centres each block in double, accumulates
 * A = S_c S_c^T with DSYRK, B = T_c S_c^T with DGEMM (the linear asymmetric
 * regression Z = T that initialises the solver, ../shared/docs/method.md §1.7 / 8.13) and,
 * for S != T, T_c T_c^T for the PCA energy; it also keeps a float copy of
 * S_c. A' = A + eps I is factored once by Cholesky (DPOTRF + DTRTRI) into
 * A^-1 ~ G G^T. The ridge is applied as twice-iterated Tikhonov,
 * A^-1 ~ A'^-1 + eps A'^-2: one refinement step that cuts the ridge's
 * bias from eps/sigma to (eps/sigma)^2 in well-determined directions
 * (it would otherwise compound over 50 nonlinear iterations) while the
 * gain in near-null directions stays bounded by 2/eps. If A' is not
 * positive definite the same formula runs on its eigenvalues with small
 * ones dropped (a pseudo-inverse). Each (M, b)-step is then the DERIVED
 * recipe of ../shared/docs/method.md §1.5 on d x d doubles: C = B G, K = C C^T = B A^-1 B^T,
 * Mhat = C G^T = B A^-1, U = top-r eigenvectors of K (DSYEVR, range 'I'),
 * M = U U^T Mhat, kept as the factors P (d x r) and Qt (r x d), and
 * b = zbar - M sbar. Each nonlinear iteration is one more pass that, per
 * block, predicts Y' = P (Qt S_c) + zbar_prev (two thin GEMMs), applies the
 * exact z-step case analysis (../shared/docs/method.md §1.6) entry by entry, and adds
 * (Z - zbar_prev) S_c^T into B; since S_c has zero column sums, shifting Z
 * by any constant vector leaves B = Z_c S_c^T unchanged, and shifting by the
 * previous mean keeps the float products well conditioned. So Z is never
 * stored: memory is the float S_c plus O(d^2 + d BLK). The per-iteration
 * GEMMs are float with each block's d x d result summed in double (or all
 * double with opts.double_products); the init, the factorisation and the
 * final error pass are double. No random numbers are drawn anywhere.
 *
 * Rank selection is the greedy of TPAMI 3.4 with the exact cost model;
 * its bookkeeping is described in the header.
 */
#include "config.h"

#include "solver/lowrank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#define BLK 512
#define LR_LOWRANK_MAX_D 65536

void lr_solve_opts_init(lr_solve_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->nonlinear = 0;
	o->nphases = 2;
	o->lambda[0] = 0.01;
	o->iters[0] = 25;
	o->lambda[1] = 1.0;
	o->iters[1] = 25;
	o->ridge = 1e-6;
}

static inline double zstep(double t, double u, double lambda)
{
	double z1 = (t + lambda * u) / (1.0 + lambda);
	double c1 = lambda * (t - u) * (t - u) / (1.0 + lambda);

	/*
	 * u >= 0: z1 (z0 = 0 lies on the z >= 0 branch). u < 0 and z1 <= 0:
	 * z0 = u with cost t^2. Otherwise compare t^2 with c1; ties keep z0.
	 */
	return (u >= 0 || (z1 > 0 && t * t > c1)) ? z1 : u;
}

double lr_zstep(double t, double u, double lambda)
{
	return zstep(t, u, lambda);
}

/* ------------------------------------------------------------------ */

struct solver {
	const float *T, *S;
	int64_t n, d, r;
	const lr_solve_opts *o;
	int sym;        /* S == T */
	int dbl;        /* per-iteration products in double */
	double *tbar;   /* d */
	double *sbar;   /* d */
	float *Sc;      /* d x n, ld d: centred S (float path only) */
	double *A;      /* d x d, ld d: S_c S_c^T (lower triangle) */
	double *Tc2;    /* d x d, ld d: T_c T_c^T (lower; S != T only) */
	double *G;      /* d x d, ld d: (A + eps I)^-1 = G G^T */
	double *B;      /* d x d, ld d: Z_c S_c^T */
	double *C;      /* d x d, ld d: B G */
	double *K;      /* d x d, ld d: C C^T, destroyed by DSYEVR */
	double *Mh;     /* d x d, ld d: B A^-1 */
	double *V;      /* d x d, ld d: eigenvectors from DSYEVR */
	double *w;      /* d eigenvalues */
	double *W2;     /* r x d, ld r: U^T Mh */
	double *P;      /* d x r, ld d */
	double *Qt;     /* r x d, ld r */
	double *b;      /* d */
	double *off;    /* d: zbar of the last M-step; M S + b = M S_c + off */
	double *zsum;   /* d */
	double *acc;    /* 6 d per-channel accumulators */
	float *Pf, *Qtf;
	double *sd, *td, *xd, *yd; /* d x BLK, d x BLK, r x BLK, d x BLK */
	float *xf, *yf, *bf;       /* r x BLK, d x BLK, d x d */
	lapack_int *isuppz;        /* 2 d */
};

enum { SW_INIT, SW_ITER, SW_EVAL };

struct sweep_out {
	double nl2;      /* sum (relu(t) - relu(y'))^2 */
	double lin2;     /* sum (t - y')^2 */
	double obj;      /* Eq. 6 objective after the z-step (SW_ITER) */
	double tc2;      /* sum (t - tbar)^2 (SW_INIT) */
	double rt2;      /* sum relu(t)^2 (SW_INIT) */
	double reg_nl2;  /* sum (relu(t) - relu(s))^2 (SW_INIT) */
	double reg_lin2; /* sum (t - s)^2 (SW_INIT) */
};

static int canceled(const struct solver *s)
{
	return s->o->cancel != NULL && *s->o->cancel != 0;
}

static double sum_vec(const double *v, int64_t d)
{
	double a = 0;

	for (int64_t i = 0; i < d; i++)
		a += v[i];
	return a;
}

/* Column means of T and S in double; rejects NaN/Inf with a message. */
static int means(struct solver *s, lr_msg *msg)
{
	int64_t n = s->n, d = s->d;

	for (int pass = 0; pass < (s->sym ? 1 : 2); pass++) {
		const float *X = pass == 0 ? s->T : s->S;
		double *m = pass == 0 ? s->tbar : s->sbar;

		memset(m, 0, (size_t)d * sizeof(double));
		for (int64_t j = 0; j < n; j++) {
			const float *x = X + j * d;

			for (int64_t i = 0; i < d; i++)
				m[i] += x[i];
		}
		/* Finite floats cannot overflow a double sum of n terms. */
		for (int64_t i = 0; i < d; i++) {
			if (isfinite(m[i]))
				continue;
			for (int64_t j = 0; j < n; j++) {
				if (!isfinite(X[j * d + i]))
					return lr_fail(msg, LR_ENUMERIC,
						       "%s has a non-finite value (%g) at sample %lld, channel %lld",
						       pass == 0 ? "the target responses T" : "the regressor responses S",
						       (double)X[j * d + i], (long long)j, (long long)i);
			}
			return lr_fail(msg, LR_ENUMERIC, "channel %lld of %s does not sum to a finite value",
				       (long long)i, pass == 0 ? "T" : "S");
		}
		for (int64_t i = 0; i < d; i++)
			m[i] /= (double)n;
	}
	if (s->sym)
		memcpy(s->sbar, s->tbar, (size_t)d * sizeof(double));
	return 0;
}

/*
 * The hot loop of a nonlinear iteration on one block, float path: Y holds
 * M S_c (d x nb, ld d) on entry and Z - off on return. The arithmetic is
 * double, as in lr_zstep(). GCC only if-converts (and so vectorises) the
 * float comparisons when FP traps are not side effects, hence the
 * attribute; this code never enables FP traps.
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-trapping-math")))
#endif
static void zloop_f(int64_t d, int64_t nb, const float *restrict Tb, float *restrict Y,
		    const double *restrict off, double lam, double *restrict acc,
		    double *restrict zsum)
{
	const double inv = 1.0 / (1.0 + lam);
	double *restrict a0 = acc, *restrict a1 = acc + d, *restrict a2 = acc + 2 * d;

	for (int64_t jj = 0; jj < nb; jj++) {
		const float *restrict t = Tb + jj * d;
		float *restrict y = Y + jj * d;

		for (int64_t i = 0; i < d; i++) {
			double tv = t[i], rt = tv > 0 ? tv : 0.0;
			double u = y[i] + off[i], ru = u > 0 ? u : 0.0;
			double z1 = (rt + lam * u) * inv, c1 = lam * (rt - u) * (rt - u) * inv;
			double z = (u >= 0 || (z1 > 0 && rt * rt > c1)) ? z1 : u;
			double rz = z > 0 ? z : 0.0;
			double e = rt - ru, l = tv - u;

			a0[i] += e * e;
			a1[i] += l * l;
			a2[i] += (rt - rz) * (rt - rz) + lam * (z - u) * (z - u);
			zsum[i] += z;
			y[i] = (float)(z - off[i]);
		}
	}
}

/*
 * One pass over the samples. SW_INIT accumulates A, B = T_c S_c^T and
 * (S != T) T_c T_c^T, the norms, and the float S_c. SW_ITER predicts with
 * the current (P, Qt, off), does the z-step at `lambda`, and accumulates
 * B = Z_c S_c^T and zsum. SW_EVAL only measures the errors (in double).
 */
static int sweep(struct solver *s, int mode, double lambda,
		 struct sweep_out *out, lr_msg *msg)
{
	int64_t n = s->n, d = s->d, r = s->r;
	int fl = mode == SW_ITER && !s->dbl;
	double *a0 = s->acc, *a1 = a0 + d, *a2 = a1 + d, *a3 = a2 + d;
	const double *off = s->off;

	memset(s->acc, 0, (size_t)(6 * d) * sizeof(double));
	memset(out, 0, sizeof(*out));
	if (mode == SW_ITER)
		memset(s->zsum, 0, (size_t)d * sizeof(double));
	if (mode != SW_EVAL)
		memset(s->B, 0, (size_t)(d * d) * sizeof(double));
	for (int64_t j0 = 0; j0 < n; j0 += BLK) {
		int64_t nb = n - j0 < BLK ? n - j0 : BLK;
		const float *Tb = s->T + j0 * d;

		if (canceled(s))
			return lr_fail(msg, LR_ECANCELED, "the solve was canceled");
		if (!fl) {
			const float *Sb = s->S + j0 * d;

			for (int64_t jj = 0; jj < nb; jj++)
				for (int64_t i = 0; i < d; i++)
					s->sd[i + jj * d] = (double)Sb[i + jj * d] - s->sbar[i];
		}
		if (mode == SW_INIT) {
			const float *Sb = s->S + j0 * d;

			cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, (int)d, (int)nb,
				    1.0, s->sd, (int)d, 1.0, s->A, (int)d);
			if (s->Sc != NULL) {
				for (int64_t k = 0; k < nb * d; k++)
					s->Sc[j0 * d + k] = (float)s->sd[k];
			}
			for (int64_t jj = 0; jj < nb; jj++) {
				for (int64_t i = 0; i < d; i++) {
					double t = Tb[i + jj * d], sv = Sb[i + jj * d];
					double rt = t > 0 ? t : 0, rs = sv > 0 ? sv : 0;
					double tc = t - s->tbar[i];

					s->td[i + jj * d] = tc;
					a0[i] += tc * tc;
					a1[i] += rt * rt;
					a2[i] += (rt - rs) * (rt - rs);
					a3[i] += (t - sv) * (t - sv);
				}
			}
			cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)nb,
				    1.0, s->td, (int)d, s->sd, (int)d, 1.0, s->B, (int)d);
			if (!s->sym)
				cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, (int)d, (int)nb,
					    1.0, s->td, (int)d, 1.0, s->Tc2, (int)d);
			continue;
		}

		/* Y' - off = P (Qt S_c) for this block. */
		if (fl) {
			cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)r, (int)nb, (int)d,
				    1.0f, s->Qtf, (int)r, s->Sc + j0 * d, (int)d, 0.0f, s->xf, (int)r);
			cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)nb, (int)r,
				    1.0f, s->Pf, (int)d, s->xf, (int)r, 0.0f, s->yf, (int)d);
		} else {
			cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)r, (int)nb, (int)d,
				    1.0, s->Qt, (int)r, s->sd, (int)d, 0.0, s->xd, (int)r);
			cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)nb, (int)r,
				    1.0, s->P, (int)d, s->xd, (int)r, 0.0, s->yd, (int)d);
		}
		if (fl) {
			zloop_f(d, nb, Tb, s->yf, s->off, lambda, s->acc, s->zsum);
			goto accumulate;
		}
		for (int64_t jj = 0; jj < nb; jj++) {
			const float *tcol = Tb + jj * d;
			float *yfc = s->yf + jj * d;
			double *ydc = s->yd + jj * d;

			for (int64_t i = 0; i < d; i++) {
				double t = tcol[i], rt = t > 0 ? t : 0;
				double u = (fl ? (double)yfc[i] : ydc[i]) + off[i];
				double ru = u > 0 ? u : 0;

				a0[i] += (rt - ru) * (rt - ru);
				a1[i] += (t - u) * (t - u);
				if (mode == SW_ITER) {
					double z = zstep(rt, u, lambda), rz = z > 0 ? z : 0;

					a2[i] += (rt - rz) * (rt - rz) + lambda * (z - u) * (z - u);
					s->zsum[i] += z;
					/* Shifted by the previous mean; see DESIGN. */
					if (fl)
						yfc[i] = (float)(z - off[i]);
					else
						ydc[i] = z - off[i];
				}
			}
		}
accumulate:
		if (mode != SW_ITER)
			continue;
		if (fl) {
			cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)nb,
				    1.0f, s->yf, (int)d, s->Sc + j0 * d, (int)d, 0.0f, s->bf, (int)d);
			for (int64_t k = 0; k < d * d; k++)
				s->B[k] += s->bf[k];
		} else {
			cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)nb,
				    1.0, s->yd, (int)d, s->sd, (int)d, 1.0, s->B, (int)d);
		}
	}
	if (mode == SW_INIT) {
		out->tc2 = sum_vec(a0, d);
		out->rt2 = sum_vec(a1, d);
		out->reg_nl2 = sum_vec(a2, d);
		out->reg_lin2 = sum_vec(a3, d);
	} else {
		out->nl2 = sum_vec(a0, d);
		out->lin2 = sum_vec(a1, d);
		out->obj = sum_vec(a2, d);
	}
	return 0;
}

/* G with (A + eps I)^-1 = G G^T: Cholesky, else a pseudo-inverse. */
static int whitener(struct solver *s, lr_solve_result *res, lr_msg *msg)
{
	int64_t d = s->d;
	double tr = 0, eps;
	lapack_int info, m = 0;

	for (int64_t i = 0; i < d; i++)
		tr += s->A[i + i * d];
	eps = s->o->ridge * tr / (double)d;
	if (!isfinite(eps) || eps < 0)
		eps = 0;
	res->ridge_eps = eps;
	for (int64_t i = 0; i < d; i++)
		s->A[i + i * d] += eps;
	memcpy(s->G, s->A, (size_t)(d * d) * sizeof(double));
	info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)d, s->G, (lapack_int)d);
	if (info < 0)
		return lr_fail(msg, LR_ELAPACK, "dpotrf rejected argument %d", (int)-info);
	if (info == 0) {
		info = LAPACKE_dtrtri(LAPACK_COL_MAJOR, 'L', 'N', (lapack_int)d, s->G, (lapack_int)d);
		if (info != 0)
			return lr_fail(msg, LR_ELAPACK, "dtrtri failed on the Cholesky factor (info=%d)",
				       (int)info);
		/* G holds L^-1 in its lower triangle; clear the rest. */
		for (int64_t j = 1; j < d; j++)
			memset(s->G + j * d, 0, (size_t)j * sizeof(double));
		/* C = L^-T. */
		for (int64_t j = 0; j < d; j++)
			for (int64_t i = 0; i < d; i++)
				s->C[i + j * d] = s->G[j + i * d];
		if (eps > 0) {
			/*
			 * One refinement step (twice-iterated Tikhonov):
			 * A^-1 ~ A'^-1 + eps A'^-2 = L^-T (I + eps L^-1 L^-T) L^-1
			 * = (L^-T R)(L^-T R)^T with R R^T = I + eps L^-1 L^-T.
			 */
			cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, (int)d, (int)d, eps,
				    s->G, (int)d, 0.0, s->K, (int)d);
			for (int64_t i = 0; i < d; i++)
				s->K[i + i * d] += 1.0;
			info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)d, s->K, (lapack_int)d);
			if (info != 0)
				return lr_fail(msg, LR_ELAPACK,
					       "dpotrf failed on I + eps L^-1 L^-T (info=%d)", (int)info);
			cblas_dtrmm(CblasColMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit,
				    (int)d, (int)d, 1.0, s->K, (int)d, s->C, (int)d);
		}
		memcpy(s->G, s->C, (size_t)(d * d) * sizeof(double));
		return 0;
	}

	/*
	 * Not positive definite: the same refined inverse on the eigenvalues
	 * w of A' = A + eps I, G = V diag(sqrt(w + eps) / w), over
	 * w > 1e-12 w_max (a pseudo-inverse).
	 */
	res->pinv = 1;
	memcpy(s->K, s->A, (size_t)(d * d) * sizeof(double));
	info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', 'A', 'L', (lapack_int)d, s->K, (lapack_int)d,
			      0, 0, 0, 0, 0.0, &m, s->w, s->V, (lapack_int)d, s->isuppz);
	if (info != 0)
		return lr_fail(msg, LR_ELAPACK, "dsyevr failed on the regressor covariance (info=%d)",
			       (int)info);
	{
		double wmax = s->w[d - 1], cut = 1e-12 * wmax;

		for (int64_t k = 0; k < d; k++) {
			double f = (s->w[k] > cut && s->w[k] > 0) ? sqrt(s->w[k] + eps) / s->w[k] : 0.0;

			for (int64_t i = 0; i < d; i++)
				s->G[i + k * d] = s->V[i + k * d] * f;
		}
	}
	return 0;
}

/* The (M, b)-step from B and zbar (../shared/docs/method.md §1.5, DERIVED recipe). */
static int mstep(struct solver *s, const double *zbar, lr_msg *msg)
{
	int64_t d = s->d, r = s->r;
	lapack_int info, m = 0;

	cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)d, (int)d,
		    1.0, s->B, (int)d, s->G, (int)d, 0.0, s->C, (int)d);
	cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, (int)d, (int)d,
		    1.0, s->C, (int)d, 0.0, s->K, (int)d);
	cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)d,
		    1.0, s->C, (int)d, s->G, (int)d, 0.0, s->Mh, (int)d);
	info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', 'I', 'L', (lapack_int)d, s->K, (lapack_int)d,
			      0, 0, (lapack_int)(d - r + 1), (lapack_int)d, 0.0, &m, s->w,
			      s->V, (lapack_int)d, s->isuppz);
	if (info != 0)
		return lr_fail(msg, LR_ELAPACK,
			       "dsyevr failed on B A^-1 B^T (top %lld eigenvectors; info=%d)",
			       (long long)r, (int)info);
	if ((int64_t)m != r)
		return lr_fail(msg, LR_ELAPACK, "dsyevr returned %d eigenvectors of B A^-1 B^T, wanted %lld",
			       (int)m, (long long)r);
	/* U (descending) into P for now: column k = eigenvector r-1-k. */
	for (int64_t k = 0; k < r; k++)
		memcpy(s->P + k * d, s->V + (r - 1 - k) * d, (size_t)d * sizeof(double));
	/* W2 = U^T Mhat (r x d). */
	cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)r, (int)d, (int)d,
		    1.0, s->P, (int)d, s->Mh, (int)d, 0.0, s->W2, (int)r);
	for (int64_t k = 0; k < r; k++) {
		double nrm = 0, f;

		for (int64_t j = 0; j < d; j++)
			nrm += s->W2[k + j * r] * s->W2[k + j * r];
		nrm = sqrt(nrm);
		f = nrm > 0 ? sqrt(nrm) : 1.0;
		for (int64_t i = 0; i < d; i++)
			s->P[i + k * d] *= f;
		for (int64_t j = 0; j < d; j++)
			s->Qt[k + j * r] = s->W2[k + j * r] / f;
	}
	/* b = zbar - P (Qt sbar); predictions use M S_c + zbar. */
	{
		double *q = s->w; /* r scratch */

		cblas_dgemv(CblasColMajor, CblasNoTrans, (int)r, (int)d, 1.0, s->Qt, (int)r,
			    s->sbar, 1, 0.0, q, 1);
		memcpy(s->b, zbar, (size_t)d * sizeof(double));
		cblas_dgemv(CblasColMajor, CblasNoTrans, (int)d, (int)r, -1.0, s->P, (int)d,
			    q, 1, 1.0, s->b, 1);
	}
	memmove(s->off, zbar, (size_t)d * sizeof(double));
	if (s->Pf != NULL) {
		for (int64_t k = 0; k < d * r; k++) {
			s->Pf[k] = (float)s->P[k];
			s->Qtf[k] = (float)s->Qt[k];
		}
	}
	for (int64_t k = 0; k < d * r; k++) {
		if (!isfinite(s->P[k]) || !isfinite(s->Qt[k]))
			return lr_fail(msg, LR_ENUMERIC, "the factors of M are not finite");
	}
	return 0;
}

static double rel(double num2, double den2)
{
	return den2 > 0 ? sqrt(num2 / den2) : sqrt(num2);
}

static void solver_free(struct solver *s)
{
	free(s->tbar);
	free(s->sbar);
	free(s->Sc);
	free(s->A);
	free(s->Tc2);
	free(s->G);
	free(s->B);
	free(s->C);
	free(s->K);
	free(s->Mh);
	free(s->V);
	free(s->w);
	free(s->W2);
	free(s->P);
	free(s->Qt);
	free(s->b);
	free(s->off);
	free(s->zsum);
	free(s->acc);
	free(s->Pf);
	free(s->Qtf);
	free(s->sd);
	free(s->td);
	free(s->xd);
	free(s->yd);
	free(s->xf);
	free(s->yf);
	free(s->bf);
	free(s->isuppz);
}

static void *dalloc(int64_t count, size_t elt)
{
	return calloc(count > 0 ? (size_t)count : 1, elt);
}

int lr_lowrank_solve(const float *T, const float *S, int64_t n, int64_t d,
		     int64_t r, const lr_solve_opts *opts, lr_solve_result *res,
		     lr_msg *msg)
{
	struct solver s;
	lr_solve_opts defaults;
	struct sweep_out so;
	double t0 = lr_now(), rt2, tc2;
	int64_t nd, total = 0;
	int rc = 0;

	memset(&s, 0, sizeof(s));
	if (res == NULL)
		return lr_fail(msg, LR_EINVAL, "no result structure");
	memset(res, 0, sizeof(*res));
	if (opts == NULL) {
		lr_solve_opts_init(&defaults);
		opts = &defaults;
	}
	if (T == NULL || S == NULL)
		return lr_fail(msg, LR_EINVAL, "no sample data");
	if (n < 1 || d < 2 || d > LR_LOWRANK_MAX_D)
		return lr_fail(msg, LR_EINVAL, "need n >= 1 samples and 2 <= d <= %d channels (got n=%lld, d=%lld)",
			       LR_LOWRANK_MAX_D, (long long)n, (long long)d);
	if (r < 1 || r >= d)
		return lr_fail(msg, LR_EINVAL, "rank %lld out of range: need 1 <= r < d = %lld",
			       (long long)r, (long long)d);
	if (lr_mul_i64(n, d, &nd) != 0 || nd > INT64_MAX / (int64_t)sizeof(double))
		return lr_fail(msg, LR_ELIMIT, "n x d = %lld x %lld samples are too many",
			       (long long)n, (long long)d);
	if (!(opts->ridge >= 0) || !isfinite(opts->ridge))
		return lr_fail(msg, LR_EINVAL, "ridge must be finite and >= 0 (got %g)", opts->ridge);
	if (opts->nonlinear) {
		if (opts->nphases < 0 || opts->nphases > LR_SOLVE_MAX_PHASES)
			return lr_fail(msg, LR_EINVAL, "nphases must be 0..%d (got %d)",
				       LR_SOLVE_MAX_PHASES, opts->nphases);
		for (int p = 0; p < opts->nphases; p++) {
			if (!(opts->lambda[p] > 0) || !isfinite(opts->lambda[p]) || opts->iters[p] < 0)
				return lr_fail(msg, LR_EINVAL,
					       "phase %d: lambda must be finite and > 0 and iters >= 0 (got %g, %d)",
					       p, opts->lambda[p], opts->iters[p]);
			total += opts->iters[p];
		}
		if (total > 1000000)
			return lr_fail(msg, LR_EINVAL, "too many iterations (%lld)", (long long)total);
	}

	s.T = T;
	s.S = S;
	s.n = n;
	s.d = d;
	s.r = r;
	s.o = opts;
	s.sym = S == T;
	s.dbl = opts->double_products != 0;
	s.tbar = dalloc(d, sizeof(double));
	s.sbar = dalloc(d, sizeof(double));
	s.A = dalloc(d * d, sizeof(double));
	s.Tc2 = s.sym ? NULL : dalloc(d * d, sizeof(double));
	s.G = dalloc(d * d, sizeof(double));
	s.B = dalloc(d * d, sizeof(double));
	s.C = dalloc(d * d, sizeof(double));
	s.K = dalloc(d * d, sizeof(double));
	s.Mh = dalloc(d * d, sizeof(double));
	s.V = dalloc(d * d, sizeof(double));
	s.w = dalloc(d, sizeof(double));
	s.W2 = dalloc(r * d, sizeof(double));
	s.P = dalloc(d * r, sizeof(double));
	s.Qt = dalloc(r * d, sizeof(double));
	s.b = dalloc(d, sizeof(double));
	s.off = dalloc(d, sizeof(double));
	s.zsum = dalloc(d, sizeof(double));
	s.acc = dalloc(6 * d, sizeof(double));
	s.sd = dalloc(d * BLK, sizeof(double));
	s.td = dalloc(d * BLK, sizeof(double));
	s.xd = dalloc(r * BLK, sizeof(double));
	s.yd = dalloc(d * BLK, sizeof(double));
	s.isuppz = dalloc(2 * d, sizeof(lapack_int));
	res->eig = dalloc(d, sizeof(double));
	if (opts->nonlinear && total > 0)
		res->objective = dalloc(total, sizeof(double));
	if (opts->nonlinear && total > 0 && !s.dbl) {
		s.Sc = dalloc(nd, sizeof(float));
		s.Pf = dalloc(d * r, sizeof(float));
		s.Qtf = dalloc(r * d, sizeof(float));
		s.xf = dalloc(r * BLK, sizeof(float));
		s.yf = dalloc(d * BLK, sizeof(float));
		s.bf = dalloc(d * d, sizeof(float));
	}
	if (!s.tbar || !s.sbar || !s.A || (!s.sym && !s.Tc2) || !s.G || !s.B || !s.C || !s.K ||
	    !s.Mh || !s.V || !s.w || !s.W2 || !s.P || !s.Qt || !s.b || !s.off || !s.zsum ||
	    !s.acc || !s.sd || !s.td || !s.xd || !s.yd || !s.isuppz || !res->eig ||
	    (opts->nonlinear && total > 0 && !res->objective) ||
	    (opts->nonlinear && total > 0 && !s.dbl &&
	     (!s.Sc || !s.Pf || !s.Qtf || !s.xf || !s.yf || !s.bf))) {
		rc = lr_fail(msg, LR_ENOMEM, "out of memory for the solver (n=%lld, d=%lld)",
			     (long long)n, (long long)d);
		goto out;
	}

	rc = means(&s, msg);
	if (rc != 0)
		goto out;
	rc = sweep(&s, SW_INIT, 0, &so, msg);
	if (rc != 0)
		goto out;
	rt2 = so.rt2;
	tc2 = so.tc2;
	res->err_regressor = rel(so.reg_nl2, rt2);

	/* PCA energy from cov(T) (A itself when S == T, before the ridge). */
	{
		lapack_int m = 0, info;
		double all = 0, kept = 0;

		memcpy(s.K, s.sym ? s.A : s.Tc2, (size_t)(d * d) * sizeof(double));
		info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'N', 'A', 'L', (lapack_int)d, s.K, (lapack_int)d,
				      0, 0, 0, 0, 0.0, &m, s.w, s.V, (lapack_int)d, s.isuppz);
		if (info != 0) {
			rc = lr_fail(msg, LR_ELAPACK, "dsyevr failed on the target covariance (info=%d)",
				     (int)info);
			goto out;
		}
		for (int64_t k = 0; k < d; k++) {
			double e = s.w[d - 1 - k] / (double)n;

			res->eig[k] = e;
			all += e > 0 ? e : 0;
			if (k < r)
				kept += e > 0 ? e : 0;
		}
		res->energy = all > 0 ? kept / all : 1.0;
	}

	rc = whitener(&s, res, msg);
	if (rc != 0)
		goto out;
	rc = mstep(&s, s.tbar, msg);
	if (rc != 0)
		goto out;

	if (opts->nonlinear) {
		int it = 0;

		for (int p = 0; p < opts->nphases; p++) {
			for (int k = 0; k < opts->iters[p]; k++) {
				double *zbar = s.acc + 5 * d;

				if (canceled(&s)) {
					rc = lr_fail(msg, LR_ECANCELED, "the solve was canceled");
					goto out;
				}
				rc = sweep(&s, SW_ITER, opts->lambda[p], &so, msg);
				if (rc != 0)
					goto out;
				if (it == 0) {
					res->err_before = rel(so.nl2, rt2);
					res->lin_err_before = rel(so.lin2, tc2);
				}
				res->objective[it] = so.obj / (double)n;
				for (int64_t i = 0; i < d; i++)
					zbar[i] = s.zsum[i] / (double)n;
				rc = mstep(&s, zbar, msg);
				if (rc != 0)
					goto out;
				it++;
				res->iterations = it;
				if (opts->progress != NULL)
					opts->progress(opts->progress_ud, it, (int)total);
			}
		}
	}
	if (canceled(&s)) {
		rc = lr_fail(msg, LR_ECANCELED, "the solve was canceled");
		goto out;
	}
	rc = sweep(&s, SW_EVAL, 0, &so, msg);
	if (rc != 0)
		goto out;
	res->err_after = rel(so.nl2, rt2);
	res->lin_err_after = rel(so.lin2, tc2);
	if (res->iterations == 0) {
		res->err_before = res->err_after;
		res->lin_err_before = res->lin_err_after;
	}
	if (!isfinite(res->err_after) || !isfinite(res->lin_err_after)) {
		rc = lr_fail(msg, LR_ENUMERIC, "the reconstruction error is not finite");
		goto out;
	}
	res->d = d;
	res->r = r;
	res->P = s.P;
	res->Qt = s.Qt;
	res->b = s.b;
	s.P = s.Qt = s.b = NULL;
	res->seconds = lr_now() - t0;
out:
	solver_free(&s);
	if (rc != 0)
		lr_solve_result_free(res);
	return rc;
}

void lr_solve_result_free(lr_solve_result *res)
{
	if (res == NULL)
		return;
	free(res->P);
	free(res->Qt);
	free(res->b);
	free(res->eig);
	free(res->objective);
	memset(res, 0, sizeof(*res));
}

/* ------------------------------------------------------------------ */
/* Covariance                                                          */
/* ------------------------------------------------------------------ */

struct lr_cov {
	int64_t d, n, nbuf;
	double *shift; /* d: the first row */
	double *sum;   /* d: sum of (x - shift) */
	double *S2;    /* d x d, ld d, lower: sum of (x - shift)(x - shift)^T */
	double *buf;   /* d x BLK, ld d: pending shifted rows */
};

lr_cov *lr_cov_free(lr_cov *acc)
{
	if (acc == NULL)
		return NULL;
	free(acc->shift);
	free(acc->sum);
	free(acc->S2);
	free(acc->buf);
	free(acc);
	return NULL;
}

int lr_cov_new(int64_t d, lr_cov **out)
{
	lr_cov *a;

	*out = NULL;
	if (d < 1 || d > LR_LOWRANK_MAX_D)
		return LR_EINVAL;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return LR_ENOMEM;
	a->d = d;
	a->shift = calloc((size_t)d, sizeof(double));
	a->sum = calloc((size_t)d, sizeof(double));
	a->S2 = calloc((size_t)(d * d), sizeof(double));
	a->buf = calloc((size_t)(d * BLK), sizeof(double));
	if (!a->shift || !a->sum || !a->S2 || !a->buf) {
		lr_cov_free(a);
		return LR_ENOMEM;
	}
	*out = a;
	return 0;
}

static void cov_flush(lr_cov *a)
{
	if (a->nbuf == 0)
		return;
	cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, (int)a->d, (int)a->nbuf,
		    1.0, a->buf, (int)a->d, 1.0, a->S2, (int)a->d);
	a->nbuf = 0;
}

int lr_cov_add(lr_cov *a, const float *rows, int64_t n, lr_msg *msg)
{
	int64_t d;

	if (a == NULL || n < 0 || (n > 0 && rows == NULL))
		return lr_fail(msg, LR_EINVAL, "bad arguments to lr_cov_add");
	d = a->d;
	for (int64_t j = 0; j < n; j++) {
		for (int64_t i = 0; i < d; i++) {
			if (!isfinite(rows[j * d + i]))
				return lr_fail(msg, LR_ENUMERIC,
					       "response %lld has a non-finite value (%g) in channel %lld",
					       (long long)j, (double)rows[j * d + i], (long long)i);
		}
	}
	for (int64_t j = 0; j < n; j++) {
		const float *x = rows + j * d;
		double *col;

		if (a->n == 0) {
			for (int64_t i = 0; i < d; i++)
				a->shift[i] = x[i];
		}
		col = a->buf + a->nbuf * d;
		for (int64_t i = 0; i < d; i++) {
			col[i] = (double)x[i] - a->shift[i];
			a->sum[i] += col[i];
		}
		a->n++;
		if (++a->nbuf == BLK)
			cov_flush(a);
	}
	return 0;
}

int64_t lr_cov_count(const lr_cov *a)
{
	return a != NULL ? a->n : 0;
}

int lr_cov_eigenvalues(lr_cov *a, double *eig_desc, lr_msg *msg)
{
	int64_t d;
	double *C = NULL, *w = NULL;
	lapack_int *isuppz = NULL, m = 0, info;
	int rc = 0;

	if (a == NULL || eig_desc == NULL)
		return lr_fail(msg, LR_EINVAL, "bad arguments to lr_cov_eigenvalues");
	if (a->n < 1)
		return lr_fail(msg, LR_EINVAL, "no responses were added to the covariance");
	d = a->d;
	cov_flush(a);
	C = malloc((size_t)(d * d) * sizeof(double));
	w = malloc((size_t)d * sizeof(double));
	isuppz = malloc((size_t)(2 * d) * sizeof(lapack_int));
	if (C == NULL || w == NULL || isuppz == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	{
		double inv = 1.0 / (double)a->n;

		for (int64_t j = 0; j < d; j++) {
			double mj = a->sum[j] * inv;

			for (int64_t i = j; i < d; i++)
				C[i + j * d] = a->S2[i + j * d] * inv - (a->sum[i] * inv) * mj;
		}
	}
	info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'N', 'A', 'L', (lapack_int)d, C, (lapack_int)d,
			      0, 0, 0, 0, 0.0, &m, w, NULL, (lapack_int)d, isuppz);
	if (info != 0) {
		rc = lr_fail(msg, LR_ELAPACK, "dsyevr failed on the response covariance (info=%d)",
			     (int)info);
		goto out;
	}
	for (int64_t k = 0; k < d; k++)
		eig_desc[k] = w[d - 1 - k];
out:
	free(C);
	free(w);
	free(isuppz);
	return rc;
}

int lr_response_eigenvalues(const float *T, int64_t n, int64_t d,
			    double *eig_desc, lr_msg *msg)
{
	lr_cov *a = NULL;
	int rc = lr_cov_new(d, &a);

	if (rc != 0)
		return lr_fail(msg, rc, "cannot create a covariance of %lld channels", (long long)d);
	rc = lr_cov_add(a, T, n, msg);
	if (rc == 0)
		rc = lr_cov_eigenvalues(a, eig_desc, msg);
	lr_cov_free(a);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Cost model and rank selection                                       */
/* ------------------------------------------------------------------ */

double lr_layer_speedup(int64_t d, int64_t k2c, int64_t r)
{
	if (r <= 0 || d <= 0 || k2c <= 0)
		return 0;
	return (double)d * (double)k2c / ((double)r * (double)(k2c + d));
}

int64_t lr_layer_max_rank(int64_t d, int64_t k2c)
{
	if (d <= 0 || k2c <= 0)
		return 0;
	/* largest r with r (k2c + d) < d k2c */
	return (d * k2c - 1) / (k2c + d);
}

static double layer_cost(const lr_rank_layer *L, int64_t rank)
{
	double full = (double)L->d * (double)L->k2c * (double)L->hw;

	if (rank <= 0)
		return full;
	return (double)rank * (double)(L->k2c + L->d) * (double)L->hw;
}

double lr_rank_speedup(const lr_rank_layer *layers, int n, const int64_t *ranks)
{
	double c0 = 0, c1 = 0;

	for (int l = 0; l < n; l++) {
		c0 += layer_cost(&layers[l], 0);
		c1 += layer_cost(&layers[l], ranks[l]);
	}
	return c1 > 0 ? c0 / c1 : 0;
}

/* Cost of a free layer at greedy rank `cur`: decomposed only if faster. */
static double free_cost(const lr_rank_layer *L, int64_t cur)
{
	return cur <= lr_layer_max_rank(L->d, L->k2c) ? layer_cost(L, cur) : layer_cost(L, 0);
}

/* Rank step of a free layer: `multiple` when some multiple is faster. */
static int64_t rank_step(const lr_rank_layer *L, int multiple)
{
	return (multiple > 1 && multiple <= lr_layer_max_rank(L->d, L->k2c)) ? multiple : 1;
}

int lr_rank_select(const lr_rank_layer *layers, int n, double speedup,
		   int multiple, int64_t *ranks, double *achieved, lr_msg *msg)
{
	int64_t *cur = NULL;
	double **pre = NULL;
	double c0 = 0, total = 0, best = 0, target;
	int rc = 0;

	if (n < 1 || layers == NULL || ranks == NULL)
		return lr_fail(msg, LR_EINVAL, "rank selection needs at least one layer");
	if (!(speedup >= 1.0) || !isfinite(speedup))
		return lr_fail(msg, LR_EINVAL, "the target speedup must be >= 1 (got %g)", speedup);
	if (multiple < 0)
		return lr_fail(msg, LR_EINVAL, "the rank multiple must be >= 0 (got %d)", multiple);
	cur = calloc((size_t)n, sizeof(*cur));
	pre = calloc((size_t)n, sizeof(*pre));
	if (cur == NULL || pre == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	/* Validate; costs at the start and at the smallest ranks. */
	for (int l = 0; l < n; l++) {
		const lr_rank_layer *L = &layers[l];

		if (L->d < 1 || L->k2c < 1 || L->hw < 0) {
			rc = lr_fail(msg, LR_EINVAL, "layer %d: bad shape d=%lld k2c=%lld hw=%lld", l,
				     (long long)L->d, (long long)L->k2c, (long long)L->hw);
			goto out;
		}
		c0 += layer_cost(L, 0);
		if (L->fixed_rank != 0) {
			if (!L->decomposable) {
				rc = lr_fail(msg, LR_EINVAL, "layer %d has a fixed rank but cannot be decomposed", l);
				goto out;
			}
			if (L->fixed_rank < 1 || L->fixed_rank >= L->d) {
				rc = lr_fail(msg, LR_EINVAL, "layer %d: fixed rank %lld out of range 1..%lld", l,
					     (long long)L->fixed_rank, (long long)(L->d - 1));
				goto out;
			}
			cur[l] = L->fixed_rank;
			total += layer_cost(L, L->fixed_rank);
			best += layer_cost(L, L->fixed_rank);
		} else if (!L->decomposable || L->hw == 0) {
			/* A layer without output positions costs nothing either way. */
			cur[l] = 0;
			total += layer_cost(L, 0);
			best += layer_cost(L, 0);
		} else {
			double acc = 0;

			if (L->eig == NULL) {
				rc = lr_fail(msg, LR_EINVAL, "layer %d: no covariance eigenvalues for rank selection", l);
				goto out;
			}
			pre[l] = malloc((size_t)(L->d + 1) * sizeof(double));
			if (pre[l] == NULL) {
				rc = LR_ENOMEM;
				goto out;
			}
			pre[l][0] = 0;
			for (int64_t a = 0; a < L->d; a++) {
				if (!isfinite(L->eig[a])) {
					rc = lr_fail(msg, LR_ENUMERIC, "layer %d: eigenvalue %lld is not finite", l,
						     (long long)a);
					goto out;
				}
				acc += L->eig[a] > 0 ? L->eig[a] : 0;
				pre[l][a + 1] = acc;
			}
			cur[l] = L->d;
			total += free_cost(L, L->d);
			best += free_cost(L, rank_step(L, multiple));
		}
	}
	target = c0 / speedup;
	if (best > target * (1 + 1e-12)) {
		rc = lr_fail(msg, LR_EINVAL,
			     "a %.3gx speedup cannot be reached: with the smallest rank (%s) in every free layer it is %.3fx",
			     speedup, multiple > 1 ? "one multiple" : "1", c0 / best);
		goto out;
	}

	/* Greedy: drop the step of eigenvalues with the smallest (dE/E) / dC. */
	while (total > target * (1 + 1e-12)) {
		int pick = -1;
		int64_t pnext = 0;
		double pr = 0;

		for (int l = 0; l < n; l++) {
			const lr_rank_layer *L = &layers[l];
			int64_t step, nxt;
			double dE, kept, ratio;

			if (pre[l] == NULL)
				continue;
			step = rank_step(L, multiple);
			nxt = (cur[l] - 1) / step * step;
			if (nxt < step)
				continue;
			kept = pre[l][cur[l]];
			dE = pre[l][cur[l]] - pre[l][nxt];
			ratio = kept > 0 ? dE / kept : 0;
			ratio /= (double)(cur[l] - nxt) * (double)(L->k2c + L->d) * (double)L->hw;
			if (pick < 0 || ratio < pr) {
				pick = l;
				pr = ratio;
				pnext = nxt;
			}
		}
		if (pick < 0)
			break; /* unreachable after the check above */
		total -= free_cost(&layers[pick], cur[pick]);
		cur[pick] = pnext;
		total += free_cost(&layers[pick], cur[pick]);
	}

	for (int l = 0; l < n; l++) {
		const lr_rank_layer *L = &layers[l];

		if (pre[l] == NULL)
			ranks[l] = cur[l];
		else
			ranks[l] = cur[l] <= lr_layer_max_rank(L->d, L->k2c) ? cur[l] : 0;
	}
	if (achieved != NULL)
		*achieved = lr_rank_speedup(layers, n, ranks);
out:
	if (pre != NULL) {
		for (int l = 0; l < n; l++)
			free(pre[l]);
	}
	free(pre);
	free(cur);
	return rc;
}
