/*
 * ops_index.c - TopK, GatherND, ScatterElements (and the older Scatter)
 * and ScatterND.
 *
 * DESIGN. These select or place elements by computed positions, so every
 * index is checked against its axis before any element is touched
 * (negative indices count from the end where ONNX allows them), and a
 * failure names the input and the offending element. Data movement is by
 * raw elements (float32 or int64), as in ops_shape.c. TopK sorts each
 * slice with qsort() on (value, index) pairs, which makes the order total:
 * equal values keep their original order, smaller index first, as ONNX
 * Runtime returns them; the result is always sorted (sorted=0 allows any
 * order); in a dry run without X's data the indices are zeros, as
 * ArgMax's are (ops_reduce.c). Scatter reductions (add, mul from opset
 * 16, max, min from 18) apply in the order of the indices, so duplicate
 * indices accumulate.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "model/ops.h"

#define SHP(nd, d) lr_shape_str((nd), (d), (char[200]){ 0 }, 200)
#define TSHP(t) SHP((t)->ndim, (t)->dims)

/* ---- TopK --------------------------------------------------------------- */

struct kf { float v; int64_t i; };
struct ki { int64_t v; int64_t i; };

static int cmp_f_desc(const void *a, const void *b)
{
	const struct kf *x = a, *y = b;

	if (x->v != y->v)
		return x->v > y->v ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static int cmp_f_asc(const void *a, const void *b)
{
	const struct kf *x = a, *y = b;

	if (x->v != y->v)
		return x->v < y->v ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static int cmp_i_desc(const void *a, const void *b)
{
	const struct ki *x = a, *y = b;

	if (x->v != y->v)
		return x->v > y->v ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static int cmp_i_asc(const void *a, const void *b)
{
	const struct ki *x = a, *y = b;

	if (x->v != y->v)
		return x->v < y->v ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * TopK: the k largest (largest=1, default) or smallest elements along
 * 'axis' (default -1) and their int64 indices; k is an attribute in
 * opset 1 and input 1 from opset 10. NaN compares as unordered (avoid).
 */
int lr_op_topk(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t axis = lr_node_attr_int(c->node, "axis", -1), k, od[LR_MAX_DIMS];
	int64_t outer = 1, len, inner = 1;
	int largest = c->opset < 11 || lr_node_attr_int(c->node, "largest", 1) != 0;
	const lr_tensor *x;
	void *buf = NULL;
	int a, rc;

	if (nin < 1 || in[0] == NULL)
		return lr_op_fail(c, LR_EMODEL, "input 0 (X) is required");
	x = in[0];
	if (c->opset < 10) {
		k = lr_node_attr_int(c->node, "k", -1);
	} else {
		int64_t kv[1];
		int cnt;

		if (nin < 2 || in[1] == NULL || in[1]->dtype != LR_DT_INT64)
			return lr_op_fail(c, LR_EMODEL, "input 1 (K) is required as int64");
		cnt = lr_op_ints_input(c, in, nin, 1, kv, 1);
		if (cnt < 0)
			return cnt;
		if (cnt != 1)
			return lr_op_fail(c, LR_ESHAPE, "input 1 (K) must hold one value");
		k = kv[0];
	}
	if (x->ndim < 1)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (X) must have rank >= 1");
	if ((rc = lr_op_axis(c, axis, x->ndim, &a)) != 0)
		return rc;
	len = x->dims[a];
	if (k < 0 || k > len)
		return lr_op_fail(c, LR_EMODEL, "K = %lld is outside [0, %lld] for axis %d of input 0 (X) %s",
				  (long long)k, (long long)len, a, TSHP(x));
	for (int i = 0; i < x->ndim; i++) {
		od[i] = i == a ? k : x->dims[i];
		if (i < a)
			outer *= x->dims[i];
		else if (i > a)
			inner *= x->dims[i];
	}
	rc = lr_op_output(c, &out[0], x->dtype, x->ndim, od);
	if (rc == 0 && nout > 1)
		rc = lr_op_output(c, &out[1], LR_DT_INT64, x->ndim, od);
	if (rc != 0)
		goto fail;
	if (x->data == NULL) {
		if (!c->dry) {
			rc = lr_op_fail(c, LR_EINVAL, "input 0 (X) has no data");
			goto fail;
		}
		if (nout > 1)
			memset(out[1]->data, 0, lr_tensor_bytes(out[1]));
		return 0;
	}
	if (out[0]->data == NULL && (rc = lr_tensor_alloc_data(out[0])) != 0) {
		rc = lr_op_fail(c, rc, "out of memory");
		goto fail;
	}
	if (out[0]->nelem == 0)
		return 0;
	buf = malloc((size_t)len * sizeof(struct kf));
	if (buf == NULL) {
		rc = lr_op_fail(c, LR_ENOMEM, "out of memory for %lld elements", (long long)len);
		goto fail;
	}
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i, obase = o * k * inner + i;
			int64_t *oi = nout > 1 ? out[1]->data : NULL;

			if (x->dtype == LR_DT_FLOAT) {
				struct kf *p = buf;

				for (int64_t t = 0; t < len; t++) {
					p[t].v = ((const float *)x->data)[base + t * inner];
					p[t].i = t;
				}
				qsort(p, (size_t)len, sizeof(*p), largest ? cmp_f_desc : cmp_f_asc);
				for (int64_t t = 0; t < k; t++) {
					((float *)out[0]->data)[obase + t * inner] = p[t].v;
					if (oi)
						oi[obase + t * inner] = p[t].i;
				}
			} else {
				struct ki *p = buf;

				for (int64_t t = 0; t < len; t++) {
					p[t].v = ((const int64_t *)x->data)[base + t * inner];
					p[t].i = t;
				}
				qsort(p, (size_t)len, sizeof(*p), largest ? cmp_i_desc : cmp_i_asc);
				for (int64_t t = 0; t < k; t++) {
					((int64_t *)out[0]->data)[obase + t * inner] = p[t].v;
					if (oi)
						oi[obase + t * inner] = p[t].i;
				}
			}
		}
	free(buf);
	return 0;
fail:
	for (int i = 0; i < nout && i < 2; i++) {
		lr_tensor_free(out[i]);
		out[i] = NULL;
	}
	return rc;
}

/* ---- GatherND ----------------------------------------------------------- */

/*
 * GatherND (11, 12 batch_dims, 13): indices [..., m] address the first m
 * axes after the batch_dims leading ones of data; the output is
 * indices.shape[:-1] + data.shape[batch_dims + m:].
 */
int lr_op_gathernd(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t b = lr_node_attr_int(c->node, "batch_dims", 0), od[LR_MAX_DIMS + LR_MAX_DIMS];
	int64_t m, nb = 1, ntup, slice = 1, tup_per_batch;
	const lr_tensor *x, *ix;
	size_t es;
	int ond = 0, rc;

	(void)nout;
	if (nin < 2 || in[0] == NULL || in[1] == NULL)
		return lr_op_fail(c, LR_EMODEL, "inputs 0 (data) and 1 (indices) are required");
	x = in[0];
	ix = in[1];
	if (ix->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EMODEL, "input 1 (indices) must be int64, got %s", lr_dtype_name(ix->dtype));
	if (ix->ndim < 1 || x->ndim < 1 || b < 0 || b >= ix->ndim || b >= x->ndim)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (indices) %s and input 0 (data) %s do not fit batch_dims %lld",
				  TSHP(ix), TSHP(x), (long long)b);
	m = ix->dims[ix->ndim - 1];
	if (m < 1 || b + m > x->ndim)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (indices) %s: the last dim must be 1 to %lld for data %s",
				  TSHP(ix), (long long)(x->ndim - b), TSHP(x));
	for (int k = 0; k < b; k++) {
		if (ix->dims[k] != x->dims[k])
			return lr_op_fail(c, LR_ESHAPE, "input 1 (indices) %s and input 0 (data) %s differ in batch dim %d",
					  TSHP(ix), TSHP(x), k);
		nb *= x->dims[k];
	}
	for (int k = 0; k < ix->ndim - 1; k++)
		od[ond++] = ix->dims[k];
	for (int k = (int)(b + m); k < x->ndim; k++) {
		od[ond++] = x->dims[k];
		slice *= x->dims[k];
	}
	if (ond > LR_MAX_DIMS)
		return lr_op_fail(c, LR_ESHAPE, "the output rank %d exceeds %d", ond, LR_MAX_DIMS);
	if (ix->data == NULL)
		return lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL, "input 1 (indices) has no data");
	ntup = ix->nelem / m;
	for (int64_t t = 0; t < ntup; t++)
		for (int64_t j = 0; j < m; j++) {
			int64_t v = ((const int64_t *)ix->data)[t * m + j], dim = x->dims[b + j];

			if (v < -dim || v >= dim)
				return lr_op_fail(c, LR_EMODEL, "input 1 (indices) element %lld is %lld, out of range for axis %lld of size %lld",
						  (long long)(t * m + j), (long long)v, (long long)(b + j), (long long)dim);
		}
	rc = lr_op_output(c, out, x->dtype, ond, od);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	if (x->data == NULL) {
		memset((*out)->data, 0, lr_tensor_bytes(*out));
		if (c->dry)
			return 0;
		lr_tensor_free(*out);
		*out = NULL;
		return lr_op_fail(c, LR_EINVAL, "input 0 (data) has no data");
	}
	es = lr_dtype_size(x->dtype);
	tup_per_batch = ntup / nb;
	for (int64_t t = 0; t < ntup; t++) {
		int64_t off = t / tup_per_batch; /* batch index */

		for (int64_t j = 0; j < m; j++) {
			int64_t v = ((const int64_t *)ix->data)[t * m + j], dim = x->dims[b + j];

			off = off * dim + (v < 0 ? v + dim : v);
		}
		memcpy((char *)(*out)->data + (size_t)(t * slice) * es,
		       (const char *)x->data + (size_t)(off * slice) * es, (size_t)slice * es);
	}
	return 0;
}

