/*
 * ops_reduce.c - ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
 * ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare, ArgMax and
 * ArgMin. (ReduceMean, the one CNN exports use most, has a faster blocked
 * kernel in ops_math.c.)
 *
 * DESIGN. One driver parses the signature of every opset: axes as an
 * attribute before the op's switch (ReduceSum 13, the others 18) and as
 * optional input 1 from then on, where an empty or absent axes input with
 * noop_with_empty_axes=1 makes the op an identity; keepdims defaults to 1;
 * axes may be negative and must not repeat. Each output element is one
 * unit of parallel work: its reduced sub-box is walked with an odometer
 * over the reduced axes, accumulating in double (sums, products, norms),
 * so long reductions lose nothing to float rounding. LogSumExp shifts by
 * the maximum first, so large inputs do not overflow. A reduction over
 * zero elements gives the identity of the operation (0, 1, -inf for
 * Max/LogSum/LogSumExp, +inf for Min), as the ONNX reference does.
 *
 * double inputs (lr_op_def.double_in) are reduced the same way into a
 * double output, on one thread. Sum, Max, Min and Prod also take the
 * narrower integer types (reduce_narrow), with the type's own result.
 *
 * int64 inputs (shape arithmetic) are accepted by Sum, Max, Min and Prod,
 * computed with wrapping arithmetic, and always computed, dry run or not;
 * float outputs are skipped in a dry run. ArgMax/ArgMin return int64
 * indices along one axis (first occurrence, or last with
 * select_last_index=1 from opset 12); in a dry run without input data they
 * are zeros of the right shape.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "model/ops.h"

enum red_kind {
	R_SUM, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP, R_SUMSQ,
};

/* The reduced and kept axes of X, in order, with their strides. */
struct red_job {
	enum red_kind kind;
	const void *x;
	void *y;
	int nk, nr;
	int64_t kext[LR_MAX_DIMS], kstr[LR_MAX_DIMS];
	int64_t rext[LR_MAX_DIMS], rstr[LR_MAX_DIMS];
	int64_t count;          /* elements per reduction */
};

static int64_t red_base(const struct red_job *j, int64_t u)
{
	int64_t off = 0;

	for (int k = j->nk - 1; k >= 0; k--) {
		off += (u % j->kext[k]) * j->kstr[k];
		u /= j->kext[k];
	}
	return off;
}

/* Advances the odometer over the reduced axes; 0 when it wrapped around. */
static int red_next(const struct red_job *j, int64_t *idx, int64_t *off)
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

/*
 * One reduction of elements of type T, accumulated in double: red_float1
 * for float32 (the kernel as it always was), red_double1 for double.
 */
#define DEF_RED1(NAME, T) \
static double NAME(const struct red_job *j, const T *x) \
{ \
	int64_t idx[LR_MAX_DIMS] = { 0 }, off = 0; \
	double acc, m = -INFINITY; \
 \
	switch (j->kind) { \
	case R_MAX: acc = -INFINITY; break; \
	case R_MIN: acc = INFINITY; break; \
	case R_PROD: acc = 1.0; break; \
	default: acc = 0.0; break; \
	} \
	if (j->count == 0) \
		return j->kind == R_LOGSUM || j->kind == R_LOGSUMEXP ? -INFINITY : acc; \
	if (j->kind == R_LOGSUMEXP) { \
		do { \
			double v = x[off]; \
 \
			m = v > m || v != v ? v : m; \
		} while (red_next(j, idx, &off)); \
		if (m == INFINITY) \
			return m; \
		if (m == -INFINITY) \
			m = 0.0;        /* every term is exp(-inf) = 0: log(0) */ \
	} \
	do { \
		double v = x[off]; \
 \
		switch (j->kind) { \
		case R_SUM: case R_LOGSUM: acc += v; break; \
		case R_MAX: acc = v > acc || v != v ? v : acc; break; \
		case R_MIN: acc = v < acc || v != v ? v : acc; break; \
		case R_PROD: acc *= v; break; \
		case R_L1: acc += fabs(v); break; \
		case R_L2: case R_SUMSQ: acc += v * v; break; \
		case R_LOGSUMEXP: acc += exp(v - m); break; \
		} \
	} while (red_next(j, idx, &off)); \
	if (j->kind == R_L2) \
		return sqrt(acc); \
	if (j->kind == R_LOGSUM) \
		return log(acc); \
	if (j->kind == R_LOGSUMEXP) \
		return m + log(acc); \
	return acc; \
}
DEF_RED1(red_float1, float)
DEF_RED1(red_double1, double)

