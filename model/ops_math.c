/*
 * ops_math.c - normalisations, softmax, mean reduction and resizing.
 *
 * DESIGN. These kernels need more than one element at a time, so each
 * starts by reducing the tensor to a few loop extents (outer x n x inner
 * for Softmax, N*C rows of a spatial run for BatchNormalization and LRN,
 * merged kept/reduced axes for ReduceMean) and then runs contiguous inner
 * loops over the pool. Every sum (softmax denominators, means, LRN window
 * sums) is accumulated in double; per-channel constants are folded in
 * double and applied in float. BatchNormalization, Softmax and LogSoftmax
 * write into their input's buffer when the engine grants it.
 *
 * Resize and Upsample share one separable engine: for every axis a table
 * gives, per output coordinate, up to four taps (input offset, weight):
 * one tap for nearest (and for axes that are not resized), two for linear,
 * four for cubic. An output row (all axes but the last) expands the taps
 * of the outer axes into a short list of (offset, weight) corners and the
 * last axis is a gather over its own taps, so bilinear resizing of NCHW
 * costs two corners of two taps per output element, and any number of
 * axes can be interpolated. The coordinate transforms, rounding modes and
 * the output size rule follow the ONNX reference (resize.py): scales give
 * floor(in * scale) and keep the given scale for the coordinate mapping;
 * sizes give scale = out / in; "length_resized" is in * scale as a real.
 * Old semantics (Resize-10, Upsample) are asymmetric coordinates with
 * ONNX Runtime's rounding: floor when enlarging, ceil when shrinking.
 */
#include "config.h"

#include "model/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LR_MATH_GRAIN 16384 /* elements per parallel chunk */


/* Parallel grain in units of `per_unit` elements. */
static int64_t grain_for(int64_t per_unit)
{
	if (per_unit < 1)
		per_unit = 1;
	return per_unit >= LR_MATH_GRAIN ? 1 : LR_MATH_GRAIN / per_unit;
}

static int64_t prod_dims(const int64_t *d, int from, int to)
{
	int64_t p = 1;

	for (int i = from; i < to; i++)
		p *= d[i];
	return p;
}

/* Output for a float kernel that maps shape to shape: take input 0 or allocate. */
static int same_shape_output(lr_opctx *c, lr_tensor **in, lr_tensor **out,
			     int may_take)
{
	lr_tensor *x = in[0], *y = may_take ? lr_op_take(c, in, 0) : NULL;

	if (y != NULL) {
		*out = y;
		return 0;
	}
	return lr_op_output(c, out, LR_DT_FLOAT, x->ndim, x->dims);
}

/* ---------------------------------------------------------------------- */
/* BatchNormalization                                                       */
/* ---------------------------------------------------------------------- */

struct bn_job {
	const float *x;
	float *y;
	const float *a, *b; /* y = x * a + b */
	int64_t nparam;     /* a/b entries: C (per channel) or C*S (per element) */
	int64_t inner;      /* contiguous run sharing one parameter, or S */
	int per_element;
};

/*
 * y = x * a + b over n floats (y may be x). Not inlined: GCC vectorises
 * the loop only as a function of its own.
 */
static __attribute__((noinline)) void axpb(float *y, const float *x, float a,
					    float b, int64_t n)
{
	LR_EACH(n, i, y[i] = x[i] * a + b);
}

static void bn_chunk(void *vp, int64_t begin, int64_t end)
{
	const struct bn_job *j = vp;

	for (int64_t r = begin; r < end; r++) {
		const float *x = j->x + r * j->inner;
		float *y = j->y + r * j->inner;
		int64_t n = j->inner;

		if (j->per_element) {
			/* row r is one sample: parameters run along it */
			const float *a = j->a, *b = j->b;

			for (int64_t i = 0; i < n; i++)
				y[i] = x[i] * a[i] + b[i];
		} else {
			axpb(y, x, j->a[r % j->nparam], j->b[r % j->nparam], n);
		}
	}
}

/*
 * BatchNormalization in training mode (opset 14+, training_mode=1): the
 * batch's own per-channel mean and (biased) variance over N and the
 * spatial axes, accumulated in double, normalise X; the optional outputs
 * running_mean/running_var are input_mean/input_var * momentum + the
 * batch's * (1 - momentum), as the ONNX reference computes them.
 */
static int bn_training(lr_opctx *c, lr_tensor **in, lr_tensor **out, int nout)
{
	float eps = lr_node_attr_float(c->node, "epsilon", 1e-5f);
	float mom = lr_node_attr_float(c->node, "momentum", 0.9f);
	const lr_tensor *x = in[0];
	int64_t N, C, S;
	int have = 1, rc;

	if (x->ndim < 2)
		return lr_op_fail(c, LR_EUNSUPPORTED, "training mode needs X of rank >= 2, got %lld-D",
				  (long long)x->ndim);
	N = x->dims[0];
	C = x->dims[1];
	S = prod_dims(x->dims, 2, x->ndim);
	for (int i = 0; i < 5; i++) {
		if (i > 0 && (in[i]->ndim != 1 || in[i]->dims[0] != C))
			return lr_op_fail(c, LR_ESHAPE, "input %d has shape %s; expected [%lld]", i,
					  lr_shape_str(in[i]->ndim, in[i]->dims, (char[160]){ 0 }, 160),
					  (long long)C);
		have = have && in[i]->data != NULL;
	}
	for (int i = 0; i < nout && i < 3; i++) {
		rc = i == 0 ? lr_op_output(c, &out[0], LR_DT_FLOAT, x->ndim, x->dims)
			    : lr_op_output(c, &out[i], LR_DT_FLOAT, 1, &C);
		if (rc != 0)
			goto fail;
	}
	if (out[0]->data == NULL)
		return 0; /* dry run: shapes only */
	if (!have) {
		rc = lr_op_fail(c, LR_EINVAL, "an input has no data");
		goto fail;
	}
	for (int64_t ch = 0; ch < C; ch++) {
		const float *xv = x->data;
		double sum = 0.0, sq = 0.0, mean, var, a, b;
		int64_t cnt = N * S;

		for (int64_t n = 0; n < N; n++)
			for (int64_t k = 0; k < S; k++)
				sum += xv[(n * C + ch) * S + k];
		mean = cnt > 0 ? sum / (double)cnt : 0.0;
		for (int64_t n = 0; n < N; n++)
			for (int64_t k = 0; k < S; k++) {
				double d = xv[(n * C + ch) * S + k] - mean;

				sq += d * d;
			}
		var = cnt > 0 ? sq / (double)cnt : 0.0;
		a = (double)((const float *)in[1]->data)[ch] / sqrt(var + (double)eps);
		b = (double)((const float *)in[2]->data)[ch] - mean * a;
		for (int64_t n = 0; n < N; n++)
			for (int64_t k = 0; k < S; k++)
				((float *)out[0]->data)[(n * C + ch) * S + k] =
					(float)(xv[(n * C + ch) * S + k] * a + b);
		if (nout > 1 && out[1] != NULL)
			((float *)out[1]->data)[ch] = (float)(((const float *)in[3]->data)[ch] * (double)mom +
							      mean * (1.0 - (double)mom));
		if (nout > 2 && out[2] != NULL)
			((float *)out[2]->data)[ch] = (float)(((const float *)in[4]->data)[ch] * (double)mom +
							      var * (1.0 - (double)mom));
	}
	return 0;
fail:
	for (int i = 0; i < nout && i < 3; i++) {
		lr_tensor_free(out[i]);
		out[i] = NULL;
	}
	return rc;
}

/*
 * BatchNormalization, inference mode: y = (x - mean) / sqrt(var + eps) *
 * scale + B per channel (axis 1; a 1-D input is N samples of one channel).
 * Opsets 7-8 with spatial=0 use per-element parameters over C x D1..Dn.
 * training_mode=1 (opset 14+) normalises with the batch's statistics
 * (bn_training); the older training-only outputs (mean, var, saved_mean,
 * saved_var before opset 14) are refused with LR_EUNSUPPORTED.
 */