/* ---- ScatterElements, Scatter, ScatterND -------------------------------- */

enum sred { S_NONE, S_ADD, S_MUL, S_MAX, S_MIN };

static int scatter_reduction(lr_opctx *c, enum sred *r)
{
	char buf[8];
	const char *s = lr_node_attr_str(c->node, "reduction", "none", buf, sizeof(buf));

	if (strcmp(s, "none") == 0)
		*r = S_NONE;
	else if (strcmp(s, "add") == 0)
		*r = S_ADD;
	else if (strcmp(s, "mul") == 0)
		*r = S_MUL;
	else if (strcmp(s, "max") == 0)
		*r = S_MAX;
	else if (strcmp(s, "min") == 0)
		*r = S_MIN;
	else
		return lr_op_fail(c, LR_EMODEL, "attribute 'reduction' '%s' is not none, add, mul, max or min", s);
	return 0;
}

/* dst = dst (r) src for one element. int64 arithmetic wraps. */
static void apply1(lr_dtype dt, enum sred r, void *dst, const void *src)
{
	if (dt == LR_DT_FLOAT) {
		float *d = dst, s = *(const float *)src;

		*d = r == S_NONE ? s : r == S_ADD ? *d + s : r == S_MUL ? *d * s :
		     r == S_MAX ? (s > *d ? s : *d) : (s < *d ? s : *d);
	} else {
		int64_t *d = dst, s = *(const int64_t *)src;

		*d = r == S_NONE ? s : r == S_ADD ? (int64_t)((uint64_t)*d + (uint64_t)s) :
		     r == S_MUL ? (int64_t)((uint64_t)*d * (uint64_t)s) :
		     r == S_MAX ? (s > *d ? s : *d) : (s < *d ? s : *d);
	}
}

