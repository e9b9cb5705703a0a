/*
 * ops_gen.c - kernels that generate or rearrange tensors from shape
 * vectors or indices: Expand, Tile, ConstantOfShape, Range, Size, EyeLike,
 * Trilu, DepthToSpace, SpaceToDepth, CumSum, GatherElements, OneHot,
 * TfIdfVectorizer.
 *
 * DESIGN. Like ops_shape.c these work on either element type (float32 or
 * int64) as raw elements of lr_dtype_size() bytes wherever they only move
 * data, and compute with values only where the op is arithmetic (CumSum,
 * Range). Shape vectors come through lr_op_ints_input(), so they must be
 * known before the run (constants or shape arithmetic), as ops.h requires.
 * Every output whose size is chosen by a value rather than by an input's
 * size (Expand, Tile, ConstantOfShape, Range, OneHot, EyeLike) is capped
 * at LR_GEN_MAX_ELEMS elements, so a hostile model cannot make the engine
 * allocate without bound; real networks stay far below it. Indices are
 * checked against their axis before any element is read (negative ones
 * count from the end where ONNX allows it).
 *
 * Dry runs: int64 outputs are always computed (ops.h); float outputs are
 * computed when their inputs have data and they are small
 * (LR_DRY_VALUES_MAX), otherwise they stay shape-only.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"

/* Largest output a value-sized generator may create (256 Mi elements). */
#define LR_GEN_MAX_ELEMS ((int64_t)1 << 28)

#define SHP(nd, d) lr_shape_str((nd), (d), (char[200]){ 0 }, 200)
#define TSHP(t) SHP((t)->ndim, (t)->dims)

/*
 * Creates output *out; `have` says whether the values it is computed from
 * are known. In a dry run a small float output with known inputs gets a
 * buffer; an int64 output without known inputs fails. `cap` bounds the
 * element count (0: no cap beyond lr_op_output's).
 */
static int gen_out(lr_opctx *c, lr_tensor **out, lr_dtype dt, int ndim,
		   const int64_t *dims, int have, int cap)
{
	int64_t n;
	int rc;

	if (lr_shape_nelem(ndim, dims, &n) != 0)
		return lr_op_fail(c, LR_ELIMIT, "the output shape %s is invalid or too large",
				  SHP(ndim, dims));
	if (cap && n > LR_GEN_MAX_ELEMS)
		return lr_op_fail(c, LR_ELIMIT,
				  "the output shape %s has %lld elements, more than the limit of %lld",
				  SHP(ndim, dims), (long long)n, (long long)LR_GEN_MAX_ELEMS);
	rc = lr_op_output(c, out, dt, ndim, dims);
	if (rc != 0)
		return rc;
	if ((*out)->data == NULL) {
		if (!have || (*out)->nelem > LR_DRY_VALUES_MAX)
			return 0;
		if (lr_tensor_alloc_data(*out) == 0)
			return 0;
		rc = lr_op_fail(c, LR_ENOMEM, "out of memory for an output of shape %s",
				TSHP(*out));
	} else if (!have) {
		rc = lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL,
				"its %s output depends on the values of a tensor without data",
				lr_dtype_name(dt));
	} else {
		return 0;
	}
	lr_tensor_free(*out);
	*out = NULL;
	return rc;
}

/* Input i present, any type; message otherwise. */
static int need(lr_opctx *c, lr_tensor **in, int nin, int i, const char *name)
{
	if (i >= nin || in[i] == NULL)
		return lr_op_fail(c, LR_EMODEL, "input %d (%s) is required", i, name);
	return 0;
}

/* Reads a one-element input (int64, or float truncated) into *v. */
static int int_scalar(lr_opctx *c, lr_tensor **in, int nin, int i,
		      const char *name, int64_t *v)
{
	const lr_tensor *t = i < nin ? in[i] : NULL;

	if (t == NULL)
		return lr_op_fail(c, LR_EMODEL, "input %d (%s) is required", i, name);
	if (t->nelem != 1)
		return lr_op_fail(c, LR_ESHAPE, "input %d (%s) must hold one value, got shape %s",
				  i, name, TSHP(t));
	if (t->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "input %d (%s) must be computable before the run (a constant or shape expression)",
				  i, name);
	if (t->dtype == LR_DT_INT64) {
		*v = *(const int64_t *)t->data;
	} else {
		float f = *(const float *)t->data;

		if (!(f > -9.2e18f && f < 9.2e18f))
			return lr_op_fail(c, LR_EMODEL, "input %d (%s) is not a finite integer", i, name);
		*v = (int64_t)f;
	}
	return 0;
}

/*
 * Copies src into dst where dst has shape (nd, od) and src's element at
 * output index o is at sum(o[k] % sd[k] * stride[k]) (broadcast when
 * sd[k] == 1, tiling otherwise). sd is src's shape aligned to nd.
 */
static void copy_mod(char *dst, const char *src, size_t es, int nd,
		     const int64_t *od, const int64_t *sd, int64_t total)
{
	int64_t idx[LR_MAX_DIMS] = { 0 }, str[LR_MAX_DIMS], s = 1;

	for (int k = nd - 1; k >= 0; k--) {
		str[k] = s;
		s *= sd[k];
	}
	for (int64_t e = 0; e < total; e++) {
		int64_t off = 0;

		for (int k = 0; k < nd; k++)
			off += (idx[k] % sd[k]) * str[k];
		memcpy(dst + (size_t)e * es, src + (size_t)off * es, es);
		for (int k = nd - 1; k >= 0; k--) {
			if (++idx[k] < od[k])
				break;
			idx[k] = 0;
		}
	}
}

