/*
 * ops_elementwise.c - activations and the four broadcasting arithmetic ops.
 *
 * DESIGN. Every kernel here maps elements independently, so the work is
 * one tight loop per contiguous run, split over the pool in chunks of about
 * LR_EW_GRAIN elements, and written into the input's buffer when the engine
 * allows it (lr_op_take()). Loops are written so GCC vectorises them at -O2
 * (its "very cheap" cost model): the main part runs over a multiple of 16
 * elements under "GCC ivdep" (an output may be the very buffer of an input,
 * index for index, never a shifted one), followed by a scalar tail, and every
 * arithmetic result is computed unconditionally before a select, because
 * with trapping math GCC will not if-convert a conditional multiply.
 *
 * Binary ops (Add, Sub, Mul, Div, and PRelu's slope) never compute a
 * broadcast index per element. The two shapes are aligned to the output
 * rank, size-1 output axes are dropped, and adjacent axes where each input
 * is either full or broadcast in the same way are merged. What remains is a
 * short list of axes; the innermost is a contiguous run where each input is
 * either a vector or one repeated scalar, handled by a specialised loop, and
 * the outer axes are walked with an odometer. The same-shape case becomes a
 * single run; [N,C,H,W] + [1,C,1,1] becomes N*C runs of H*W with a scalar
 * operand. int64 variants exist for shape arithmetic; they use wrapping
 * arithmetic (no undefined behaviour on hostile values), and Div truncates
 * toward zero like C (as ONNX Runtime does), refusing a zero divisor.
 *
 * Dry runs: like the data-movement kernels (ops_shape.c), a float output
 * whose inputs all have data (constants, or shape arithmetic cast to
 * float) and that has at most LR_DRY_VALUES_MAX elements is computed anyway,
 * so float values that decide shapes downstream (Resize scales computed
 * as Cast(Shape) * 2) survive a dry run. Other float outputs stay
 * shape-only.
 */
#include "config.h"

#include "model/ops.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define LR_EW_GRAIN 16384 /* elements per parallel chunk */
#define LR_EW_SEG 16384   /* longest contiguous run handed to one call */


/*
 * In a dry run, gives a shape-only float output a buffer when its inputs
 * are known (`have`) and it is small (see DESIGN). Frees *out on failure.
 */
static int dry_values(lr_opctx *c, lr_tensor **out, int have)
{
	if ((*out)->data != NULL || !have || (*out)->nelem > LR_DRY_VALUES_MAX)
		return 0;
	if (lr_tensor_alloc_data(*out) == 0)
		return 0;
	lr_tensor_free(*out);
	*out = NULL;
	return lr_op_fail(c, LR_ENOMEM, "out of memory for a small output");
}



/* 1 when some present input is neither float32 nor int64 (ops_types.c). */
static int any_typed(lr_tensor **in, int nin)
{
	for (int i = 0; i < nin; i++)
		if (in[i] != NULL && !lr_dtype_is_legacy(in[i]->dtype))
			return 1;
	return 0;
}

/*
 * 1 / (1 + exp(-x)) from e = exp(-|x|) without branches: x >= 0 gives
 * 1 / (1 + e), x < 0 gives e / (1 + e); NaN stays NaN. Selects are bit
 * masks so that GCC does not sink arithmetic into a branch, written as
 * a ^ ((a ^ b) & m) rather than (a & ~m) | (b & m): GCC made ~m with an
 * AVX-512 vpternlogd into a register last written by the previous
 * iteration's division, a false dependency that chained the iterations
 * (1.2M values: 1.34 ms, 16 per 75 cycles).
 */
static inline float sigmoid1(float x)
{
	union { float f; uint32_t u; } v, e, num, r;
	uint32_t neg, nan;

	v.f = x;
	neg = 0u - (v.u >> 31);
	nan = 0u - (uint32_t)((v.u & 0x7fffffffu) > 0x7f800000u);
	e.u = v.u | 0x80000000u;
	e.f = lr_exp_neg(e.f);
	num.f = 1.f;
	num.u ^= (num.u ^ e.u) & neg;
	r.f = num.f / (1.f + e.f);
	r.u ^= (r.u ^ v.u) & nan;
	return r.f;
}

/*
 * tanh(x) within a few ulp, without branches (so the loop vectorises, as
 * sigmoid1): below |x| = 0.625 Cephes' odd polynomial, above it
 * (1 - e) / (1 + e) with e = exp(-2|x|), where 1 - e >= 0.71 loses nothing
 * to cancellation; the sign is x's, so -0 stays -0 and +-inf give +-1;
 * NaN stays NaN. libm's tanhf, an element at a time, took 13 ns a value.
 */
static inline float tanh1(float x)
{
	union { float f; uint32_t u; } v, a, p, q;
	uint32_t small, nan;
	float z, e;

	v.f = x;
	a.u = v.u & 0x7fffffffu;
	small = 0u - (uint32_t)(a.u < 0x3F200000u);     /* |x| < 0.625 */
	nan = 0u - (uint32_t)(a.u > 0x7f800000u);
	z = a.f * a.f;
	p.f = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
		1.33314422036e-1f) * z - 3.33332819422e-1f) * z * a.f + a.f;
	e = lr_exp_neg(-2.f * a.f);
	q.f = (1.f - e) / (1.f + e);
	q.u ^= (q.u ^ p.u) & small;
	q.u |= v.u & 0x80000000u;
	q.u ^= (q.u ^ v.u) & nan;
	return q.f;
}

/* ---------------------------------------------------------------------- */
/* Unary maps                                                               */
/* ---------------------------------------------------------------------- */

enum unary_kind {
	U_RELU,
	U_LEAKY,
	U_CLIP,
	U_SIGMOID,
	U_SILU,                 /* x * sigmoid(x): Sigmoid with LR_ACT_SILU */
	U_HARDSIGMOID,
	U_HARDSWISH,
	U_TANH,
	U_ELU,
};

struct unary_job {
	enum unary_kind kind;
	const float *x;
	float *y;
	float p0, p1; /* alpha/min/..., beta/max/... */
};

