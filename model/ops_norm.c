/*
 * ops_norm.c - InstanceNormalization, LayerNormalization,
 * MeanVarianceNormalization, LpNormalization and Hardmax.
 *
 * DESIGN. Each op normalises groups of elements: one group per kept index,
 * its members the positions along the normalised axes. InstanceNorm's
 * groups are the spatial planes of each (n, c) and LayerNorm's the
 * trailing block from `axis` on, both contiguous; MVN's axes are any set,
 * walked with an odometer over the reduced axes; LpNormalization and
 * Hardmax work along one axis with a stride. Groups are the unit of
 * parallel work. Statistics accumulate in double, and the variance is the
 * mean of squared deviations from the mean (two passes), not
 * E[x^2] - E[x]^2, so it cannot come out negative. Dry runs stop once the
 * output shapes are known. All these ops are float only.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "model/ops.h"

#define SHP(nd, d) lr_shape_str((nd), (d), (char[200]){ 0 }, 200)
#define TSHP(t) SHP((t)->ndim, (t)->dims)

/* Contiguous groups of m elements: y = (x - mean) * inv * scale + bias. */
struct grp_job {
	const float *x;
	float *y;
	float *mean_out, *inv_out; /* LayerNorm's optional outputs */
	int64_t m;                 /* group length */
	int64_t nch;               /* InstanceNorm: channels (scale per group % nch) */
	const float *scale, *bias; /* per channel (nch > 0) or per position */
	double eps;
};

static void grp_chunk(void *vp, int64_t begin, int64_t end)
{
	const struct grp_job *j = vp;

	for (int64_t g = begin; g < end; g++) {
		const float *x = j->x + g * j->m;
		float *y = j->y + g * j->m;
		double mean = 0.0, var = 0.0, inv;

		for (int64_t i = 0; i < j->m; i++)
			mean += x[i];
		mean /= (double)j->m;
		for (int64_t i = 0; i < j->m; i++)
			var += ((double)x[i] - mean) * ((double)x[i] - mean);
		var /= (double)j->m;
		inv = 1.0 / sqrt(var + j->eps);
		if (j->mean_out != NULL)
			j->mean_out[g] = (float)mean;
		if (j->inv_out != NULL)
			j->inv_out[g] = (float)inv;
		if (j->nch > 0) {
			int64_t ch = g % j->nch;
			double s = j->scale[ch] * inv, b = j->bias[ch];

			for (int64_t i = 0; i < j->m; i++)
				y[i] = (float)(((double)x[i] - mean) * s + b);
		} else {
			for (int64_t i = 0; i < j->m; i++)
				y[i] = (float)(((double)x[i] - mean) * inv * j->scale[i] +
					       (j->bias != NULL ? j->bias[i] : 0.0f));
		}
	}
}

/* Float input i, present, with data unless this is a dry run. */
static int need_f(lr_opctx *c, lr_tensor **in, int nin, int i, const char *name)
{
	if (i >= nin || in[i] == NULL)
		return lr_op_fail(c, LR_EMODEL, "input %d (%s) is required", i, name);
	if (in[i]->dtype != LR_DT_FLOAT)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input %d (%s) has type %s, only float is supported",
				  i, name, lr_dtype_name(in[i]->dtype));
	if (in[i]->data == NULL && !c->dry)
		return lr_op_fail(c, LR_EINVAL, "input %d (%s) has no data", i, name);
	return 0;
}

/*
 * InstanceNormalization (1, 6): per (n, c), y = scale[c] * (x - mean) /
 * sqrt(var + epsilon) + B[c] over the spatial axes; X has rank >= 3
 * (rank 2 means no spatial axes: one-element groups).
 */