/* Common checks: data, int64 indices, updates of data's type; output = copy. */
static int scatter_begin(lr_opctx *c, lr_tensor **in, int nin)
{
	if (nin < 3 || in[0] == NULL || in[1] == NULL || in[2] == NULL)
		return lr_op_fail(c, LR_EMODEL, "inputs 0 (data), 1 (indices) and 2 (updates) are required");
	if (in[1]->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EMODEL, "input 1 (indices) must be int64, got %s",
				  lr_dtype_name(in[1]->dtype));
	if (in[2]->dtype != in[0]->dtype)
		return lr_op_fail(c, LR_EMODEL, "input 2 (updates) has type %s, input 0 (data) %s",
				  lr_dtype_name(in[2]->dtype), lr_dtype_name(in[0]->dtype));
	if (in[1]->data == NULL)
		return lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL, "input 1 (indices) has no data");
	return 0;
}

/* Allocates the output as a copy of data; 1 when there is nothing to compute. */
static int scatter_out(lr_opctx *c, lr_tensor **in, lr_tensor **out)
{
	int rc = lr_op_output(c, out, in[0]->dtype, in[0]->ndim, in[0]->dims);

	if (rc != 0)
		return rc;
	if ((*out)->data == NULL)
		return 1;
	if (in[0]->data == NULL || in[2]->data == NULL) {
		lr_tensor_free(*out);
		*out = NULL;
		return lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL,
				  "its output depends on inputs without data");
	}
	memcpy((*out)->data, in[0]->data, lr_tensor_bytes(in[0]));
	return 0;
}

/*
 * ScatterElements (11, 13, 16, 18) and Scatter (9): output = data, then
 * out[idx with axis replaced by indices[idx]] (reduction)= updates[idx]
 * for every idx of indices (updates has indices' shape).
 */