static void red_chunk(void *vp, int64_t begin, int64_t end)
{
	const struct red_job *j = vp;
	const float *x = j->x;
	float *y = j->y;

	for (int64_t u = begin; u < end; u++)
		y[u] = (float)red_float1(j, x + red_base(j, u));
}

/* double outputs, one per kept position (no threads: a generic path). */
static void red_double(const struct red_job *j, int64_t nout)
{
	for (int64_t u = 0; u < nout; u++)
		((double *)j->y)[u] = red_double1(j, (const double *)j->x + red_base(j, u));
}

/* int64 Sum/Max/Min/Prod, wrapping; count >= 1 for Max/Min. */
static void red_int64(const struct red_job *j, int64_t nout)
{
	const int64_t *x = j->x;
	int64_t *y = j->y;

	for (int64_t u = 0; u < nout; u++) {
		int64_t idx[LR_MAX_DIMS] = { 0 }, off = red_base(j, u);
		uint64_t acc = j->kind == R_PROD ? 1u : 0u;
		int64_t best = 0;
		int first = 1;

		if (j->count > 0) {
			do {
				int64_t v = x[off];

				if (j->kind == R_SUM)
					acc += (uint64_t)v;
				else if (j->kind == R_PROD)
					acc *= (uint64_t)v;
				else if (first || (j->kind == R_MAX ? v > best : v < best))
					best = v;
				first = 0;
			} while (red_next(j, idx, &off));
		}
		y[u] = (j->kind == R_SUM || j->kind == R_PROD) ? (int64_t)acc : best;
	}
}

static int run_reduce(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		      enum red_kind kind, int64_t axes_input_from);

/*
 * Sum, Max, Min and Prod of the narrower integer types: the int64 path on
 * a widened copy, narrowed back. Sum and Prod wrap modulo 2^64 there, so
 * their low bits are exactly the type's own wrapping result; Max and Min
 * of exactly widened values are exact (uint64 Max/Min, which would compare
 * signed, are refused). float16, bool and the other reductions are
 * refused.
 */
static int reduce_narrow(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			 enum red_kind kind, int64_t axes_input_from)
{
	lr_tensor *v[2] = { NULL, nin > 1 ? in[1] : NULL }, *wide = NULL, *y = NULL;
	const lr_tensor *x = in[0];
	int rc;

	if (lr_dtype_is_float(x->dtype) || x->dtype == LR_DT_BOOL ||
	    (kind != R_SUM && kind != R_MAX && kind != R_MIN && kind != R_PROD) ||
	    (x->dtype == LR_DT_UINT64 && (kind == R_MAX || kind == R_MIN)))
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (data) has type %s, which %s does not take",
				  lr_dtype_name(x->dtype), c->node->op_type);
	if (x->data == NULL)
		return lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL,
				  "input 0 (data) of type %s has no values", lr_dtype_name(x->dtype));
	rc = lr_tensor_create(&wide, LR_DT_INT64, x->ndim, x->dims, 1);
	if (rc != 0)
		return lr_op_fail(c, rc, "out of memory");
	lr_tensor_convert(x, LR_DT_INT64, wide->data);
	v[0] = wide;
	{
		unsigned keep = c->takeable;

		c->takeable = 0; /* the copy is ours, the input stays the engine's */
		rc = run_reduce(c, v, nin < 2 ? nin : 2, &y, kind, axes_input_from);
		c->takeable = keep;
	}
	if (rc == 0)
		rc = lr__ty_out(c, out, x->dtype, y->ndim, y->dims, 1);
	if (rc == 0 && (*out)->data != NULL)
		lr_tensor_convert(y, x->dtype, (*out)->data);
	lr_tensor_free(wide);
	lr_tensor_free(y);
	return rc;
}

