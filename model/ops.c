/*
 * ops.c - the operator registry and helpers shared by all kernels.
 * See ops.h for the kernel contract.
 */
#include "config.h"

#include "model/ops.h"

/* Largest int64 tensor a kernel may create (16 Mi elements, 128 MiB). */
#define LR_INT64_MAX_ELEMS ((int64_t)1 << 24)

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lr_op_def op_table[] = {
	/* op_type, kernel, min_in, max_in, min_out, max_out, native_in, double_in */
	{ "Conv", lr_op_conv, 2, 3, 1, 1, 0u, 0u },
	{ "Gemm", lr_op_gemm, 2, 3, 1, 1, 0u, 0u },
	{ "MatMul", lr_op_matmul, 2, 2, 1, 1, 0u, 0u },
	{ "MaxPool", lr_op_maxpool_any, 1, 1, 1, 2, 1u, 0u }, /* float32: lr_op_maxpool */
	{ "AveragePool", lr_op_averagepool, 1, 1, 1, 1, 0u, 0u },
	{ "GlobalAveragePool", lr_op_globalaveragepool, 1, 1, 1, 1, 0u, 0u },
	{ "GlobalMaxPool", lr_op_globalmaxpool, 1, 1, 1, 1, 0u, 0u },
	{ "LpPool", lr_op_lppool, 1, 1, 1, 1, 0u, 0u },
	{ "GlobalLpPool", lr_op_globallppool, 1, 1, 1, 1, 0u, 0u },
	{ "Relu", lr_op_relu, 1, 1, 1, 1, 1u, 0u },
	{ "LeakyRelu", lr_op_leakyrelu, 1, 1, 1, 1, 1u, 0u },
	{ "PRelu", lr_op_prelu, 2, 2, 1, 1, 0u, 0u },
	{ "Clip", lr_op_clip, 1, 3, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Sigmoid", lr_op_sigmoid, 1, 1, 1, 1, 1u, 0u },
	{ "HardSigmoid", lr_op_hardsigmoid, 1, 1, 1, 1, 1u, 0u },
	{ "HardSwish", lr_op_hardswish, 1, 1, 1, 1, 1u, 0u },
	{ "Tanh", lr_op_tanh, 1, 1, 1, 1, 1u, 0u },
	{ "Elu", lr_op_elu, 1, 1, 1, 1, 1u, 0u },
	{ "Add", lr_op_add, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Sub", lr_op_sub, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Mul", lr_op_mul, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Div", lr_op_div, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Pow", lr_op_pow, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Mod", lr_op_mod, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Max", lr_op_max, 1, 4096, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Min", lr_op_min, 1, 4096, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Sum", lr_op_sum, 1, 4096, 1, 1, 0u, 0u },
	{ "Mean", lr_op_mean, 1, 4096, 1, 1, 0u, 0u },
	{ "BatchNormalization", lr_op_batchnorm, 5, 5, 1, 5, 0u, 0u },
	{ "LRN", lr_op_lrn, 1, 1, 1, 1, 0u, 0u },
	{ "Softmax", lr_op_softmax, 1, 1, 1, 1, 0u, 0u },
	{ "LogSoftmax", lr_op_logsoftmax, 1, 1, 1, 1, 0u, 0u },
	{ "ReduceMean", lr_op_reducemean, 1, 2, 1, 1, 0u, 0u },
	{ "Resize", lr_op_resize, 1, 4, 1, 1, 0u, 0u },
	{ "Upsample", lr_op_upsample, 1, 2, 1, 1, 0u, 0u },
	{ "Concat", lr_op_concat, 1, 4096, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Split", lr_op_split, 1, 2, 1, 4096, 1u, 0u },
	{ "Flatten", lr_op_flatten, 1, 1, 1, 1, 1u, 0u },
	{ "Reshape", lr_op_reshape, 1, 2, 1, 1, 1u, 0u },
	{ "Transpose", lr_op_transpose, 1, 1, 1, 1, 1u, 0u },
	{ "Squeeze", lr_op_squeeze, 1, 2, 1, 1, 1u, 0u },
	{ "Unsqueeze", lr_op_unsqueeze, 1, 2, 1, 1, 1u, 0u },
	{ "Identity", lr_op_identity, 1, 1, 1, 1, 1u, 0u },
	{ "Dropout", lr_op_dropout, 1, 3, 1, 2, 1u, 0u },
	{ "Constant", lr_op_constant, 0, 0, 1, 1, 0u, 0u },
	{ "Shape", lr_op_shape, 1, 1, 1, 1, 1u, 0u },
	{ "Gather", lr_op_gather, 2, 2, 1, 1, 1u, 0u },
	{ "Slice", lr_op_slice, 1, 5, 1, 1, 1u, 0u },
	{ "Pad", lr_op_pad, 1, 4, 1, 1, 1u, 0u },
	{ "Cast", lr_op_cast, 1, 1, 1, 1, 1u, 0u },
	{ "Abs", lr_op_abs, 1, 1, 1, 1, 1u, 0u },
	{ "Neg", lr_op_neg, 1, 1, 1, 1, 1u, 0u },
	{ "Sign", lr_op_sign, 1, 1, 1, 1, 1u, 0u },
	{ "Exp", lr_op_exp, 1, 1, 1, 1, 1u, 0u },
	{ "Log", lr_op_log, 1, 1, 1, 1, 1u, 0u },
	{ "Sqrt", lr_op_sqrt, 1, 1, 1, 1, 1u, 0u },
	{ "Reciprocal", lr_op_reciprocal, 1, 1, 1, 1, 1u, 0u },
	{ "Floor", lr_op_floor, 1, 1, 1, 1, 1u, 0u },
	{ "Ceil", lr_op_ceil, 1, 1, 1, 1, 1u, 0u },
	{ "Round", lr_op_round, 1, 1, 1, 1, 1u, 0u },
	{ "Erf", lr_op_erf, 1, 1, 1, 1, 1u, 0u },
	{ "Sin", lr_op_sin, 1, 1, 1, 1, 1u, 0u },
	{ "Cos", lr_op_cos, 1, 1, 1, 1, 1u, 0u },
	{ "Tan", lr_op_tan, 1, 1, 1, 1, 1u, 0u },
	{ "Asin", lr_op_asin, 1, 1, 1, 1, 1u, 0u },
	{ "Acos", lr_op_acos, 1, 1, 1, 1, 1u, 0u },
	{ "Atan", lr_op_atan, 1, 1, 1, 1, 1u, 0u },
	{ "Sinh", lr_op_sinh, 1, 1, 1, 1, 1u, 0u },
	{ "Cosh", lr_op_cosh, 1, 1, 1, 1, 1u, 0u },
	{ "Asinh", lr_op_asinh, 1, 1, 1, 1, 1u, 0u },
	{ "Acosh", lr_op_acosh, 1, 1, 1, 1, 1u, 0u },
	{ "Atanh", lr_op_atanh, 1, 1, 1, 1, 1u, 0u },
	{ "Softplus", lr_op_softplus, 1, 1, 1, 1, 1u, 0u },
	{ "Softsign", lr_op_softsign, 1, 1, 1, 1, 1u, 0u },
	{ "Mish", lr_op_mish, 1, 1, 1, 1, 1u, 0u },
	{ "Selu", lr_op_selu, 1, 1, 1, 1, 1u, 0u },
	{ "Celu", lr_op_celu, 1, 1, 1, 1, 1u, 0u },
	{ "Gelu", lr_op_gelu, 1, 1, 1, 1, 1u, 0u },
	{ "ThresholdedRelu", lr_op_thresholdedrelu, 1, 1, 1, 1, 1u, 0u },
	{ "Shrink", lr_op_shrink, 1, 1, 1, 1, 1u, 0u },
	{ "ReduceSum", lr_op_reducesum, 1, 2, 1, 1, 1u, 1u },
	{ "ReduceMax", lr_op_reducemax, 1, 2, 1, 1, 1u, 1u },
	{ "ReduceMin", lr_op_reducemin, 1, 2, 1, 1, 1u, 1u },
	{ "ReduceProd", lr_op_reduceprod, 1, 2, 1, 1, 1u, 1u },
	{ "ReduceL1", lr_op_reducel1, 1, 2, 1, 1, 0u, 1u },
	{ "ReduceL2", lr_op_reducel2, 1, 2, 1, 1, 0u, 1u },
	{ "ReduceLogSum", lr_op_reducelogsum, 1, 2, 1, 1, 0u, 1u },
	{ "ReduceLogSumExp", lr_op_reducelogsumexp, 1, 2, 1, 1, 0u, 1u },
	{ "ReduceSumSquare", lr_op_reducesumsquare, 1, 2, 1, 1, 0u, 1u },
	{ "ArgMax", lr_op_argmax, 1, 1, 1, 1, 0u, 0u },
	{ "ArgMin", lr_op_argmin, 1, 1, 1, 1, 0u, 0u },
	{ "Expand", lr_op_expand, 2, 2, 1, 1, 1u, 0u },
	{ "Tile", lr_op_tile, 2, 3, 1, 1, 1u, 0u },
	{ "ConstantOfShape", lr_op_constantofshape, 1, 1, 1, 1, 0u, 0u },
	{ "Range", lr_op_range, 3, 3, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Size", lr_op_size, 1, 1, 1, 1, 1u, 0u },
	{ "EyeLike", lr_op_eyelike, 1, 1, 1, 1, 1u, 0u },
	{ "Trilu", lr_op_trilu, 1, 2, 1, 1, 0u, 0u },
	{ "DepthToSpace", lr_op_depthtospace, 1, 1, 1, 1, 1u, 0u },
	{ "SpaceToDepth", lr_op_spacetodepth, 1, 1, 1, 1, 1u, 0u },
	{ "CumSum", lr_op_cumsum, 2, 2, 1, 1, 1u, 0u },
	{ "GatherElements", lr_op_gatherelements, 2, 2, 1, 1, 1u, 0u },
	{ "OneHot", lr_op_onehot, 3, 3, 1, 1, 4u, 0u },
	{ "TfIdfVectorizer", lr_op_tfidfvectorizer, 1, 1, 1, 1, 0u, 0u },
	{ "If", lr_op_if, 1, 1, 1, 4096, LR_NATIVE_ALL, 0u },
	{ "Loop", lr_op_loop, 0, 4096, 0, 4096, LR_NATIVE_ALL, 0u }, /* M and cond optional */
	{ "Scan", lr_op_scan, 0, 4096, 1, 4096, LR_NATIVE_ALL, 0u }, /* opset 8: input 0 optional */
	{ "InstanceNormalization", lr_op_instancenorm, 3, 3, 1, 1, 0u, 0u },
	{ "LayerNormalization", lr_op_layernorm, 2, 3, 1, 3, 0u, 0u },
	{ "MeanVarianceNormalization", lr_op_mvn, 1, 1, 1, 1, 0u, 0u },
	{ "LpNormalization", lr_op_lpnorm, 1, 1, 1, 1, 0u, 0u },
	{ "Hardmax", lr_op_hardmax, 1, 1, 1, 1, 0u, 0u },
	{ "ConvTranspose", lr_op_convtranspose, 2, 3, 1, 1, 0u, 0u },
	{ "NegativeLogLikelihoodLoss", lr_op_nllloss, 2, 3, 1, 1, 0u, 0u },
	{ "SoftmaxCrossEntropyLoss", lr_op_sceloss, 2, 3, 1, 2, 0u, 0u },
	{ "TopK", lr_op_topk, 1, 2, 1, 2, 0u, 0u },
	{ "GatherND", lr_op_gathernd, 2, 2, 1, 1, 1u, 0u },
	{ "ScatterElements", lr_op_scatterelements, 3, 3, 1, 1, 0u, 0u },
	{ "Scatter", lr_op_scatterelements, 3, 3, 1, 1, 0u, 0u },
	{ "ScatterND", lr_op_scatternd, 3, 3, 1, 1, 0u, 0u },
	{ "NonMaxSuppression", lr_op_nms, 2, 5, 1, 1, 0u, 0u },
	{ "RoiAlign", lr_op_roialign, 3, 3, 1, 1, 0u, 0u },
	{ "GridSample", lr_op_gridsample, 2, 2, 1, 1, 0u, 0u },
	{ "Det", lr_op_det, 1, 1, 1, 1, 0u, 0u },
	{ "ReverseSequence", lr_op_reversesequence, 2, 2, 1, 1, 0u, 0u },
	{ "Unique", lr_op_unique, 1, 1, 1, 4, 0u, 0u },
	{ "MaxUnpool", lr_op_maxunpool, 2, 3, 1, 1, 0u, 0u },
	{ "RNN", lr_op_rnn, 3, 6, 1, 2, 0u, 0u },
	{ "GRU", lr_op_gru, 3, 6, 1, 2, 0u, 0u },
	{ "LSTM", lr_op_lstm, 3, 8, 1, 3, 0u, 0u },
	{ "CastLike", lr_op_castlike, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "StringNormalizer", lr_op_stringnormalizer, 1, 1, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Equal", lr_op_equal, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Less", lr_op_less, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "LessOrEqual", lr_op_lessorequal, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Greater", lr_op_greater, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "GreaterOrEqual", lr_op_greaterorequal, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "And", lr_op_and, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Or", lr_op_or, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Xor", lr_op_xor, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Not", lr_op_not, 1, 1, 1, 1, LR_NATIVE_ALL, 0u },
	{ "BitShift", lr_op_bitshift, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Where", lr_op_where, 3, 3, 1, 1, LR_NATIVE_ALL, 0u },
	{ "IsInf", lr_op_isinf, 1, 1, 1, 1, LR_NATIVE_ALL, 0u },
	{ "IsNaN", lr_op_isnan, 1, 1, 1, 1, LR_NATIVE_ALL, 0u },
	{ "NonZero", lr_op_nonzero, 1, 1, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Compress", lr_op_compress, 2, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "QuantizeLinear", lr_op_quantizelinear, 2, 3, 1, 1, LR_NATIVE_ALL, 0u },
	{ "DequantizeLinear", lr_op_dequantizelinear, 2, 3, 1, 1, LR_NATIVE_ALL, 0u },
	{ "DynamicQuantizeLinear", lr_op_dynamicquantizelinear, 1, 1, 1, 3, LR_NATIVE_ALL, 0u },
	{ "MatMulInteger", lr_op_matmulinteger, 2, 4, 1, 1, LR_NATIVE_ALL, 0u },
	{ "ConvInteger", lr_op_convinteger, 2, 4, 1, 1, LR_NATIVE_ALL, 0u },
	{ "QLinearMatMul", lr_op_qlinearmatmul, 8, 8, 1, 1, LR_NATIVE_ALL, 0u },
	{ "QLinearConv", lr_op_qlinearconv, 8, 9, 1, 1, LR_NATIVE_ALL, 0u },
	{ "HannWindow", lr_op_hannwindow, 1, 1, 1, 1, LR_NATIVE_ALL, 0u },
	{ "HammingWindow", lr_op_hammingwindow, 1, 1, 1, 1, LR_NATIVE_ALL, 0u },
	{ "BlackmanWindow", lr_op_blackmanwindow, 1, 1, 1, 1, LR_NATIVE_ALL, 0u },
	{ "Einsum", lr_op_einsum, 1, 8, 1, 1, LR_NATIVE_ALL, 0u },
	{ "DFT", lr_op_dft, 1, 2, 1, 1, LR_NATIVE_ALL, 0u },
	{ "STFT", lr_op_stft, 2, 4, 1, 1, LR_NATIVE_ALL, 0u },
	{ "MelWeightMatrix", lr_op_melweightmatrix, 5, 5, 1, 1, LR_NATIVE_ALL, 0u },
};

static const char *op_names[sizeof(op_table) / sizeof(op_table[0]) + 1];

int lr_op_strings(const lr_op_def *op)
{
	return op->run == lr_op_cast || op->run == lr_op_castlike ||
	       op->run == lr_op_stringnormalizer;
}

const lr_op_def *lr_op_find(const char *domain, const char *op_type)
{
	if (domain != NULL && domain[0] != '\0' && strcmp(domain, "ai.onnx") != 0)
		return NULL;
	for (size_t i = 0; i < sizeof(op_table) / sizeof(op_table[0]); i++)
		if (strcmp(op_table[i].op_type, op_type) == 0)
			return &op_table[i];
	return NULL;
}

const char *const *lr_op_names(void)
{
	if (op_names[0] == NULL)
		for (size_t i = 0; i < sizeof(op_table) / sizeof(op_table[0]); i++)
			op_names[i] = op_table[i].op_type;
	return op_names;
}

int lr_op_fail(lr_opctx *c, int code, const char *fmt, ...)
{
	char text[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return lr_fail(c->msg, code, "node '%s' (%s): %s", c->node->name,
		       c->node->op_type, text);
}

int lr_op_output(lr_opctx *c, lr_tensor **out, lr_dtype dt, int ndim,
		 const int64_t *dims)
{
	char buf[160];
	int64_t n;
	int rc;

	/*
	 * int64 tensors are shape arithmetic, computed even in dry runs; a
	 * hostile graph must not turn them into gigabytes.
	 */
	if (dt == LR_DT_INT64 && lr_shape_nelem(ndim, dims, &n) == 0 && n > LR_INT64_MAX_ELEMS)
		return lr_op_fail(c, LR_ELIMIT,
				  "int64 output of shape %s is too large (at most %lld elements)",
				  lr_shape_str(ndim, dims, buf, sizeof(buf)),
				  (long long)LR_INT64_MAX_ELEMS);
	/* Dry runs: only int64 (shape arithmetic) gets a buffer here. */
	rc = lr_tensor_create(out, dt, ndim, dims, !(c->dry && dt != LR_DT_INT64));

	if (rc == LR_ENOMEM)
		return lr_op_fail(c, rc, "out of memory for an output of shape %s",
				  lr_shape_str(ndim, dims, buf, sizeof(buf)));
	if (rc != 0)
		return lr_op_fail(c, LR_ESHAPE, "invalid output shape %s",
				  lr_shape_str(ndim > LR_MAX_DIMS ? 0 : ndim,
					       dims, buf, sizeof(buf)));
	return 0;
}

lr_tensor *lr_op_take(lr_opctx *c, lr_tensor **in, int i)
{
	lr_tensor *t;

	if (c->dry || i >= 32 || !(c->takeable & (1u << i)) || in[i] == NULL ||
	    !in[i]->owns_data || in[i]->data == NULL)
		return NULL;
	t = in[i];
	in[i] = NULL;
	c->takeable &= ~(1u << i);
	return t;
}

const float *lr__res_inplace(lr_opctx *c, lr_tensor *y, int blocked)
{
	lr_tensor *r = c->res_take;
	void *t;

	c->res_take = NULL;
	if (r == NULL || r != c->res || c->dry || getenv("LR_NO_RES_INPLACE") != NULL ||
	    r->dtype != y->dtype || r->nelem != y->nelem || r->blocked != blocked ||
	    !r->owns_data || !y->owns_data || r->map_base != NULL || y->map_base != NULL ||
	    r->data == NULL || y->data == NULL)
		return c->res != NULL ? c->res->data : NULL;
	t = y->data;
	y->data = r->data;
	r->data = t;
	return y->data;
}

void *lr_op_scratch(lr_opctx *c, int thread, size_t bytes)
{
	struct lr_scratch *s = c->scratch;

	if (s == NULL || thread < 0 || thread >= s->n)
		return NULL;
	if (s->bytes[thread] < bytes) {
		lr_free_aligned(s->buf[thread]);
		s->bytes[thread] = 0;
		s->buf[thread] = lr_alloc_aligned(bytes);
		if (s->buf[thread] == NULL)
			return NULL;
		s->bytes[thread] = bytes;
	}
	return s->buf[thread];
}

int lr_op_need(lr_opctx *c, lr_tensor **in, int nin, int i, lr_dtype dt)
{
	if (i >= nin || in[i] == NULL)
		return lr_op_fail(c, LR_EMODEL, "input %d is required", i);
	if (in[i]->dtype != dt)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "input %d has type %s, expected %s", i,
				  lr_dtype_name(in[i]->dtype), lr_dtype_name(dt));
	return 0;
}

int lr_op_ints_input(lr_opctx *c, lr_tensor **in, int nin, int i,
		     int64_t *buf, int max)
{
	const lr_tensor *t;

	if (i >= nin || in[i] == NULL)
		return 0;
	t = in[i];
	if (t->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "input %d must be computable before the run (a constant or shape expression)", i);
	if (t->ndim > 1)
		return lr_op_fail(c, LR_ESHAPE, "input %d must be a 1-D vector", i);
	if (t->nelem > max)
		return lr_op_fail(c, LR_ESHAPE, "input %d has %lld entries, at most %d allowed",
				  i, (long long)t->nelem, max);
	for (int64_t k = 0; k < t->nelem; k++) {
		if (t->dtype == LR_DT_INT64) {
			buf[k] = ((const int64_t *)t->data)[k];
		} else {
			float f = ((const float *)t->data)[k];

			if (!(f > -9.2e18f && f < 9.2e18f))
				return lr_op_fail(c, LR_EMODEL, "input %d entry %lld is not a finite integer",
						  i, (long long)k);
			buf[k] = (int64_t)f;
		}
	}
	return (int)t->nelem;
}

int lr_op_axis(lr_opctx *c, int64_t axis, int rank, int *out)
{
	if (axis < -(int64_t)rank || axis >= rank)
		return lr_op_fail(c, LR_EMODEL, "axis %lld is out of range for rank %d",
				  (long long)axis, rank);
	*out = (int)(axis < 0 ? axis + rank : axis);
	return 0;
}

int lr_op_axes_mask(lr_opctx *c, const int64_t *axes, int naxes, int rank, int *red)
{
	for (int i = 0; i < naxes; i++) {
		int a = 0, rc = lr_op_axis(c, axes[i], rank, &a);

		if (rc != 0)
			return rc;
		if (red[a])
			return lr_op_fail(c, LR_EMODEL, "axis %lld is listed twice in axes",
					  (long long)axes[i]);
		red[a] = 1;
	}
	if (naxes == 0)
		for (int i = 0; i < rank; i++)
			red[i] = 1;
	return 0;
}

int lr_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b,
		       int *nout, int64_t *out)
{
	int n = na > nb ? na : nb;

	for (int i = 0; i < n; i++) {
		int64_t da = i < n - na ? 1 : a[i - (n - na)];
		int64_t db = i < n - nb ? 1 : b[i - (n - nb)];

		if (da == db || db == 1)
			out[i] = da;
		else if (da == 1)
			out[i] = db;
		else
			return LR_ESHAPE;
	}
	*nout = n;
	return 0;
}
