/*
 * ops_types.c - kernels for element types beyond float32 and int64: Cast,
 * CastLike, the comparisons (Equal, Less, LessOrEqual, Greater,
 * GreaterOrEqual), the logic operators (And, Or, Xor, Not), BitShift,
 * Where, IsInf, IsNaN, NonZero, Compress, Einsum, MaxPool on integers, and
 * the typed paths of Add, Sub, Mul, Div, Mod, Pow, Max, Min and Clip; also
 * the helpers (lr__*, ops.h) that ops_quant.c and ops_signal.c share.
 *
 * DESIGN. float32 stays on its own fast kernels (ops_elementwise.c); this
 * file is the generic path, written for clarity, one element at a time.
 * Each kernel reads its inputs in their own types (lr_op_def.native_in).
 * Integer arithmetic is generated per type by INT_TYPES: it computes in the
 * type's own width, through its unsigned counterpart where C would
 * overflow, so it wraps exactly as ONNX (and two's complement hardware)
 * does; Div truncates toward zero and Mod takes the divisor's sign (fmod=0)
 * or the dividend's (fmod=1); a zero divisor fails with LR_ENUMERIC, and
 * MIN / -1 wraps to MIN. double, float16 and float32 arithmetic here is
 * computed in double and rounded once to the output type (correctly
 * rounded for + - * /: double has more than 2p+2 bits for all three), so
 * float16 results are what IEEE binary16 arithmetic gives. Comparisons are
 * exact: integers as int64 or uint64 by signedness, floats as double. A
 * broadcast (numpy rules, up to 3 inputs; Max/Min fold pairwise) is walked
 * with an odometer over per-input element strides that are 0 on broadcast
 * axes.
 *
 * Dry runs follow ops.h: an output gets values when every input it is
 * computed from has them and it is small (LR_DRY_VALUES_MAX), else it is
 * shape-only; an int64 output (NonZero, Cast to int64) whose values would
 * come from a tensor without data fails with LR_EUNSUPPORTED, because
 * int64 tensors are shape arithmetic that later kernels read.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/ops.h"

#define SHP(t) lr_shape_str((t)->ndim, (t)->dims, (char[200]){ 0 }, 200)

/* ---- helpers ------------------------------------------------------------ */

/*
 * Creates output *out of type dt; `have`: every input it is computed from
 * has data. See DESIGN for the dry-run rules. On failure *out is NULL.
 */
int lr__ty_out(lr_opctx *c, lr_tensor **out, lr_dtype dt, int ndim,
		  const int64_t *dims, int have)
{
	int rc = lr_op_output(c, out, dt, ndim, dims);

	if (rc != 0)
		return rc;
	if ((*out)->data == NULL) {
		if (!have || (*out)->nelem > LR_DRY_VALUES_MAX)
			return 0;
		if (lr_tensor_alloc_data(*out) == 0)
			return 0;
		rc = lr_op_fail(c, LR_ENOMEM, "out of memory for an output of shape %s", SHP(*out));
	} else if (!have) {
		rc = lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL,
				"its %s output depends on the values of a tensor without data%s",
				lr_dtype_name(dt), c->dry ? " (a dry run computes no float values)" : "");
	} else {
		return 0;
	}
	lr_tensor_free(*out);
	*out = NULL;
	return rc;
}

int lr__need_input(lr_opctx *c, lr_tensor **in, int nin, int i)
{
	if (i >= nin || in[i] == NULL)
		return lr_op_fail(c, LR_EMODEL, "input %d is required", i);
	return 0;
}

/* Fails unless inputs a and b have the same element type. */
int lr__same_type(lr_opctx *c, lr_tensor **in, int a, int b)
{
	if (in[a]->dtype == in[b]->dtype)
		return 0;
	return lr_op_fail(c, LR_EUNSUPPORTED, "input %d has type %s but input %d has type %s",
			  a, lr_dtype_name(in[a]->dtype), b, lr_dtype_name(in[b]->dtype));
}

/* Stores v as element k of a dt buffer (integers: the low bits). */
void lr__put_i64(lr_dtype dt, void *y, int64_t k, int64_t v)
{
	lr_tensor_convert(&(lr_tensor){ .dtype = LR_DT_INT64, .nelem = 1, .data = &v }, dt,
			  (char *)y + (size_t)k * lr_dtype_size(dt));
}

/* Stores v as element k of a dt buffer, as Cast from double would. */
void lr__put_f64(lr_dtype dt, void *y, int64_t k, double v)
{
	lr_tensor_convert(&(lr_tensor){ .dtype = LR_DT_DOUBLE, .nelem = 1, .data = &v }, dt,
			  (char *)y + (size_t)k * lr_dtype_size(dt));
}


int lr__bc_init(lr_opctx *c, const lr_tensor *const *t, int nt, struct lr__bcast *b)
{
	memset(b, 0, sizeof(*b));
	b->nt = nt;
	b->nd = t[0]->ndim;
	memcpy(b->dims, t[0]->dims, sizeof(b->dims));
	for (int i = 1; i < nt; i++) {
		int64_t acc[LR_MAX_DIMS]; /* lr_broadcast_shape must not write its input */

		memcpy(acc, b->dims, sizeof(acc));
		if (lr_broadcast_shape(b->nd, acc, t[i]->ndim, t[i]->dims, &b->nd, b->dims) != 0)
			return lr_op_fail(c, LR_ESHAPE, "input shapes %s and %s do not broadcast",
					  SHP(t[0]), SHP(t[i]));
	}
	if (lr_shape_nelem(b->nd, b->dims, &b->n) != 0)
		return lr_op_fail(c, LR_ELIMIT, "the broadcast output is too large");
	for (int i = 0; i < nt; i++) {
		int64_t s = 1;

		for (int d = b->nd - 1; d >= 0; d--) {
			int td = d - (b->nd - t[i]->ndim);
			int64_t ext = td >= 0 ? t[i]->dims[td] : 1;

			b->st[i][d] = ext == 1 ? 0 : s;
			s *= ext;
		}
	}
	return 0;
}

/* Advances to the next output element. */
void lr__bc_next(struct lr__bcast *b)
{
	for (int d = b->nd - 1; d >= 0; d--) {
		for (int i = 0; i < b->nt; i++)
			b->off[i] += b->st[i][d];
		if (++b->idx[d] < b->dims[d])
			return;
		for (int i = 0; i < b->nt; i++)
			b->off[i] -= b->st[i][d] * b->dims[d];
		b->idx[d] = 0;
	}
}

/* ---- Cast, CastLike ------------------------------------------------------ */

