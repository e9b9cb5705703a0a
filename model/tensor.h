/*
 * tensor.h - dense N-dimensional tensors, the currency of the engine.
 *
 * DESIGN. A tensor is a shape plus one contiguous row-major (C order) buffer.
 * Its element type is one of the ONNX numeric types below, each stored in
 * its own width: float32 (activations and weights: the fast path, the only
 * type the convolution, pooling and normalisation kernels and the solver
 * see), int64 (shape arithmetic), and bool (1 byte, 0 or 1), uint8, int8,
 * uint16, int16, int32, uint32, uint64, double and float16 (IEEE binary16
 * bits in a uint16_t; converted with round-to-nearest-even). Kernels that
 * know only float32 and int64 get other integer types widened to int64 by
 * the engine (a lossless copy, see engine.c); type-generic kernels
 * (ops_types.c, the data-movement kernels) compute in the type itself, so
 * integer arithmetic wraps in the type's width and double stays double.
 * bfloat16 initializers are read as float32; bfloat16, complex and
 * the 8-bit float formats are refused at graph inputs and outputs, naming
 * the tensor and the type. Strings (LR_DT_STRING) are one buffer: nelem + 1
 * uint64 offsets, then the bytes, string k being bytes [off[k], off[k+1]);
 * only the kernels that declare it take them (lr_op_def.strings; Cast,
 * CastLike, StringNormalizer), and lr_dtype_from_onnx() does not return
 * the type, so type-generic code never meets it. A tensor may borrow its
 * buffer (owns_data == 0), e.g. weights that alias the parsed protobuf, so
 * loading a model does not copy every weight a second time. A tensor with
 * data == NULL is a shape-only tensor, produced by the engine's dry run.
 */
#ifndef LR_TENSOR_H
#define LR_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "model/lr.h"

#define LR_MAX_DIMS 8 /* the deepest tensor rank the engine accepts */

/* Element types; the values are ONNX TensorProto.DataType codes. */
typedef enum lr_dtype {
	LR_DT_FLOAT = 1,    /* float32 */
	LR_DT_UINT8 = 2,    /* uint8_t */
	LR_DT_INT8 = 3,     /* int8_t */
	LR_DT_UINT16 = 4,   /* uint16_t */
	LR_DT_INT16 = 5,    /* int16_t */
	LR_DT_INT32 = 6,    /* int32_t */
	LR_DT_INT64 = 7,    /* int64_t */
	LR_DT_STRING = 8,   /* byte strings: see lr_tensor_str */
	LR_DT_BOOL = 9,     /* one byte, 0 or 1 */
	LR_DT_FLOAT16 = 10, /* IEEE binary16 bits in a uint16_t */
	LR_DT_DOUBLE = 11,  /* double */
	LR_DT_UINT32 = 12,  /* uint32_t */
	LR_DT_UINT64 = 13,  /* uint64_t */
} lr_dtype;

typedef struct lr_tensor {
	lr_dtype dtype;              /* element type */
	int ndim;                    /* 0 (scalar) .. LR_MAX_DIMS */
	int64_t dims[LR_MAX_DIMS];   /* extents, each >= 0 */
	int64_t nelem;               /* product of dims (1 for a scalar) */
	void *data;                  /* nelem elements, C order; NULL = shape only */
	int owns_data;               /* 1: data is freed with the tensor */
	void *map_base;              /* non-NULL: a read-only file mapping that */
	size_t map_len;              /* holds data, unmapped with the tensor */
	int blocked;                 /* 0: C order. B > 0: a float [N][C][H][W]
				      * (C % B == 0) stored [N][C/B][H][W][B],
				      * the engine's layout between direct
				      * convolutions (model/engine.c) */
} lr_tensor;

/* Size in bytes of one element of `dt`. */
size_t lr_dtype_size(lr_dtype dt);

/* Name of `dt` as in ONNX ("float", "int64", "bool", "float16", ...). */
const char *lr_dtype_name(lr_dtype dt);

/*
 * The lr_dtype for ONNX TensorProto.DataType code `onnx_type`, or 0 when
 * lowrank has no such element type (string, bfloat16, complex, 8-bit
 * floats, 4-bit integers, unknown codes).
 */