/* ---- Expand, Tile ------------------------------------------------------- */

/*
 * Expand (8, 13): broadcasts input 0 against the shape in input 1 (numpy
 * rules in both directions, so a 1 in the shape keeps the input's dim).
 */
int lr_op_expand(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t sh[LR_MAX_DIMS + 1], od[LR_MAX_DIMS], sd[LR_MAX_DIMS];
	int n, nd, rc;
	lr_tensor *x;

	(void)nout;
	if ((rc = need(c, in, nin, 0, "input")) != 0 || (rc = need(c, in, nin, 1, "shape")) != 0)
		return rc;
	x = in[0];
	if (in[1]->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EMODEL, "input 1 (shape) must be int64, got %s",
				  lr_dtype_name(in[1]->dtype));
	n = lr_op_ints_input(c, in, nin, 1, sh, LR_MAX_DIMS + 1);
	if (n < 0)
		return n;
	if (n > LR_MAX_DIMS)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (shape) has %d entries, at most %d allowed",
				  n, LR_MAX_DIMS);
	for (int k = 0; k < n; k++)
		if (sh[k] < 0)
			return lr_op_fail(c, LR_EMODEL, "input 1 (shape) %s has a negative entry", SHP(n, sh));
	if (lr_broadcast_shape(x->ndim, x->dims, n, sh, &nd, od) != 0)
		return lr_op_fail(c, LR_ESHAPE, "input 0 of shape %s does not broadcast to shape %s",
				  TSHP(x), SHP(n, sh));
	rc = gen_out(c, out, x->dtype, nd, od, x->data != NULL, 1);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	for (int k = 0; k < nd; k++)
		sd[k] = k < nd - x->ndim ? 1 : x->dims[k - (nd - x->ndim)];
	copy_mod((*out)->data, x->data, lr_dtype_size(x->dtype), nd, od, sd, (*out)->nelem);
	return 0;
}

/* Tile (6, 13): output dim k = input dim k * repeats[k]. */
int lr_op_tile(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t rep[LR_MAX_DIMS + 1], od[LR_MAX_DIMS];
	int n, rc;
	lr_tensor *x;

	(void)nout;
	if (c->opset < 6)
		return lr_op_fail(c, LR_EUNSUPPORTED, "Tile-1 (tiles and axis inputs) is not supported");
	if ((rc = need(c, in, nin, 0, "input")) != 0 || (rc = need(c, in, nin, 1, "repeats")) != 0)
		return rc;
	x = in[0];
	if (in[1]->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EMODEL, "input 1 (repeats) must be int64, got %s",
				  lr_dtype_name(in[1]->dtype));
	n = lr_op_ints_input(c, in, nin, 1, rep, LR_MAX_DIMS + 1);
	if (n < 0)
		return n;
	if (n != x->ndim)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (repeats) has %d entries but input 0 has rank %d",
				  n, x->ndim);
	for (int k = 0; k < n; k++) {
		if (rep[k] < 0)
			return lr_op_fail(c, LR_EMODEL, "input 1 (repeats) has the negative entry %lld",
					  (long long)rep[k]);
		if (lr_mul_i64(x->dims[k], rep[k], &od[k]) != 0)
			return lr_op_fail(c, LR_ELIMIT, "the tiled shape overflows");
	}
	rc = gen_out(c, out, x->dtype, n, od, x->data != NULL, 1);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	copy_mod((*out)->data, x->data, lr_dtype_size(x->dtype), n, od, x->dims, (*out)->nelem);
	return 0;
}

/* ---- ConstantOfShape, Range, Size, EyeLike ------------------------------ */

/*
 * ConstantOfShape (9, 20): a tensor of the shape in input 0 filled with
 * the one-element tensor attribute 'value' (default float 0).
 */
int lr_op_constantofshape(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			  int nout)
{
	int64_t sh[LR_MAX_DIMS + 1];
	const Onnx__AttributeProto *a;
	lr_tensor *v = NULL;
	lr_dtype dt = LR_DT_FLOAT;
	char val[8] = { 0 };
	int n, rc;

	(void)nout;
	if ((rc = need(c, in, nin, 0, "input")) != 0)
		return rc;
	if (in[0]->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EMODEL, "input 0 (input) must be int64, got %s",
				  lr_dtype_name(in[0]->dtype));
	n = lr_op_ints_input(c, in, nin, 0, sh, LR_MAX_DIMS + 1);
	if (n < 0)
		return n;
	if (n > LR_MAX_DIMS)
		return lr_op_fail(c, LR_ESHAPE, "input 0 has %d entries, at most %d allowed",
				  n, LR_MAX_DIMS);
	for (int k = 0; k < n; k++)
		if (sh[k] < 0)
			return lr_op_fail(c, LR_EMODEL, "input 0 (shape) %s has a negative entry", SHP(n, sh));
	if ((a = lr_node_attr(c->node, "value")) != NULL) {
		if (a->t == NULL)
			return lr_op_fail(c, LR_EMODEL, "attribute 'value' holds no tensor");
		rc = lr_tensor_from_proto(a->t, NULL, &v, c->msg);
		if (rc != 0) {
			lr_msg_prefix(c->msg, "node '%s' (%s), attribute 'value'",
				      c->node->name, c->node->op_type);
			return rc;
		}
		if (v->nelem != 1 || v->dtype == LR_DT_STRING) {
			int str = v->dtype == LR_DT_STRING;

			lr_tensor_free(v);
			return str ? lr_op_fail(c, LR_EUNSUPPORTED, "attribute 'value' holds a string; "
						"only numbers are supported")
				   : lr_op_fail(c, LR_EMODEL, "attribute 'value' must hold one element");
		}
		dt = v->dtype;
		memcpy(val, v->data, lr_dtype_size(dt));
		lr_tensor_free(v);
	}
	rc = gen_out(c, out, dt, n, sh, 1, 1);
	if (rc != 0 || (*out)->data == NULL)
		return rc;
	for (int64_t e = 0; e < (*out)->nelem; e++)
		memcpy((char *)(*out)->data + (size_t)e * lr_dtype_size(dt), val, lr_dtype_size(dt));
	return 0;
}