/* Rounds a float to the nearest bfloat16 value (ties to even), as a float. */
static float round_bf16(float f)
{
	uint32_t x;

	memcpy(&x, &f, sizeof(x));
	if ((x & 0x7fffffffu) > 0x7f800000u)
		x |= 0x00400000u; /* keep NaN a (quiet) NaN */
	else
		x += 0x7fffu + ((x >> 16) & 1u);
	x &= 0xffff0000u;
	memcpy(&f, &x, sizeof(f));
	return f;
}

/*
 * Output 0 = input 0 converted to `to` (an ONNX type code). bfloat16 is
 * held as float32 rounded to bfloat16 precision (ties to even).
 */
/*
 * Element k of string tensor x parsed into out (type dt, element k): as a
 * decimal number (strtof/strtod: also "NaN", "INF", "+INF", "-INF";
 * integers with strtoll/strtoull), surrounding blanks allowed, nothing
 * else. Returns 0 or fails naming the element.
 */
static int parse_string(lr_opctx *c, const lr_tensor *x, int64_t k, lr_dtype dt, void *out)
{
	char small[64], *buf = small, *end;
	size_t len;
	const char *s = lr_tensor_str(x, k, &len);
	int ok, rc = 0;

	if (len >= sizeof(small) && (buf = malloc(len + 1)) == NULL)
		return LR_ENOMEM;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	if (dt == LR_DT_FLOAT) {
		((float *)out)[k] = strtof(buf, &end);
	} else if (lr_dtype_is_float(dt) || dt == LR_DT_BOOL) {
		double d = strtod(buf, &end), one[1] = { d };
		lr_tensor tmp;

		memset(&tmp, 0, sizeof(tmp));
		tmp.dtype = LR_DT_DOUBLE;
		tmp.nelem = 1;
		tmp.data = one;
		lr_tensor_convert(&tmp, dt, (char *)out + (size_t)k * lr_dtype_size(dt));
	} else {
		int64_t v = dt == LR_DT_UINT64 ? (int64_t)strtoull(buf, &end, 10)
					       : (int64_t)strtoll(buf, &end, 10);
		lr_tensor tmp;

		memset(&tmp, 0, sizeof(tmp));
		tmp.dtype = LR_DT_INT64;
		tmp.nelem = 1;
		tmp.data = &v;
		lr_tensor_convert(&tmp, dt, (char *)out + (size_t)k * lr_dtype_size(dt));
	}
	while (*end == ' ' || *end == '\t' || *end == '\n')
		end++;
	/* Out of range: floats overflow to infinity or underflow toward 0
	 * as strtod gives them; integers are refused. */
	ok = end != buf && *end == '\0' && len == strlen(buf) &&
	     (errno != ERANGE || lr_dtype_is_float(dt) || dt == LR_DT_BOOL);
	if (!ok)
		rc = lr_op_fail(c, LR_EINVAL, "element %lld (\"%.40s\") is not a %s number",
				(long long)k, buf, lr_dtype_is_float(dt) ? "decimal" : "decimal integer");
	if (buf != small)
		free(buf);
	return rc;
}

static int cast_to(lr_opctx *c, lr_tensor **in, lr_tensor **out, int to)
{
	const lr_tensor *x = in[0];
	lr_dtype dt = to == 16 ? LR_DT_FLOAT : lr_dtype_from_onnx(to);
	lr_tensor *t;
	int rc;

	if (dt == 0 && to == LR_DT_STRING && x->dtype == LR_DT_STRING) {
		if ((t = lr_op_take(c, in, 0)) != NULL)
			out[0] = t;
		else if (x->data == NULL)
			return lr_tensor_create(&out[0], LR_DT_STRING, x->ndim, x->dims, 0);
		else
			return lr_tensor_clone(&out[0], x);
		return 0;
	}
	if (dt == 0)
		return lr_op_fail(c, LR_EUNSUPPORTED, "casting to %s is not supported",
				  lr_onnx_type_name(to));
	if (x->dtype == LR_DT_STRING) {
		rc = lr_tensor_create(&out[0], dt, x->ndim, x->dims, x->data != NULL);
		if (rc != 0)
			return lr_op_fail(c, rc, "out of memory");
		for (int64_t k = 0; x->data != NULL && k < x->nelem; k++)
			if ((rc = parse_string(c, x, k, dt, out[0]->data)) != 0) {
				lr_tensor_free(out[0]);
				out[0] = NULL;
				return rc;
			}
		if (to == 16)
			for (int64_t i = 0; x->data != NULL && i < x->nelem; i++)
				((float *)out[0]->data)[i] = round_bf16(((float *)out[0]->data)[i]);
		return 0;
	}
	if (x->dtype == dt && to != 16 && (t = lr_op_take(c, in, 0)) != NULL) {
		out[0] = t; /* an exact no-op keeps the buffer */
		return 0;
	}
	rc = lr__ty_out(c, &out[0], dt, x->ndim, x->dims, x->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	if (x->dtype == dt)
		memcpy(out[0]->data, x->data, lr_tensor_bytes(x));
	else
		lr_tensor_convert(x, dt, out[0]->data);
	if (to == 16)
		for (int64_t i = 0; i < x->nelem; i++)
			((float *)out[0]->data)[i] = round_bf16(((float *)out[0]->data)[i]);
	return 0;
}

/*
 * Cast: converts input 0 to the ONNX type in attribute 'to' (Cast-1 names
 * it as a string) with the semantics of lr_tensor_convert(): truncation
 * toward zero and wrap-around into integers, nonzero into bool, round to
 * nearest even into float16. Strings, complex and 8-bit floats are
 * refused.
 */
int lr_op_cast(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t to = lr_node_attr_int(c->node, "to", -1);
	int rc;

	(void)nout;
	if ((rc = lr__need_input(c, in, nin, 0)) != 0)
		return rc;
	if (c->opset < 6 && lr_node_attr(c->node, "to") != NULL) {
		/* Cast-1 names the type as a string: "FLOAT", "INT64", ... */
		static const char *const names[] = { "", "FLOAT", "UINT8", "INT8", "UINT16",
			"INT16", "INT32", "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE",
			"UINT32", "UINT64" };
		char buf[32];
		const char *tn = lr_node_attr_str(c->node, "to", "", buf, sizeof(buf));

		to = -2;
		for (int k = 1; k < (int)(sizeof(names) / sizeof(names[0])); k++)
			if (strcasecmp(tn, names[k]) == 0)
				to = k;
		if (to == -2)
			return lr_op_fail(c, LR_EMODEL, "attribute 'to' \"%s\" names no ONNX type", tn);
	}
	if (to == -1)
		return lr_op_fail(c, LR_EMODEL, "attribute 'to' is required");
	if (to < 0 || to > 1000)
		return lr_op_fail(c, LR_EUNSUPPORTED, "casting to ONNX type %lld is not supported",
				  (long long)to);
	return cast_to(c, in, out, (int)to);
}

/* CastLike (15): Cast of input 0 to the element type of input 1. */
int lr_op_castlike(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int rc;

	(void)nout;
	if ((rc = lr__need_input(c, in, nin, 0)) != 0 || (rc = lr__need_input(c, in, nin, 1)) != 0)
		return rc;
	return cast_to(c, in, out, (int)in[1]->dtype);
}

/* Byte strings a and b equal, ignoring ASCII case when `fold`. */
static int str_eq(const char *a, size_t la, const char *b, size_t lb, int fold)
{
	if (la != lb)
		return 0;
	for (size_t i = 0; i < la; i++)
		if (fold ? tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])
			 : a[i] != b[i])
			return 0;
	return 1;
}