int lr_op_batchnorm(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		    int nout)
{
	static const char *const pname[5] = { "X", "scale", "B", "input_mean",
					      "input_var" };
	char sbuf[160], xbuf[160];
	float eps = lr_node_attr_float(c->node, "epsilon", 1e-5f);
	int spatial = 1;
	int64_t C, S, N, np;
	float *ab = NULL;
	struct bn_job job;
	lr_tensor *x;
	int rc;

	for (int i = 0; i < 5; i++) {
		if (i >= nin || in[i] == NULL)
			return lr_op_fail(c, LR_EMODEL, "input %d (%s) is required",
					  i, pname[i]);
		if (in[i]->dtype != LR_DT_FLOAT)
			return lr_op_fail(c, LR_EUNSUPPORTED,
					  "input %d (%s) has type %s, expected float",
					  i, pname[i], lr_dtype_name(in[i]->dtype));
	}
	if (c->opset < 7 && lr_node_attr_int(c->node, "is_test", 0) == 0)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "is_test=0 asks for training mode; lowrank only runs inference (opset %lld)",
				  (long long)c->opset);
	if (c->opset >= 14 && lr_node_attr_int(c->node, "training_mode", 0) != 0)
		return bn_training(c, in, out, nout);
	for (int i = 1; i < nout; i++)
		if (c->node->out[i] >= 0)
			return lr_op_fail(c, LR_EUNSUPPORTED,
					  "output %d (%s) is only produced in training mode, which is not supported",
					  i, c->opset >= 14 ? (i == 1 ? "running_mean" : "running_var")
					  : (i == 1 ? "mean" : i == 2 ? "var" :
					     i == 3 ? "saved_mean" : "saved_var"));
	if (c->opset < 9)
		spatial = lr_node_attr_int(c->node, "spatial", 1) != 0;

	x = in[0];
	if (x->ndim < 1)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (X) must have rank >= 1, got a scalar");
	N = x->dims[0];
	C = x->ndim >= 2 ? x->dims[1] : 1;
	S = x->ndim >= 2 ? prod_dims(x->dims, 2, x->ndim) : 1;
	np = spatial ? C : C * S;
	lr_shape_str(x->ndim, x->dims, xbuf, sizeof(xbuf));
	for (int i = 1; i < 5; i++) {
		if (spatial && (in[i]->ndim != 1 || in[i]->dims[0] != C))
			return lr_op_fail(c, LR_ESHAPE,
					  "input %d (%s) of shape %s does not match X of shape %s: expected [%lld]",
					  i, pname[i],
					  lr_shape_str(in[i]->ndim, in[i]->dims, sbuf, sizeof(sbuf)),
					  xbuf, (long long)C);
		if (!spatial && in[i]->nelem != np)
			return lr_op_fail(c, LR_ESHAPE,
					  "input %d (%s) of shape %s does not match X of shape %s: spatial=0 needs C x D1 x ... = %lld elements",
					  i, pname[i],
					  lr_shape_str(in[i]->ndim, in[i]->dims, sbuf, sizeof(sbuf)),
					  xbuf, (long long)np);
	}
	/*
	 * Everything that can fail happens before the output exists: once
	 * input 0's buffer is taken, the engine must get it back as output.
	 */
	if (!c->dry) {
		for (int i = 0; i < 5; i++)
			if (in[i]->data == NULL)
				return lr_op_fail(c, LR_EINVAL, "input %d (%s) has no data",
						  i, pname[i]);
		ab = malloc((size_t)(np > 0 ? np : 1) * 2 * sizeof(float));
		if (ab == NULL)
			return lr_op_fail(c, LR_ENOMEM, "out of memory for %lld parameters",
					  (long long)np);
		{
			const float *sc = in[1]->data, *bi = in[2]->data;
			const float *mu = in[3]->data, *va = in[4]->data;

			for (int64_t k = 0; k < np; k++) {
				double a = (double)sc[k] / sqrt((double)va[k] + (double)eps);

				ab[k] = (float)a;
				ab[np + k] = (float)((double)bi[k] - (double)mu[k] * a);
			}
		}
	}
	rc = same_shape_output(c, in, out, 1);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		goto out;
	x = in[0] != NULL ? in[0] : *out; /* taken: the same buffer */
	job.x = x->data;
	job.y = (*out)->data;
	job.a = ab;
	job.b = ab + np;
	job.nparam = np;
	job.per_element = !spatial;
	if (spatial) {
		job.inner = S;
		lr_pool_run(c->pool, N * C, grain_for(S), bn_chunk, &job);
	} else {
		job.inner = C * S;
		lr_pool_run(c->pool, N, grain_for(C * S), bn_chunk, &job);
	}
out:
	free(ab);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* LRN                                                                      */
/* ---------------------------------------------------------------------- */

struct lrn_job {
	const float *x;
	float *y;
	int64_t C, S;
	int lo, hi;      /* window: c - lo .. c + hi */
	double bias, alpha_n, beta;
};

#define LRN_BLK 256

static void lrn_chunk(void *vp, int64_t begin, int64_t end)
{
	const struct lrn_job *j = vp;
	double acc[LRN_BLK];

	for (int64_t r = begin; r < end; r++) {
		int64_t n = r / j->C, ch = r % j->C;
		int64_t c0 = ch - j->lo < 0 ? 0 : ch - j->lo;
		int64_t c1 = ch + j->hi > j->C - 1 ? j->C - 1 : ch + j->hi;
		const float *xs = j->x + n * j->C * j->S;
		const float *xr = xs + ch * j->S;
		float *yr = j->y + r * j->S;

		for (int64_t s0 = 0; s0 < j->S; s0 += LRN_BLK) {
			int64_t len = j->S - s0 < LRN_BLK ? j->S - s0 : LRN_BLK;

			for (int64_t i = 0; i < len; i++)
				acc[i] = 0.0;
			for (int64_t cc = c0; cc <= c1; cc++) {
				const float *p = xs + cc * j->S + s0;

				for (int64_t i = 0; i < len; i++)
					acc[i] += (double)p[i] * p[i];
			}
			for (int64_t i = 0; i < len; i++)
				yr[s0 + i] = (float)(xr[s0 + i] /
					pow(j->bias + j->alpha_n * acc[i], j->beta));
		}
	}
}

/*
 * LRN over channels (axis 1) of N x C x D1..Dk: y = x / (bias + alpha /
 * size * sum of x^2 over channels c - floor((size-1)/2) .. c +
 * ceil((size-1)/2))^beta. size is required; alpha 1e-4, beta 0.75, bias 1.
 */
int lr_op_lrn(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	struct lrn_job job;
	int64_t size = lr_node_attr_int(c->node, "size", -1);
	lr_tensor *x;
	int rc;

	rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT);
	if (rc != 0)
		return rc;
	x = in[0];
	if (lr_node_attr(c->node, "size") == NULL)
		return lr_op_fail(c, LR_EMODEL, "attribute 'size' is required");
	if (size < 1 || size > 1000000)
		return lr_op_fail(c, LR_EMODEL, "attribute 'size' must be >= 1, got %lld",
				  (long long)size);
	if (x->ndim < 2)
		return lr_op_fail(c, LR_ESHAPE,
				  "input 0 (X) must be N x C x ..., got rank %d", x->ndim);
	rc = lr_op_output(c, out, LR_DT_FLOAT, x->ndim, x->dims);
	if (rc != 0)
		return rc;
	if ((*out)->data == NULL || (*out)->nelem == 0)
		return 0;
	if (x->data == NULL) {
		lr_tensor_free(*out);
		*out = NULL;
		return lr_op_fail(c, LR_EINVAL, "input 0 (X) has no data");
	}
	job.x = x->data;
	job.y = (*out)->data;
	job.C = x->dims[1];
	job.S = prod_dims(x->dims, 2, x->ndim);
	job.lo = (int)((size - 1) / 2);
	job.hi = (int)(size - 1 - (size - 1) / 2);
	job.bias = lr_node_attr_float(c->node, "bias", 1.0f);
	job.alpha_n = (double)lr_node_attr_float(c->node, "alpha", 1e-4f) / (double)size;
	job.beta = lr_node_attr_float(c->node, "beta", 0.75f);
	lr_pool_run(c->pool, x->dims[0] * job.C, grain_for(job.S * (size + 4)),
		    lrn_chunk, &job);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Softmax and LogSoftmax                                                   */