int lr_op_scatterelements(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			  int nout)
{
	int64_t axis = lr_node_attr_int(c->node, "axis", 0), idx[LR_MAX_DIMS] = { 0 };
	int64_t str[LR_MAX_DIMS], s = 1;
	const lr_tensor *x, *ix, *up;
	enum sred r = S_NONE;
	size_t es;
	int a, rc;

	(void)nout;
	if ((rc = scatter_begin(c, in, nin)) != 0)
		return rc;
	if (c->opset >= 16 && (rc = scatter_reduction(c, &r)) != 0)
		return rc;
	x = in[0];
	ix = in[1];
	up = in[2];
	if (x->ndim < 1 || ix->ndim != x->ndim || up->ndim != ix->ndim ||
	    memcmp(up->dims, ix->dims, (size_t)ix->ndim * sizeof(int64_t)) != 0)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (indices) %s and input 2 (updates) %s must have one shape of the rank of input 0 (data) %s",
				  TSHP(ix), TSHP(up), TSHP(x));
	if ((rc = lr_op_axis(c, axis, x->ndim, &a)) != 0)
		return rc;
	for (int k = 0; k < x->ndim; k++)
		if (k != a && ix->dims[k] > x->dims[k])
			return lr_op_fail(c, LR_ESHAPE, "input 1 (indices) %s exceeds input 0 (data) %s on axis %d",
					  TSHP(ix), TSHP(x), k);
	for (int64_t e = 0; e < ix->nelem; e++) {
		int64_t v = ((const int64_t *)ix->data)[e];

		if (v < -x->dims[a] || v >= x->dims[a])
			return lr_op_fail(c, LR_EMODEL, "input 1 (indices) element %lld is %lld, out of range for axis %d of size %lld",
					  (long long)e, (long long)v, a, (long long)x->dims[a]);
	}
	rc = scatter_out(c, in, out);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	for (int k = x->ndim - 1; k >= 0; k--) {
		str[k] = s;
		s *= x->dims[k];
	}
	es = lr_dtype_size(x->dtype);
	for (int64_t e = 0; e < ix->nelem; e++) {
		int64_t v = ((const int64_t *)ix->data)[e], off = 0;

		if (v < 0)
			v += x->dims[a];
		for (int k = 0; k < x->ndim; k++)
			off += (k == a ? v : idx[k]) * str[k];
		apply1(x->dtype, r, (char *)(*out)->data + (size_t)off * es,
		       (const char *)up->data + (size_t)e * es);
		for (int k = x->ndim - 1; k >= 0; k--) {
			if (++idx[k] < ix->dims[k])
				break;
			idx[k] = 0;
		}
	}
	return 0;
}

/*
 * ScatterND (11, 13, 16, 18): indices [..., m] address slices of data's
 * first m axes; updates has shape indices.shape[:-1] + data.shape[m:].
 */
int lr_op_scatternd(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x, *ix, *up;
	enum sred r = S_NONE;
	int64_t m, slice = 1, ntup;
	size_t es;
	int rc, okshape;

	(void)nout;
	if ((rc = scatter_begin(c, in, nin)) != 0)
		return rc;
	if (c->opset >= 16 && (rc = scatter_reduction(c, &r)) != 0)
		return rc;
	x = in[0];
	ix = in[1];
	up = in[2];
	if (ix->ndim < 1)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (indices) must have rank >= 1");
	m = ix->dims[ix->ndim - 1];
	okshape = m >= 1 && m <= x->ndim && up->ndim == ix->ndim - 1 + x->ndim - (int)m;
	for (int k = 0; okshape && k < up->ndim; k++)
		okshape = up->dims[k] == (k < ix->ndim - 1 ? ix->dims[k] : x->dims[m + k - (ix->ndim - 1)]);
	if (!okshape)
		return lr_op_fail(c, LR_ESHAPE, "input 2 (updates) %s does not fit input 1 (indices) %s and input 0 (data) %s",
				  TSHP(up), TSHP(ix), TSHP(x));
	for (int k = (int)m; k < x->ndim; k++)
		slice *= x->dims[k];
	ntup = m > 0 ? ix->nelem / m : 0;
	for (int64_t t = 0; t < ntup; t++)
		for (int64_t j = 0; j < m; j++) {
			int64_t v = ((const int64_t *)ix->data)[t * m + j];

			if (v < -x->dims[j] || v >= x->dims[j])
				return lr_op_fail(c, LR_EMODEL, "input 1 (indices) element %lld is %lld, out of range for axis %lld of size %lld",
						  (long long)(t * m + j), (long long)v, (long long)j, (long long)x->dims[j]);
		}
	rc = scatter_out(c, in, out);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	es = lr_dtype_size(x->dtype);
	for (int64_t t = 0; t < ntup; t++) {
		int64_t off = 0;

		for (int64_t j = 0; j < m; j++) {
			int64_t v = ((const int64_t *)ix->data)[t * m + j];

			off = off * x->dims[j] + (v < 0 ? v + x->dims[j] : v);
		}
		for (int64_t q = 0; q < slice; q++)
			apply1(x->dtype, r, (char *)(*out)->data + (size_t)(off * slice + q) * es,
			       (const char *)up->data + (size_t)(t * slice + q) * es);
	}
	return 0;
}