LR_CLONES512
static void unary_chunk(void *vp, int64_t b, int64_t e)
{
	const struct unary_job *j = vp;
	const float *x = j->x + b;
	float *y = j->y + b;
	int64_t n = e - b;
	float p0 = j->p0, p1 = j->p1;

	switch (j->kind) {
	case U_RELU:
		LR_EACH(n, i, float v = x[i]; y[i] = v > 0.f ? v : 0.f);
		break;
	case U_LEAKY:
		LR_EACH(n, i, float v = x[i];
			y[i] = (v > 0.f ? v : 0.f) + p0 * (v < 0.f ? v : 0.f));
		break;
	case U_CLIP:
		LR_EACH(n, i, float v = x[i]; v = v < p0 ? p0 : v;
			y[i] = v > p1 ? p1 : v);
		break;
	case U_SIGMOID:
		LR_EACH(n, i, y[i] = sigmoid1(x[i]));
		break;
	case U_SILU: /* the Mul's x * s, on the Sigmoid's s: the same bits */
		LR_EACH(n, i, float v = x[i]; y[i] = v * sigmoid1(v));
		break;
	case U_HARDSIGMOID:
		LR_EACH(n, i, float v = x[i] * p0 + p1; v = v < 0.f ? 0.f : v;
			y[i] = v > 1.f ? 1.f : v);
		break;
	case U_HARDSWISH:
		/* x * clamp(x/6 + 1/2, 0, 1) == x * clamp(x + 3, 0, 6) / 6 */
		LR_EACH(n, i, float v = x[i]; float w = v + 3.f;
			w = w > 0.f ? w : 0.f; w = w < 6.f ? w : 6.f;
			y[i] = v * w * (1.f / 6.f));
		break;
	case U_TANH:
		LR_EACH(n, i, y[i] = tanh1(x[i]));
		break;
	case U_ELU:
		for (int64_t i = 0; i < n; i++) {
			float v = x[i];

			y[i] = v > 0.f ? v : p0 * expm1f(v);
		}
		break;
	}
}

/*
 * The unary maps on double and float16 (in double, rounded once) and Relu
 * on the signed integer types including int64 (Relu-14); one element at a
 * time.
 */
static int unary_typed(lr_opctx *c, const lr_tensor *x, lr_tensor **out,
		       enum unary_kind kind, double p0, double p1)
{
	int rc;

	if (!lr_dtype_is_float(x->dtype) &&
	    (kind != U_RELU || x->dtype == LR_DT_BOOL || lr_dtype_is_unsigned(x->dtype)))
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 has type %s, which %s does not take",
				  lr_dtype_name(x->dtype), c->node->op_type);
	rc = lr__ty_out(c, out, x->dtype, x->ndim, x->dims, x->data != NULL);
	if (rc != 0 || (*out)->data == NULL)
		return rc;
	for (int64_t i = 0; i < x->nelem; i++) {
		double v = lr_tensor_get_f64(x, i), r, w;

		if (!lr_dtype_is_float(x->dtype)) { /* integer Relu */
			int64_t iv = lr_tensor_get_i64(x, i);

			lr__put_i64(x->dtype, (*out)->data, i, iv > 0 ? iv : 0);
			continue;
		}
		switch (kind) {
		case U_RELU: r = v > 0 ? v : 0; break;
		case U_LEAKY: r = (v > 0 ? v : 0) + p0 * (v < 0 ? v : 0); break;
		case U_CLIP: r = v < p0 ? p0 : v > p1 ? p1 : v; break;
		case U_SIGMOID: r = 1.0 / (1.0 + exp(-v)); break;
		case U_SILU: r = v / (1.0 + exp(-v)); break;
		case U_HARDSIGMOID:
			r = v * p0 + p1;
			r = r < 0 ? 0 : r > 1 ? 1 : r;
			break;
		case U_HARDSWISH:
			w = v + 3.0;
			w = w > 0 ? w : 0;
			w = w < 6 ? w : 6;
			r = v * w / 6.0;
			break;
		case U_TANH: r = tanh(v); break;
		default: r = v > 0 ? v : p0 * expm1(v); break; /* U_ELU */
		}
		lr__put_f64(x->dtype, (*out)->data, i, r);
	}
	return 0;
}

/*
 * Common driver of the unary maps: checks input 0 is float, reuses its
 * buffer when allowed, and runs the map over the pool.
 */
static int run_unary(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		     enum unary_kind kind, float p0, float p1, int have_bounds)
{
	struct unary_job job;
	lr_tensor *x, *y;
	int rc;

	if (nin > 0 && in[0] != NULL && in[0]->dtype != LR_DT_FLOAT)
		return unary_typed(c, in[0], out, kind, p0, p1);
	rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT);
	if (rc != 0)
		return rc;
	x = in[0];
	if (x->data == NULL && !c->dry)
		return lr_op_fail(c, LR_EINVAL, "input 0 has no data");
	/* nothing fails after a take: the engine would lose track of it */
	y = lr_op_take(c, in, 0);
	if (y == NULL) {
		rc = lr_op_output(c, out, LR_DT_FLOAT, x->ndim, x->dims);
		if (rc == 0)
			rc = dry_values(c, out, x->data != NULL && have_bounds);
		if (rc != 0)
			return rc;
		y = *out;
	} else {
		*out = y;
	}
	if (y->data == NULL || y->nelem == 0)
		return 0;
	job.kind = kind;
	job.x = x->data;
	job.y = y->data;
	job.p0 = p0;
	job.p1 = p1;
	lr_pool_run(c->pool, y->nelem, LR_EW_GRAIN, unary_chunk, &job);
	return 0;
}

/* Relu: y = max(x, 0). Float only. */
int lr_op_relu(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	return run_unary(c, in, nin, out, U_RELU, 0.f, 0.f, 1);
}

/* LeakyRelu: y = x < 0 ? alpha * x : x, alpha default 0.01. */
int lr_op_leakyrelu(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		    int nout)
{
	float alpha = lr_node_attr_float(c->node, "alpha", 0.01f);

	return run_unary(c, in, nin, out, U_LEAKY, alpha, 0.f, 1);
}