/* ---------------------------------------------------------------------- */

#define SM_BLK 64


/* e[i] = exp(x[i] - mx) (e may be x). Not inlined: it must vectorise alone. */
static __attribute__((noinline)) void exp_shift(float *e, const float *x,
						float mx, int64_t n)
{
	LR_EACH(n, i, e[i] = lr_exp_neg(x[i] - mx));
}

/* e[i] = exp(x[i] - mx[i]) (e may be x). */
static __attribute__((noinline)) void exp_shift_v(float *e, const float *x,
						  const float *mx, int64_t n)
{
	LR_EACH(n, i, e[i] = lr_exp_neg(x[i] - mx[i]));
}

/* Sum of n floats in double, four partial sums for throughput. */
static double sum_f(const float *p, int64_t n)
{
	double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	int64_t i = 0;

	for (; i + 4 <= n; i += 4) {
		s0 += p[i];
		s1 += p[i + 1];
		s2 += p[i + 2];
		s3 += p[i + 3];
	}
	for (; i < n; i++)
		s0 += p[i];
	return (s0 + s1) + (s2 + s3);
}

/* Largest of n >= 1 floats (NaN is skipped unless first), four partials. */
static float max_f(const float *p, int64_t n)
{
	float m0 = p[0], m1 = p[0], m2 = p[0], m3 = p[0];
	int64_t i = 1;

	for (; i + 4 <= n; i += 4) {
		m0 = p[i] > m0 ? p[i] : m0;
		m1 = p[i + 1] > m1 ? p[i + 1] : m1;
		m2 = p[i + 2] > m2 ? p[i + 2] : m2;
		m3 = p[i + 3] > m3 ? p[i + 3] : m3;
	}
	for (; i < n; i++)
		m0 = p[i] > m0 ? p[i] : m0;
	m0 = m1 > m0 ? m1 : m0;
	m2 = m3 > m2 ? m3 : m2;
	return m2 > m0 ? m2 : m0;
}

/* y[i] *= s. */
static __attribute__((noinline)) void scale_f(float *y, float s, int64_t n)
{
	LR_EACH(n, i, y[i] *= s);
}

struct sm_job {
	const float *x;
	float *y;
	int64_t n, inner, nblk;
	int log;
};

/* Contiguous rows of n (inner == 1). y may be x. */
static void sm_rows(void *vp, int64_t begin, int64_t end)
{
	const struct sm_job *j = vp;
	int64_t n = j->n;
	float tmp[256];

	for (int64_t r = begin; r < end; r++) {
		const float *x = j->x + r * n;
		float *y = j->y + r * n;
		float mx = max_f(x, n);
		double sum = 0.0;

		if (j->log) {
			double lse;

			for (int64_t k0 = 0; k0 < n; k0 += 256) {
				int64_t len = n - k0 < 256 ? n - k0 : 256;

				exp_shift(tmp, x + k0, mx, len);
				sum += sum_f(tmp, len);
			}
			lse = (double)mx + log(sum);
			for (int64_t k = 0; k < n; k++)
				y[k] = (float)((double)x[k] - lse);
		} else {
			exp_shift(y, x, mx, n);
			sum = sum_f(y, n);
			scale_f(y, (float)(1.0 / sum), n);
		}
	}
}

/* Strided lanes: unit = (outer index, block of SM_BLK inner columns). */
static void sm_cols(void *vp, int64_t begin, int64_t end)
{
	const struct sm_job *j = vp;
	float mx[SM_BLK], tmp[SM_BLK];
	double sum[SM_BLK];

	for (int64_t u = begin; u < end; u++) {
		int64_t o = u / j->nblk, j0 = (u % j->nblk) * SM_BLK;
		int64_t len = j->inner - j0 < SM_BLK ? j->inner - j0 : SM_BLK;
		const float *x = j->x + o * j->n * j->inner + j0;
		float *y = j->y + o * j->n * j->inner + j0;

		for (int64_t i = 0; i < len; i++) {
			mx[i] = x[i];
			sum[i] = 0.0;
		}
		for (int64_t k = 1; k < j->n; k++) {
			const float *p = x + k * j->inner;

			for (int64_t i = 0; i < len; i++)
				mx[i] = p[i] > mx[i] ? p[i] : mx[i];
		}
		for (int64_t k = 0; k < j->n; k++) {
			float *e = j->log ? tmp : y + k * j->inner;

			exp_shift_v(e, x + k * j->inner, mx, len);
			for (int64_t i = 0; i < len; i++)
				sum[i] += e[i];
		}
		for (int64_t i = 0; i < len; i++)
			sum[i] = j->log ? (double)mx[i] + log(sum[i]) : 1.0 / sum[i];
		for (int64_t k = 0; k < j->n; k++) {
			const float *p = x + k * j->inner;
			float *q = y + k * j->inner;

			if (j->log)
				for (int64_t i = 0; i < len; i++)
					q[i] = (float)((double)p[i] - sum[i]);
			else
				for (int64_t i = 0; i < len; i++)
					q[i] = (float)(q[i] * sum[i]);
		}
	}
}

static int run_softmax(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		       int log_variant)
{
	struct sm_job job;
	int64_t axis64, outer;
	lr_tensor *x;
	int axis, rc;

	rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT);
	if (rc != 0)
		return rc;
	x = in[0];
	if (c->opset < 13) {
		/* coerce to 2-D [d0*..*d(axis-1), d(axis)*..*d(r-1)] */
		axis64 = lr_node_attr_int(c->node, "axis", 1);
		if (axis64 < -(int64_t)x->ndim || axis64 > x->ndim)
			return lr_op_fail(c, LR_EMODEL,
					  "attribute 'axis' %lld is out of range for rank %d",
					  (long long)axis64, x->ndim);
		axis = (int)(axis64 < 0 ? axis64 + x->ndim : axis64);
		outer = prod_dims(x->dims, 0, axis);
		job.n = prod_dims(x->dims, axis, x->ndim);
		job.inner = 1;
	} else {
		axis64 = lr_node_attr_int(c->node, "axis", -1);
		rc = lr_op_axis(c, axis64, x->ndim, &axis);
		if (rc != 0)
			return rc;
		outer = prod_dims(x->dims, 0, axis);
		job.n = x->dims[axis];
		job.inner = prod_dims(x->dims, axis + 1, x->ndim);
	}
	if (x->data == NULL && !c->dry)
		return lr_op_fail(c, LR_EINVAL, "input 0 has no data");
	/* nothing fails after this: the input's buffer may be taken */
	rc = same_shape_output(c, in, out, 1);
	if (rc != 0)
		return rc;
	if (in[0] == NULL)
		x = *out; /* taken: the same buffer */
	if ((*out)->data == NULL || (*out)->nelem == 0)
		return 0;
	job.x = x->data;
	job.y = (*out)->data;
	job.log = log_variant;
	if (job.inner == 1) {
		lr_pool_run(c->pool, outer, grain_for(job.n * 4), sm_rows, &job);
	} else {
		job.nblk = (job.inner + SM_BLK - 1) / SM_BLK;
		lr_pool_run(c->pool, outer * job.nblk,
			    grain_for(job.n * SM_BLK * 4), sm_cols, &job);
	}
	return 0;
}

/*
 * Softmax. Opset < 13: the input is viewed as 2-D at `axis` (default 1)
 * and each row of the flattened trailing dims is normalised. Opset >= 13:
 * normalised along `axis` only (default -1).
 */
int lr_op_softmax(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		  int nout)
{
	return run_softmax(c, in, nin, out, 0);
}

/* LogSoftmax: log of Softmax, same axis rules, computed as x - max - log(sum). */
int lr_op_logsoftmax(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		     int nout)
{
	return run_softmax(c, in, nin, out, 1);
}

/* ---------------------------------------------------------------------- */
/* ReduceMean                                                               */
/* ---------------------------------------------------------------------- */

#define RM_BLK 256

/*
 * Input axes after dropping size-1 axes and merging neighbours of the same
 * kind: kept axes (kext/kstr) and reduced axes (rext/rstr), each in order.
 */