/* Reads a scalar input of Range as double (float) or int64. */
static int range_arg(lr_opctx *c, lr_tensor **in, int i, const char *name,
		     double *d, int64_t *v)
{
	if (in[i]->nelem != 1)
		return lr_op_fail(c, LR_ESHAPE, "input %d (%s) must be a scalar, got shape %s",
				  i, name, TSHP(in[i]));
	if (in[i]->dtype != in[0]->dtype)
		return lr_op_fail(c, LR_EMODEL, "input %d (%s) has type %s, input 0 has %s",
				  i, name, lr_dtype_name(in[i]->dtype), lr_dtype_name(in[0]->dtype));
	if (in[i]->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "input %d (%s) must be computable before the run (a constant or shape expression)",
				  i, name);
	if (in[i]->dtype == LR_DT_INT64)
		*v = *(const int64_t *)in[i]->data;
	else
		*d = *(const float *)in[i]->data;
	return 0;
}

int lr_op_range(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout);

/*
 * Range of int8..int32, uint8..uint32 or double scalars: the integer types
 * run the int64 path (every element lies between start and limit, so it
 * fits the type) and the result is narrowed; double is computed in double.
 */
static int range_typed(lr_opctx *c, lr_tensor **in, lr_tensor **out)
{
	lr_dtype dt = in[0]->dtype;
	lr_tensor *w[3] = { NULL, NULL, NULL }, *y = NULL;
	int rc = 0;

	for (int i = 1; i < 3; i++)
		if (in[i]->dtype != dt)
			return lr_op_fail(c, LR_EMODEL, "input %d has type %s, input 0 %s", i,
					  lr_dtype_name(in[i]->dtype), lr_dtype_name(dt));
	for (int i = 0; i < 3; i++)
		if (in[i]->nelem != 1 || in[i]->data == NULL)
			return lr_op_fail(c, LR_EUNSUPPORTED, "input %d must be a known scalar", i);
	if (dt == LR_DT_DOUBLE) {
		double s0 = *(const double *)in[0]->data, lim = *(const double *)in[1]->data;
		double dl = *(const double *)in[2]->data, cnt;
		int64_t n;

		if (dl == 0 || !isfinite(s0) || !isfinite(lim) || !isfinite(dl))
			return lr_op_fail(c, LR_EMODEL, "start %g, limit %g and delta %g do not make a range",
					  s0, lim, dl);
		cnt = ceil((lim - s0) / dl);
		if (cnt > (double)LR_GEN_MAX_ELEMS)
			return lr_op_fail(c, LR_ELIMIT, "the range has %g elements, more than the limit of %lld",
					  cnt, (long long)LR_GEN_MAX_ELEMS);
		n = cnt > 0 ? (int64_t)cnt : 0;
		rc = gen_out(c, out, dt, 1, &n, 1, 1);
		for (int64_t i = 0; rc == 0 && (*out)->data != NULL && i < n; i++)
			((double *)(*out)->data)[i] = s0 + (double)i * dl;
		return rc;
	}
	if (lr_dtype_is_float(dt) || dt == LR_DT_BOOL || dt == LR_DT_UINT64)
		return lr_op_fail(c, LR_EUNSUPPORTED, "Range of %s is not supported", lr_dtype_name(dt));
	for (int i = 0; i < 3 && rc == 0; i++) {
		rc = lr_tensor_create(&w[i], LR_DT_INT64, 0, NULL, 1);
		if (rc == 0)
			lr_tensor_convert(in[i], LR_DT_INT64, w[i]->data);
	}
	if (rc == 0)
		rc = lr_op_range(c, w, 3, &y, 1);
	if (rc == 0)
		rc = gen_out(c, out, dt, y->ndim, y->dims, 1, 1);
	if (rc == 0 && (*out)->data != NULL)
		lr_tensor_convert(y, dt, (*out)->data);
	for (int i = 0; i < 3; i++)
		lr_tensor_free(w[i]);
	lr_tensor_free(y);
	return rc;
}

/*
 * Range (11): start, start + delta, ... while before limit; count
 * max(ceil((limit - start) / delta), 0). float or int64 scalars of one
 * type; element i is start + i * delta (computed in double for float).
 */