/* Sigmoid: y = 1 / (1 + exp(-x)); x * sigmoid(x) when the engine fused the
 * Mul after it (c->act == LR_ACT_SILU). */
int lr_op_sigmoid(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		  int nout)
{
	return run_unary(c, in, nin, out, c->act == LR_ACT_SILU ? U_SILU : U_SIGMOID, 0.f, 0.f,
			 1);
}

/* HardSigmoid: y = clamp(alpha * x + beta, 0, 1), alpha 0.2, beta 0.5. */
int lr_op_hardsigmoid(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		      int nout)
{
	float alpha = lr_node_attr_float(c->node, "alpha", 0.2f);
	float beta = lr_node_attr_float(c->node, "beta", 0.5f);

	return run_unary(c, in, nin, out, U_HARDSIGMOID, alpha, beta, 1);
}

/* HardSwish (opset 14): y = x * clamp(x / 6 + 0.5, 0, 1). */
int lr_op_hardswish(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		    int nout)
{
	return run_unary(c, in, nin, out, U_HARDSWISH, 0.f, 0.f, 1);
}

/* Tanh: y = tanh(x). */
int lr_op_tanh(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	return run_unary(c, in, nin, out, U_TANH, 0.f, 0.f, 1);
}

/* Elu: y = x > 0 ? x : alpha * (exp(x) - 1), alpha default 1. */
int lr_op_elu(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	float alpha = lr_node_attr_float(c->node, "alpha", 1.0f);

	return run_unary(c, in, nin, out, U_ELU, alpha, 0.f, 1);
}

/* Reads the scalar bound of Clip from optional input i into *v. */
static int clip_bound(lr_opctx *c, lr_tensor **in, int nin, int i,
		      const char *what, float *v)
{
	const lr_tensor *t;

	if (i >= nin || in[i] == NULL)
		return 0;
	t = in[i];
	if (t->dtype != LR_DT_FLOAT)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "input %d (%s) has type %s, expected float",
				  i, what, lr_dtype_name(t->dtype));
	if (t->nelem != 1) {
		char buf[128];

		return lr_op_fail(c, LR_ESHAPE,
				  "input %d (%s) of shape %s must be a scalar",
				  i, what, lr_shape_str(t->ndim, t->dims, buf,
							sizeof(buf)));
	}
	if (t->data == NULL) {
		if (c->dry)
			return 0;
		return lr_op_fail(c, LR_EINVAL, "input %d (%s) has no data",
				  i, what);
	}
	*v = ((const float *)t->data)[0];
	return 0;
}

/*
 * Clip: y = min(max(x, min), max). Before opset 11 the bounds are the
 * attributes "min" and "max"; from 11 on they are optional scalar inputs 1
 * and 2 (either may be omitted). Absent bounds are the float limits, as in
 * ONNX Runtime. When min > max every element becomes max.
 */
int lr_op_clip(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	float lo = -FLT_MAX, hi = FLT_MAX;
	int rc, have = 1;

	if (any_typed(in, nin))
		return lr__typed_clip(c, in, nin, out);
	if (c->opset < 11) {
		if (nin > 1)
			return lr_op_fail(c, LR_EMODEL,
					  "Clip-%lld takes one input (bounds are attributes), got %d",
					  (long long)c->opset, nin);
		lo = lr_node_attr_float(c->node, "min", -FLT_MAX);
		hi = lr_node_attr_float(c->node, "max", FLT_MAX);
	} else {
		rc = clip_bound(c, in, nin, 1, "min", &lo);
		if (rc == 0)
			rc = clip_bound(c, in, nin, 2, "max", &hi);
		if (rc != 0)
			return rc;
		for (int i = 1; i < nin && i < 3; i++)
			if (in[i] != NULL && in[i]->data == NULL)
				have = 0;
	}
	return run_unary(c, in, nin, out, U_CLIP, lo, hi, have);
}

/* ---------------------------------------------------------------------- */
/* Broadcasting binary ops                                                  */
/* ---------------------------------------------------------------------- */

enum bin_kind { B_ADD, B_SUB, B_MUL, B_DIV, B_PRELU, B_POW, B_MAX, B_MIN,
		B_MOD, B_FMOD, B_NKINDS };

/* How the innermost run reads its operands. */
enum run_kind {
	R_VV, /* both vectors */
	R_VS, /* a vector, b one scalar */
	R_SV, /* a one scalar, b vector */
};

typedef void (*run_fn)(void *o, const void *a, const void *b, int64_t n);

#define DEF_RUNS(name, T, expr)                                              \
	static void name##_vv(void *vo, const void *va, const void *vb,      \
			      int64_t n)                                     \
	{                                                                    \
		T *o = vo;                                                   \
		const T *a = va, *b = vb;                                    \
		LR_EACH(n, i, T x = a[i]; T y = b[i]; o[i] = (expr));        \
	}                                                                    \
	static void name##_vs(void *vo, const void *va, const void *vb,      \
			      int64_t n)                                     \
	{                                                                    \
		T *o = vo;                                                   \
		const T *a = va;                                             \
		T y = *(const T *)vb;                                        \
		LR_EACH(n, i, T x = a[i]; o[i] = (expr));                    \
	}                                                                    \
	static void name##_sv(void *vo, const void *va, const void *vb,      \
			      int64_t n)                                     \
	{                                                                    \
		T *o = vo;                                                   \
		const T *b = vb;                                             \
		T x = *(const T *)va;                                        \
		LR_EACH(n, i, T y = b[i]; o[i] = (expr));                    \
	}