struct rm_job {
	const float *x;
	float *y;
	int nk, nr;
	int64_t kext[LR_MAX_DIMS], kstr[LR_MAX_DIMS];
	int64_t rext[LR_MAX_DIMS], rstr[LR_MAX_DIMS];
	int inner_reduced;   /* the innermost merged axis is reduced */
	int64_t inner;       /* its extent */
	int64_t nblk;        /* inner kept: blocks of RM_BLK per row */
	double inv;          /* 1 / count */
};

/* Base input offset of kept-index `u` over the first `nk` kept axes. */
static int64_t rm_base(const struct rm_job *j, int nk, int64_t u)
{
	int64_t off = 0;

	for (int k = nk - 1; k >= 0; k--) {
		off += (u % j->kext[k]) * j->kstr[k];
		u /= j->kext[k];
	}
	return off;
}

/* Innermost axis reduced: unit = one output element. */
static void rm_chunk_red(void *vp, int64_t begin, int64_t end)
{
	const struct rm_job *j = vp;
	int nouter = j->nr - 1; /* the last reduced axis is the contiguous run */
	int64_t idx[LR_MAX_DIMS];

	for (int64_t u = begin; u < end; u++) {
		int64_t base = rm_base(j, j->nk, u), off = 0;
		double s0 = 0, s1 = 0, s2 = 0, s3 = 0;

		for (int k = 0; k < nouter; k++)
			idx[k] = 0;
		for (;;) {
			const float *p = j->x + base + off;
			int64_t i = 0;

			for (; i + 4 <= j->inner; i += 4) {
				s0 += p[i];
				s1 += p[i + 1];
				s2 += p[i + 2];
				s3 += p[i + 3];
			}
			for (; i < j->inner; i++)
				s0 += p[i];
			{
				int k = nouter - 1;

				for (; k >= 0; k--) {
					off += j->rstr[k];
					if (++idx[k] < j->rext[k])
						break;
					off -= idx[k] * j->rstr[k];
					idx[k] = 0;
				}
				if (k < 0)
					break;
			}
		}
		j->y[u] = (float)((s0 + s1 + s2 + s3) * j->inv);
	}
}

/* Innermost axis kept: unit = (output row, block of RM_BLK columns). */
static void rm_chunk_kept(void *vp, int64_t begin, int64_t end)
{
	const struct rm_job *j = vp;
	double acc[RM_BLK];
	int64_t idx[LR_MAX_DIMS];

	for (int64_t u = begin; u < end; u++) {
		int64_t row = u / j->nblk, c0 = (u % j->nblk) * RM_BLK;
		int64_t len = j->inner - c0 < RM_BLK ? j->inner - c0 : RM_BLK;
		int64_t base = rm_base(j, j->nk - 1, row) + c0, off = 0;
		float *y = j->y + row * j->inner + c0;

		for (int64_t i = 0; i < len; i++)
			acc[i] = 0.0;
		for (int k = 0; k < j->nr; k++)
			idx[k] = 0;
		for (;;) {
			const float *p = j->x + base + off;

			for (int64_t i = 0; i < len; i++)
				acc[i] += p[i];
			{
				int k = j->nr - 1;

				for (; k >= 0; k--) {
					off += j->rstr[k];
					if (++idx[k] < j->rext[k])
						break;
					off -= idx[k] * j->rstr[k];
					idx[k] = 0;
				}
				if (k < 0)
					break;
			}
		}
		for (int64_t i = 0; i < len; i++)
			y[i] = (float)(acc[i] * j->inv);
	}
}

/* int64 mean (truncating), computed inline: shape arithmetic only. */
static void rm_int64(const lr_tensor *x, lr_tensor *y, const int *red,
		     int64_t count)
{
	const int64_t *xv = x->data;
	int64_t *yv = y->data;
	int64_t xi[LR_MAX_DIMS] = { 0 };
	int r = x->ndim;

	memset(yv, 0, (size_t)y->nelem * sizeof(int64_t));
	for (int64_t e = 0; e < x->nelem; e++) {
		int64_t o = 0;

		for (int k = 0; k < r; k++)
			if (!red[k])
				o = o * x->dims[k] + xi[k];
		yv[o] = (int64_t)((uint64_t)yv[o] + (uint64_t)xv[e]);
		for (int k = r - 1; k >= 0; k--) {
			if (++xi[k] < x->dims[k])
				break;
			xi[k] = 0;
		}
	}
	for (int64_t o = 0; o < y->nelem; o++)
		yv[o] /= count; /* count >= 1 */
}

/*
 * ReduceMean. Axes come from the "axes" attribute before opset 18 and
 * from optional input 1 from 18 on; no axes means all axes, except that
 * from 18 on noop_with_empty_axes=1 makes the op an identity. keepdims
 * (default 1) keeps reduced axes as size 1. float and int64 (int64
 * truncates, a mean over zero elements fails).
 */