int lr_op_range(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	static const char *const names[3] = { "start", "limit", "delta" };
	double d[3] = { 0, 0, 0 };
	int64_t v[3] = { 0, 0, 0 }, n;
	int rc;

	(void)nout;
	for (int i = 0; i < 3; i++)
		if ((rc = need(c, in, nin, i, names[i])) != 0)
			return rc;
	if (!lr_dtype_is_legacy(in[0]->dtype))
		return range_typed(c, in, out);
	for (int i = 0; i < 3; i++)
		if ((rc = range_arg(c, in, i, names[i], &d[i], &v[i])) != 0)
			return rc;
	if (in[0]->dtype == LR_DT_INT64) {
		uint64_t diff, step;

		if (v[2] == 0)
			return lr_op_fail(c, LR_EMODEL, "input 2 (delta) is 0");
		if ((v[2] > 0 && v[1] <= v[0]) || (v[2] < 0 && v[1] >= v[0])) {
			n = 0;
		} else {
			diff = v[2] > 0 ? (uint64_t)v[1] - (uint64_t)v[0] : (uint64_t)v[0] - (uint64_t)v[1];
			step = v[2] > 0 ? (uint64_t)v[2] : 0u - (uint64_t)v[2];
			diff = diff / step + (diff % step != 0);
			if (diff > (uint64_t)LR_GEN_MAX_ELEMS)
				return lr_op_fail(c, LR_ELIMIT, "the range has %llu elements, more than the limit of %lld",
						  (unsigned long long)diff, (long long)LR_GEN_MAX_ELEMS);
			n = (int64_t)diff;
		}
	} else {
		double cnt;

		if (d[2] == 0 || !isfinite(d[0]) || !isfinite(d[1]) || !isfinite(d[2]))
			return lr_op_fail(c, LR_EMODEL, "start %g, limit %g and delta %g do not make a range",
					  d[0], d[1], d[2]);
		cnt = ceil((d[1] - d[0]) / d[2]);
		if (cnt > (double)LR_GEN_MAX_ELEMS)
			return lr_op_fail(c, LR_ELIMIT, "the range has %g elements, more than the limit of %lld",
					  cnt, (long long)LR_GEN_MAX_ELEMS);
		n = cnt > 0 ? (int64_t)cnt : 0;
	}
	rc = gen_out(c, out, in[0]->dtype, 1, &n, 1, 1);
	if (rc != 0 || (*out)->data == NULL)
		return rc;
	for (int64_t i = 0; i < n; i++) {
		if (in[0]->dtype == LR_DT_INT64)
			((int64_t *)(*out)->data)[i] =
				(int64_t)((uint64_t)v[0] + (uint64_t)i * (uint64_t)v[2]);
		else
			((float *)(*out)->data)[i] = (float)(d[0] + (double)i * d[2]);
	}
	return 0;
}

/* Size (1, 13, 19): the element count of input 0, an int64 scalar. */
int lr_op_size(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int rc;

	(void)nout;
	if ((rc = need(c, in, nin, 0, "data")) != 0)
		return rc;
	rc = lr_op_output(c, out, LR_DT_INT64, 0, NULL);
	if (rc == 0)
		*(int64_t *)(*out)->data = in[0]->nelem;
	return rc;
}

/*
 * EyeLike (9): a 2-D tensor of input 0's shape with ones where
 * column - row == k; type from 'dtype' (any numeric type or bool) or
 * input 0's.
 */
int lr_op_eyelike(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t k = lr_node_attr_int(c->node, "k", 0), dt, rows, cols;
	float one = 1.0f;
	int rc;

	(void)nout;
	if ((rc = need(c, in, nin, 0, "input")) != 0)
		return rc;
	if (in[0]->ndim != 2)
		return lr_op_fail(c, LR_ESHAPE, "input 0 must be 2-D, got shape %s", TSHP(in[0]));
	dt = lr_node_attr_int(c->node, "dtype", in[0]->dtype);
	if (dt < 0 || dt > 1000 || lr_dtype_from_onnx((int)dt) == 0)
		return lr_op_fail(c, LR_EUNSUPPORTED, "dtype %lld is not supported (numeric types and bool are)",
				  (long long)dt);
	rc = gen_out(c, out, (lr_dtype)dt, 2, in[0]->dims, 1, 1);
	if (rc != 0 || (*out)->data == NULL)
		return rc;
	rows = in[0]->dims[0];
	cols = in[0]->dims[1];
	memset((*out)->data, 0, lr_tensor_bytes(*out));
	for (int64_t r = 0; r < rows && k <= cols && k >= -rows; r++) {
		int64_t col = r + k;

		if (col < 0 || col >= cols)
			continue;
		lr_tensor_convert(&(lr_tensor){ .dtype = LR_DT_FLOAT, .nelem = 1, .data = &one },
				  (lr_dtype)dt, (char *)(*out)->data +
				  (size_t)(r * cols + col) * lr_dtype_size((lr_dtype)dt));
	}
	return 0;
}

/* ---- Trilu, DepthToSpace, SpaceToDepth ---------------------------------- */

/*
 * Trilu (14): keeps the upper (upper=1: column - row >= k) or lower
 * (column - row <= k) triangle of the last two axes, zero elsewhere; k
 * is optional input 1 (default 0).
 */
int lr_op_trilu(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t k = 0, rows, cols, planes;
	int upper = lr_node_attr_int(c->node, "upper", 1) != 0;
	size_t es;
	lr_tensor *x;
	int rc;

	(void)nout;
	if ((rc = need(c, in, nin, 0, "input")) != 0)
		return rc;
	x = in[0];
	if (x->ndim < 2)
		return lr_op_fail(c, LR_ESHAPE, "input 0 must have rank >= 2, got shape %s", TSHP(x));
	if (nin > 1 && in[1] != NULL) {
		if (in[1]->dtype != LR_DT_INT64)
			return lr_op_fail(c, LR_EMODEL, "input 1 (k) must be int64, got %s",
					  lr_dtype_name(in[1]->dtype));
		if ((rc = int_scalar(c, in, nin, 1, "k", &k)) != 0)
			return rc;
	}
	rc = gen_out(c, out, x->dtype, x->ndim, x->dims, x->data != NULL, 0);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	rows = x->dims[x->ndim - 2];
	cols = x->dims[x->ndim - 1];
	planes = x->nelem / (rows * cols);
	es = lr_dtype_size(x->dtype);
	/* clamp k so column - row arithmetic cannot overflow */
	if (k > cols)
		k = cols + 1;
	if (k < -rows)
		k = -rows - 1;
	for (int64_t p = 0; p < planes; p++)
		for (int64_t r = 0; r < rows; r++)
			for (int64_t col = 0; col < cols; col++) {
				int64_t e = (p * rows + r) * cols + col;
				int keep = upper ? col - r >= k : col - r <= k;

				if (keep)
					memcpy((char *)(*out)->data + (size_t)e * es,
					       (const char *)x->data + (size_t)e * es, es);
				else
					memset((char *)(*out)->data + (size_t)e * es, 0, es);
			}
	return 0;
}

