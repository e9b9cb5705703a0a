/*
 * ops_loss.c - NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss
 * (opsets 12 and 13), so that exported training graphs and evaluation
 * heads load and run.
 *
 * DESIGN. Both work on input [N, C, d1..dk] (k >= 0) seen as [N, C, D]
 * and a target [N, d1..dk] of int64 class indices. The loss of one
 * position is -input[n, target, d] * weight[target] (weight 1 without the
 * optional weight input), and 0 with weight 0 where target equals
 * ignore_index. reduction "none" returns the per-position losses in the
 * target's shape; "sum" their sum; "mean" (the default) the sum divided
 * by the sum of the weights used, which without weights is the number of
 * positions not ignored (as the ONNX reference computes it; all ignored
 * gives NaN). SoftmaxCrossEntropyLoss first takes log_softmax over the
 * class axis (shifted by the maximum, in double) and can return it as
 * output 1. A target outside [0, C) that is not ignore_index fails,
 * naming the position. Sums accumulate in double. Float inputs only.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"

#define SHP(nd, d) lr_shape_str((nd), (d), (char[200]){ 0 }, 200)
#define TSHP(t) SHP((t)->ndim, (t)->dims)

enum red { RED_NONE, RED_SUM, RED_MEAN };

static int loss_common(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		       int nout, int softmax)
{
	const char *nx = softmax ? "scores" : "input", *nt = softmax ? "labels" : "target";
	const lr_tensor *x, *t, *w = NULL;
	lr_tensor *lp = NULL;
	char rbuf[16];
	const char *rs = lr_node_attr_str(c->node, "reduction", "mean", rbuf, sizeof(rbuf));
	const lr_node *node = c->node;
	int have_ii = lr_node_attr(node, "ignore_index") != NULL;
	int64_t ii = lr_node_attr_int(node, "ignore_index", 0);
	int64_t n, cc, dd = 1;
	enum red red;
	int rc, want_lp;
	const float *xv;

	if (nin < 2 || in[0] == NULL || in[1] == NULL)
		return lr_op_fail(c, LR_EMODEL, "inputs 0 (%s) and 1 (%s) are required", nx, nt);
	x = in[0];
	t = in[1];
	if (nin > 2 && in[2] != NULL)
		w = in[2];
	if (x->dtype != LR_DT_FLOAT || (w != NULL && w->dtype != LR_DT_FLOAT))
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (%s) and the weights must be float", nx);
	if (t->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EMODEL, "input 1 (%s) must be int64, got %s", nt,
				  lr_dtype_name(t->dtype));
	if (strcmp(rs, "none") == 0)
		red = RED_NONE;
	else if (strcmp(rs, "sum") == 0)
		red = RED_SUM;
	else if (strcmp(rs, "mean") == 0)
		red = RED_MEAN;
	else
		return lr_op_fail(c, LR_EMODEL, "attribute 'reduction' must be none, sum or mean, got '%s'", rs);
	if (x->ndim < 2 || t->ndim != x->ndim - 1 || t->dims[0] != x->dims[0])
		return lr_op_fail(c, LR_ESHAPE, "input 1 (%s) of shape %s does not fit input 0 (%s) %s",
				  nt, TSHP(t), nx, TSHP(x));
	for (int k = 2; k < x->ndim; k++) {
		if (t->dims[k - 1] != x->dims[k])
			return lr_op_fail(c, LR_ESHAPE, "input 1 (%s) of shape %s does not fit input 0 (%s) %s",
					  nt, TSHP(t), nx, TSHP(x));
		dd *= x->dims[k];
	}
	n = x->dims[0];
	cc = x->dims[1];
	if (w != NULL && (w->ndim != 1 || w->dims[0] != cc))
		return lr_op_fail(c, LR_ESHAPE, "input 2 (weights) of shape %s must be [C] = [%lld]",
				  TSHP(w), (long long)cc);
	want_lp = softmax && nout > 1 && node->out[1] >= 0;
	rc = lr_op_output(c, &out[0], LR_DT_FLOAT, red == RED_NONE ? t->ndim : 0, t->dims);
	if (rc != 0)
		return rc;
	if (want_lp && (rc = lr_op_output(c, &out[1], LR_DT_FLOAT, x->ndim, x->dims)) != 0)
		goto fail;
	if (out[0]->data == NULL)
		return 0;
	if (x->data == NULL || t->data == NULL || (w != NULL && w->data == NULL)) {
		rc = lr_op_fail(c, LR_EINVAL, "an input has no data");
		goto fail;
	}
	/* validate the targets before computing */
	for (int64_t e = 0; e < t->nelem; e++) {
		int64_t v = ((const int64_t *)t->data)[e];

		if ((!have_ii || v != ii) && (v < 0 || v >= cc)) {
			rc = lr_op_fail(c, LR_EMODEL, "input 1 (%s) element %lld is %lld, outside [0, %lld)",
					nt, (long long)e, (long long)v, (long long)cc);
			goto fail;
		}
	}
	xv = x->data;
	if (softmax) {
		float *lv;

		if (want_lp) {
			lv = out[1]->data;
		} else {
			if ((rc = lr_tensor_create(&lp, LR_DT_FLOAT, x->ndim, x->dims, 1)) != 0) {
				rc = lr_op_fail(c, rc, "out of memory for log-probabilities of shape %s", TSHP(x));
				goto fail;
			}
			lv = lp->data;
		}
		for (int64_t i = 0; i < n; i++)
			for (int64_t d = 0; d < dd; d++) {
				const float *p = xv + i * cc * dd + d;
				double m = -INFINITY, s = 0;

				for (int64_t k = 0; k < cc; k++)
					m = p[k * dd] > m ? p[k * dd] : m;
				for (int64_t k = 0; k < cc; k++)
					s += exp((double)p[k * dd] - m);
				s = log(s);
				for (int64_t k = 0; k < cc; k++)
					lv[i * cc * dd + k * dd + d] = (float)((double)p[k * dd] - m - s);
			}
		xv = lv;
	}
	{
		const int64_t *tv = t->data;
		const float *wv = w != NULL ? w->data : NULL;
		float *y = out[0]->data;
		double sum = 0, wsum = 0;

		for (int64_t i = 0; i < n; i++)
			for (int64_t d = 0; d < dd; d++) {
				int64_t e = i * dd + d, cl = tv[e];
				double l = 0, wt = 0;

				if (!have_ii || cl != ii) {
					wt = wv != NULL ? wv[cl] : 1.0;
					l = -(double)xv[i * cc * dd + cl * dd + d] * wt;
				}
				if (red == RED_NONE)
					y[e] = (float)l;
				sum += l;
				wsum += wt;
			}
		if (red == RED_SUM)
			y[0] = (float)sum;
		else if (red == RED_MEAN)
			y[0] = (float)(sum / wsum);
	}
	lr_tensor_free(lp);
	return 0;
fail:
	lr_tensor_free(lp);
	lr_tensor_free(out[0]);
	out[0] = NULL;
	if (want_lp) {
		lr_tensor_free(out[1]);
		out[1] = NULL;
	}
	return rc;
}

/*
 * NegativeLogLikelihoodLoss: input [N, C, d..] (log-probabilities),
 * target [N, d..] int64, optional weight [C]; reduction, ignore_index.
 */
int lr_op_nllloss(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	return loss_common(c, in, nin, out, nout, 0);
}

/*
 * SoftmaxCrossEntropyLoss: NLL of log_softmax(scores, axis 1); output 1
 * (optional) is that log_softmax.
 */
int lr_op_sceloss(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	return loss_common(c, in, nin, out, nout, 1);
}
