/*
 * fc.h - low-rank decomposition of fully connected layers (Gemm, and
 * MatMul with a constant 2-D weight): y = W x + b with W of d x c becomes
 * two Gemms, x -> Qt W x + Qt b (r outputs) -> P (.) + b' (d outputs).
 *
 * DESIGN. A Conv gives H'W' responses per input, so a few hundred
 * calibration inputs give tens of thousands of samples and a data fit
 * (solver/lowrank.h) generalises. A fully connected layer gives one
 * response per input: with N inputs and d outputs, N < d is usual
 * (VGG-16's fc6: d = 4096) and the response covariance C has rank at
 * most N - 1, so a pure data fit keeps directions the calibration set
 * happens to span and loses the rest. The fit here projects the
 * responses onto the top r eigenvectors U of a shrunk covariance
 *
 *   A(alpha) = (1 - alpha) C / tr C + alpha W W^T / tr(W W^T),
 *
 * which is W Sigma W^T for the input covariance Sigma shrunk toward a
 * multiple of the identity: Sigma = (1 - alpha') Sigma^ + alpha' s I.
 * (The two terms are normalised to unit trace in the response space, so
 * alpha is the share of the weight-only term; alpha = 1 is the plain
 * weight SVD, the minimiser of |W - W'|_F; alpha = 0 is PCA of the
 * calibration responses.) The projection M = U U^T minimises
 * |(W - M W) Sigma^{1/2}|_F over rank-r M of that form. alpha is chosen
 * from the data by the Ledoit-Wolf / Schaefer-Strimmer rule for
 * shrinkage toward a fixed target F = (tr C / tr W W^T) W W^T:
 *
 *   alpha* = sum_ij Var^(c_ij) / |C - F|_F^2, clamped to [0, 1],
 *   sum_ij Var^(c_ij) = (sum_k |y_k - ybar|^4 - n |C|_F^2) / (n (n - 1)),
 *
 * the estimate of the covariance's own sampling noise over its distance
 * from the target: few inputs give a noisy C and a large alpha, many give
 * alpha near 0. The bias keeps the mean response: b' = (I - M) ybar + M b,
 * i.e. the first Gemm's bias is Qt b and the second's (I - M) ybar.
 * Everything is accumulated in double in blocks (W is read as float in
 * column blocks; no c x c or d x c double matrix is ever formed).
 */
#ifndef LR_SOLVER_FC_H
#define LR_SOLVER_FC_H

#include <stddef.h>
#include <stdint.h>

#include "model/lr.h"
#include "model/onnx.h"
#include "solver/lowrank.h"

/* A fully connected layer in the form y = W x + b. */
typedef struct lr_fc {
	int64_t c, d;   /* input features, output features */
	float *W;       /* d x c, row-major (alpha and transB folded in) */
	float *b;       /* d (beta * C broadcast; zeros without C) */
	int has_bias;   /* the node had a C input (Gemm) */
	int matmul;     /* 1: a MatMul node */
} lr_fc;

/*
 * Reads node `node` of `m` as a fully connected layer. A Gemm with
 * transA = 0 and a constant 2-D float B (either transB), alpha and beta
 * any finite values, and C absent or a constant of d, 1 x d or 1 element
 * (followed through Identity nodes); or a MatMul whose A has rank 2
 * (a_ndim, from a dry run: pass the rank of the node's first input) and
 * whose B is a constant 2-D float. On success *fc holds copies the
 * caller frees with lr_fc_free(). Otherwise returns LR_EUNSUPPORTED and
 * writes the reason (naming what is not supported) into why[0..len);
 * LR_ENOMEM.
 */
int lr_fc_extract(const lr_model *m, int node, int a_ndim, lr_fc *fc, char *why, size_t len);

/* Frees the arrays of `fc` and zeroes it; NULL and zeroed are no-ops. */
void lr_fc_free(lr_fc *fc);

/*
 * The shrunk covariance of one layer's responses, built once and used both
 * for rank selection (its eigenvalues) and for the fit at the chosen rank.
 * A is d x d, column-major, lower triangle: A(alpha) above, trace 1 (or 0
 * when both terms vanish). mean: the responses' mean; trc: tr C.
 */
typedef struct lr_fc_cov {
	int64_t d, n;
	double *A, *C, *mean;
	double alpha, trc;
} lr_fc_cov;