int lr_op_reducemean(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		     int nout)
{
	int64_t axes[LR_MAX_DIMS + 1], od[LR_MAX_DIMS], count = 1;
	int red[LR_MAX_DIMS] = { 0 };
	int keepdims = lr_node_attr_int(c->node, "keepdims", 1) != 0;
	int naxes = 0, ond = 0, rc;
	lr_tensor *x;

	if (nin < 1 || in[0] == NULL)
		return lr_op_fail(c, LR_EMODEL, "input 0 (data) is required");
	x = in[0];
	if (c->opset < 18) {
		if (nin > 1)
			return lr_op_fail(c, LR_EMODEL,
					  "ReduceMean-%lld takes axes as an attribute, not an input",
					  (long long)c->opset);
		rc = lr_node_attr_ints(c->node, "axes", axes, LR_MAX_DIMS + 1, &naxes);
		if (rc < 0)
			return lr_op_fail(c, LR_EMODEL, "attribute 'axes' has more than %d entries",
					  LR_MAX_DIMS);
		if (rc == 1)
			naxes = 0;
	} else {
		if (nin > 1 && in[1] != NULL && in[1]->dtype != LR_DT_INT64)
			return lr_op_fail(c, LR_EMODEL, "input 1 (axes) must be int64, got %s",
					  lr_dtype_name(in[1]->dtype));
		naxes = lr_op_ints_input(c, in, nin, 1, axes, LR_MAX_DIMS + 1);
		if (naxes < 0)
			return naxes;
		if (naxes == 0 && lr_node_attr_int(c->node, "noop_with_empty_axes", 0)) {
			lr_tensor *y = lr_op_take(c, in, 0);

			if (y != NULL) {
				*out = y;
				return 0;
			}
			rc = lr_op_output(c, out, x->dtype, x->ndim, x->dims);
			if (rc == 0 && (*out)->data != NULL && x->data != NULL)
				memcpy((*out)->data, x->data, lr_tensor_bytes(x));
			return rc;
		}
	}
	rc = lr_op_axes_mask(c, axes, naxes, x->ndim, red);
	if (rc != 0)
		return rc;
	for (int i = 0; i < x->ndim; i++) {
		if (red[i])
			count *= x->dims[i];
		if (!red[i])
			od[ond++] = x->dims[i];
		else if (keepdims)
			od[ond++] = 1;
	}
	rc = lr_op_output(c, out, x->dtype, ond, od);
	if (rc != 0)
		return rc;
	if ((*out)->data == NULL || (*out)->nelem == 0)
		return 0;
	if (x->data == NULL) {
		rc = lr_op_fail(c, LR_EINVAL, "input 0 (data) has no data");
		goto fail;
	}
	if (x->dtype == LR_DT_INT64) {
		if (count == 0) {
			rc = lr_op_fail(c, LR_ENUMERIC, "int64 mean over zero elements");
			goto fail;
		}
		rm_int64(x, *out, red, count);
		return 0;
	}
	if (count == 0) {
		float *y = (*out)->data;

		for (int64_t i = 0; i < (*out)->nelem; i++)
			y[i] = NAN;
		return 0;
	}
	{
		struct rm_job job;
		int64_t ext[LR_MAX_DIMS], str[LR_MAX_DIMS], s = 1;
		int kind[LR_MAX_DIMS], m = 0;

		/* strides, then drop size-1 axes and merge same-kind neighbours */
		for (int i = x->ndim - 1; i >= 0; i--) {
			str[i] = s;
			s *= x->dims[i];
		}
		for (int i = 0; i < x->ndim; i++) {
			if (x->dims[i] == 1)
				continue;
			if (m > 0 && kind[m - 1] == red[i]) {
				ext[m - 1] *= x->dims[i];
				str[m - 1] = str[i];
			} else {
				kind[m] = red[i];
				ext[m] = x->dims[i];
				str[m] = str[i];
				m++;
			}
		}
		job.x = x->data;
		job.y = (*out)->data;
		job.inv = 1.0 / (double)count;
		job.nk = job.nr = 0;
		for (int k = 0; k < m; k++) {
			if (kind[k]) {
				job.rext[job.nr] = ext[k];
				job.rstr[job.nr++] = str[k];
			} else {
				job.kext[job.nk] = ext[k];
				job.kstr[job.nk++] = str[k];
			}
		}
		if (m == 0) {
			/* nothing but size-1 axes: the mean of one element */
			memcpy(job.y, job.x, sizeof(float));
			return 0;
		}
		job.inner = ext[m - 1];
		job.inner_reduced = kind[m - 1];
		if (job.inner_reduced) {
			lr_pool_run(c->pool, (*out)->nelem, grain_for(count),
				    rm_chunk_red, &job);
		} else if (job.nr == 0) {
			memcpy(job.y, job.x, lr_tensor_bytes(x));
		} else {
			int64_t rows = (*out)->nelem / job.inner;

			job.nblk = (job.inner + RM_BLK - 1) / RM_BLK;
			lr_pool_run(c->pool, rows * job.nblk,
				    grain_for(count * RM_BLK), rm_chunk_kept, &job);
		}
	}
	return 0;
fail:
	lr_tensor_free(*out);
	*out = NULL;
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Resize and Upsample                                                      */
/* ---------------------------------------------------------------------- */

enum rs_mode { RS_NEAREST, RS_LINEAR, RS_CUBIC };

enum rs_ctm {
	CTM_HALF_PIXEL,
	CTM_HALF_PIXEL_SYMMETRIC,
	CTM_PYTORCH_HALF_PIXEL,
	CTM_ALIGN_CORNERS,
	CTM_ASYMMETRIC,
	CTM_TF_HALF_PIXEL_FOR_NN,
	CTM_TF_CROP_AND_RESIZE,
};

enum rs_round {
	RND_PREFER_FLOOR,
	RND_PREFER_CEIL,
	RND_FLOOR,
	RND_CEIL,
	RND_SIMPLE, /* Resize-10 / Upsample: floor when enlarging, ceil when shrinking */
};

struct rs_params {
	enum rs_mode mode;
	enum rs_ctm ctm;
	enum rs_round rnd;
	double cubic_a;
	int exclude_outside;
	float extrapolation;
	int rank;
	int64_t in[LR_MAX_DIMS], out[LR_MAX_DIMS];
	double scale[LR_MAX_DIMS];
	double roi0[LR_MAX_DIMS], roi1[LR_MAX_DIMS];
};

/* Per-axis taps: output coordinate j reads T taps (input offset, weight). */
struct rs_axis {
	int T;
	int64_t *off;          /* out * T, input element offsets */
	float *w;              /* out * T */
	unsigned char *ext;    /* out, 1: outside the crop (extrapolate) */
	int any_ext;
};

struct rs_job {
	const float *x;
	float *y;
	int rank;
	int64_t out[LR_MAX_DIMS];
	struct rs_axis ax[LR_MAX_DIMS];
	int64_t maxcombo;      /* product of T over the outer axes */
	float extrapolation;
	int failed;            /* set (atomically) when a chunk lacked memory */
};

/* Maps output coordinate j of an axis to an input coordinate. */
static double rs_coord(const struct rs_params *p, int a, int64_t j)
{
	double s = p->scale[a], L = (double)p->in[a], lr = s * L;
	double x = (double)j;

	switch (p->ctm) {
	case CTM_HALF_PIXEL:
		return (x + 0.5) / s - 0.5;
	case CTM_HALF_PIXEL_SYMMETRIC: {
		double adj = (double)p->out[a] / lr;
		double off = L / 2.0 * (1.0 - adj);

		return off + (x + 0.5) / s - 0.5;
	}
	case CTM_PYTORCH_HALF_PIXEL:
		return lr > 1.0 ? (x + 0.5) / s - 0.5 : 0.0;
	case CTM_ALIGN_CORNERS:
		return lr == 1.0 ? 0.0 : x * (L - 1.0) / (lr - 1.0);
	case CTM_ASYMMETRIC:
		return x / s;
	case CTM_TF_HALF_PIXEL_FOR_NN:
		return (x + 0.5) / s;
	case CTM_TF_CROP_AND_RESIZE:
		if (lr == 1.0)
			return (p->roi1[a] - p->roi0[a]) * (L - 1.0) / 2.0 +
			       p->roi0[a] * (L - 1.0);
		return x * (p->roi1[a] - p->roi0[a]) * (L - 1.0) / (lr - 1.0) +
		       p->roi0[a] * (L - 1.0);
	}
	return x;
}

static int64_t clamp_i64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Floor of a coordinate as int64, saturated far outside any real tensor. */
static int64_t floor_i64(double v)
{
	if (!(v > -4e18))
		return -(int64_t)4e18;
	if (v > 4e18)
		return (int64_t)4e18;
	return (int64_t)floor(v);
}

/* Builds the taps of axis a (with input element stride `stride`). */
static void rs_build_axis(const struct rs_params *p, int a, int64_t stride,
			  struct rs_axis *ax)
{
	int64_t L = p->in[a], M = p->out[a];
	int T = ax->T;

	ax->any_ext = 0;
	for (int64_t j = 0; j < M; j++) {
		double x = rs_coord(p, a, j);
		int64_t *off = ax->off + j * T;
		float *w = ax->w + j * T;
		int64_t f = floor_i64(x);
		double r = x - (double)f;

		ax->ext[j] = 0;
		if (p->ctm == CTM_TF_CROP_AND_RESIZE &&
		    (x < 0.0 || x > (double)(L - 1))) {
			ax->ext[j] = 1;
			ax->any_ext = 1;
			for (int t = 0; t < T; t++) {
				off[t] = 0;
				w[t] = 0.f;
			}
			continue;
		}
		if (p->mode == RS_NEAREST) {
			int64_t i;

			switch (p->rnd) {
			case RND_PREFER_FLOOR:
				i = r <= 0.5 ? f : f + 1;
				break;
			case RND_PREFER_CEIL:
				i = r < 0.5 ? f : f + 1;
				break;
			case RND_FLOOR:
				i = f;
				break;
			case RND_CEIL:
				i = r > 0.0 ? f + 1 : f;
				break;
			default: /* RND_SIMPLE */
				i = p->scale[a] < 1.0 ? (r > 0.0 ? f + 1 : f) : f;
				break;
			}
			off[0] = clamp_i64(i, 0, L - 1) * stride;
			w[0] = 1.f;
			continue;
		}
		{
			double cw[4], sum = 0.0;
			int64_t first;

			if (p->mode == RS_LINEAR) {
				cw[0] = 1.0 - r;
				cw[1] = r;
				first = f;
			} else {
				double A = p->cubic_a, r1 = r + 1.0, s = 1.0 - r,
				       s1 = s + 1.0;

				cw[0] = ((A * r1 - 5.0 * A) * r1 + 8.0 * A) * r1 - 4.0 * A;
				cw[1] = ((A + 2.0) * r - (A + 3.0)) * r * r + 1.0;
				cw[2] = ((A + 2.0) * s - (A + 3.0)) * s * s + 1.0;
				cw[3] = ((A * s1 - 5.0 * A) * s1 + 8.0 * A) * s1 - 4.0 * A;
				first = f - 1;
			}
			if (p->exclude_outside) {
				for (int t = 0; t < T; t++) {
					if (first + t < 0 || first + t >= L)
						cw[t] = 0.0;
					sum += cw[t];
				}
				for (int t = 0; t < T && sum != 0.0; t++)
					cw[t] /= sum;
			}
			for (int t = 0; t < T; t++) {
				off[t] = clamp_i64(first + t, 0, L - 1) * stride;
				w[t] = (float)cw[t];
			}
		}
	}
	/* An axis where every coordinate reads one tap of weight 1 is a gather. */
	if (T > 1 && !ax->any_ext) {
		int single = 1;

		for (int64_t j = 0; j < M && single; j++) {
			int ones = 0, zeros = 0;

			for (int t = 0; t < T; t++) {
				ones += ax->w[j * T + t] == 1.f;
				zeros += ax->w[j * T + t] == 0.f;
			}
			single = ones == 1 && zeros == T - 1;
		}
		if (single) {
			for (int64_t j = 0; j < M; j++) {
				int64_t o = 0;

				for (int t = 0; t < T; t++)
					if (ax->w[j * T + t] == 1.f)
						o = ax->off[j * T + t];
				ax->off[j] = o;
				ax->w[j] = 1.f;
			}
			ax->T = 1;
		}
	}
}

static void rs_chunk(void *vp, int64_t begin, int64_t end)
{
	struct rs_job *j = vp;
	int R = j->rank, la = R - 1;
	const struct rs_axis *L = &j->ax[la];
	int64_t M = j->out[la];
	int64_t cap = j->maxcombo, idx[LR_MAX_DIMS];
	int64_t stack_off[64];
	float stack_w[64];
	int64_t *coff = stack_off;
	float *cw = stack_w;

	if (cap > 64) {
		coff = malloc((size_t)cap * (sizeof(int64_t) + sizeof(float)));
		if (coff == NULL) {
			__atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
			return;
		}
		cw = (float *)(coff + cap);
	}
	{
		int64_t r = begin;

		for (int a = la - 1; a >= 0; a--) {
			idx[a] = r % j->out[a];
			r /= j->out[a];
		}
	}
	for (int64_t row = begin; row < end; row++) {
		float *y = j->y + row * M;
		int64_t nc = 1;
		int tq[4], ext = 0;

		coff[0] = 0;
		cw[0] = 1.f;
		for (int a = 0; a < la && !ext; a++) {
			const struct rs_axis *ax = &j->ax[a];
			int T = ax->T;
			int64_t n2 = 0;

			if (ax->ext[idx[a]]) {
				ext = 1;
				break;
			}
			if (T == 1) {
				int64_t o = ax->off[idx[a]];

				for (int64_t k = 0; k < nc; k++)
					coff[k] += o;
				continue;
			}
			/*
			 * Expand each corner by the nonzero taps of this axis.
			 * Slot block q gets tap tq[q]; block 0 holds the current
			 * corners, so it is overwritten last.
			 */
			for (int t = 0; t < T; t++)
				if (ax->w[idx[a] * T + t] != 0.f)
					tq[n2++] = t;
			if (n2 == 0) {
				for (int64_t k = 0; k < nc; k++)
					cw[k] = 0.f;
				continue;
			}
			for (int64_t q = n2 - 1; q >= 0; q--) {
				float wt = ax->w[idx[a] * T + tq[q]];
				int64_t o = ax->off[idx[a] * T + tq[q]];

				for (int64_t k = 0; k < nc; k++) {
					coff[q * nc + k] = coff[k] + o;
					cw[q * nc + k] = cw[k] * wt;
				}
			}
			nc *= n2;
		}
		if (ext) {
			for (int64_t i = 0; i < M; i++)
				y[i] = j->extrapolation;
		} else if (L->T == 1) {
			const int64_t *lo = L->off;

			if (nc == 1 && cw[0] == 1.f) {
				const float *x = j->x + coff[0];

				for (int64_t i = 0; i < M; i++)
					y[i] = x[lo[i]];
			} else {
				for (int64_t k = 0; k < nc; k++) {
					const float *x = j->x + coff[k];
					float wk = cw[k];

					if (k == 0)
						for (int64_t i = 0; i < M; i++)
							y[i] = wk * x[lo[i]];
					else
						for (int64_t i = 0; i < M; i++)
							y[i] += wk * x[lo[i]];
				}
			}
		} else if (L->T == 2) {
			for (int64_t k = 0; k < nc; k++) {
				const float *x = j->x + coff[k];
				const int64_t *lo = L->off;
				const float *lw = L->w;
				float wk = cw[k];

				for (int64_t i = 0; i < M; i++) {
					float s = lw[2 * i] * x[lo[2 * i]] +
						  lw[2 * i + 1] * x[lo[2 * i + 1]];

					y[i] = k == 0 ? wk * s : y[i] + wk * s;
				}
			}
		} else {
			int T = L->T;

			for (int64_t k = 0; k < nc; k++) {
				const float *x = j->x + coff[k];
				float wk = cw[k];

				for (int64_t i = 0; i < M; i++) {
					const int64_t *lo = L->off + i * T;
					const float *lw = L->w + i * T;
					float s = 0.f;

					for (int t = 0; t < T; t++)
						s += lw[t] * x[lo[t]];
					y[i] = k == 0 ? wk * s : y[i] + wk * s;
				}
			}
		}
		if (!ext && L->any_ext)
			for (int64_t i = 0; i < M; i++)
				if (L->ext[i])
					y[i] = j->extrapolation;
		/* next row */
		for (int a = la - 1; a >= 0; a--) {
			if (++idx[a] < j->out[a])
				break;
			idx[a] = 0;
		}
	}
	if (coff != stack_off)
		free(coff);
}

/*
 * Shared back end: allocates the output of shape p->out, builds the tap
 * tables and runs the resize. `x` is input 0.
 */
static int rs_run(lr_opctx *c, const struct rs_params *p, const lr_tensor *x,
		  lr_tensor **out)
{
	struct rs_job job;
	int64_t stride[LR_MAX_DIMS], s = 1, ntaps = 0, nout = 0;
	int T0 = p->mode == RS_NEAREST ? 1 : p->mode == RS_LINEAR ? 2 : 4;
	unsigned char *blk = NULL;
	int rc, R = p->rank;

	rc = lr_op_output(c, out, LR_DT_FLOAT, R, p->out);
	if (rc != 0)
		return rc;
	if ((*out)->data == NULL || (*out)->nelem == 0)
		return 0;
	if (x->data == NULL) {
		rc = lr_op_fail(c, LR_EINVAL, "input 0 (X) has no data");
		goto out;
	}
	if (x->nelem == 0) {
		rc = lr_op_fail(c, LR_ESHAPE, "cannot resize an empty tensor to a non-empty one");
		goto out;
	}
	for (int a = R - 1; a >= 0; a--) {
		stride[a] = s;
		s *= p->in[a];
		ntaps += p->out[a] * T0;
		nout += p->out[a];
	}
	blk = malloc((size_t)ntaps * (sizeof(int64_t) + sizeof(float)) +
		     (size_t)nout);
	if (blk == NULL) {
		rc = lr_op_fail(c, LR_ENOMEM, "out of memory for the interpolation tables");
		goto out;
	}
	{
		int64_t *offp = (int64_t *)(void *)blk;
		float *wp = (float *)(void *)(offp + ntaps);
		unsigned char *ep = (unsigned char *)(wp + ntaps);

		for (int a = 0; a < R; a++) {
			job.ax[a].T = T0;
			job.ax[a].off = offp;
			job.ax[a].w = wp;
			job.ax[a].ext = ep;
			offp += p->out[a] * T0;
			wp += p->out[a] * T0;
			ep += p->out[a];
			rs_build_axis(p, a, stride[a], &job.ax[a]);
		}
	}
	job.x = x->data;
	job.y = (*out)->data;
	job.rank = R;
	job.extrapolation = p->extrapolation;
	job.failed = 0;
	job.maxcombo = 1;
	for (int a = 0; a < R; a++) {
		job.out[a] = p->out[a];
		if (a < R - 1)
			job.maxcombo *= job.ax[a].T;
	}
	lr_pool_run(c->pool, (*out)->nelem / p->out[R - 1],
		    grain_for(p->out[R - 1] * job.maxcombo * job.ax[R - 1].T),
		    rs_chunk, &job);
	rc = job.failed ? lr_op_fail(c, LR_ENOMEM, "out of memory for interpolation corners") : 0;
out:
	free(blk);
	if (rc != 0) {
		lr_tensor_free(*out);
		*out = NULL;
	}
	return rc;
}

/* Output extent floor(in * scale), refusing values that are not sizes. */
static int rs_scaled_dim(lr_opctx *c, int64_t in, double scale, int a,
			 int64_t *out)
{
	double v = floor((double)in * scale);

	if (!(scale > 0.0) || !(v >= 0.0 && v < 9.0e18))
		return lr_op_fail(c, LR_EMODEL,
				  "scale %g for axis %d is not a positive finite number giving a valid size",
				  scale, a);
	*out = (int64_t)v;
	return 0;
}

/* Reads a float vector (scales or roi) from input i; n entries or error. */
static int rs_floats(lr_opctx *c, lr_tensor **in, int nin, int i,
		     const char *what, double *buf, int max)
{
	const lr_tensor *t;

	if (i >= nin || in[i] == NULL || in[i]->nelem == 0)
		return 0;
	t = in[i];
	if (t->ndim != 1)
		return lr_op_fail(c, LR_ESHAPE, "input %d (%s) must be 1-D, got rank %d",
				  i, what, t->ndim);
	if (t->nelem > max)
		return lr_op_fail(c, LR_ESHAPE, "input %d (%s) has %lld entries, expected at most %d",
				  i, what, (long long)t->nelem, max);
	if (t->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "input %d (%s) must be computable before the run (a constant)",
				  i, what);
	for (int64_t k = 0; k < t->nelem; k++)
		buf[k] = t->dtype == LR_DT_FLOAT ? (double)((const float *)t->data)[k]
			 : (double)((const int64_t *)t->data)[k];
	return (int)t->nelem;
}

/* Parses mode / nearest_mode / coordinate_transformation_mode strings. */
static int rs_parse_mode(lr_opctx *c, struct rs_params *p, int modern)
{
	char buf[64];
	const char *s = lr_node_attr_str(c->node, "mode", "nearest", buf, sizeof(buf));

	if (strcmp(s, "nearest") == 0)
		p->mode = RS_NEAREST;
	else if (strcmp(s, "linear") == 0 || (strcmp(s, "bilinear") == 0 && c->opset < 7))
		p->mode = RS_LINEAR; /* Upsample-1 called it bilinear */
	else if (strcmp(s, "cubic") == 0 && modern)
		p->mode = RS_CUBIC;
	else
		return lr_op_fail(c, LR_EMODEL,
				  "attribute 'mode' \"%s\" is unknown (nearest, linear%s)",
				  s, modern ? ", cubic" : "");
	if (!modern) {
		p->ctm = CTM_ASYMMETRIC;
		p->rnd = RND_SIMPLE;
		return 0;
	}
	s = lr_node_attr_str(c->node, "coordinate_transformation_mode", "half_pixel",
			     buf, sizeof(buf));
	if (strcmp(s, "half_pixel") == 0)
		p->ctm = CTM_HALF_PIXEL;
	else if (strcmp(s, "half_pixel_symmetric") == 0)
		p->ctm = CTM_HALF_PIXEL_SYMMETRIC;
	else if (strcmp(s, "pytorch_half_pixel") == 0)
		p->ctm = CTM_PYTORCH_HALF_PIXEL;
	else if (strcmp(s, "align_corners") == 0)
		p->ctm = CTM_ALIGN_CORNERS;
	else if (strcmp(s, "asymmetric") == 0)
		p->ctm = CTM_ASYMMETRIC;
	else if (strcmp(s, "tf_half_pixel_for_nn") == 0)
		p->ctm = CTM_TF_HALF_PIXEL_FOR_NN;
	else if (strcmp(s, "tf_crop_and_resize") == 0)
		p->ctm = CTM_TF_CROP_AND_RESIZE;
	else
		return lr_op_fail(c, LR_EMODEL,
				  "attribute 'coordinate_transformation_mode' \"%s\" is unknown", s);
	s = lr_node_attr_str(c->node, "nearest_mode", "round_prefer_floor", buf,
			     sizeof(buf));
	if (strcmp(s, "round_prefer_floor") == 0)
		p->rnd = RND_PREFER_FLOOR;
	else if (strcmp(s, "round_prefer_ceil") == 0)
		p->rnd = RND_PREFER_CEIL;
	else if (strcmp(s, "floor") == 0)
		p->rnd = RND_FLOOR;
	else if (strcmp(s, "ceil") == 0)
		p->rnd = RND_CEIL;
	else
		return lr_op_fail(c, LR_EMODEL, "attribute 'nearest_mode' \"%s\" is unknown", s);
	return 0;
}

/*
 * Resize. Opset 10: (X, scales), asymmetric coordinates, nearest rounds
 * like Upsample. Opsets 11-12: (X, roi, scales, sizes) where exactly one of
 * scales and sizes is non-empty. Opset 13+: roi and scales may be omitted.
 * Opset 18+: "axes" restricts scales/sizes/roi to some axes,
 * keep_aspect_ratio_policy (stretch, not_larger, not_smaller) applies to
 * sizes, antialias=1 is unsupported when an axis shrinks. Modes: nearest
 * (all four nearest_mode roundings), linear (N-linear over every resized
 * axis) and cubic (cubic_coeff_a, exclude_outside); every coordinate
 * transformation mode including tf_crop_and_resize (with
 * extrapolation_value). scales/sizes/roi must be known (constants or
 * shape arithmetic) even in a dry run.
 */
int lr_op_resize(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		 int nout)
{
	struct rs_params p;
	double scales[LR_MAX_DIMS], roi[2 * LR_MAX_DIMS];
	int64_t sizes[LR_MAX_DIMS], axes_v[LR_MAX_DIMS];
	int axes[LR_MAX_DIMS], naxes, nsc = 0, nsz = 0, nroi = 0, rc;
	int used[LR_MAX_DIMS] = { 0 };
	int modern = c->opset >= 11;
	lr_tensor *x;
	char buf[64];

	rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT);
	if (rc != 0)
		return rc;
	x = in[0];
	memset(&p, 0, sizeof(p));
	p.rank = x->ndim;
	if (p.rank < 1)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (X) must have rank >= 1");
	rc = rs_parse_mode(c, &p, modern);
	if (rc != 0)
		return rc;
	p.cubic_a = lr_node_attr_float(c->node, "cubic_coeff_a", -0.75f);
	p.exclude_outside = lr_node_attr_int(c->node, "exclude_outside", 0) != 0;
	p.extrapolation = lr_node_attr_float(c->node, "extrapolation_value", 0.f);

	/* axes (opset 18+): which axes scales/sizes/roi describe */
	naxes = p.rank;
	for (int a = 0; a < p.rank; a++)
		axes[a] = a;
	if (c->opset >= 18) {
		int cnt = 0;

		rc = lr_node_attr_ints(c->node, "axes", axes_v, LR_MAX_DIMS, &cnt);
		if (rc < 0)
			return lr_op_fail(c, LR_EMODEL, "attribute 'axes' has too many entries");
		if (rc == 0 && cnt > 0) {
			naxes = cnt;
			for (int k = 0; k < cnt; k++) {
				rc = lr_op_axis(c, axes_v[k], p.rank, &axes[k]);
				if (rc != 0)
					return rc;
				if (used[axes[k]]++)
					return lr_op_fail(c, LR_EMODEL,
							  "axis %lld is listed twice in 'axes'",
							  (long long)axes_v[k]);
			}
		}
	}

	if (!modern) {
		if (nin != 2 || in[1] == NULL)
			return lr_op_fail(c, LR_EMODEL, "Resize-10 takes inputs (X, scales)");
		nsc = rs_floats(c, in, nin, 1, "scales", scales, LR_MAX_DIMS);
	} else {
		nsc = rs_floats(c, in, nin, 2, "scales", scales, LR_MAX_DIMS);
		if (nsc >= 0 && nin > 3 && in[3] != NULL && in[3]->nelem > 0) {
			if (in[3]->dtype != LR_DT_INT64)
				return lr_op_fail(c, LR_EMODEL, "input 3 (sizes) must be int64");
			nsz = lr_op_ints_input(c, in, nin, 3, sizes, LR_MAX_DIMS);
			if (nsz < 0)
				return nsz;
		}
		if (nsc >= 0 && p.ctm == CTM_TF_CROP_AND_RESIZE)
			nroi = rs_floats(c, in, nin, 1, "roi", roi, 2 * LR_MAX_DIMS);
		if (nroi < 0)
			return nroi;
	}
	if (nsc < 0)
		return nsc;
	if ((nsc > 0) == (nsz > 0))
		return lr_op_fail(c, LR_EMODEL,
				  nsc > 0 ? "only one of 'scales' and 'sizes' may be given"
				  : "one of 'scales' and 'sizes' is required");
	if ((nsc > 0 ? nsc : nsz) != naxes)
		return lr_op_fail(c, LR_ESHAPE,
				  "input %s has %d entries, expected %d (one per %s)",
				  nsc > 0 ? "scales" : "sizes", nsc > 0 ? nsc : nsz,
				  naxes, naxes == p.rank ? "input axis" : "entry of 'axes'");
	if (p.ctm == CTM_TF_CROP_AND_RESIZE && nroi != 2 * naxes)
		return lr_op_fail(c, LR_ESHAPE,
				  "input 1 (roi) has %d entries, tf_crop_and_resize needs %d",
				  nroi, 2 * naxes);

	for (int a = 0; a < p.rank; a++) {
		p.in[a] = x->dims[a];
		p.out[a] = x->dims[a];
		p.scale[a] = 1.0;
		p.roi0[a] = 0.0;
		p.roi1[a] = 1.0;
	}
	for (int k = 0; k < naxes && nroi > 0; k++) {
		p.roi0[axes[k]] = roi[k];
		p.roi1[axes[k]] = roi[naxes + k];
	}
	if (nsc > 0) {
		for (int k = 0; k < naxes; k++) {
			int a = axes[k];

			p.scale[a] = scales[k];
			rc = rs_scaled_dim(c, p.in[a], scales[k], a, &p.out[a]);
			if (rc != 0)
				return rc;
		}
	} else {
		const char *pol = c->opset >= 18 ?
			lr_node_attr_str(c->node, "keep_aspect_ratio_policy",
					 "stretch", buf, sizeof(buf)) : "stretch";
		int stretch = strcmp(pol, "stretch") == 0;
		int larger = strcmp(pol, "not_smaller") == 0;
		double common = 0.0;

		if (!stretch && !larger && strcmp(pol, "not_larger") != 0)
			return lr_op_fail(c, LR_EMODEL,
					  "attribute 'keep_aspect_ratio_policy' \"%s\" is unknown", pol);
		for (int k = 0; k < naxes; k++) {
			int a = axes[k];

			if (sizes[k] < 0)
				return lr_op_fail(c, LR_EMODEL,
						  "input 3 (sizes) entry %d is negative (%lld)",
						  k, (long long)sizes[k]);
			if (p.in[a] == 0 && sizes[k] != 0)
				return lr_op_fail(c, LR_ESHAPE,
						  "axis %d of X is empty and cannot be resized to %lld",
						  a, (long long)sizes[k]);
			p.out[a] = sizes[k];
			p.scale[a] = p.in[a] ? (double)sizes[k] / (double)p.in[a] : 1.0;
			if (k == 0 || (larger ? p.scale[a] > common : p.scale[a] < common))
				common = p.scale[a];
		}
		if (!stretch) {
			for (int k = 0; k < naxes; k++) {
				int a = axes[k];
				double v = common * (double)p.in[a] + 0.5;

				p.scale[a] = common;
				rc = rs_scaled_dim(c, 1, v, a, &p.out[a]);
				if (rc != 0)
					return rc;
			}
		}
	}
	for (int a = 0; a < p.rank; a++)
		if (!(p.scale[a] > 0.0) && p.out[a] > 0)
			return lr_op_fail(c, LR_EMODEL, "scale for axis %d must be positive", a);
	if (c->opset >= 18 && lr_node_attr_int(c->node, "antialias", 0) != 0 &&
	    p.mode != RS_NEAREST) {
		for (int a = 0; a < p.rank; a++)
			if (p.scale[a] < 1.0)
				return lr_op_fail(c, LR_EUNSUPPORTED,
						  "antialias=1 when downsampling (axis %d, scale %g) is not supported",
						  a, p.scale[a]);
	}
	return rs_run(c, &p, x, out);
}