int lr_op_instancenorm(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		       int nout)
{
	struct grp_job j;
	const lr_tensor *x;
	int rc;

	(void)nout;
	for (int i = 0; i < 3; i++)
		if ((rc = need_f(c, in, nin, i, i == 0 ? "input" : i == 1 ? "scale" : "B")) != 0)
			return rc;
	x = in[0];
	if (x->ndim < 2)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (input) must have rank >= 2, got shape %s", TSHP(x));
	for (int i = 1; i < 3; i++)
		if (in[i]->ndim != 1 || in[i]->dims[0] != x->dims[1])
			return lr_op_fail(c, LR_ESHAPE, "input %d (%s) of shape %s must be [C] = [%lld] for input %s",
					  i, i == 1 ? "scale" : "B", TSHP(in[i]), (long long)x->dims[1], TSHP(x));
	rc = lr_op_output(c, out, LR_DT_FLOAT, x->ndim, x->dims);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	memset(&j, 0, sizeof(j));
	j.x = x->data;
	j.y = (*out)->data;
	j.m = 1;
	for (int k = 2; k < x->ndim; k++)
		j.m *= x->dims[k];
	j.nch = x->dims[1];
	j.scale = in[1]->data;
	j.bias = in[2]->data;
	j.eps = lr_node_attr_float(c->node, "epsilon", 1e-5f);
	lr_pool_run(c->pool, x->dims[0] * x->dims[1], 1, grp_chunk, &j);
	return 0;
}

/*
 * Checks that t (Scale or B of LayerNorm) has the normalised block's
 * shape x->dims[axis..], possibly with fewer leading axes or leading 1s.
 */
static int block_shaped(const lr_tensor *t, const lr_tensor *x, int axis)
{
	if (t->ndim > x->ndim)
		return 0;
	for (int k = 0; k < t->ndim; k++) {
		int xk = x->ndim - t->ndim + k;

		if (xk < axis) {
			if (t->dims[k] != 1)
				return 0;
		} else if (t->dims[k] != x->dims[xk]) {
			return 0;
		}
	}
	return 1;
}

/*
 * LayerNormalization (17): normalises over axes [axis, rank) (axis
 * default -1), then Y = normalized * Scale + B. Outputs 1 (Mean) and 2
 * (InvStdDev) have X's shape up to axis and 1s after. Scale and B must
 * have the shape of the normalised block (general broadcasting of Scale
 * is not supported).
 */
int lr_op_layernorm(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		    int nout)
{
	int64_t axis = lr_node_attr_int(c->node, "axis", -1), sd[LR_MAX_DIMS];
	struct grp_job j;
	const lr_tensor *x;
	int a, rc;
	int64_t m = 1, groups = 1;

	for (int i = 0; i < 2; i++)
		if ((rc = need_f(c, in, nin, i, i == 0 ? "X" : "Scale")) != 0)
			return rc;
	if (nin > 2 && in[2] != NULL && (rc = need_f(c, in, nin, 2, "B")) != 0)
		return rc;
	x = in[0];
	if (x->ndim < 1)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (X) must have rank >= 1");
	if ((rc = lr_op_axis(c, axis, x->ndim, &a)) != 0)
		return rc;
	for (int k = 0; k < x->ndim; k++) {
		if (k < a)
			groups *= x->dims[k];
		else
			m *= x->dims[k];
		sd[k] = k < a ? x->dims[k] : 1;
	}
	for (int i = 1; i < 3 && i < nin; i++) {
		if (in[i] == NULL)
			continue;
		if (in[i]->nelem != m || !block_shaped(in[i], x, a))
			return lr_op_fail(c, LR_EUNSUPPORTED,
					  "input %d (%s) of shape %s must have the normalised shape of X %s from axis %d",
					  i, i == 1 ? "Scale" : "B", TSHP(in[i]), TSHP(x), a);
	}
	memset(&j, 0, sizeof(j));
	for (int i = 0; i < 3 && i < nout; i++) {
		if (i > 0 && c->node->out[i] < 0)
			continue;
		rc = lr_op_output(c, &out[i], LR_DT_FLOAT, x->ndim, i == 0 ? x->dims : sd);
		if (rc != 0)
			goto fail;
	}
	if (out[0]->data == NULL || out[0]->nelem == 0 || m == 0)
		return 0;
	j.x = x->data;
	j.y = out[0]->data;
	j.mean_out = nout > 1 && out[1] != NULL ? out[1]->data : NULL;
	j.inv_out = nout > 2 && out[2] != NULL ? out[2]->data : NULL;
	j.m = m;
	j.scale = in[1]->data;
	j.bias = nin > 2 && in[2] != NULL ? in[2]->data : NULL;
	j.eps = lr_node_attr_float(c->node, "epsilon", 1e-5f);
	lr_pool_run(c->pool, groups, 1, grp_chunk, &j);
	return 0;
fail:
	for (int i = 0; i < 3 && i < nout; i++) {
		lr_tensor_free(out[i]);
		out[i] = NULL;
	}
	return rc;
}