static int run_reduce(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		      enum red_kind kind, int64_t axes_input_from)
{
	int64_t axes[LR_MAX_DIMS + 1], od[LR_MAX_DIMS], count = 1;
	int red[LR_MAX_DIMS] = { 0 };
	int keepdims = lr_node_attr_int(c->node, "keepdims", 1) != 0;
	int naxes = 0, ond = 0, rc;
	struct red_job job;
	lr_tensor *x;

	if (nin < 1 || in[0] == NULL)
		return lr_op_fail(c, LR_EMODEL, "input 0 (data) is required");
	x = in[0];
	if (!lr_dtype_is_legacy(x->dtype) && x->dtype != LR_DT_DOUBLE)
		return reduce_narrow(c, in, nin, out, kind, axes_input_from);
	if (x->dtype == LR_DT_INT64 && kind != R_SUM && kind != R_MAX &&
	    kind != R_MIN && kind != R_PROD)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (data) has type int64, only float is supported");
	if (c->opset < axes_input_from) {
		if (nin > 1)
			return lr_op_fail(c, LR_EMODEL,
					  "%s-%lld takes axes as an attribute, not an input",
					  c->node->op_type, (long long)c->opset);
		rc = lr_node_attr_ints(c->node, "axes", axes, LR_MAX_DIMS + 1, &naxes);
		if (rc < 0)
			return lr_op_fail(c, LR_EMODEL, "attribute 'axes' has more than %d entries",
					  LR_MAX_DIMS);
		if (rc == 1)
			naxes = 0;
	} else {
		if (lr_node_attr(c->node, "axes") != NULL)
			return lr_op_fail(c, LR_EMODEL,
					  "%s-%lld takes axes as input 1, not an attribute",
					  c->node->op_type, (long long)c->opset);
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
			if (rc == 0 && (*out)->data != NULL) {
				if (x->data == NULL) {
					lr_tensor_free(*out);
					*out = NULL;
					return lr_op_fail(c, LR_EINVAL, "input 0 (data) has no data");
				}
				memcpy((*out)->data, x->data, lr_tensor_bytes(x));
			}
			return rc;
		}
	}
	rc = lr_op_axes_mask(c, axes, naxes, x->ndim, red);
	if (rc != 0)
		return rc;
	memset(&job, 0, sizeof(job));
	{
		int64_t s = 1, str[LR_MAX_DIMS];

		for (int i = x->ndim - 1; i >= 0; i--) {
			str[i] = s;
			s *= x->dims[i];
		}
		for (int i = 0; i < x->ndim; i++) {
			if (red[i]) {
				count *= x->dims[i];
				job.rext[job.nr] = x->dims[i];
				job.rstr[job.nr++] = str[i];
				if (keepdims)
					od[ond++] = 1;
			} else {
				job.kext[job.nk] = x->dims[i];
				job.kstr[job.nk++] = str[i];
				od[ond++] = x->dims[i];
			}
		}
	}
	if (x->dtype == LR_DT_INT64 && count == 0 && (kind == R_MAX || kind == R_MIN))
		return lr_op_fail(c, LR_EMODEL, "int64 %s over zero elements has no value",
				  c->node->op_type);
	rc = lr_op_output(c, out, x->dtype, ond, od);
	if (rc != 0)
		return rc;
	if ((*out)->data == NULL || (*out)->nelem == 0)
		return 0;
	if (x->data == NULL) {
		lr_tensor_free(*out);
		*out = NULL;
		return lr_op_fail(c, LR_EINVAL, "input 0 (data) has no data");
	}
	job.kind = kind;
	job.x = x->data;
	job.y = (*out)->data;
	job.count = count;
	if (x->dtype == LR_DT_INT64) {
		red_int64(&job, (*out)->nelem);
		return 0;
	}
	if (x->dtype == LR_DT_DOUBLE) {
		red_double(&job, (*out)->nelem);
		return 0;
	}
	lr_pool_run(c->pool, (*out)->nelem, count > 0 && count < 8192 ? 8192 / count : 1,
		    red_chunk, &job);
	return 0;
}

