/*
 * ops_quant.c - the quantization operators: QuantizeLinear,
 * DequantizeLinear, DynamicQuantizeLinear, and the integer products
 * MatMulInteger, ConvInteger, QLinearMatMul and QLinearConv.
 *
 * DESIGN. These follow the ONNX reference arithmetic exactly where it is
 * exact and in its own float32 steps where it rounds: quantizing divides
 * in float32, rounds half to even (nearbyintf in the default rounding
 * mode), adds the zero point and saturates to the type (uint8, int8, and
 * uint16/int16 from opset 21); NaN gives the zero point. The integer
 * products subtract the zero points and accumulate in int64 (exact), then
 * keep the low 32 bits (int32 outputs), and the QLinear forms requantize
 * with a float32 multiplier in_scale * w_scale / y_scale. Scales and zero
 * points must be known (constants); per-axis scales (opset 13) and
 * per-output-channel weight zero points are supported, blocked
 * quantization (opset 21 block_size) is not. Plain loops: these are the
 * generic path, not a fast int8 engine. Shared helpers are in ops_types.c.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"

#define SHP(t) lr_shape_str((t)->ndim, (t)->dims, (char[200]){ 0 }, 200)

/* ---- QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear -------------- */

/* The saturation range of a quantized type; 0 for types not quantized to. */
static int quant_range(lr_dtype dt, double *lo, double *hi)
{
	switch (dt) {
	case LR_DT_UINT8: *lo = 0; *hi = 255; return 1;
	case LR_DT_INT8: *lo = -128; *hi = 127; return 1;
	case LR_DT_UINT16: *lo = 0; *hi = 65535; return 1;
	case LR_DT_INT16: *lo = -32768; *hi = 32767; return 1;
	default: return 0;
	}
}

/* round(v) + zp saturated to [lo, hi] (v already rounded; NaN counts as 0). */
static double quant_sat(double v, double zp, double lo, double hi)
{
	v = isnan(v) ? zp : v + zp;
	return v < lo ? lo : v > hi ? hi : v;
}

/*
 * The scale (and zero point) of QuantizeLinear/DequantizeLinear: one
 * value, or (opset 13+) one per index of 'axis' of x. Sets *axis_len
 * (1: per tensor) and *inner (elements per index of the axis).
 */
static int quant_params(lr_opctx *c, lr_tensor **in, int nin, const lr_tensor *x,
			int64_t *axis_len, int64_t *inner)
{
	const lr_tensor *s = in[1], *zp = nin > 2 ? in[2] : NULL;
	int a = 0, rc;

	if (lr_node_attr_int(c->node, "block_size", 0) != 0)
		return lr_op_fail(c, LR_EUNSUPPORTED, "blocked quantization (block_size) is not supported");
	if (s->dtype != LR_DT_FLOAT)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 1 (scale) has type %s; only float is supported",
				  lr_dtype_name(s->dtype));
	if (s->data == NULL || (zp != NULL && zp->data == NULL))
		return lr_op_fail(c, LR_EUNSUPPORTED, "scale and zero point must be known (constants)");
	if (zp != NULL && (zp->ndim != s->ndim || zp->nelem != s->nelem))
		return lr_op_fail(c, LR_ESHAPE, "input 2 (zero point) of shape %s does not match the scale's %s",
				  SHP(zp), SHP(s));
	*axis_len = 1;
	*inner = x->nelem;
	if (s->ndim == 0 || (s->ndim == 1 && s->nelem == 1))
		return 0; /* per tensor */
	if (s->ndim != 1 || c->opset < 13)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (scale) of shape %s must be a scalar%s", SHP(s),
				  c->opset < 13 ? "" : " or 1-D along 'axis'");
	if ((rc = lr_op_axis(c, lr_node_attr_int(c->node, "axis", 1), x->ndim, &a)) != 0)
		return rc;
	if (s->nelem != x->dims[a])
		return lr_op_fail(c, LR_ESHAPE, "input 1 (scale) has %lld entries for axis %d of %s",
				  (long long)s->nelem, a, SHP(x));
	*axis_len = s->nelem;
	*inner = 1;
	for (int d = a + 1; d < x->ndim; d++)
		*inner *= x->dims[d];
	return 0;
}