/*
 * DepthToSpace (1, 11, 13) and SpaceToDepth (1, 13) on [N, C, H, W] with
 * blocksize b. DepthToSpace: DCR mode (default) reads channel
 * (i * b + j) * C' + c for output channel c at offset (i, j) in the block;
 * CRD mode (11+) reads c * b * b + i * b + j. SpaceToDepth is the inverse
 * of DCR.
 */
static int space_depth(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int to_space)
{
	int64_t b = lr_node_attr_int(c->node, "blocksize", 0), od[4], bb;
	char mode[8];
	int crd = 0, rc;
	const lr_tensor *x;
	size_t es;

	if ((rc = need(c, in, nin, 0, "input")) != 0)
		return rc;
	x = in[0];
	if (x->ndim != 4)
		return lr_op_fail(c, LR_ESHAPE, "input 0 must be 4-D [N,C,H,W], got shape %s", TSHP(x));
	if (b < 1 || b > (1 << 16))
		return lr_op_fail(c, LR_EMODEL, "attribute 'blocksize' must be 1 to 65536, got %lld",
				  (long long)b);
	bb = b * b;
	if (to_space) {
		const char *m = lr_node_attr_str(c->node, "mode", "DCR", mode, sizeof(mode));

		if (strcmp(m, "CRD") == 0)
			crd = 1;
		else if (strcmp(m, "DCR") != 0)
			return lr_op_fail(c, LR_EMODEL, "attribute 'mode' must be DCR or CRD, got '%s'", m);
		if (x->dims[1] % bb != 0)
			return lr_op_fail(c, LR_ESHAPE, "input 0 of shape %s: channels are not a multiple of blocksize^2 (%lld)",
					  TSHP(x), (long long)bb);
		od[0] = x->dims[0];
		od[1] = x->dims[1] / bb;
		if (lr_mul_i64(x->dims[2], b, &od[2]) != 0 || lr_mul_i64(x->dims[3], b, &od[3]) != 0)
			return lr_op_fail(c, LR_ELIMIT, "the output shape overflows");
	} else {
		if (x->dims[2] % b != 0 || x->dims[3] % b != 0)
			return lr_op_fail(c, LR_ESHAPE, "input 0 of shape %s: height and width are not multiples of blocksize %lld",
					  TSHP(x), (long long)b);
		od[0] = x->dims[0];
		if (lr_mul_i64(x->dims[1], bb, &od[1]) != 0)
			return lr_op_fail(c, LR_ELIMIT, "the output shape overflows");
		od[2] = x->dims[2] / b;
		od[3] = x->dims[3] / b;
	}
	rc = gen_out(c, out, x->dtype, 4, od, x->data != NULL, 0);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	es = lr_dtype_size(x->dtype);
	{
		/* the space-side tensor [N, C', H*b, W*b] and depth-side [N, C'*bb, H, W] */
		int64_t n = od[0], cs, hs, ws, hd, wd;
		const char *src = x->data;
		char *dst = (*out)->data;

		if (to_space) {
			cs = od[1]; hs = od[2]; ws = od[3]; hd = x->dims[2]; wd = x->dims[3];
		} else {
			cs = x->dims[1]; hs = x->dims[2]; ws = x->dims[3]; hd = od[2]; wd = od[3];
		}
		for (int64_t in_ = 0; in_ < n; in_++)
			for (int64_t ch = 0; ch < cs; ch++)
				for (int64_t y = 0; y < hs; y++)
					for (int64_t xx = 0; xx < ws; xx++) {
						int64_t i = y % b, j = xx % b;
						int64_t dc = crd ? ch * bb + i * b + j : (i * b + j) * cs + ch;
						int64_t so = ((in_ * cs + ch) * hs + y) * ws + xx;
						int64_t d_o = ((in_ * cs * bb + dc) * hd + y / b) * wd + xx / b;

						if (to_space)
							memcpy(dst + (size_t)so * es, src + (size_t)d_o * es, es);
						else
							memcpy(dst + (size_t)d_o * es, src + (size_t)so * es, es);
					}
	}
	return 0;
}

int lr_op_depthtospace(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return space_depth(c, in, nin, out, 1);
}

int lr_op_spacetodepth(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return space_depth(c, in, nin, out, 0);
}

/* ---- CumSum, GatherElements, OneHot ------------------------------------- */

/*
 * CumSum (11, 14): running sums along the axis in input 1 (a scalar);
 * exclusive=1 leaves out the element itself, reverse=1 runs backwards.
 * float sums accumulate in double; int64 wraps.
 */