/* ---- MeanVarianceNormalization ------------------------------------------ */

struct mvn_job {
	const float *x;
	float *y;
	int nk, nr;
	int64_t kext[LR_MAX_DIMS], kstr[LR_MAX_DIMS];
	int64_t rext[LR_MAX_DIMS], rstr[LR_MAX_DIMS];
	int64_t count;
};

static int mvn_next(const struct mvn_job *j, int64_t *idx, int64_t *off)
{
	for (int k = j->nr - 1; k >= 0; k--) {
		*off += j->rstr[k];
		if (++idx[k] < j->rext[k])
			return 1;
		*off -= idx[k] * j->rstr[k];
		idx[k] = 0;
	}
	return 0;
}

static void mvn_chunk(void *vp, int64_t begin, int64_t end)
{
	const struct mvn_job *j = vp;

	for (int64_t u = begin; u < end; u++) {
		int64_t base = 0, v = u, idx[LR_MAX_DIMS] = { 0 }, off = 0;
		double mean = 0.0, var = 0.0, inv;

		for (int k = j->nk - 1; k >= 0; k--) {
			base += (v % j->kext[k]) * j->kstr[k];
			v /= j->kext[k];
		}
		do {
			mean += j->x[base + off];
		} while (mvn_next(j, idx, &off));
		mean /= (double)j->count;
		do {
			double d = j->x[base + off] - mean;

			var += d * d;
		} while (mvn_next(j, idx, &off));
		inv = 1.0 / (sqrt(var / (double)j->count) + 1e-9);
		do {
			j->y[base + off] = (float)((j->x[base + off] - mean) * inv);
		} while (mvn_next(j, idx, &off));
	}
}

/*
 * MeanVarianceNormalization (9, 13): (X - E[X]) / (sqrt(Var[X]) + 1e-9)
 * over 'axes' (default [0, 2, 3]), as ONNX's function body defines it.
 */
int lr_op_mvn(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t axes[LR_MAX_DIMS + 1] = { 0, 2, 3 }, s = 1, str[LR_MAX_DIMS];
	int red[LR_MAX_DIMS] = { 0 }, naxes = 3, rc;
	struct mvn_job j;
	const lr_tensor *x;

	(void)nout;
	if ((rc = need_f(c, in, nin, 0, "X")) != 0)
		return rc;
	x = in[0];
	rc = lr_node_attr_ints(c->node, "axes", axes, LR_MAX_DIMS + 1, &naxes);
	if (rc < 0)
		return lr_op_fail(c, LR_EMODEL, "attribute 'axes' has more than %d entries", LR_MAX_DIMS);
	if (rc == 1)
		naxes = 3;
	for (int i = 0; i < naxes; i++) {
		int a;

		if ((rc = lr_op_axis(c, axes[i], x->ndim, &a)) != 0)
			return rc;
		if (red[a])
			return lr_op_fail(c, LR_EMODEL, "axis %lld is listed twice in axes", (long long)axes[i]);
		red[a] = 1;
	}
	rc = lr_op_output(c, out, LR_DT_FLOAT, x->ndim, x->dims);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	memset(&j, 0, sizeof(j));
	for (int k = x->ndim - 1; k >= 0; k--) {
		str[k] = s;
		s *= x->dims[k];
	}
	j.count = 1;
	for (int k = 0; k < x->ndim; k++) {
		if (red[k]) {
			j.rext[j.nr] = x->dims[k];
			j.rstr[j.nr++] = str[k];
			j.count *= x->dims[k];
		} else {
			j.kext[j.nk] = x->dims[k];
			j.kstr[j.nk++] = str[k];
		}
	}
	j.x = x->data;
	j.y = (*out)->data;
	lr_pool_run(c->pool, x->nelem / j.count, 1, mvn_chunk, &j);
	return 0;
}