/* Wrapping int64 arithmetic: no undefined behaviour on overflow. */
static inline int64_t wrap_add(int64_t x, int64_t y)
{
	return (int64_t)((uint64_t)x + (uint64_t)y);
}
static inline int64_t wrap_sub(int64_t x, int64_t y)
{
	return (int64_t)((uint64_t)x - (uint64_t)y);
}
static inline int64_t wrap_mul(int64_t x, int64_t y)
{
	return (int64_t)((uint64_t)x * (uint64_t)y);
}
/* Truncating division; y != 0 is checked before; INT64_MIN / -1 wraps. */
static inline int64_t trunc_div(int64_t x, int64_t y)
{
	if (y == -1)
		return wrap_sub(0, x);
	return y != 0 ? x / y : 0;
}

/* Integer power by squaring, wrapping; a negative exponent truncates 1/x^|y|. */
static inline int64_t ipow(int64_t x, int64_t y)
{
	uint64_t r = 1, b = (uint64_t)x;

	if (y < 0)
		return x == 1 ? 1 : x == -1 ? ((y & 1) ? -1 : 1) : 0;
	while (y > 0) {
		if (y & 1)
			r *= b;
		b *= b;
		y >>= 1;
	}
	return (int64_t)r;
}
/* Python-style modulo (sign of the divisor); y != 0 is checked before. */
static inline int64_t imod(int64_t x, int64_t y)
{
	int64_t r = (y == -1 || y == 0) ? 0 : x % y;

	return (r != 0 && ((r < 0) != (y < 0))) ? wrap_add(r, y) : r;
}
/* C-style remainder (sign of the dividend). */
static inline int64_t ifmod(int64_t x, int64_t y)
{
	return (y == -1 || y == 0) ? 0 : x % y;
}
/* max/min that propagate NaN from either side (numpy.maximum). */
static inline float fmax_nan(float x, float y)
{
	return (x >= y || x != x) ? x : y;
}
static inline float fmin_nan(float x, float y)
{
	return (x <= y || x != x) ? x : y;
}

DEF_RUNS(addf, float, x + y)
DEF_RUNS(subf, float, x - y)
DEF_RUNS(mulf, float, x * y)
DEF_RUNS(divf, float, x / y)
DEF_RUNS(preluf, float, (x > 0.f ? x : 0.f) + y * (x < 0.f ? x : 0.f))
DEF_RUNS(addi, int64_t, wrap_add(x, y))
DEF_RUNS(subi, int64_t, wrap_sub(x, y))
DEF_RUNS(muli, int64_t, wrap_mul(x, y))
DEF_RUNS(divi, int64_t, trunc_div(x, y))
DEF_RUNS(powf_, float, (float)pow((double)x, (double)y))
DEF_RUNS(maxf, float, fmax_nan(x, y))
DEF_RUNS(minf, float, fmin_nan(x, y))
DEF_RUNS(fmodf_, float, fmodf(x, y))
DEF_RUNS(powi, int64_t, ipow(x, y))
DEF_RUNS(maxi, int64_t, x > y ? x : y)
DEF_RUNS(mini, int64_t, x < y ? x : y)
DEF_RUNS(modi, int64_t, imod(x, y))
DEF_RUNS(fmodi, int64_t, ifmod(x, y))

static const run_fn float_runs[B_NKINDS][3] = {
	[B_ADD] = { addf_vv, addf_vs, addf_sv },
	[B_SUB] = { subf_vv, subf_vs, subf_sv },
	[B_MUL] = { mulf_vv, mulf_vs, mulf_sv },
	[B_DIV] = { divf_vv, divf_vs, divf_sv },
	[B_PRELU] = { preluf_vv, preluf_vs, preluf_sv },
	[B_POW] = { powf__vv, powf__vs, powf__sv },
	[B_MAX] = { maxf_vv, maxf_vs, maxf_sv },
	[B_MIN] = { minf_vv, minf_vs, minf_sv },
	[B_FMOD] = { fmodf__vv, fmodf__vs, fmodf__sv },
};

static const run_fn int_runs[B_NKINDS][3] = {
	[B_ADD] = { addi_vv, addi_vs, addi_sv },
	[B_SUB] = { subi_vv, subi_vs, subi_sv },
	[B_MUL] = { muli_vv, muli_vs, muli_sv },
	[B_DIV] = { divi_vv, divi_vs, divi_sv },
	[B_POW] = { powi_vv, powi_vs, powi_sv },
	[B_MAX] = { maxi_vv, maxi_vs, maxi_sv },
	[B_MIN] = { mini_vv, mini_vs, mini_sv },
	[B_MOD] = { modi_vv, modi_vs, modi_sv },
	[B_FMOD] = { fmodi_vv, fmodi_vs, fmodi_sv },
};

/*
 * A broadcast plan: `m` merged axes; the last is the contiguous run. For
 * each outer axis, sa/sb are the input strides in elements (0 when that
 * input is broadcast along it).
 */
struct bin_plan {
	int m;
	int64_t ext[LR_MAX_DIMS];
	int64_t sa[LR_MAX_DIMS], sb[LR_MAX_DIMS];
	int64_t inner;          /* ext[m-1] */
	int a_vec, b_vec;       /* does the run read a / b as a vector */
	int64_t nseg;           /* pieces the run is cut into */
	int64_t rows;           /* product of the outer extents */
	size_t esize;           /* element size in bytes */
	int act;                /* float: an activation applied to each piece */
	float lo, hi;           /* its bounds (LR_ACT_CLIP) */
	run_fn fn;
	char *o;
	const char *a, *b;
};

/*
 * Builds the plan for out = a (op) b, where out has shape (n, od) and a, b
 * broadcast to it (already checked). At least one input is full along
 * every axis whose output extent is not 1, so the run is never scalar-scalar.
 */