int lr_op_cumsum(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int excl = lr_node_attr_int(c->node, "exclusive", 0) != 0;
	int rev = lr_node_attr_int(c->node, "reverse", 0) != 0;
	int64_t axis, outer = 1, len, inner = 1;
	const lr_tensor *x;
	size_t es;
	int a, rc;

	(void)nout;
	if ((rc = need(c, in, nin, 0, "x")) != 0 || (rc = need(c, in, nin, 1, "axis")) != 0)
		return rc;
	x = in[0];
	if (in[1]->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EMODEL, "input 1 (axis) must be int64, got %s",
				  lr_dtype_name(in[1]->dtype));
	if ((rc = int_scalar(c, in, nin, 1, "axis", &axis)) != 0)
		return rc;
	if (x->ndim < 1)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (x) must have rank >= 1");
	if (x->dtype == LR_DT_FLOAT16 || x->dtype == LR_DT_BOOL)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (x) has type %s, which CumSum does not take",
				  lr_dtype_name(x->dtype));
	if ((rc = lr_op_axis(c, axis, x->ndim, &a)) != 0)
		return rc;
	es = lr_dtype_size(x->dtype);
	rc = gen_out(c, out, x->dtype, x->ndim, x->dims, x->data != NULL, 0);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	len = x->dims[a];
	for (int k = 0; k < a; k++)
		outer *= x->dims[k];
	for (int k = a + 1; k < x->ndim; k++)
		inner *= x->dims[k];
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			double s = 0.0;
			uint64_t si = 0;

			for (int64_t t = 0; t < len; t++) {
				int64_t k = rev ? len - 1 - t : t;
				int64_t e = (o * len + k) * inner + i;

				if (x->dtype == LR_DT_FLOAT) {
					double v = ((const float *)x->data)[e];

					if (!excl)
						s += v;
					((float *)(*out)->data)[e] = (float)s;
					if (excl)
						s += v;
				} else if (x->dtype == LR_DT_DOUBLE) {
					double v = ((const double *)x->data)[e];

					if (!excl)
						s += v;
					((double *)(*out)->data)[e] = s;
					if (excl)
						s += v;
				} else if (x->dtype != LR_DT_INT64) {
					/* Narrower integers: the low bits of the wrapping sum. */
					uint64_t v = (uint64_t)lr_tensor_get_i64(x, e);
					int64_t w;

					if (!excl)
						si += v;
					w = (int64_t)si;
					lr_tensor_convert(&(lr_tensor){ .dtype = LR_DT_INT64, .nelem = 1,
									.data = &w },
							  x->dtype, (char *)(*out)->data + (size_t)e * es);
					if (excl)
						si += v;
				} else {
					uint64_t v = (uint64_t)((const int64_t *)x->data)[e];

					if (!excl)
						si += v;
					((int64_t *)(*out)->data)[e] = (int64_t)si;
					if (excl)
						si += v;
				}
			}
		}
	return 0;
}

/*
 * GatherElements (11, 13): out[i] = data[i with axis coordinate replaced
 * by indices[i]]; indices (int64) has data's rank and no dim larger than
 * data's (except along axis). Negative indices count from the end;
 * out-of-range ones fail.
 */
int lr_op_gatherelements(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			 int nout)
{
	const lr_tensor *x, *ix;
	int64_t axis = lr_node_attr_int(c->node, "axis", 0), idx[LR_MAX_DIMS] = { 0 };
	int64_t str[LR_MAX_DIMS], s = 1;
	size_t es;
	int a, rc;

	(void)nout;
	if ((rc = need(c, in, nin, 0, "data")) != 0 || (rc = need(c, in, nin, 1, "indices")) != 0)
		return rc;
	x = in[0];
	ix = in[1];
	if (ix->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EMODEL, "input 1 (indices) must be int64, got %s",
				  lr_dtype_name(ix->dtype));
	if (x->ndim < 1 || ix->ndim != x->ndim)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (indices) of shape %s must have the rank of input 0 (data) %s",
				  TSHP(ix), TSHP(x));
	if ((rc = lr_op_axis(c, axis, x->ndim, &a)) != 0)
		return rc;
	for (int k = 0; k < x->ndim; k++)
		if (k != a && ix->dims[k] > x->dims[k])
			return lr_op_fail(c, LR_ESHAPE, "input 1 (indices) of shape %s exceeds input 0 (data) %s on axis %d",
					  TSHP(ix), TSHP(x), k);
	if (ix->data == NULL)
		return lr_op_fail(c, LR_EINVAL, "input 1 (indices) has no data");
	for (int64_t e = 0; e < ix->nelem; e++) {
		int64_t v = ((const int64_t *)ix->data)[e];

		if (v < -x->dims[a] || v >= x->dims[a])
			return lr_op_fail(c, LR_EMODEL, "input 1 (indices) element %lld is %lld, out of range for axis %d of size %lld",
					  (long long)e, (long long)v, a, (long long)x->dims[a]);
	}
	rc = gen_out(c, out, x->dtype, ix->ndim, ix->dims, x->data != NULL, 0);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
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
		memcpy((char *)(*out)->data + (size_t)e * es, (const char *)x->data + (size_t)off * es, es);
		for (int k = x->ndim - 1; k >= 0; k--) {
			if (++idx[k] < ix->dims[k])
				break;
			idx[k] = 0;
		}
	}
	return 0;
}

/*
 * OneHot (9, 11): indices (float or int64, truncated), depth (a scalar),
 * values [off, on]; the output inserts an axis of size depth at 'axis'
 * (default -1) and has values' type. Indices outside [-depth, depth) give
 * an all-off row; negative ones count from the end (11).
 */