/*
 * QuantizeLinear (10, 13, 19, 21): y = saturate(round_even(x / scale) + zp)
 * with x and scale float32 (the division in float32, as the reference
 * does); y has the zero point's type (uint8 when absent; int8, and uint16
 * and int16 from opset 21). NaN inputs give the zero point.
 */
int lr_op_quantizelinear(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x, *s, *zp;
	lr_dtype dt = LR_DT_UINT8;
	int64_t alen, inner;
	double lo, hi;
	int rc;

	(void)nout;
	if ((rc = lr__need_input(c, in, nin, 0)) != 0 || (rc = lr__need_input(c, in, nin, 1)) != 0)
		return rc;
	x = in[0];
	s = in[1];
	zp = nin > 2 ? in[2] : NULL;
	if (x->dtype != LR_DT_FLOAT)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (x) has type %s; only float is supported",
				  lr_dtype_name(x->dtype));
	if (zp != NULL)
		dt = zp->dtype;
	else if (lr_node_attr_int(c->node, "output_dtype", 0) != 0)
		dt = lr_dtype_from_onnx((int)lr_node_attr_int(c->node, "output_dtype", 0));
	if (!quant_range(dt, &lo, &hi))
		return lr_op_fail(c, LR_EUNSUPPORTED, "quantizing to %s is not supported (uint8, int8, uint16, int16 are)",
				  lr_dtype_name(dt));
	if ((rc = quant_params(c, in, nin, x, &alen, &inner)) != 0)
		return rc;
	rc = lr__ty_out(c, &out[0], dt, x->ndim, x->dims, x->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	for (int64_t k = 0; k < x->nelem; k++) {
		int64_t ch = (k / inner) % alen;
		float q = nearbyintf(((const float *)x->data)[k] / ((const float *)s->data)[ch]);
		double z = zp != NULL ? lr_tensor_get_f64(zp, ch) : 0.0;

		lr__put_f64(dt, out[0]->data, k, quant_sat(q, z, lo, hi));
	}
	return 0;
}

/*
 * DequantizeLinear (10, 13, 19, 21): y = (x - zp) * scale as float32, x
 * of type uint8, int8, uint16, int16 or int32 (int32 without a zero
 * point), the zero point of x's type.
 */
int lr_op_dequantizelinear(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x, *s, *zp;
	int64_t alen, inner;
	double lo, hi;
	int rc;

	(void)nout;
	if ((rc = lr__need_input(c, in, nin, 0)) != 0 || (rc = lr__need_input(c, in, nin, 1)) != 0)
		return rc;
	x = in[0];
	s = in[1];
	zp = nin > 2 ? in[2] : NULL;
	if (!quant_range(x->dtype, &lo, &hi) && !(x->dtype == LR_DT_INT32 && zp == NULL))
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (x) has type %s; uint8, int8, uint16, int16 and int32 are supported",
				  lr_dtype_name(x->dtype));
	if (zp != NULL && (rc = lr__same_type(c, in, 0, 2)) != 0)
		return rc;
	if ((rc = quant_params(c, in, nin, x, &alen, &inner)) != 0)
		return rc;
	rc = lr__ty_out(c, &out[0], LR_DT_FLOAT, x->ndim, x->dims, x->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	for (int64_t k = 0; k < x->nelem; k++) {
		int64_t ch = (k / inner) % alen;
		int64_t z = zp != NULL ? lr_tensor_get_i64(zp, ch) : 0;

		((float *)out[0]->data)[k] = (float)(lr_tensor_get_i64(x, k) - z) *
					     ((const float *)s->data)[ch];
	}
	return 0;
}

/*
 * DynamicQuantizeLinear (11): uint8 y, float32 scale and uint8 zero point
 * from the range of x extended to include 0, in float32 as the reference:
 * scale = (max - min) / 255 (1 / 255 when the range is empty), zero point
 * = round_even(saturate(0 - min / scale)), y = saturate(round_even(x /
 * scale) + zero point). x must have data (the scale depends on it).
 */
