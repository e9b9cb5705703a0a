/*
 * spatial.h - the spatial half of the "3d" (spatial + channel) scheme of
 * Zhang et al. (TPAMI 2016, section 3.5): a (kh x kw, c -> d) convolution
 * becomes (kh x 1, c -> d'') followed by (1 x kw, d'' -> d), Jaderberg et
 * al.'s "scheme 2", and the channel solver then splits the (1 x kw, d) layer
 * into (1 x kw, d') and (1 x 1, d).
 *
 * DESIGN. Filter reconstruction in closed form: with W reshaped into the
 * (c*kh) x (d*kw) matrix A[(ci,h), (n,w)] = W[n,ci,h,w], a pair of layers
 * with d'' intermediate channels computes exactly the kernel
 * sum_j V[j,ci,h] H[n,j,w], i.e. a rank-d'' matrix in that layout. The
 * truncated SVD of A is therefore the optimal pair in the Frobenius norm of
 * the weights (Eckart-Young), no iterative solver needed; the singular
 * values give the energy each d'' keeps. The composite kernel is an ordinary
 * kh x kw convolution (the first layer has no bias and the second pads
 * horizontally with zeros, as the original did), so the channel solver can
 * treat the split layer as a k x k layer with weights W_s.
 *
 * Nothing here knows about ONNX graphs; the rewrite is in rewrite.h.
 */
#ifndef LR_SOLVER_SPATIAL_H
#define LR_SOLVER_SPATIAL_H

#include <stdint.h>

#include "model/lr.h"

/*
 * Splits the weights w (d x c x kh x kw floats, C order) into
 *   wv: r2 x c x kh x 1 floats, the vertical (kh x 1) filters, and
 *   wh: d x r2 x 1 x kw floats, the horizontal (1 x kw) filters,
 * the best rank-r2 pair in the Frobenius norm of the composite kernel; each
 * singular value is shared evenly (its square root on either side). When
 * sv is not NULL it receives all min(c*kh, d*kw) singular values,
 * descending. 1 <= r2 <= min(c*kh, d*kw). Computed in double.
 * Returns 0, LR_EINVAL (bad sizes), LR_ENOMEM, or LR_ENUMERIC when LAPACK
 * does not converge (info > 0) or w holds NaN/inf; msg says which.
 */
int lr_spatial_split(const float *w, int64_t d, int64_t c, int64_t kh, int64_t kw,
		     int64_t r2, float *wv, float *wh, double *sv, lr_msg *msg);

/*
 * The composite kernel of a split: ws[n,ci,h,w] = sum_j wh[n,j,w] wv[j,ci,h]
 * (d x c x kh x kw, C order), summed in double.
 */
void lr_spatial_compose(const float *wv, const float *wh, int64_t d, int64_t c,
			int64_t kh, int64_t kw, int64_t r2, float *ws);

/*
 * The (1 x kw, r2 -> r) layer of the channel split of a spatial split
 * (TPAMI 3.5): with the channel solver's Qt (r x d, column-major, ld r:
 * Qt[i + o*r]) fitted on the responses of the (1 x kw, r2 -> d) layer wh
 * (d x r2 x 1 x kw, C order) plus its bias b0, computes
 *   wa = Qt wh   (r x r2 x 1 x kw, C order)   and   ba = Qt b0   (r),
 * so that P (wa * v + ba) + b = M (wh * v + b0) + b for any input v and
 * M = P Qt: the three layers compute exactly what the solver fitted.
 * b0 may be NULL (no bias: ba = 0). Summed in double.
 */
void lr_spatial_project(const double *Qt, int64_t r, const float *wh, int64_t d, int64_t r2,
			int64_t kw, const float *b0, float *wa, float *ba);

/*
 * Multiply-accumulates per image of the three layers that replace a
 * (kh x kw, c -> d) convolution with output hout x wout and input width
 * win: (kh x 1, c -> r2) over hout x win (it neither strides nor pads
 * horizontally), (1 x kw, r2 -> r) and (1 x 1, r -> d) over hout x wout.
 * r = 0 means no channel split: (1 x kw, r2 -> d) is the last layer.
 */
double lr_spatial_macs(int64_t d, int64_t c, int64_t kh, int64_t kw, int64_t r2,
		       int64_t r, int64_t hout, int64_t wout, int64_t win);

#endif /* LR_SOLVER_SPATIAL_H */