/*
 * Builds the covariance of layer `fc` from the n x d float responses Y
 * (row i = W x_i + b for calibration input i; borrowed; n >= 1), shrunk
 * toward the weight term by `alpha` in [0, 1], or by the data-driven
 * alpha* above when alpha < 0. *cov is the caller's (lr_fc_cov_free).
 * Memory: two d x d doubles. Errors: LR_EINVAL (sizes, alpha > 1),
 * LR_ENUMERIC (NaN/Inf in Y, naming the sample and feature), LR_ENOMEM,
 * LR_ECANCELED (*cancel nonzero, polled between blocks; may be NULL).
 */
int lr_fc_cov_build(const lr_fc *fc, const float *Y, int64_t n, double alpha,
		    volatile int *cancel, lr_fc_cov *cov, lr_msg *msg);

/* The d eigenvalues of cov->A, descending (caller's array). The kept
 * share of them at rank r is the energy rank selection weighs.
 * Errors: LR_ELAPACK (dsyevr), LR_ENOMEM. */
int lr_fc_cov_eigenvalues(const lr_fc_cov *cov, double *eig_desc, lr_msg *msg);

/* Frees the arrays of `cov` and zeroes it; NULL is a no-op. */
void lr_fc_cov_free(lr_fc_cov *cov);

/*
 * The projection of rank r (1 <= r < d) from a built covariance: the top
 * r eigenvectors U of cov->A. On success *res holds, as the conv solver's
 * result does: P (d x r, = U), Qt (r x d, = U^T), b (d, = (I - M) ybar),
 * energy (the fraction of tr C the projection keeps), lin_err_before =
 * lin_err_after = sqrt(1 - energy) (the relative linear error on the
 * calibration responses), err_before = err_after (relative error of
 * max(., 0) of the responses on Y, when Y is not NULL; n rows) and
 * seconds; eig and objective are NULL. The caller frees it with
 * lr_solve_result_free(). Errors: LR_EINVAL (r), LR_ELAPACK (dsyevr,
 * naming it), LR_ENOMEM.
 */
int lr_fc_fit_cov(const lr_fc_cov *cov, const float *Y, int64_t n, int64_t r,
		  lr_solve_result *res, lr_msg *msg);

/*
 * Both steps at once: lr_fc_cov_build() then lr_fc_fit_cov() at rank r
 * (1 <= r < d). *alpha_used (may be NULL) receives the alpha applied.
 * Errors: those of the two.
 */
int lr_fc_fit(const lr_fc *fc, const float *Y, int64_t n, int64_t r, double alpha,
	      volatile int *cancel, lr_solve_result *res, double *alpha_used, lr_msg *msg);

/*
 * The two layers' weights for a result of lr_fc_fit() or of
 * lr_lowrank_solve() on the layer's responses (M = P Qt, output
 * M (W x + b) + res->b): wa = Qt W (r x c, row-major), ba = Qt b (r),
 * wb = P (d x r, row-major), bb = res->b (d). Products in double.
 * Arrays are the caller's, of those sizes. Returns 0 or LR_ENOMEM (the
 * double-precision blocks, about (d + r) x 512 doubles).
 */
int lr_fc_factors(const lr_fc *fc, const lr_solve_result *res, float *wa, float *ba,
		   float *wb, float *bb);

/*
 * A timing model: input (batch, c) -> Gemm (d x c, transB = 1, with bias)
 * when r = 0, or the pair Gemm (r x c) -> Gemm (d x r) at rank r >= 1,
 * with weights drawn from `seed` (speed does not depend on their
 * values). `opset` is the default domain's version to declare (>= 7).
 * *out is the caller's (lr_model_free). Errors: LR_EINVAL (sizes),
 * LR_ENOMEM, the loader's.
 */
int lr_fc_timing_model(int64_t batch, int64_t c, int64_t d, int64_t r, int64_t opset,
		       uint64_t seed, lr_model **out, lr_msg *msg);

/* The timing-cache key of that model: "<prefix>|fc|c=..|d=..|b=N|r=R". */
void lr_fc_cost_key(int64_t batch, int64_t c, int64_t d, int64_t r, const char *prefix,
		    char *buf, size_t len);

/* The largest rank r with r (c + d) < c d (and r < d); 0 when none. */
int64_t lr_fc_max_rank(int64_t c, int64_t d);

#endif /* LR_SOLVER_FC_H */