/*
 * StringNormalizer (10): X of shape [C] or [1, C]; drops the stopwords
 * (compared exactly, or ignoring ASCII case unless is_case_sensitive),
 * then applies case_change_action (NONE, LOWER, UPPER) to ASCII letters;
 * other bytes (UTF-8) stay as they are and `locale` is not read. When
 * every string is dropped the output holds one empty string ([1] or
 * [1, 1]), as the operator specifies.
 */
int lr_op_stringnormalizer(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x;
	const Onnx__AttributeProto *sw = lr_node_attr(c->node, "stopwords");
	int sens = (int)lr_node_attr_int(c->node, "is_case_sensitive", 0), act, rc;
	char buf[16];
	const char *a = lr_node_attr_str(c->node, "case_change_action", "NONE", buf, sizeof(buf));
	const char **sv = NULL;
	size_t *lv = NULL;
	char *bytes = NULL;
	int64_t n = 0, dims[2];

	(void)nout;
	if ((rc = lr__need_input(c, in, nin, 0)) != 0)
		return rc;
	x = in[0];
	if (x->dtype != LR_DT_STRING)
		return lr_op_fail(c, LR_EMODEL, "input X must hold strings, it holds %s",
				  lr_dtype_name(x->dtype));
	if (!(x->ndim == 1 || (x->ndim == 2 && x->dims[0] == 1)))
		return lr_op_fail(c, LR_ESHAPE, "input X must have shape [C] or [1, C]");
	act = strcmp(a, "NONE") == 0 ? 0 : strcmp(a, "LOWER") == 0 ? 1 :
	      strcmp(a, "UPPER") == 0 ? 2 : -1;
	if (act < 0)
		return lr_op_fail(c, LR_EMODEL, "case_change_action \"%s\" is not NONE, LOWER or UPPER", a);
	if (x->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED, "the output's length depends on the strings; a dry run has none");
	sv = calloc((size_t)x->nelem + 1, sizeof(*sv));
	lv = calloc((size_t)x->nelem + 1, sizeof(*lv));
	bytes = malloc(lr_tensor_bytes(x) + 1);
	if (sv == NULL || lv == NULL || bytes == NULL) {
		rc = lr_op_fail(c, LR_ENOMEM, "out of memory");
		goto out;
	}
	{
		size_t used = 0;

		for (int64_t k = 0; k < x->nelem; k++) {
			size_t len;
			const char *s = lr_tensor_str(x, k, &len);
			int stop = 0;

			for (size_t w = 0; sw != NULL && w < sw->n_strings && !stop; w++)
				stop = str_eq(s, len, (const char *)sw->strings[w].data,
					      sw->strings[w].len, !sens);
			if (stop)
				continue;
			for (size_t i = 0; i < len; i++) {
				unsigned char ch = (unsigned char)s[i];

				bytes[used + i] = (char)(act == 1 && ch < 128 ? tolower(ch) :
							 act == 2 && ch < 128 ? toupper(ch) : ch);
			}
			sv[n] = bytes + used;
			lv[n++] = len;
			used += len;
		}
	}
	if (n == 0) {
		sv[0] = "";
		lv[0] = 0;
		n = 1;
	}
	dims[0] = x->ndim == 2 ? 1 : n;
	dims[1] = n;
	rc = lr_tensor_create_strings(&out[0], x->ndim, dims, sv, lv);
	if (rc != 0)
		rc = lr_op_fail(c, rc, "out of memory");
out:
	free(sv);
	free(lv);
	free(bytes);
	return rc;
}

/* ---- typed arithmetic ------------------------------------------------------ */

/*
 * The integer types: lr_dtype, C type, the unsigned type arithmetic runs
 * in (at least unsigned int, so nothing promotes to int and overflows),
 * and whether the type is signed.
 */
#define INT_TYPES(X)                                        \
	X(LR_DT_UINT8, uint8_t, uint32_t, 0)                \
	X(LR_DT_INT8, int8_t, uint32_t, 1)                  \
	X(LR_DT_UINT16, uint16_t, uint32_t, 0)              \
	X(LR_DT_INT16, int16_t, uint32_t, 1)                \
	X(LR_DT_INT32, int32_t, uint32_t, 1)                \
	X(LR_DT_UINT32, uint32_t, uint32_t, 0)              \
	X(LR_DT_INT64, int64_t, uint64_t, 1)                \
	X(LR_DT_UINT64, uint64_t, uint64_t, 0)

/* v < 0, as a call: for unsigned T the test is dead code, not a warning. */
static int is_neg(int64_t v)
{
	return v < 0;
}

/*
 * y = a (kind) b over broadcast bc, in the integer type T. Returns 0, or
 * LR_ENUMERIC for a zero divisor.
 */