static void plan_build(struct bin_plan *p, int n, const int64_t *od,
		       const lr_tensor *a, const lr_tensor *b)
{
	int typ[LR_MAX_DIMS];
	int64_t ext[LR_MAX_DIMS];
	int m = 0;

	for (int i = 0; i < n; i++) {
		int64_t da = i < n - a->ndim ? 1 : a->dims[i - (n - a->ndim)];
		int64_t db = i < n - b->ndim ? 1 : b->dims[i - (n - b->ndim)];
		/* bit 0: a full along this axis, bit 1: b full */
		int t = (da == od[i] ? 1 : 0) | (db == od[i] ? 2 : 0);

		if (od[i] == 1)
			continue;
		if (m > 0 && typ[m - 1] == t) {
			ext[m - 1] *= od[i];
		} else {
			typ[m] = t;
			ext[m] = od[i];
			m++;
		}
	}
	if (m == 0) {
		typ[0] = 3;
		ext[0] = 1;
		m = 1;
	}
	p->m = m;
	{
		int64_t sa = 1, sb = 1;

		for (int k = m - 1; k >= 0; k--) {
			p->ext[k] = ext[k];
			p->sa[k] = (typ[k] & 1) ? sa : 0;
			p->sb[k] = (typ[k] & 2) ? sb : 0;
			if (typ[k] & 1)
				sa *= ext[k];
			if (typ[k] & 2)
				sb *= ext[k];
		}
	}
	p->inner = ext[m - 1];
	p->a_vec = (typ[m - 1] & 1) != 0;
	p->b_vec = (typ[m - 1] & 2) != 0;
	p->rows = 1;
	for (int k = 0; k < m - 1; k++)
		p->rows *= ext[k];
	p->nseg = (p->inner + LR_EW_SEG - 1) / LR_EW_SEG;
}

/* Runs units [begin, end): unit k is segment k % nseg of row k / nseg. */
static void bin_chunk(void *vp, int64_t begin, int64_t end)
{
	const struct bin_plan *p = vp;
	int64_t idx[LR_MAX_DIMS];
	int64_t row = begin / p->nseg, seg = begin % p->nseg, r = row;
	int64_t offa = 0, offb = 0;
	size_t es = p->esize;

	for (int k = p->m - 2; k >= 0; k--) {
		idx[k] = r % p->ext[k];
		r /= p->ext[k];
		offa += idx[k] * p->sa[k];
		offb += idx[k] * p->sb[k];
	}
	for (int64_t u = begin; u < end; u++) {
		int64_t s0 = seg * LR_EW_SEG;
		int64_t len = p->inner - s0 < LR_EW_SEG ? p->inner - s0 : LR_EW_SEG;

		p->fn(p->o + (size_t)(row * p->inner + s0) * es,
		      p->a + (size_t)(offa + (p->a_vec ? s0 : 0)) * es,
		      p->b + (size_t)(offb + (p->b_vec ? s0 : 0)) * es, len);
		if (p->act) /* while the piece is in L1 */
			lr__act_apply(p->act, p->lo, p->hi,
				      (float *)(void *)(p->o + (size_t)(row * p->inner + s0) * es), len);
		if (++seg < p->nseg)
			continue;
		seg = 0;
		row++;
		/* advance the odometer over the outer axes */
		for (int k = p->m - 2; k >= 0; k--) {
			offa += p->sa[k];
			offb += p->sb[k];
			if (++idx[k] < p->ext[k])
				break;
			offa -= idx[k] * p->sa[k];
			offb -= idx[k] * p->sb[k];
			idx[k] = 0;
		}
	}
}

static const char *const bin_names[B_NKINDS][2] = {
	[B_ADD] = { "A", "B" },
	[B_SUB] = { "A", "B" },
	[B_MUL] = { "A", "B" },
	[B_DIV] = { "A", "B" },
	[B_PRELU] = { "X", "slope" },
	[B_POW] = { "X", "Y" },
	[B_MAX] = { "data_0", "data_1" },
	[B_MIN] = { "data_0", "data_1" },
	[B_MOD] = { "A", "B" },
	[B_FMOD] = { "A", "B" },
};

/*
 * Before opset 7 the binary ops did not broadcast the numpy way. Add, Sub,
 * Mul and Div broadcast only with broadcast=1, and then B's shape must be a
 * contiguous run of A's dims (1 matching anything) that starts at 'axis',
 * by default at the end: A [2,3,4,5] with B [3,4] and axis=1. PRelu's slope
 * is one value, one per channel (dim 1) if 1-D, or X's own shape. Fills
 * *view with B re-shaped to A's rank so that numpy broadcasting computes
 * the same thing; the data is shared, not copied.
 */
static int legacy_broadcast(lr_opctx *c, enum bin_kind kind, const lr_tensor *a,
			    const lr_tensor *b, lr_tensor *view, const char *sa,
			    const char *sb)
{
	int64_t axis;

	*view = *b;
	view->owns_data = 0;
	view->map_base = NULL;
	view->map_len = 0;
	if (kind == B_PRELU) {
		if (b->nelem == 1 || (b->ndim == a->ndim &&
				      memcmp(b->dims, a->dims, (size_t)a->ndim * sizeof(int64_t)) == 0))
			return 0;
		if (b->ndim == 1 && a->ndim >= 2 && b->dims[0] == a->dims[1]) {
			view->ndim = a->ndim - 1; /* [C] -> [C,1,...,1] */
			for (int k = 1; k < view->ndim; k++)
				view->dims[k] = 1;
			return 0;
		}
		return lr_op_fail(c, LR_ESHAPE,
				  "input 1 (slope) of shape %s must hold one value, one per channel (%lld) or X's shape %s (opset %lld)",
				  sb, (long long)(a->ndim >= 2 ? a->dims[1] : 1), sa,
				  (long long)c->opset);
	}
	if (lr_node_attr_int(c->node, "broadcast", 0) == 0) {
		if (b->ndim == a->ndim &&
		    memcmp(b->dims, a->dims, (size_t)a->ndim * sizeof(int64_t)) == 0)
			return 0;
		return lr_op_fail(c, LR_ESHAPE,
				  "input 0 (A) of shape %s and input 1 (B) of shape %s differ, and opset %lld broadcasts only with broadcast=1",
				  sa, sb, (long long)c->opset);
	}
	axis = lr_node_attr_int(c->node, "axis", a->ndim - b->ndim);
	if (axis < 0)
		axis += a->ndim;
	if (b->ndim > a->ndim || axis < 0 || axis + b->ndim > a->ndim)
		return lr_op_fail(c, LR_ESHAPE,
				  "input 1 (B) of shape %s does not fit input 0 (A) of shape %s at axis %lld",
				  sb, sa, (long long)axis);
	for (int k = 0; k < b->ndim; k++)
		if (b->dims[k] != 1 && b->dims[k] != a->dims[axis + k])
			return lr_op_fail(c, LR_ESHAPE,
					  "input 1 (B) of shape %s does not match input 0 (A) of shape %s from axis %lld (legacy broadcast)",
					  sb, sa, (long long)axis);
	view->ndim = a->ndim - (int)axis; /* trailing 1s; leading ones are implied */
	for (int k = b->ndim; k < view->ndim; k++)
		view->dims[k] = 1;
	return 0;
}