/* ---- LpNormalization, Hardmax ------------------------------------------- */

/*
 * LpNormalization (1): x / ||x||_p along 'axis' (default -1), p = 1 or 2
 * (default 2). A zero norm gives NaN, as the division does in ONNX.
 */
int lr_op_lpnorm(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t axis = lr_node_attr_int(c->node, "axis", -1);
	int64_t p = lr_node_attr_int(c->node, "p", 2), outer = 1, len, inner = 1;
	const lr_tensor *x;
	const float *xv;
	float *y;
	int a, rc;

	(void)nout;
	if ((rc = need_f(c, in, nin, 0, "input")) != 0)
		return rc;
	x = in[0];
	if (p != 1 && p != 2)
		return lr_op_fail(c, LR_EMODEL, "attribute 'p' must be 1 or 2, got %lld", (long long)p);
	if (x->ndim < 1)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (input) must have rank >= 1");
	if ((rc = lr_op_axis(c, axis, x->ndim, &a)) != 0)
		return rc;
	rc = lr_op_output(c, out, LR_DT_FLOAT, x->ndim, x->dims);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	len = x->dims[a];
	for (int k = 0; k < a; k++)
		outer *= x->dims[k];
	for (int k = a + 1; k < x->ndim; k++)
		inner *= x->dims[k];
	xv = x->data;
	y = (*out)->data;
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i;
			double n = 0.0;

			for (int64_t k = 0; k < len; k++) {
				double v = xv[base + k * inner];

				n += p == 1 ? fabs(v) : v * v;
			}
			if (p == 2)
				n = sqrt(n);
			for (int64_t k = 0; k < len; k++)
				y[base + k * inner] = (float)(xv[base + k * inner] / n);
		}
	return 0;
}

/*
 * Hardmax: 1 at the first maximum, 0 elsewhere. Before opset 13 the input
 * is seen as 2-D [prod(dims[:axis]), prod(dims[axis:])] (axis default 1);
 * from 13 the maximum is taken along 'axis' (default -1).
 */
int lr_op_hardmax(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t axis = lr_node_attr_int(c->node, "axis", c->opset < 13 ? 1 : -1);
	int64_t outer = 1, len = 1, inner = 1;
	const lr_tensor *x;
	const float *xv;
	float *y;
	int a, rc;

	(void)nout;
	if ((rc = need_f(c, in, nin, 0, "input")) != 0)
		return rc;
	x = in[0];
	if (c->opset < 13) {
		if (axis < -(int64_t)x->ndim || axis > x->ndim)
			return lr_op_fail(c, LR_EMODEL, "axis %lld is out of range for rank %d",
					  (long long)axis, x->ndim);
		a = (int)(axis < 0 ? axis + x->ndim : axis);
		for (int k = 0; k < x->ndim; k++)
			if (k < a)
				outer *= x->dims[k];
			else
				len *= x->dims[k];
	} else {
		if (x->ndim < 1)
			return lr_op_fail(c, LR_ESHAPE, "input 0 (input) must have rank >= 1");
		if ((rc = lr_op_axis(c, axis, x->ndim, &a)) != 0)
			return rc;
		len = x->dims[a];
		for (int k = 0; k < a; k++)
			outer *= x->dims[k];
		for (int k = a + 1; k < x->ndim; k++)
			inner *= x->dims[k];
	}
	rc = lr_op_output(c, out, LR_DT_FLOAT, x->ndim, x->dims);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	xv = x->data;
	y = (*out)->data;
	memset(y, 0, lr_tensor_bytes(*out));
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i, best = 0;

			for (int64_t k = 1; k < len; k++)
				if (xv[base + k * inner] > xv[base + best * inner])
					best = k;
			y[base + best * inner] = 1.0f;
		}
	return 0;
}