int lr_op_onehot(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t axis = lr_node_attr_int(c->node, "axis", -1), od[LR_MAX_DIMS];
	int64_t depth, outer = 1, inner = 1;
	const lr_tensor *ix, *dp, *val;
	int a, rc;
	size_t es;

	(void)nout;
	if ((rc = need(c, in, nin, 0, "indices")) != 0 || (rc = need(c, in, nin, 1, "depth")) != 0 ||
	    (rc = need(c, in, nin, 2, "values")) != 0)
		return rc;
	ix = in[0];
	dp = in[1];
	val = in[2];
	if (dp->nelem != 1 || dp->data == NULL)
		return lr_op_fail(c, LR_EMODEL, "input 1 (depth) must be one known value");
	depth = dp->dtype == LR_DT_INT64 ? *(const int64_t *)dp->data :
		(int64_t)fminf(fmaxf(*(const float *)dp->data, -1.0f), 1e18f);
	if (depth < 1 || depth > LR_GEN_MAX_ELEMS)
		return lr_op_fail(c, LR_EMODEL, "input 1 (depth) must be 1 to %lld, got %lld",
				  (long long)LR_GEN_MAX_ELEMS, (long long)depth);
	if (val->nelem != 2)
		return lr_op_fail(c, LR_ESHAPE, "input 2 (values) must hold 2 values, got shape %s", TSHP(val));
	if (ix->ndim >= LR_MAX_DIMS)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (indices) has rank %d; the output would exceed %d",
				  ix->ndim, LR_MAX_DIMS);
	if ((rc = lr_op_axis(c, axis, ix->ndim + 1, &a)) != 0)
		return rc;
	for (int k = 0, m = 0; k <= ix->ndim; k++)
		od[k] = k == a ? depth : ix->dims[m++];
	if (ix->data == NULL)
		return lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL, "input 0 (indices) has no data");
	rc = gen_out(c, out, val->dtype, ix->ndim + 1, od, val->data != NULL, 1);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	for (int k = 0; k < a; k++)
		outer *= ix->dims[k];
	for (int k = a; k < ix->ndim; k++)
		inner *= ix->dims[k];
	es = lr_dtype_size(val->dtype);
	for (int64_t o = 0; o < outer; o++)
		for (int64_t d = 0; d < depth; d++)
			for (int64_t i = 0; i < inner; i++) {
				int64_t e = o * inner + i, v;

				if (ix->dtype == LR_DT_INT64) {
					v = ((const int64_t *)ix->data)[e];
				} else {
					float f = ((const float *)ix->data)[e];

					v = f > -9.2e18f && f < 9.2e18f ? (int64_t)f : INT64_MIN;
				}
				if (v < 0 && v >= -depth)
					v += depth;
				memcpy((char *)(*out)->data + (size_t)((o * depth + d) * inner + i) * es,
				       (const char *)val->data + (v == d ? es : 0), es);
			}
	return 0;
}

/*
 * TfIdfVectorizer: counts, per row of X (int64 after widening; rank 1 or
 * [N, C]), the n-grams of the pool (pool_int64s; 1-grams first, the
 * (k+1)-grams starting at ngram_counts[k]) of lengths min_gram_length to
 * max_gram_length, whose items are 1 + s apart for every skip s in
 * [0, max_skip_count] (1-grams counted once, whatever the skips), and
 * writes n-gram j's count to column ngram_indexes[j]: TF the count, IDF
 * weights[j] when it occurs, TFIDF count x weights[j] (weights default to
 * 1; each occurrence adds its weight). String pools are refused. Pool
 * n-grams of each length are sorted once per call and looked up by
 * binary search, so a long input costs O(positions x skips x log pool).
 */
struct tfidf_gram {
	const int64_t *v;       /* the n-gram's items in the pool */
	int64_t j;              /* its ordinal in the pool */
};

static _Thread_local int tfidf_n; /* length tfidf_cmp compares (qsort has no argument) */

static int tfidf_cmp(const void *pa, const void *pb)
{
	const struct tfidf_gram *a = pa, *b = pb;

	for (int k = 0; k < tfidf_n; k++)
		if (a->v[k] != b->v[k])
			return a->v[k] < b->v[k] ? -1 : 1;
	return 0;
}