#define DEF_INT_BINARY(DT, T, U, S)                                                   \
	static int ibin_##T(int kind, int fmod_, struct lr__bcast *bc, const void *pa,    \
			    const void *pb, void *py)                                  \
	{                                                                             \
		const T *a = pa, *b = pb;                                             \
		T *y = py;                                                            \
		for (int64_t o = 0; o < bc->n; o++, lr__bc_next(bc)) {                    \
			T x = a[bc->off[0]], z = b[bc->off[1]], r;                     \
			switch (kind) {                                               \
			case LR_TB_ADD: r = (T)((U)x + (U)z); break;                   \
			case LR_TB_SUB: r = (T)((U)x - (U)z); break;                   \
			case LR_TB_MUL: r = (T)((U)x * (U)z); break;                   \
			case LR_TB_MAX: r = x > z ? x : z; break;                      \
			case LR_TB_MIN: r = x < z ? x : z; break;                      \
			case LR_TB_DIV:                                                \
				if (z == 0)                                            \
					return LR_ENUMERIC;                            \
				r = (S && z == (T)-1) ? (T)(0u - (U)x) : (T)(x / z);   \
				break;                                                 \
			default: /* LR_TB_MOD */                                       \
				if (z == 0)                                            \
					return LR_ENUMERIC;                            \
				r = (S && z == (T)-1) ? (T)0 : (T)(x % z);             \
				if (!fmod_ && S && r != 0 &&                           \
				    is_neg((int64_t)r) != is_neg((int64_t)z))          \
					r = (T)((U)r + (U)z);                          \
				break;                                                 \
			}                                                             \
			y[o] = r;                                                     \
		}                                                                     \
		return 0;                                                             \
	}
INT_TYPES(DEF_INT_BINARY)

/* NaN-propagating max/min, as the float kernels. */
static double max_nan(double x, double y)
{
	return isnan(x) || isnan(y) ? NAN : x > y ? x : y;
}

static double min_nan(double x, double y)
{
	return isnan(x) || isnan(y) ? NAN : x < y ? x : y;
}

/* y = a (kind) b for two tensors of one type, or Pow of any two types. */
static int binary2(lr_opctx *c, const lr_tensor *a, const lr_tensor *b, int kind,
		   lr_tensor **y)
{
	const lr_tensor *t[2] = { a, b };
	int fmod_ = (int)lr_node_attr_int(c->node, "fmod", 0) != 0;
	struct lr__bcast bc;
	lr_dtype dt = a->dtype;
	int rc;

	*y = NULL;
	if (kind != LR_TB_POW && a->dtype != b->dtype)
		return lr_op_fail(c, LR_EUNSUPPORTED, "inputs have types %s and %s; they must match",
				  lr_dtype_name(a->dtype), lr_dtype_name(b->dtype));
	if (dt == LR_DT_BOOL)
		return lr_op_fail(c, LR_EMODEL, "bool inputs are not allowed");
	if (kind == LR_TB_MOD && lr_dtype_is_float(dt) && !fmod_)
		return lr_op_fail(c, LR_EMODEL, "Mod of %s inputs requires fmod=1",
				  lr_dtype_name(dt));
	if ((rc = lr__bc_init(c, t, 2, &bc)) != 0)
		return rc;
	if ((rc = lr__ty_out(c, y, dt, bc.nd, bc.dims, a->data != NULL && b->data != NULL)) != 0)
		return rc;
	if ((*y)->data == NULL)
		return 0;
	if (kind == LR_TB_POW || lr_dtype_is_float(dt)) {
		/* In double, rounded once to the output type (see DESIGN). */
		for (int64_t o = 0; o < bc.n; o++, lr__bc_next(&bc)) {
			double x = lr_tensor_get_f64(a, bc.off[0]), z = lr_tensor_get_f64(b, bc.off[1]), r;

			switch (kind) {
			case LR_TB_ADD: r = x + z; break;
			case LR_TB_SUB: r = x - z; break;
			case LR_TB_MUL: r = x * z; break;
			case LR_TB_DIV: r = x / z; break;
			case LR_TB_MOD: r = fmod(x, z); break;
			case LR_TB_MAX: r = max_nan(x, z); break;
			case LR_TB_MIN: r = min_nan(x, z); break;
			default: r = pow(x, z); break;
			}
			lr__put_f64(dt, (*y)->data, o, r);
		}
		return 0;
	}
	switch (dt) {
#define CASE_INT_BINARY(DT, T, U, S) \
	case DT: rc = ibin_##T(kind, fmod_, &bc, a->data, b->data, (*y)->data); break;
	INT_TYPES(CASE_INT_BINARY)
	default: rc = LR_EUNSUPPORTED; break;
	}
	if (rc != 0) {
		lr_tensor_free(*y);
		*y = NULL;
		return lr_op_fail(c, rc, rc == LR_ENUMERIC ? "integer division by zero"
							   : "type %s is not supported", lr_dtype_name(dt));
	}
	return 0;
}

int lr__typed_binary(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int kind)
{
	lr_tensor *acc = NULL;
	int rc;

	for (int i = 0; i < nin; i++)
		if ((rc = lr__need_input(c, in, nin, i)) != 0)
			return rc;
	if (nin == 1) { /* Max/Min of one input: a copy */
		rc = lr__ty_out(c, &out[0], in[0]->dtype, in[0]->ndim, in[0]->dims, in[0]->data != NULL);
		if (rc == 0 && out[0]->data != NULL)
			memcpy(out[0]->data, in[0]->data, lr_tensor_bytes(in[0]));
		return rc;
	}
	rc = binary2(c, in[0], in[1], kind, &acc);
	for (int i = 2; rc == 0 && i < nin; i++) { /* Max and Min fold left */
		lr_tensor *next = NULL;

		rc = binary2(c, acc, in[i], kind, &next);
		lr_tensor_free(acc);
		acc = next;
	}
	if (rc != 0)
		return rc;
	out[0] = acc;
	return 0;
}

/*
 * Clip on any numeric type: bounds from inputs 1 and 2 (same type as X;
 * absent: the type's range), NaN stays NaN. Before opset 11 the bounds
 * are float attributes, so only float32 reaches the float kernel there.
 */
int lr__typed_clip(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out)
{
	const lr_tensor *x = in[0];
	int uns = lr_dtype_is_unsigned(x->dtype), isf = lr_dtype_is_float(x->dtype);
	int have = x->data != NULL, rc;
	const lr_tensor *lo = nin > 1 ? in[1] : NULL, *hi = nin > 2 ? in[2] : NULL;

	if (c->opset < 11)
		return lr_op_fail(c, LR_EUNSUPPORTED, "Clip-%lld takes float32 only",
				  (long long)c->opset);
	for (int i = 1; i < nin; i++) {
		if (in[i] == NULL)
			continue;
		if ((rc = lr__same_type(c, in, 0, i)) != 0)
			return rc;
		if (in[i]->nelem != 1)
			return lr_op_fail(c, LR_ESHAPE, "input %d (%s) must be a scalar, got shape %s",
					  i, i == 1 ? "min" : "max", SHP(in[i]));
		have = have && in[i]->data != NULL;
	}
	if (x->dtype == LR_DT_BOOL)
		return lr_op_fail(c, LR_EMODEL, "Clip does not take bool");
	rc = lr__ty_out(c, &out[0], x->dtype, x->ndim, x->dims, have);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	for (int64_t k = 0; k < x->nelem; k++) {
		if (isf) {
			double v = lr_tensor_get_f64(x, k);

			if (lo != NULL && v < lr_tensor_get_f64(lo, 0))
				v = lr_tensor_get_f64(lo, 0);
			if (hi != NULL && v > lr_tensor_get_f64(hi, 0))
				v = lr_tensor_get_f64(hi, 0);
			lr__put_f64(x->dtype, out[0]->data, k, v);
		} else {
			int64_t v = lr_tensor_get_i64(x, k);

			if (lo != NULL) {
				int64_t l = lr_tensor_get_i64(lo, 0);

				if (uns ? (uint64_t)v < (uint64_t)l : v < l)
					v = l;
			}
			if (hi != NULL) {
				int64_t h = lr_tensor_get_i64(hi, 0);

				if (uns ? (uint64_t)v > (uint64_t)h : v > h)
					v = h;
			}
			lr__put_i64(x->dtype, out[0]->data, k, v);
		}
	}
	return 0;
}