#define REDUCE_OP(fn, kind, from)                                           \
	int fn(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout) \
	{                                                                   \
		(void)nout;                                                 \
		return run_reduce(c, in, nin, out, kind, from);             \
	}

/*
 * The reductions (see DESIGN for the signatures). ReduceSum takes axes as
 * an input from opset 13, the others from opset 18.
 */
REDUCE_OP(lr_op_reducesum, R_SUM, 13)
REDUCE_OP(lr_op_reducemax, R_MAX, 18)
REDUCE_OP(lr_op_reducemin, R_MIN, 18)
REDUCE_OP(lr_op_reduceprod, R_PROD, 18)
REDUCE_OP(lr_op_reducel1, R_L1, 18)
REDUCE_OP(lr_op_reducel2, R_L2, 18)
REDUCE_OP(lr_op_reducelogsum, R_LOGSUM, 18)
REDUCE_OP(lr_op_reducelogsumexp, R_LOGSUMEXP, 18)
REDUCE_OP(lr_op_reducesumsquare, R_SUMSQ, 18)

/* ---------------------------------------------------------------------- */

static int run_arg(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int is_max)
{
	int64_t axis = lr_node_attr_int(c->node, "axis", 0), od[LR_MAX_DIMS];
	int keepdims = lr_node_attr_int(c->node, "keepdims", 1) != 0;
	int last = c->opset >= 12 && lr_node_attr_int(c->node, "select_last_index", 0) != 0;
	int a, ond = 0, rc;
	int64_t outer = 1, len, inner = 1;
	const lr_tensor *x;
	int64_t *y;

	if (nin < 1 || in[0] == NULL)
		return lr_op_fail(c, LR_EMODEL, "input 0 (data) is required");
	x = in[0];
	if (x->ndim < 1)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (data) must have rank >= 1");
	rc = lr_op_axis(c, axis, x->ndim, &a);
	if (rc != 0)
		return rc;
	len = x->dims[a];
	if (len == 0)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (data) has no elements along axis %d", a);
	for (int i = 0; i < x->ndim; i++) {
		if (i < a)
			outer *= x->dims[i];
		else if (i > a)
			inner *= x->dims[i];
		if (i != a)
			od[ond++] = x->dims[i];
		else if (keepdims)
			od[ond++] = 1;
	}
	rc = lr_op_output(c, out, LR_DT_INT64, ond, od);
	if (rc != 0)
		return rc;
	y = (*out)->data;
	if (x->data == NULL) {
		if (!c->dry) {
			lr_tensor_free(*out);
			*out = NULL;
			return lr_op_fail(c, LR_EINVAL, "input 0 (data) has no data");
		}
		memset(y, 0, lr_tensor_bytes(*out));
		return 0;
	}
	for (int64_t o = 0; o < outer; o++) {
		for (int64_t i = 0; i < inner; i++) {
			int64_t best = 0, base = o * len * inner + i;

			for (int64_t k = 1; k < len; k++) {
				int better;

				if (x->dtype == LR_DT_FLOAT) {
					float v = ((const float *)x->data)[base + k * inner];
					float b = ((const float *)x->data)[base + best * inner];

					better = is_max ? (last ? v >= b : v > b) : (last ? v <= b : v < b);
				} else {
					int64_t v = ((const int64_t *)x->data)[base + k * inner];
					int64_t b = ((const int64_t *)x->data)[base + best * inner];

					better = is_max ? (last ? v >= b : v > b) : (last ? v <= b : v < b);
				}
				if (better)
					best = k;
			}
			y[o * inner + i] = best;
		}
	}
	return 0;
}

/*
 * ArgMax / ArgMin: int64 index of the largest / smallest element along
 * `axis` (default 0), first occurrence or last with select_last_index.
 * float or int64 input.
 */
int lr_op_argmax(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_arg(c, in, nin, out, 1);
}

int lr_op_argmin(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_arg(c, in, nin, out, 0);
}