/*
 * Common driver of the binary ops. For PRelu the slope must broadcast to X
 * (unidirectional), and only float is accepted.
 */
static int run_binary(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		      enum bin_kind kind)
{
	const char *na = bin_names[kind][0], *nb = bin_names[kind][1];
	char sa[160], sb[160];
	int64_t od[LR_MAX_DIMS];
	struct bin_plan p;
	lr_tensor *a, *b, *y = NULL, bl;
	int n, rc;

	for (int i = 0; i < 2; i++)
		if (i >= nin || in[i] == NULL)
			return lr_op_fail(c, LR_EMODEL, "input %d (%s) is required",
					  i, bin_names[kind][i]);
	a = in[0];
	b = in[1];
	if (a->dtype != b->dtype)
		return lr_op_fail(c, LR_EMODEL,
				  "input 0 (%s) has type %s but input 1 (%s) has type %s",
				  na, lr_dtype_name(a->dtype), nb,
				  lr_dtype_name(b->dtype));
	if (kind == B_PRELU && a->dtype != LR_DT_FLOAT)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "input 0 (X) has type %s, only float is supported",
				  lr_dtype_name(a->dtype));
	if (kind == B_MOD && a->dtype == LR_DT_FLOAT)
		return lr_op_fail(c, LR_EMODEL, "Mod of float inputs requires fmod=1");
	lr_shape_str(a->ndim, a->dims, sa, sizeof(sa));
	lr_shape_str(b->ndim, b->dims, sb, sizeof(sb));
	if (c->opset < 7) {
		rc = legacy_broadcast(c, kind, a, b, &bl, sa, sb);
		if (rc != 0)
			return rc;
		b = &bl;
	}
	rc = lr_broadcast_shape(a->ndim, a->dims, b->ndim, b->dims, &n, od);
	if (kind == B_PRELU && (rc != 0 || n != a->ndim ||
				memcmp(od, a->dims, (size_t)n * sizeof(int64_t)) != 0))
		return lr_op_fail(c, LR_ESHAPE,
				  "input 1 (slope) of shape %s does not broadcast to %s",
				  sb, sa);
	if (rc != 0)
		return lr_op_fail(c, LR_ESHAPE,
				  "input 0 (%s) of shape %s and input 1 (%s) of shape %s do not broadcast",
				  na, sa, nb, sb);

	if ((!c->dry || a->dtype == LR_DT_INT64) &&
	    (a->data == NULL || b->data == NULL))
		return lr_op_fail(c, LR_EINVAL, "input %d (%s) has no data",
				  a->data == NULL ? 0 : 1,
				  a->data == NULL ? na : nb);
	if ((kind == B_DIV || kind == B_MOD || kind == B_FMOD) && b->dtype == LR_DT_INT64) {
		const int64_t *bv = b->data;

		for (int64_t k = 0; k < b->nelem; k++)
			if (bv[k] == 0)
				return lr_op_fail(c, LR_ENUMERIC,
						  "integer division by zero: element %lld of input 1 (B) of shape %s is 0",
						  (long long)k, sb);
	}

	/*
	 * Reuse an input buffer that already has the output's shape. Nothing
	 * fails after a take: the engine would lose track of the buffer.
	 */
	for (int i = 0; i < 2 && y == NULL; i++) {
		if (in[i]->ndim == n &&
		    memcmp(in[i]->dims, od, (size_t)n * sizeof(int64_t)) == 0)
			y = lr_op_take(c, in, i);
	}
	if (y != NULL) {
		*out = y;
	} else {
		rc = lr_op_output(c, out, a->dtype, n, od);
		if (rc == 0)
			rc = dry_values(c, out, a->data != NULL && b->data != NULL);
		if (rc != 0)
			return rc;
		y = *out;
	}
	if (y->data == NULL || y->nelem == 0)
		return 0;

	plan_build(&p, n, od, a, b);
	p.esize = lr_dtype_size(a->dtype);
	p.fn = (a->dtype == LR_DT_FLOAT ? float_runs : int_runs)[kind]
		[p.a_vec ? (p.b_vec ? R_VV : R_VS) : R_SV];
	p.o = y->data;
	p.a = a->data;
	p.b = b->data;
	p.act = a->dtype == LR_DT_FLOAT ? c->act : 0;
	p.lo = c->act_lo;
	p.hi = c->act_hi;
	{
		int64_t unit = p.inner < LR_EW_SEG ? p.inner : LR_EW_SEG;
		int64_t grain = LR_EW_GRAIN / (unit > 0 ? unit : 1);

		if (a->dtype == LR_DT_INT64)
			grain = INT64_MAX; /* shape arithmetic: tiny, stay inline */
		lr_pool_run(c->pool, p.rows * p.nseg, grain > 0 ? grain : 1,
			    bin_chunk, &p);
	}
	return 0;
}

/*
 * The typed path (ops_types.c) of a binary op, with the broadcast=1/axis
 * alignment of opsets before 7 applied to B first.
 */
static int typed_binary(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int tb,
			enum bin_kind kind)
{
	char sa[160], sb[160];
	lr_tensor bl, *v[2];
	int rc;