int lr_op_dynamicquantizelinear(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x;
	const float *xv;
	float mn = 0.0f, mx = 0.0f, scale, zp;
	int rc;

	if ((rc = lr__need_input(c, in, nin, 0)) != 0)
		return rc;
	x = in[0];
	if (x->dtype != LR_DT_FLOAT)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (x) has type %s; only float is supported",
				  lr_dtype_name(x->dtype));
	if (x->data == NULL)
		return lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL,
				  "input 0 (x) has no data; the scale depends on its values");
	xv = x->data;
	for (int64_t k = 0; k < x->nelem; k++) {
		mn = xv[k] < mn ? xv[k] : mn;
		mx = xv[k] > mx ? xv[k] : mx;
	}
	scale = (mx == mn ? 1.0f : mx - mn) / 255.0f;
	zp = 0.0f - mn / scale;
	zp = nearbyintf(zp < 0.0f ? 0.0f : zp > 255.0f ? 255.0f : zp);
	rc = lr__ty_out(c, &out[0], LR_DT_UINT8, x->ndim, x->dims, 1);
	if (rc == 0 && nout > 1)
		rc = lr__ty_out(c, &out[1], LR_DT_FLOAT, 0, NULL, 1);
	if (rc == 0 && nout > 2)
		rc = lr__ty_out(c, &out[2], LR_DT_UINT8, 0, NULL, 1);
	if (rc != 0)
		goto fail;
	if (nout > 1 && out[1]->data != NULL)
		*(float *)out[1]->data = scale;
	if (nout > 2 && out[2]->data != NULL)
		*(uint8_t *)out[2]->data = (uint8_t)zp;
	for (int64_t k = 0; out[0]->data != NULL && k < x->nelem; k++)
		((uint8_t *)out[0]->data)[k] =
			(uint8_t)quant_sat(nearbyintf(xv[k] / scale), zp, 0.0, 255.0);
	return 0;
fail:
	for (int i = 0; i < nout && i < 3; i++) {
		lr_tensor_free(out[i]);
		out[i] = NULL;
	}
	return rc;
}

/* ---- MatMulInteger, ConvInteger -------------------------------------------- */

/* 1 for the 8-bit types the integer products take. */
static int is_int8ish(lr_dtype dt)
{
	return dt == LR_DT_UINT8 || dt == LR_DT_INT8;
}

/*
 * Zero point k of optional input i: 0 when absent; a scalar, or one per
 * index (n entries) of the axis it applies to. Fails unless known, of the
 * data's type, and of a valid size.
 */