lr_dtype lr_dtype_from_onnx(int onnx_type);

/* 1 for float32, double and float16; 0 for the integer types and bool. */
int lr_dtype_is_float(lr_dtype dt);

/* 1 for the unsigned integer types (uint8..uint64) and bool. */
int lr_dtype_is_unsigned(lr_dtype dt);

/* float16 bits to float (exact). */
float lr_half_to_float(uint16_t h);

/*
 * double to the nearest float16 (ties to even), as bits: values from
 * 65520 up become infinity, NaN stays a quiet NaN with its sign.
 */
uint16_t lr_double_to_half(double x);

/*
 * Element k of `t` (which must have data) as double, and as int64 (float
 * types truncate toward zero; NaN and values outside int64 give
 * INT64_MIN; uint64 keeps its bits).
 */
double lr_tensor_get_f64(const lr_tensor *t, int64_t k);
int64_t lr_tensor_get_i64(const lr_tensor *t, int64_t k);

/*
 * Converts t's data to `dt` into the buffer `dst` (nelem elements of dt)
 * with ONNX Cast semantics: to an integer type, floats truncate toward
 * zero and integers wrap to the type's width (two's complement); to bool,
 * nonzero (NaN included) is 1; to float16, round to nearest even from the
 * exact value (no double rounding through float32).
 */
void lr_tensor_convert(const lr_tensor *t, lr_dtype dt, void *dst);

/*
 * Creates a tensor of the given shape. With `alloc` nonzero the data buffer
 * is allocated (uninitialised, 64-byte aligned); otherwise data is NULL.
 * Fails with LR_EINVAL for ndim out of range or a negative dim, LR_ELIMIT
 * when the byte size overflows, LR_ENOMEM on allocation failure.
 * On success *out is owned by the caller: free with lr_tensor_free().
 */
int lr_tensor_create(lr_tensor **out, lr_dtype dt, int ndim,
		     const int64_t *dims, int alloc);

/* Allocates the data buffer of a shape-only tensor. 0 or LR_ENOMEM. */
int lr_tensor_alloc_data(lr_tensor *t);

/*
 * Creates a tensor that borrows `data` (not freed with the tensor). The
 * caller keeps `data` alive for the tensor's lifetime.
 */
int lr_tensor_wrap(lr_tensor **out, lr_dtype dt, int ndim,
		   const int64_t *dims, void *data);

/* Deep copy (shape, data and layout). Caller frees the result. */
int lr_tensor_clone(lr_tensor **out, const lr_tensor *src);

/*
 * A copy of channel-blocked `src` (src->blocked > 0) in C order, or of a
 * C-order `src` in blocks of `blk` channels (src a 4-D float tensor whose
 * dims[1] % blk == 0). Caller frees the result. LR_EINVAL for a tensor
 * that cannot be so converted, LR_ENOMEM.
 */
int lr_tensor_unblock(lr_tensor **out, const lr_tensor *src);
int lr_tensor_block(lr_tensor **out, const lr_tensor *src, int blk);

/* Frees a tensor and, when owned, its data. NULL is a no-op. */
void lr_tensor_free(lr_tensor *t);

/* Byte size of the data of `t` (of a string tensor: offsets and bytes). */
size_t lr_tensor_bytes(const lr_tensor *t);

/*
 * A string tensor of shape dims whose element k is s[k] (len[k] bytes,
 * NUL bytes allowed). lr_tensor_create() makes one of empty strings.
 */
int lr_tensor_create_strings(lr_tensor **out, int ndim, const int64_t *dims,
			     const char *const *s, const size_t *len);

/* Element k of string tensor t and its length in *len (not NUL-terminated). */
const char *lr_tensor_str(const lr_tensor *t, int64_t k, size_t *len);

/* Computes the element count of a shape with overflow checks. */
int lr_shape_nelem(int ndim, const int64_t *dims, int64_t *nelem);

/* Formats a shape as "[1,3,224,224]" into buf. Returns buf. */
char *lr_shape_str(int ndim, const int64_t *dims, char *buf, size_t len);

/* 64-byte aligned allocation for numeric buffers; free with lr_free_aligned. */
void *lr_alloc_aligned(size_t bytes);
void lr_free_aligned(void *p);

#endif /* LR_TENSOR_H */