	if (c->opset >= 7 || nin != 2 || in[0] == NULL || in[1] == NULL)
		return lr__typed_binary(c, in, nin, out, tb);
	lr_shape_str(in[0]->ndim, in[0]->dims, sa, sizeof(sa));
	lr_shape_str(in[1]->ndim, in[1]->dims, sb, sizeof(sb));
	rc = legacy_broadcast(c, kind, in[0], in[1], &bl, sa, sb);
	if (rc != 0)
		return rc;
	v[0] = in[0];
	v[1] = &bl;
	return lr__typed_binary(c, v, 2, out, tb);
}

/*
 * Add: C = A + B with numpy broadcasting; float or int64. A Relu or Clip
 * the engine fused into it (c->act, engine.c: float inputs only) is
 * applied to each piece of C as it is written.
 */
int lr_op_add(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	if (any_typed(in, nin))
		return typed_binary(c, in, nin, out, LR_TB_ADD, B_ADD);
	return run_binary(c, in, nin, out, B_ADD);
}

/* Sub: C = A - B with numpy broadcasting; float or int64. */
int lr_op_sub(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	if (any_typed(in, nin))
		return typed_binary(c, in, nin, out, LR_TB_SUB, B_SUB);
	return run_binary(c, in, nin, out, B_SUB);
}

/* Mul: C = A * B with numpy broadcasting; float or int64. */
int lr_op_mul(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	if (any_typed(in, nin))
		return typed_binary(c, in, nin, out, LR_TB_MUL, B_MUL);
	return run_binary(c, in, nin, out, B_MUL);
}

/*
 * Div: C = A / B with numpy broadcasting. Float follows IEEE (x/0 = inf);
 * int64 truncates toward zero and fails with LR_ENUMERIC on a zero divisor.
 */
int lr_op_div(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	if (any_typed(in, nin))
		return typed_binary(c, in, nin, out, LR_TB_DIV, B_DIV);
	return run_binary(c, in, nin, out, B_DIV);
}

/*
 * PRelu: y = x < 0 ? slope * x : x, where slope broadcasts
 * unidirectionally to X (e.g. [C,1,1] against [N,C,H,W]).
 */
int lr_op_prelu(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		int nout)
{
	return run_binary(c, in, nin, out, B_PRELU);
}

/* ---------------------------------------------------------------------- */
/* Pow, Mod and the variadic Max, Min, Sum, Mean                            */
/* ---------------------------------------------------------------------- */

/*
 * Converts t to the other type into *tmp (shape only when t has no data).
 * int64 -> float rounds to nearest; float -> int64 is not needed here.
 */
static int to_float(lr_opctx *c, const lr_tensor *t, lr_tensor **tmp, int i)
{
	int rc = lr_tensor_create(tmp, LR_DT_FLOAT, t->ndim, t->dims, t->data != NULL);

	if (rc != 0)
		return lr_op_fail(c, rc, "cannot convert input %d of %lld elements to float",
				  i, (long long)t->nelem);
	if (t->data != NULL)
		for (int64_t k = 0; k < t->nelem; k++)
			((float *)(*tmp)->data)[k] = (float)((const int64_t *)t->data)[k];
	return 0;
}

/*
 * Runs run_binary with input i replaced by `sub` (never taken: its
 * takeable bit is cleared for the call), restoring the engine's array.
 */
static int binary_with(lr_opctx *c, lr_tensor **in, int nin, int i,
		       lr_tensor *sub, lr_tensor **out, enum bin_kind kind)
{
	lr_tensor *saved = in[i];
	unsigned tk = c->takeable;
	int rc;

	c->takeable &= ~(1u << i);
	in[i] = sub;
	rc = run_binary(c, in, nin, out, kind);
	in[i] = saved;
	c->takeable = (c->takeable & ~(1u << i)) | (tk & (1u << i));
	return rc;
}

/*
 * Pow: Z = X ^ Y with numpy broadcasting (legacy broadcast before opset 7).
 * float ^ float and float ^ int64 compute pow() in double and round to
 * float; int64 ^ int64 is exact by squaring (wrapping on overflow, a
 * negative exponent truncates toward zero); int64 ^ float computes in
 * float and truncates to int64 (saturating; NaN gives 0), as ONNX Runtime
 * casts std::pow's result. int64 bases above 2^24 lose precision there.
 */
int lr_op_pow(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	lr_tensor *tmp = NULL, *fo = NULL, *y = NULL;
	int rc;

	if (any_typed(in, nin))
		return typed_binary(c, in, nin, out, LR_TB_POW, B_POW);
	(void)nout;
	for (int i = 0; i < 2; i++)
		if (i >= nin || in[i] == NULL)
			return lr_op_fail(c, LR_EMODEL, "input %d (%s) is required", i, i ? "Y" : "X");
	if (in[0]->dtype == in[1]->dtype)
		return run_binary(c, in, nin, out, B_POW);
	if (in[0]->dtype == LR_DT_FLOAT) {
		rc = to_float(c, in[1], &tmp, 1);
		if (rc == 0)
			rc = binary_with(c, in, nin, 1, tmp, out, B_POW);
		lr_tensor_free(tmp);
		return rc;
	}
	/* int64 base, float exponent */
	rc = to_float(c, in[0], &tmp, 0);
	if (rc == 0)
		rc = binary_with(c, in, nin, 0, tmp, &fo, B_POW);
	if (rc == 0) {
		rc = lr_op_output(c, &y, LR_DT_INT64, fo->ndim, fo->dims);
		if (rc == 0 && fo->data == NULL) {
			/* a dry run computes int64 outputs, but not from unknown floats */
			rc = lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL,
					"its int64 output depends on input %d, which has no data",
					in[0]->data == NULL ? 0 : 1);
			lr_tensor_free(y);
			y = NULL;
		}
	}
	if (rc == 0) {
		const float *f = fo->data;
		int64_t *o = y->data;

		for (int64_t k = 0; k < y->nelem; k++)
			o[k] = f[k] != f[k] ? 0 : f[k] >= 9.2233720e18f ? INT64_MAX :
			       f[k] <= -9.2233720e18f ? INT64_MIN : (int64_t)f[k];
		*out = y;
	}
	lr_tensor_free(fo);
	lr_tensor_free(tmp);
	return rc;
}