/* ---- comparisons, logic, BitShift ---------------------------------------- */

enum cmp_kind { CMP_EQ, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

/* -1, 0 or 1 as a is below, equal to or above b; 2 when unordered (NaN). */
static int compare_at(const lr_tensor *a, int64_t ia, const lr_tensor *b, int64_t ib)
{
	if (lr_dtype_is_float(a->dtype)) {
		double x = lr_tensor_get_f64(a, ia), y = lr_tensor_get_f64(b, ib);

		return x < y ? -1 : x > y ? 1 : x == y ? 0 : 2;
	}
	if (lr_dtype_is_unsigned(a->dtype)) {
		uint64_t x = (uint64_t)lr_tensor_get_i64(a, ia), y = (uint64_t)lr_tensor_get_i64(b, ib);

		return x < y ? -1 : x > y ? 1 : 0;
	}
	{
		int64_t x = lr_tensor_get_i64(a, ia), y = lr_tensor_get_i64(b, ib);

		return x < y ? -1 : x > y ? 1 : 0;
	}
}

static int run_compare(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, enum cmp_kind k)
{
	const lr_tensor *t[2];
	struct lr__bcast bc;
	uint8_t *y;
	int rc;

	if ((rc = lr__need_input(c, in, nin, 0)) != 0 || (rc = lr__need_input(c, in, nin, 1)) != 0 ||
	    (rc = lr__same_type(c, in, 0, 1)) != 0)
		return rc;
	if (k != CMP_EQ && in[0]->dtype == LR_DT_BOOL)
		return lr_op_fail(c, LR_EMODEL, "bool inputs cannot be ordered");
	t[0] = in[0];
	t[1] = in[1];
	if ((rc = lr__bc_init(c, t, 2, &bc)) != 0)
		return rc;
	rc = lr__ty_out(c, &out[0], LR_DT_BOOL, bc.nd, bc.dims,
		    in[0]->data != NULL && in[1]->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	y = out[0]->data;
	for (int64_t o = 0; o < bc.n; o++, lr__bc_next(&bc)) {
		int r = compare_at(in[0], bc.off[0], in[1], bc.off[1]);

		switch (k) {
		case CMP_EQ: y[o] = r == 0; break;
		case CMP_LT: y[o] = r == -1; break;
		case CMP_LE: y[o] = r == -1 || r == 0; break;
		case CMP_GT: y[o] = r == 1; break;
		default: y[o] = r == 1 || r == 0; break;
		}
	}
	return 0;
}

/* Equal, Less, LessOrEqual, Greater, GreaterOrEqual: bool, broadcasting. */
int lr_op_equal(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_compare(c, in, nin, out, CMP_EQ);
}

int lr_op_less(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_compare(c, in, nin, out, CMP_LT);
}

int lr_op_lessorequal(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_compare(c, in, nin, out, CMP_LE);
}

int lr_op_greater(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_compare(c, in, nin, out, CMP_GT);
}

int lr_op_greaterorequal(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_compare(c, in, nin, out, CMP_GE);
}

enum logic_kind { LOG_AND, LOG_OR, LOG_XOR, SHIFT_LEFT, SHIFT_RIGHT };

/* And/Or/Xor on bool, BitShift on unsigned integers; broadcasting. */
static int run_logic(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, enum logic_kind k)
{
	const lr_tensor *t[2];
	struct lr__bcast bc;
	lr_dtype dt;
	int rc;

	if ((rc = lr__need_input(c, in, nin, 0)) != 0 || (rc = lr__need_input(c, in, nin, 1)) != 0 ||
	    (rc = lr__same_type(c, in, 0, 1)) != 0)
		return rc;
	dt = in[0]->dtype;
	if (k <= LOG_XOR && dt != LR_DT_BOOL)
		return lr_op_fail(c, LR_EMODEL, "inputs must be bool, got %s", lr_dtype_name(dt));
	if (k > LOG_XOR && (dt == LR_DT_BOOL || !lr_dtype_is_unsigned(dt)))
		return lr_op_fail(c, LR_EMODEL, "inputs must be unsigned integers, got %s",
				  lr_dtype_name(dt));
	t[0] = in[0];
	t[1] = in[1];
	if ((rc = lr__bc_init(c, t, 2, &bc)) != 0)
		return rc;
	rc = lr__ty_out(c, &out[0], dt, bc.nd, bc.dims, in[0]->data != NULL && in[1]->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	for (int64_t o = 0; o < bc.n; o++, lr__bc_next(&bc)) {
		uint64_t x = (uint64_t)lr_tensor_get_i64(in[0], bc.off[0]);
		uint64_t z = (uint64_t)lr_tensor_get_i64(in[1], bc.off[1]), r;
		uint64_t bits = 8 * (uint64_t)lr_dtype_size(dt);

		switch (k) {
		case LOG_AND: r = x && z; break;
		case LOG_OR: r = x || z; break;
		case LOG_XOR: r = (x != 0) != (z != 0); break;
		case SHIFT_LEFT: r = z >= bits ? 0 : x << z; break;  /* lr__put_i64 keeps the low bits */
		default: r = z >= bits ? 0 : x >> z; break;
		}
		lr__put_i64(dt, out[0]->data, o, (int64_t)r);
	}
	return 0;
}

int lr_op_and(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_logic(c, in, nin, out, LOG_AND);
}

int lr_op_or(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_logic(c, in, nin, out, LOG_OR);
}

int lr_op_xor(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_logic(c, in, nin, out, LOG_XOR);
}

/* BitShift (11): attribute direction "LEFT" or "RIGHT"; unsigned types. */
int lr_op_bitshift(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	char buf[16];
	const char *d = lr_node_attr_str(c->node, "direction", "", buf, sizeof(buf));

	(void)nout;
	if (strcmp(d, "LEFT") == 0)
		return run_logic(c, in, nin, out, SHIFT_LEFT);
	if (strcmp(d, "RIGHT") == 0)
		return run_logic(c, in, nin, out, SHIFT_RIGHT);
	return lr_op_fail(c, LR_EMODEL, "attribute 'direction' must be \"LEFT\" or \"RIGHT\", got \"%s\"", d);
}

/* Not: logical negation of a bool tensor. */
int lr_op_not(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x;
	int rc;

	(void)nout;
	if ((rc = lr__need_input(c, in, nin, 0)) != 0)
		return rc;
	x = in[0];
	if (x->dtype != LR_DT_BOOL)
		return lr_op_fail(c, LR_EMODEL, "input 0 must be bool, got %s", lr_dtype_name(x->dtype));
	rc = lr__ty_out(c, &out[0], LR_DT_BOOL, x->ndim, x->dims, x->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	for (int64_t k = 0; k < x->nelem; k++)
		((uint8_t *)out[0]->data)[k] = !((const uint8_t *)x->data)[k];
	return 0;
}

/* ---- Where, IsInf, IsNaN, NonZero, Compress ------------------------------- */

/* Where: cond ? X : Y elementwise, all three broadcasting; cond is bool. */
int lr_op_where(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *t[3];
	struct lr__bcast bc;
	size_t es;
	int rc;

	(void)nout;
	for (int i = 0; i < 3; i++)
		if ((rc = lr__need_input(c, in, nin, i)) != 0)
			return rc;
	if (in[0]->dtype != LR_DT_BOOL)
		return lr_op_fail(c, LR_EMODEL, "input 0 (condition) must be bool, got %s",
				  lr_dtype_name(in[0]->dtype));
	if ((rc = lr__same_type(c, in, 1, 2)) != 0)
		return rc;
	for (int i = 0; i < 3; i++)
		t[i] = in[i];
	if ((rc = lr__bc_init(c, t, 3, &bc)) != 0)
		return rc;
	rc = lr__ty_out(c, &out[0], in[1]->dtype, bc.nd, bc.dims,
		    in[0]->data != NULL && in[1]->data != NULL && in[2]->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	es = lr_dtype_size(in[1]->dtype);
	for (int64_t o = 0; o < bc.n; o++, lr__bc_next(&bc)) {
		int pick = ((const uint8_t *)in[0]->data)[bc.off[0]] ? 1 : 2;

		memcpy((char *)out[0]->data + (size_t)o * es,
		       (const char *)in[pick]->data + (size_t)bc.off[pick] * es, es);
	}
	return 0;
}

/* Common part of IsInf and IsNaN: a bool map of a float-type input. */
static int float_test(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int inf)
{
	int pos = (int)lr_node_attr_int(c->node, "detect_positive", 1) != 0;
	int neg = (int)lr_node_attr_int(c->node, "detect_negative", 1) != 0;
	const lr_tensor *x;
	int rc;

	if ((rc = lr__need_input(c, in, nin, 0)) != 0)
		return rc;
	x = in[0];
	if (!lr_dtype_is_float(x->dtype))
		return lr_op_fail(c, LR_EMODEL, "input 0 must be a float type, got %s",
				  lr_dtype_name(x->dtype));
	rc = lr__ty_out(c, &out[0], LR_DT_BOOL, x->ndim, x->dims, x->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	for (int64_t k = 0; k < x->nelem; k++) {
		double v = lr_tensor_get_f64(x, k);

		((uint8_t *)out[0]->data)[k] = inf ? isinf(v) && (v > 0 ? pos : neg) : isnan(v) != 0;
	}
	return 0;
}

/* IsInf (10): detect_positive / detect_negative select the infinities. */
int lr_op_isinf(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return float_test(c, in, nin, out, 1);
}

/* IsNaN (9). */
int lr_op_isnan(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return float_test(c, in, nin, out, 0);
}

/* 1 when element k of t is nonzero (NaN counts as nonzero). */
static int nonzero_at(const lr_tensor *t, int64_t k)
{
	size_t es = lr_dtype_size(t->dtype);
	const unsigned char *p = (const unsigned char *)t->data + (size_t)k * es;

	if (lr_dtype_is_float(t->dtype))
		return lr_tensor_get_f64(t, k) != 0.0;
	for (size_t i = 0; i < es; i++)
		if (p[i] != 0)
			return 1;
	return 0;
}

/*
 * NonZero (9): the indices of the nonzero elements, int64 of shape
 * [rank, count] in row-major order. The count depends on the values, so
 * the input must have data (also in dry runs).
 */
int lr_op_nonzero(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x;
	int64_t count = 0, dims[2], *y;
	int rc;

	(void)nout;
	if ((rc = lr__need_input(c, in, nin, 0)) != 0)
		return rc;
	x = in[0];
	if (x->data == NULL)
		return lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL,
				  "its output shape depends on the values of input 0, which has no data");
	for (int64_t k = 0; k < x->nelem; k++)
		count += nonzero_at(x, k);
	dims[0] = x->ndim;
	dims[1] = count;
	rc = lr__ty_out(c, &out[0], LR_DT_INT64, 2, dims, 1);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	y = out[0]->data;
	for (int64_t k = 0, j = 0; k < x->nelem; k++) {
		int64_t rem = k;

		if (!nonzero_at(x, k))
			continue;
		for (int d = x->ndim - 1; d >= 0; d--) {
			y[d * count + j] = rem % x->dims[d];
			rem /= x->dims[d];
		}
		j++;
	}
	return 0;
}

/*
 * Compress (9, 11): keeps the slices along 'axis' (absent: of the
 * flattened input) whose entry in the 1-D bool condition is true; a
 * condition shorter than the axis drops the rest. The condition must have
 * data (it decides the output shape).
 */
int lr_op_compress(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x, *cond;
	int64_t dims[LR_MAX_DIMS], outer = 1, inner = 1, len, kept = 0;
	const uint8_t *cv;
	int ndim, a = -1, rc;
	size_t es;
	char *y;

	(void)nout;
	if ((rc = lr__need_input(c, in, nin, 0)) != 0 || (rc = lr__need_input(c, in, nin, 1)) != 0)
		return rc;
	x = in[0];
	cond = in[1];
	if (cond->dtype != LR_DT_BOOL || cond->ndim != 1)
		return lr_op_fail(c, LR_EMODEL, "input 1 (condition) must be a 1-D bool tensor, got %s %s",
				  lr_dtype_name(cond->dtype), SHP(cond));
	if (cond->data == NULL)
		return lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL,
				  "input 1 (condition) has no data; it decides the output shape");
	if (lr_node_attr(c->node, "axis") != NULL &&
	    (rc = lr_op_axis(c, lr_node_attr_int(c->node, "axis", 0), x->ndim, &a)) != 0)
		return rc;
	if (a < 0) {
		len = x->nelem;
		ndim = 1;
	} else {
		len = x->dims[a];
		ndim = x->ndim;
		memcpy(dims, x->dims, sizeof(dims));
		for (int d = 0; d < a; d++)
			outer *= x->dims[d];
		for (int d = a + 1; d < x->ndim; d++)
			inner *= x->dims[d];
	}
	if (cond->dims[0] > len)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (condition) has %lld entries for an axis of %lld",
				  (long long)cond->dims[0], (long long)len);
	cv = cond->data;
	for (int64_t i = 0; i < cond->dims[0]; i++)
		kept += cv[i] != 0;
	if (a < 0)
		dims[0] = kept;
	else
		dims[a] = kept;
	rc = lr__ty_out(c, &out[0], x->dtype, ndim, dims, x->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	es = lr_dtype_size(x->dtype);
	y = out[0]->data;
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < cond->dims[0]; i++) {
			if (!cv[i])
				continue;
			memcpy(y, (const char *)x->data + (size_t)((o * len + i) * inner) * es,
			       (size_t)inner * es);
			y += (size_t)inner * es;
		}
	return 0;
}

/* ---- Einsum ---------------------------------------------------------------- */

#define EIN_LABELS 64   /* 52 letters, then the axes an ellipsis stands for */
#define EIN_MAX_IN 8

/*
 * Parses one term of an Einsum equation (letters and at most one "...")
 * for a tensor of rank `rank` (-1: the output, whose ellipsis length is
 * `ell`) into labels[]; returns the term's rank or a negative code.
 * Ellipsis axes get labels 52 + (ell - k) .. 52 + ell - 1, right-aligned.
 */
static int ein_term(lr_opctx *c, const char *p, const char *e, int rank, int ell,
		    int *labels)
{
	int n = 0, letters = 0, seen_ell = 0;

	for (const char *q = p; q < e; q++)
		letters += (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z');
	while (p < e) {
		if (*p == ' ') {
			p++;
		} else if (*p == '.' && e - p >= 3 && p[1] == '.' && p[2] == '.' && !seen_ell) {
			int k = rank < 0 ? ell : rank - letters;

			if (k < 0 || k > ell || n + k > LR_MAX_DIMS)
				return lr_op_fail(c, LR_EMODEL, "the ellipsis does not fit the input's rank");
			for (int i = 0; i < k; i++)
				labels[n++] = 52 + (ell - k) + i;
			seen_ell = 1;
			p += 3;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
			if (n >= LR_MAX_DIMS)
				return lr_op_fail(c, LR_EMODEL, "a term has more than %d axes", LR_MAX_DIMS);
			labels[n++] = *p >= 'a' ? *p - 'a' : 26 + *p - 'A';
			p++;
		} else {
			return lr_op_fail(c, LR_EMODEL, "bad character '%c' in the equation", *p);
		}
	}
	if (rank >= 0 && n != rank)
		return lr_op_fail(c, LR_EMODEL, "a term has %d axes for an input of rank %d", n, rank);
	return n;
}

/*
 * Einsum (12): sums products over the labels the output does not keep;
 * any number of inputs of one numeric type, repeated labels (diagonals),
 * "..." for leading axes (broadcast between inputs), and the implicit
 * output (labels used once, alphabetical, after the ellipsis axes). A
 * plain loop over every label combination (at most 2^27), accumulating
 * in double for float types and in wrapping int64 for integers.
 */
int lr_op_einsum(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	char eqbuf[512];
	const char *eq = lr_node_attr_str(c->node, "equation", "", eqbuf, sizeof(eqbuf));
	const char *arrow = strstr(eq, "->"), *end = arrow ? arrow : eq + strlen(eq), *p = eq;
	int lab[EIN_MAX_IN][LR_MAX_DIMS], olab[LR_MAX_DIMS], nl[EIN_MAX_IN], no = 0;
	int64_t ext[EIN_LABELS], odims[LR_MAX_DIMS], total = 1;
	int used[EIN_LABELS] = { 0 }, all[EIN_LABELS], nall = 0, ell = 0, rc;
	int64_t idx[EIN_LABELS] = { 0 };
	lr_dtype dt;
	int isf, have = 1;

	(void)nout;
	if (nin < 1 || nin > EIN_MAX_IN)
		return lr_op_fail(c, LR_EUNSUPPORTED, "%d inputs (1 to %d are supported)", nin, EIN_MAX_IN);
	for (int i = 0; i < nin; i++) {
		if ((rc = lr__need_input(c, in, nin, i)) != 0 || (rc = lr__same_type(c, in, 0, i)) != 0)
			return rc;
		have = have && in[i]->data != NULL;
	}
	dt = in[0]->dtype;
	if (dt == LR_DT_BOOL || dt == LR_DT_FLOAT16)
		return lr_op_fail(c, LR_EUNSUPPORTED, "inputs of type %s are not supported", lr_dtype_name(dt));
	isf = lr_dtype_is_float(dt);
	for (int i = 0; i < nin; i++) {
		const char *q = strchr(p, ',');
		const char *te = (i == nin - 1) ? end : q;
		int letters = 0;

		if (te == NULL || te > end || (i == nin - 1 && q != NULL && q < end))
			return lr_op_fail(c, LR_EMODEL, "equation '%s' does not have %d input terms", eq, nin);
		for (const char *r = p; r < te; r++)
			letters += (*r >= 'a' && *r <= 'z') || (*r >= 'A' && *r <= 'Z');
		if (strstr(p, "...") != NULL && strstr(p, "...") < te && in[i]->ndim - letters > ell)
			ell = in[i]->ndim - letters;
		p = te + 1;
	}
	p = eq;
	for (int i = 0; i < nin; i++) {
		const char *te = (i == nin - 1) ? end : strchr(p, ',');

		if ((nl[i] = ein_term(c, p, te, in[i]->ndim, ell, lab[i])) < 0)
			return nl[i];
		p = te + 1;
	}
	for (int l = 0; l < EIN_LABELS; l++)
		ext[l] = -1;
	for (int i = 0; i < nin; i++)
		for (int k = 0; k < nl[i]; k++) {
			int l = lab[i][k];
			int64_t d = in[i]->dims[k];

			used[l]++;
			if (ext[l] < 0 || ext[l] == 1)
				ext[l] = d;
			else if (d != ext[l] && !(l >= 52 && d == 1))
				return lr_op_fail(c, LR_ESHAPE, "label '%c' has extents %lld and %lld",
						  l < 26 ? 'a' + l : l < 52 ? 'A' + l - 26 : '.',
						  (long long)ext[l], (long long)d);
		}
	if (arrow != NULL) {
		if ((no = ein_term(c, arrow + 2, arrow + 2 + strlen(arrow + 2), -1, ell, olab)) < 0)
			return no;
		for (int k = 0; k < no; k++)
			if (ext[olab[k]] < 0)
				return lr_op_fail(c, LR_EMODEL, "output label %d is not in any input", olab[k]);
	} else {
		for (int l = 52; l < 52 + ell; l++)
			olab[no++] = l;
		for (int u = 0; u < 52 && no < LR_MAX_DIMS; u++) {
			int l = (u + 26) % 52; /* ASCII order: 'A'..'Z' before 'a'..'z' */

			if (used[l] == 1)
				olab[no++] = l;
		}
	}
	for (int k = 0; k < no; k++)
		odims[k] = ext[olab[k]];
	for (int l = 0; l < EIN_LABELS; l++)
		if (ext[l] >= 0) {
			all[nall++] = l;
			if (ext[l] > 0 && total > ((int64_t)1 << 27) / ext[l])
				return lr_op_fail(c, LR_ELIMIT, "more than 2^27 products to sum (this generic Einsum is a plain loop)");
			total *= ext[l];
		}
	rc = lr__ty_out(c, &out[0], dt, no, odims, have);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	{
		double *accf = NULL;
		uint64_t *acci = NULL;
		int64_t on = out[0]->nelem;

		if (isf)
			accf = calloc((size_t)(on ? on : 1), sizeof(double));
		else
			acci = calloc((size_t)(on ? on : 1), sizeof(uint64_t));
		if (accf == NULL && acci == NULL) {
			lr_tensor_free(out[0]);
			out[0] = NULL;
			return lr_op_fail(c, LR_ENOMEM, "out of memory");
		}
		for (int64_t t = 0; t < total; t++) {
			int64_t o = 0;
			double pf = 1.0;
			uint64_t pi = 1;

			for (int i = 0; i < nin; i++) {
				int64_t off = 0;

				for (int k = 0; k < nl[i]; k++)
					off = off * in[i]->dims[k] + (in[i]->dims[k] == 1 ? 0 : idx[lab[i][k]]);
				if (isf)
					pf *= lr_tensor_get_f64(in[i], off);
				else
					pi *= (uint64_t)lr_tensor_get_i64(in[i], off);
			}
			for (int k = 0; k < no; k++)
				o = o * odims[k] + idx[olab[k]];
			if (isf)
				accf[o] += pf;
			else
				acci[o] += pi;
			for (int a = nall - 1; a >= 0; a--) { /* odometer over every label */
				if (++idx[all[a]] < ext[all[a]])
					break;
				idx[all[a]] = 0;
			}
		}
		for (int64_t o = 0; o < on; o++) {
			if (isf)
				lr__put_f64(dt, out[0]->data, o, accf[o]);
			else
				lr__put_i64(dt, out[0]->data, o, (int64_t)acci[o]);
		}
		free(accf);
		free(acci);
	}
	return 0;
}

/* ---- MaxPool on integer types ------------------------------------------------ */

/*
 * MaxPool (8, 10, 11, 12) of int8 and uint8 (opset 12) and the other
 * integer types: 1-D or 2-D windows with strides, dilations, pads,
 * auto_pad and ceil_mode, padding never winning; the Indices output is
 * left to the float kernel. float32 goes to lr_op_maxpool in ops_pool.c,
 * unchanged.
 */
int lr_op_maxpool_any(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t kernel[2] = { 1, 1 }, dims[4];
	const lr_tensor *x;
	struct lr_geom g;
	int nk = 0, rc;

	if (nin < 1 || in[0] == NULL || in[0]->dtype == LR_DT_FLOAT)
		return lr_op_maxpool(c, in, nin, out, nout);
	x = in[0];
	if (lr_dtype_is_float(x->dtype) || x->dtype == LR_DT_BOOL)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 has type %s; MaxPool takes float32 and integer types",
				  lr_dtype_name(x->dtype));
	if (nout > 1 && c->node->out[1] >= 0)
		return lr_op_fail(c, LR_EUNSUPPORTED, "the Indices output is supported for float32 only");
	if (x->ndim != 3 && x->ndim != 4)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 of shape %s: 1-D and 2-D pooling are supported",
				  SHP(x));
	if (lr_node_attr_ints(c->node, "kernel_shape", kernel, 2, &nk) != 0 || nk != x->ndim - 2)
		return lr_op_fail(c, LR_EMODEL, "attribute 'kernel_shape' must have %d entries", x->ndim - 2);
	if (lr_node_attr_int(c->node, "storage_order", 0) != 0)
		return lr_op_fail(c, LR_EUNSUPPORTED, "storage_order=1 is supported for float32 only");
	rc = lr__window_geom(c, x, kernel, (int)lr_node_attr_int(c->node, "ceil_mode", 0) != 0, &g);
	if (rc != 0)
		return rc;
	dims[0] = g.n;
	dims[1] = g.c;
	dims[2] = x->ndim == 4 ? g.oh : g.ow;
	dims[3] = g.ow;
	rc = lr__ty_out(c, &out[0], x->dtype, x->ndim, dims, x->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	for (int64_t p = 0; p < g.n * g.c; p++)
		for (int64_t oy = 0; oy < g.oh; oy++)
			for (int64_t ox = 0; ox < g.ow; ox++) {
				int64_t best = 0, any = 0;
				int uns = lr_dtype_is_unsigned(x->dtype);

				for (int64_t ky = 0; ky < g.kh; ky++)
					for (int64_t kx = 0; kx < g.kw; kx++) {
						int64_t iy = oy * g.sh - g.pt + ky * g.dh;
						int64_t ix = ox * g.sw - g.pl + kx * g.dw, v;

						if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w)
							continue;
						v = lr_tensor_get_i64(x, (p * g.h + iy) * g.w + ix);
						if (!any || (uns ? (uint64_t)v > (uint64_t)best : v > best))
							best = v;
						any = 1;
					}
				lr__put_i64(x->dtype, out[0]->data, (p * g.oh + oy) * g.ow + ox, best);
			}
	return 0;
}