int lr_op_tfidfvectorizer(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const Onnx__AttributeProto *pool = lr_node_attr(c->node, "pool_int64s");
	const Onnx__AttributeProto *cnt = lr_node_attr(c->node, "ngram_counts");
	const Onnx__AttributeProto *idx = lr_node_attr(c->node, "ngram_indexes");
	const Onnx__AttributeProto *wts = lr_node_attr(c->node, "weights");
	int64_t minn = lr_node_attr_int(c->node, "min_gram_length", 0);
	int64_t maxn = lr_node_attr_int(c->node, "max_gram_length", 0);
	int64_t skips = lr_node_attr_int(c->node, "max_skip_count", -1);
	char mode[16];
	const char *md;
	int m, rc;
	int64_t width = 0, rows, cols, od[2], total;
	struct tfidf_gram *grams = NULL;
	int64_t *start = NULL, *count = NULL;
	const lr_tensor *x;
	float *y;

	(void)nout;
	if ((rc = need(c, in, nin, 0, "X")) != 0)
		return rc;
	x = in[0];
	md = lr_node_attr_str(c->node, "mode", "", mode, sizeof(mode));
	m = strcmp(md, "TF") == 0 ? 0 : strcmp(md, "IDF") == 0 ? 1 : strcmp(md, "TFIDF") == 0 ? 2 : -1;
	if (m < 0)
		return lr_op_fail(c, LR_EMODEL, "attribute mode must be TF, IDF or TFIDF, got '%s'", md);
	if (lr_node_attr(c->node, "pool_strings") != NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED, "attribute pool_strings: string n-grams are not "
				  "supported (only integer ones)");
	if (pool == NULL || cnt == NULL || idx == NULL)
		return lr_op_fail(c, LR_EMODEL, "attributes pool_int64s, ngram_counts and ngram_indexes are required");
	if (minn < 1 || maxn < minn || maxn > (int64_t)cnt->n_ints || skips < 0)
		return lr_op_fail(c, LR_EMODEL, "min_gram_length %lld, max_gram_length %lld and "
				  "max_skip_count %lld must satisfy 1 <= min <= max <= %zu "
				  "(ngram_counts' length) and skips >= 0", (long long)minn,
				  (long long)maxn, (long long)skips, cnt->n_ints);
	if (x->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (X) has type %s; only integer inputs are supported",
				  lr_dtype_name(x->dtype));
	if (x->ndim != 1 && x->ndim != 2)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (X) must have rank 1 or 2, got %s", TSHP(x));
	/* n-grams of length k + 1 lie in pool[cnt[k], cnt[k + 1]). */
	total = 0;
	for (size_t k = 0; k < cnt->n_ints; k++) {
		int64_t a = cnt->ints[k], b = k + 1 < cnt->n_ints ? cnt->ints[k + 1] : (int64_t)pool->n_ints;

		if (a < 0 || b < a || b > (int64_t)pool->n_ints || (b - a) % (int64_t)(k + 1) != 0)
			return lr_op_fail(c, LR_EMODEL, "ngram_counts[%zu] = %lld does not start a whole "
					  "number of %zu-grams in pool_int64s (%zu items, next start %lld)",
					  k, (long long)a, k + 1, pool->n_ints, (long long)b);
		total += (b - a) / (int64_t)(k + 1);
	}
	if ((int64_t)idx->n_ints != total)
		return lr_op_fail(c, LR_EMODEL, "ngram_indexes has %zu entries; the pool holds %lld n-grams",
				  idx->n_ints, (long long)total);
	if (wts != NULL && (int64_t)wts->n_floats != total)
		return lr_op_fail(c, LR_EMODEL, "weights has %zu entries; the pool holds %lld n-grams",
				  wts->n_floats, (long long)total);
	for (int64_t j = 0; j < total; j++) {
		if (idx->ints[j] < 0 || idx->ints[j] >= LR_GEN_MAX_ELEMS)
			return lr_op_fail(c, LR_EMODEL, "ngram_indexes[%lld] = %lld is out of range",
					  (long long)j, (long long)idx->ints[j]);
		if (idx->ints[j] + 1 > width)
			width = idx->ints[j] + 1;
	}
	rows = x->ndim == 2 ? x->dims[0] : 1;
	cols = x->dims[x->ndim - 1];
	od[0] = rows;
	od[1] = width;
	rc = gen_out(c, out, LR_DT_FLOAT, x->ndim, x->ndim == 2 ? od : od + 1, x->data != NULL, 1);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	y = (*out)->data;
	memset(y, 0, (size_t)(*out)->nelem * sizeof(float));
	grams = malloc((size_t)(total > 0 ? total : 1) * sizeof(*grams));
	start = calloc((size_t)cnt->n_ints + 1, sizeof(*start));
	count = calloc((size_t)cnt->n_ints + 1, sizeof(*count));
	if (grams == NULL || start == NULL || count == NULL) {
		rc = lr_op_fail(c, LR_ENOMEM, "out of memory for %lld n-grams", (long long)total);
		goto out;
	}
	/* Pool n-grams of each length, sorted (ordinals j in pool order). */
	for (size_t k = 0, j = 0; k < cnt->n_ints; k++) {
		int64_t a = cnt->ints[k], b = k + 1 < cnt->n_ints ? cnt->ints[k + 1] : (int64_t)pool->n_ints;

		start[k] = (int64_t)j;
		count[k] = (b - a) / (int64_t)(k + 1);
		for (int64_t g = 0; g < count[k]; g++, j++) {
			grams[j].v = pool->ints + a + g * (int64_t)(k + 1);
			grams[j].j = (int64_t)j;
		}
		tfidf_n = (int)(k + 1);
		qsort(grams + start[k], (size_t)count[k], sizeof(*grams), tfidf_cmp);
	}
	for (int64_t r = 0; r < rows; r++) {
		const int64_t *xr = (const int64_t *)x->data + r * cols;
		float *yr = y + r * width;

		for (int64_t n = minn; n <= maxn; n++) {
			int64_t smax = n == 1 ? 0 : skips;

			if (count[n - 1] == 0)
				continue;
			tfidf_n = (int)n;
			for (int64_t s = 0; s <= smax; s++)
				for (int64_t i = 0; i + (n - 1) * (s + 1) < cols; i++) {
					int64_t key[64], *kp = key;
					struct tfidf_gram q, *hit;

					if (n > 64 && (kp = malloc((size_t)n * sizeof(int64_t))) == NULL) {
						rc = lr_op_fail(c, LR_ENOMEM, "out of memory for a %lld-gram",
								(long long)n);
						goto out;
					}
					for (int64_t t = 0; t < n; t++)
						kp[t] = xr[i + t * (s + 1)];
					q.v = kp;
					hit = bsearch(&q, grams + start[n - 1], (size_t)count[n - 1],
						      sizeof(*grams), tfidf_cmp);
					if (hit != NULL) {
						float *v = &yr[idx->ints[hit->j]];
						float wj = wts != NULL ? wts->floats[hit->j] : 1.0f;

						*v = m == 0 ? *v + 1.0f : m == 1 ? wj : *v + wj;
					}
					if (kp != key)
						free(kp);
				}
		}
	}
out:
	free(grams);
	free(start);
	free(count);
	if (rc != 0) {
		lr_tensor_free(*out);
		*out = NULL;
	}
	return rc;
}