static int zero_points(lr_opctx *c, lr_tensor **in, int nin, int i, int data, int64_t n)
{
	const lr_tensor *z = i < nin ? in[i] : NULL;

	if (z == NULL)
		return 0;
	if (z->dtype != in[data]->dtype)
		return lr_op_fail(c, LR_EMODEL, "input %d (zero point) has type %s, input %d %s", i,
				  lr_dtype_name(z->dtype), data, lr_dtype_name(in[data]->dtype));
	if (z->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input %d (zero point) must be known", i);
	if (z->nelem != 1 && (z->ndim != 1 || z->nelem != n))
		return lr_op_fail(c, LR_EUNSUPPORTED, "input %d (zero point) of shape %s must be a scalar or hold %lld values",
				  i, SHP(z), (long long)n);
	return 0;
}

static int64_t zp_at(lr_tensor **in, int nin, int i, int64_t k)
{
	const lr_tensor *z = i < nin ? in[i] : NULL;

	return z == NULL ? 0 : lr_tensor_get_i64(z, z->nelem == 1 ? 0 : k);
}

/*
 * MatMulInteger (10): int32 Y = (A - a_zero_point) @ (B - b_zero_point)
 * for uint8/int8 A and B of rank >= 2 with broadcast batch axes; the zero
 * points are scalars, or per row of A / per column of B. Accumulates in
 * int64 and keeps the low 32 bits.
 */
int lr_op_matmulinteger(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *a, *b;
	int64_t dims[LR_MAX_DIMS], m, k, n, batch;
	struct lr__bcast bc;
	lr_tensor ba, bb;
	const lr_tensor *bt[2];
	int nd, rc;

	(void)nout;
	if ((rc = lr__need_input(c, in, nin, 0)) != 0 || (rc = lr__need_input(c, in, nin, 1)) != 0)
		return rc;
	a = in[0];
	b = in[1];
	if (!is_int8ish(a->dtype) || !is_int8ish(b->dtype))
		return lr_op_fail(c, LR_EUNSUPPORTED, "inputs have types %s and %s; uint8 and int8 are supported",
				  lr_dtype_name(a->dtype), lr_dtype_name(b->dtype));
	if (a->ndim < 2 || b->ndim < 2)
		return lr_op_fail(c, LR_EUNSUPPORTED, "inputs of shapes %s and %s: rank 1 is not supported",
				  SHP(a), SHP(b));
	m = a->dims[a->ndim - 2];
	k = a->dims[a->ndim - 1];
	n = b->dims[b->ndim - 1];
	if (b->dims[b->ndim - 2] != k)
		return lr_op_fail(c, LR_ESHAPE, "inner dimensions of %s and %s differ", SHP(a), SHP(b));
	if ((rc = zero_points(c, in, nin, 2, 0, m)) != 0 || (rc = zero_points(c, in, nin, 3, 1, n)) != 0)
		return rc;
	/* Broadcast the batch axes: shapes without the last two dims. */
	ba = (lr_tensor){ .ndim = a->ndim - 2 };
	bb = (lr_tensor){ .ndim = b->ndim - 2 };
	memcpy(ba.dims, a->dims, sizeof(int64_t) * (size_t)ba.ndim);
	memcpy(bb.dims, b->dims, sizeof(int64_t) * (size_t)bb.ndim);
	bt[0] = &ba;
	bt[1] = &bb;
	if ((rc = lr__bc_init(c, bt, 2, &bc)) != 0)
		return rc;
	nd = bc.nd;
	memcpy(dims, bc.dims, sizeof(int64_t) * (size_t)nd);
	dims[nd] = m;
	dims[nd + 1] = n;
	batch = bc.n;
	rc = lr__ty_out(c, &out[0], LR_DT_INT32, nd + 2, dims, a->data != NULL && b->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	for (int64_t p = 0; p < batch; p++, lr__bc_next(&bc)) {
		int64_t oa = bc.off[0] * m * k, ob = bc.off[1] * k * n;

		for (int64_t i = 0; i < m; i++)
			for (int64_t j = 0; j < n; j++) {
				int64_t acc = 0, za = zp_at(in, nin, 2, i), zb = zp_at(in, nin, 3, j);

				for (int64_t t = 0; t < k; t++)
					acc += (lr_tensor_get_i64(a, oa + i * k + t) - za) *
					       (lr_tensor_get_i64(b, ob + t * n + j) - zb);
				((int32_t *)out[0]->data)[(p * m + i) * n + j] = (int32_t)(uint32_t)acc;
			}
	}
	return 0;
}

/*
 * ConvInteger (10): int32 Y = Conv(x - x_zero_point, w - w_zero_point)
 * for uint8/int8 x and w, 1-D or 2-D, with group, strides, dilations,
 * pads and auto_pad (padding is 0 after the zero point is subtracted);
 * w_zero_point is a scalar or one per output channel.
 */
int lr_op_convinteger(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x, *w;
	int64_t group = lr_node_attr_int(c->node, "group", 1), kernel[2], dims[4];
	int64_t cg, mg;
	struct lr_geom g;
	int rc;

	(void)nout;
	if ((rc = lr__need_input(c, in, nin, 0)) != 0 || (rc = lr__need_input(c, in, nin, 1)) != 0)
		return rc;
	x = in[0];
	w = in[1];
	if (!is_int8ish(x->dtype) || !is_int8ish(w->dtype))
		return lr_op_fail(c, LR_EUNSUPPORTED, "inputs have types %s and %s; uint8 and int8 are supported",
				  lr_dtype_name(x->dtype), lr_dtype_name(w->dtype));
	if ((x->ndim != 3 && x->ndim != 4) || w->ndim != x->ndim)
		return lr_op_fail(c, LR_EUNSUPPORTED, "x %s and w %s: 1-D and 2-D convolutions are supported",
				  SHP(x), SHP(w));
	kernel[0] = x->ndim == 4 ? w->dims[2] : w->dims[2];
	kernel[1] = x->ndim == 4 ? w->dims[3] : 1;
	if (group < 1 || x->dims[1] % group != 0 || w->dims[0] % group != 0 ||
	    w->dims[1] * group != x->dims[1])
		return lr_op_fail(c, LR_ESHAPE, "x %s, w %s and group %lld do not agree", SHP(x), SHP(w),
				  (long long)group);
	if ((rc = lr__window_geom(c, x, kernel, 0, &g)) != 0)
		return rc;
	if ((rc = zero_points(c, in, nin, 2, 0, 1)) != 0 ||
	    (rc = zero_points(c, in, nin, 3, 1, w->dims[0])) != 0)
		return rc;
	dims[0] = g.n;
	dims[1] = w->dims[0];
	dims[2] = x->ndim == 4 ? g.oh : g.ow;
	dims[3] = g.ow;
	rc = lr__ty_out(c, &out[0], LR_DT_INT32, x->ndim, dims, x->data != NULL && w->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	cg = w->dims[1];
	mg = w->dims[0] / group;
	for (int64_t nn = 0; nn < g.n; nn++)
		for (int64_t mo = 0; mo < w->dims[0]; mo++) {
			int64_t gi = mo / mg, zw = zp_at(in, nin, 3, mo), zx = zp_at(in, nin, 2, 0);

			for (int64_t oy = 0; oy < g.oh; oy++)
				for (int64_t ox = 0; ox < g.ow; ox++) {
					int64_t acc = 0;

					for (int64_t ci = 0; ci < cg; ci++)
						for (int64_t ky = 0; ky < g.kh; ky++)
							for (int64_t kx = 0; kx < g.kw; kx++) {
								int64_t iy = oy * g.sh - g.pt + ky * g.dh;
								int64_t ix = ox * g.sw - g.pl + kx * g.dw;
								int64_t xc = gi * cg + ci;

								if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w)
									continue;
								acc += (lr_tensor_get_i64(x, ((nn * g.c + xc) * g.h + iy) * g.w + ix) - zx) *
								       (lr_tensor_get_i64(w, ((mo * cg + ci) * g.kh + ky) * g.kw + kx) - zw);
							}
					((int32_t *)out[0]->data)[((nn * w->dims[0] + mo) * g.oh + oy) * g.ow + ox] =
						(int32_t)(uint32_t)acc;
				}
		}
	return 0;
}

/* ---- QLinearMatMul, QLinearConv --------------------------------------------- */

/* Reads a known float scalar (or [1]) input into *v; fails naming it otherwise. */
static int float_scalar(lr_opctx *c, lr_tensor **in, int i, float *v)
{
	const lr_tensor *t = in[i];

	if (t->dtype != LR_DT_FLOAT || t->nelem != 1 || t->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input %d (scale) must be a known float scalar, got %s %s",
				  i, lr_dtype_name(t->dtype), SHP(t));
	*v = *(const float *)t->data;
	return 0;
}

/*
 * Requantizes int32 accumulators acc (shape of *out) to the type of the
 * zero point yz: y = saturate(round_even(acc * mult[ch]) + yz), with
 * mult[ch] = (in_scale * w_scale[ch]) / y_scale in float32, ch the index
 * of axis 1 when w_scale has nch > 1 values (QLinearConv per channel).
 */
static int requantize(lr_opctx *c, const lr_tensor *acc, float in_scale, const lr_tensor *w_scale,
		      float y_scale, const lr_tensor *yz, lr_tensor **out)
{
	int64_t nch = w_scale->nelem, inner = 1;
	double lo, hi;
	int rc;

	if (yz->nelem != 1 || yz->data == NULL || !quant_range(yz->dtype, &lo, &hi))
		return lr_op_fail(c, LR_EUNSUPPORTED, "the output zero point must be a known uint8 or int8 scalar");
	if (nch > 1)
		for (int d = 2; d < acc->ndim; d++)
			inner *= acc->dims[d];
	rc = lr__ty_out(c, out, yz->dtype, acc->ndim, acc->dims, acc->data != NULL);
	if (rc != 0 || (*out)->data == NULL)
		return rc;
	for (int64_t k = 0; k < acc->nelem; k++) {
		int64_t ch = nch > 1 ? (k / inner) % nch : 0;
		float mult = in_scale * ((const float *)w_scale->data)[ch] / y_scale;
		float v = nearbyintf((float)((const int32_t *)acc->data)[k] * mult);

		lr__put_f64(yz->dtype, (*out)->data, k, quant_sat(v, lr_tensor_get_f64(yz, 0), lo, hi));
	}
	return 0;
}

/*
 * QLinearMatMul (10): MatMulInteger of (a, b) with their zero points,
 * then requantized to y_scale and y_zero_point (float32 multiplier
 * a_scale * b_scale / y_scale, round half to even, saturate).
 */
int lr_op_qlinearmatmul(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	lr_tensor *mi[4], *acc = NULL;
	float as, ys;
	int rc;

	(void)nout;
	for (int i = 0; i < 8; i++)
		if ((rc = lr__need_input(c, in, nin, i)) != 0)
			return rc;
	if ((rc = float_scalar(c, in, 1, &as)) != 0 || (rc = float_scalar(c, in, 6, &ys)) != 0)
		return rc;
	if (in[4]->nelem != 1 || in[4]->dtype != LR_DT_FLOAT || in[4]->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 4 (b_scale) must be a known float scalar");
	mi[0] = in[0];
	mi[1] = in[3];
	mi[2] = in[2];
	mi[3] = in[5];
	rc = lr_op_matmulinteger(c, mi, 4, &acc, 1);
	if (rc == 0)
		rc = requantize(c, acc, as, in[4], ys, in[7], out);
	lr_tensor_free(acc);
	return rc;
}

/*
 * QLinearConv (10): ConvInteger of (x, w) with their zero points, plus the
 * optional int32 bias, requantized like QLinearMatMul; w_scale (and
 * w_zero_point) may hold one value per output channel.
 */
int lr_op_qlinearconv(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	lr_tensor *ci[4], *acc = NULL;
	const lr_tensor *bias = nin > 8 ? in[8] : NULL;
	float xs, ys;
	int rc;

	(void)nout;
	for (int i = 0; i < 8; i++)
		if ((rc = lr__need_input(c, in, nin, i)) != 0)
			return rc;
	if ((rc = float_scalar(c, in, 1, &xs)) != 0 || (rc = float_scalar(c, in, 6, &ys)) != 0)
		return rc;
	if (in[4]->dtype != LR_DT_FLOAT || in[4]->data == NULL || in[4]->ndim > 1 ||
	    (in[4]->nelem != 1 && in[4]->nelem != in[3]->dims[0]))
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 4 (w_scale) must be a known float scalar or one per output channel");
	ci[0] = in[0];
	ci[1] = in[3];
	ci[2] = in[2];
	ci[3] = in[5];
	rc = lr_op_convinteger(c, ci, 4, &acc, 1);
	if (rc == 0 && bias != NULL) {
		if (bias->dtype != LR_DT_INT32 || bias->ndim != 1 || bias->nelem != acc->dims[1] ||
		    bias->data == NULL) {
			rc = lr_op_fail(c, LR_EUNSUPPORTED, "input 8 (B) must be known int32 with one value per output channel");
		} else if (acc->data != NULL) {
			int64_t inner = acc->nelem / (acc->dims[0] * acc->dims[1]);

			for (int64_t k = 0; k < acc->nelem; k++)
				((int32_t *)acc->data)[k] = (int32_t)((uint32_t)((int32_t *)acc->data)[k] +
					(uint32_t)((const int32_t *)bias->data)[(k / inner) % acc->dims[1]]);
		}
	}
	if (rc == 0)
		rc = requantize(c, acc, xs, in[4], ys, in[7], out);
	lr_tensor_free(acc);
	return rc;
}