/*
 * Upsample (opsets 7-9, deprecated in 10 with the opset-9 signature):
 * scales is an attribute before opset 9 and input 1 from 9 on, one entry
 * >= 1 per axis; output = floor(in * scale). nearest picks
 * floor(out / scale); linear is N-linear with asymmetric coordinates
 * (x / scale), clamped at the border.
 */
int lr_op_upsample(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		   int nout)
{
	struct rs_params p;
	double scales[LR_MAX_DIMS];
	int nsc, rc;
	lr_tensor *x;

	rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT);
	if (rc != 0)
		return rc;
	x = in[0];
	memset(&p, 0, sizeof(p));
	p.rank = x->ndim;
	if (p.rank < 1)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (X) must have rank >= 1");
	rc = rs_parse_mode(c, &p, 0);
	if (rc != 0)
		return rc;
	if (c->opset < 7) {
		/* Upsample-1: NCHW only, two attributes for H and W */
		if (nin > 1)
			return lr_op_fail(c, LR_EMODEL,
					  "Upsample-%lld takes its scales as attributes, not an input",
					  (long long)c->opset);
		if (p.rank != 4)
			return lr_op_fail(c, LR_ESHAPE, "Upsample-%lld needs a 4-D NCHW input, got rank %d",
					  (long long)c->opset, p.rank);
		if (lr_node_attr(c->node, "height_scale") == NULL ||
		    lr_node_attr(c->node, "width_scale") == NULL)
			return lr_op_fail(c, LR_EMODEL,
					  "attributes 'height_scale' and 'width_scale' are required");
		nsc = 4;
		scales[0] = scales[1] = 1.0;
		scales[2] = lr_node_attr_float(c->node, "height_scale", 1.0f);
		scales[3] = lr_node_attr_float(c->node, "width_scale", 1.0f);
	} else if (c->opset < 9) {
		const Onnx__AttributeProto *a = lr_node_attr(c->node, "scales");

		if (nin > 1)
			return lr_op_fail(c, LR_EMODEL,
					  "Upsample-%lld takes scales as an attribute, not an input",
					  (long long)c->opset);
		if (a == NULL || a->n_floats == 0)
			return lr_op_fail(c, LR_EMODEL, "attribute 'scales' is required");
		if (a->n_floats > LR_MAX_DIMS)
			return lr_op_fail(c, LR_ESHAPE, "attribute 'scales' has %zu entries, expected %d",
					  a->n_floats, p.rank);
		nsc = (int)a->n_floats;
		for (int k = 0; k < nsc; k++)
			scales[k] = a->floats[k];
	} else {
		if (nin < 2 || in[1] == NULL)
			return lr_op_fail(c, LR_EMODEL, "input 1 (scales) is required");
		nsc = rs_floats(c, in, nin, 1, "scales", scales, LR_MAX_DIMS);
		if (nsc < 0)
			return nsc;
	}
	if (nsc != p.rank)
		return lr_op_fail(c, LR_ESHAPE, "scales has %d entries, expected %d (one per input axis)",
				  nsc, p.rank);
	for (int a = 0; a < p.rank; a++) {
		if (!(scales[a] >= 1.0))
			return lr_op_fail(c, LR_EMODEL,
					  "scale %g for axis %d must be >= 1 (Upsample only enlarges)",
					  scales[a], a);
		p.in[a] = x->dims[a];
		p.scale[a] = scales[a];
		p.roi0[a] = 0.0;
		p.roi1[a] = 1.0;
		rc = rs_scaled_dim(c, p.in[a], scales[a], a, &p.out[a]);
		if (rc != 0)
			return rc;
	}
	return rs_run(c, &p, x, out);
}