/*
 * Mod (opset 10+): fmod=0 takes the sign of the divisor (Python's %),
 * int64 only; fmod=1 the sign of the dividend (C's fmod), float or int64.
 * An int64 zero divisor fails with LR_ENUMERIC.
 */
int lr_op_mod(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	if (any_typed(in, nin))
		return lr__typed_binary(c, in, nin, out, LR_TB_MOD);
	(void)nout;
	return run_binary(c, in, nin, out,
			  lr_node_attr_int(c->node, "fmod", 0) ? B_FMOD : B_MOD);
}

/*
 * The variadic ops: the output shape broadcasts all inputs (opsets 1-7:
 * the same shape; they are then equal anyway), y starts as in[0]
 * broadcast to it, then y = y (op) in[i] in place for the rest; Mean
 * divides the sum by the count. Max and Min take float or int64 and propagate NaN; Sum and Mean
 * are float only (as in ONNX).
 */
static int run_variadic(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			enum bin_kind kind, int mean)
{
	int64_t od[LR_MAX_DIMS];
	int n = 0, rc, have = 1;
	lr_tensor *y = NULL, *acc;
	char sa[160], sb[160];

	if (nin < 1)
		return lr_op_fail(c, LR_EMODEL, "at least one input is required");
	for (int i = 0; i < nin; i++) {
		if (in[i] == NULL)
			return lr_op_fail(c, LR_EMODEL, "input %d is required", i);
		if (in[i]->dtype != in[0]->dtype)
			return lr_op_fail(c, LR_EMODEL, "input %d has type %s but input 0 has type %s",
					  i, lr_dtype_name(in[i]->dtype), lr_dtype_name(in[0]->dtype));
		if (in[i]->data == NULL) {
			if (!c->dry || in[i]->dtype == LR_DT_INT64)
				return lr_op_fail(c, LR_EINVAL, "input %d has no data", i);
			have = 0;
		}
		if (i == 0) {
			n = in[0]->ndim;
			memcpy(od, in[0]->dims, sizeof(od));
		} else if (lr_broadcast_shape(n, od, in[i]->ndim, in[i]->dims, &n, od) != 0) {
			return lr_op_fail(c, LR_ESHAPE, "input %d of shape %s does not broadcast with %s",
					  i, lr_shape_str(in[i]->ndim, in[i]->dims, sa, sizeof(sa)),
					  lr_shape_str(n, od, sb, sizeof(sb)));
		}
	}
	if (in[0]->dtype == LR_DT_INT64 && (kind == B_ADD || mean))
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 has type int64, only float is supported");
	rc = lr_op_output(c, &y, in[0]->dtype, n, od);
	if (rc == 0)
		rc = dry_values(c, &y, have);
	if (rc != 0)
		return rc;
	if (y->data == NULL || y->nelem == 0) {
		*out = y;
		return 0;
	}
	/*
	 * y = in[0] broadcast to the output first, so that every later step
	 * reads y as a full operand: two inputs that are both broadcast along
	 * the innermost axis would otherwise make a run of two scalars, which
	 * the plan does not have.
	 */
	{
		const lr_tensor *a0 = in[0];
		size_t es = lr_dtype_size(y->dtype);
		int64_t idx[LR_MAX_DIMS] = { 0 }, str[LR_MAX_DIMS], s = 1;

		for (int k = n - 1; k >= 0; k--) {
			int ak = k - (n - a0->ndim);

			str[k] = ak >= 0 && a0->dims[ak] != 1 ? s : 0;
			if (ak >= 0)
				s *= a0->dims[ak];
		}
		for (int64_t e = 0; e < y->nelem; e++) {
			int64_t off = 0;

			for (int k = 0; k < n; k++)
				off += idx[k] * str[k];
			memcpy((char *)y->data + (size_t)e * es, (const char *)a0->data + (size_t)off * es, es);
			for (int k = n - 1; k >= 0; k--) {
				if (++idx[k] < od[k])
					break;
				idx[k] = 0;
			}
		}
	}
	acc = y;
	for (int i = 1; i < nin; i++) {
		struct bin_plan p;
		int64_t unit, grain;

		plan_build(&p, n, od, acc, in[i]);
		p.esize = lr_dtype_size(y->dtype);
		p.fn = (y->dtype == LR_DT_FLOAT ? float_runs : int_runs)[kind]
			[p.a_vec ? (p.b_vec ? R_VV : R_VS) : R_SV];
		p.o = y->data;
		p.a = acc->data;
		p.b = in[i]->data;
		p.act = 0; /* the engine fuses into Add only */
		unit = p.inner < LR_EW_SEG ? p.inner : LR_EW_SEG;
		grain = LR_EW_GRAIN / (unit > 0 ? unit : 1);
		lr_pool_run(c->pool, p.rows * p.nseg, grain > 0 ? grain : 1, bin_chunk, &p);
		acc = y;
	}
	if (mean) {
		float *v = y->data, inv = 1.0f / (float)nin;

		LR_EACH(y->nelem, k, v[k] = v[k] * inv);
	}
	*out = y;
	return 0;
}

/* Max: elementwise maximum of 1+ inputs, broadcasting; float or int64. */
int lr_op_max(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	if (any_typed(in, nin))
		return lr__typed_binary(c, in, nin, out, LR_TB_MAX);
	(void)nout;
	return run_variadic(c, in, nin, out, B_MAX, 0);
}

/* Min: elementwise minimum of 1+ inputs, broadcasting; float or int64. */
int lr_op_min(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	if (any_typed(in, nin))
		return lr__typed_binary(c, in, nin, out, LR_TB_MIN);
	(void)nout;
	return run_variadic(c, in, nin, out, B_MIN, 0);
}

/* Sum: elementwise sum of 1+ float inputs, broadcasting. */
int lr_op_sum(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_variadic(c, in, nin, out, B_ADD, 0);
}

/* Mean: elementwise mean of 1+ float inputs, broadcasting. */
int lr_op_mean(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_variadic(c, in, nin, out, B_ADD, 1);
}
