/*
 * tensor.h - dense N-dimensional tensors, the currency of the engine.
 *
 * DESIGN. A tensor is a shape plus one contiguous row-major (C order) buffer.
 * Only two element types exist inside lowrankd: float32 for activations and
 * weights, and int64 for shape arithmetic (Shape, Gather on shapes, Reshape
 * targets, Slice bounds). Every other ONNX or NumPy type is converted to one
 * of these when read, as documented at the readers. A tensor may borrow its
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
	LR_DT_FLOAT = 1,  /* float32 */
	LR_DT_INT64 = 7,  /* int64 */
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
} lr_tensor;

/* Size in bytes of one element of `dt`. */
size_t lr_dtype_size(lr_dtype dt);

/* Name of `dt` as in ONNX ("float", "int64"). */
const char *lr_dtype_name(lr_dtype dt);

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

/* Deep copy (shape and data). Caller frees the result. */
int lr_tensor_clone(lr_tensor **out, const lr_tensor *src);

/* Frees a tensor and, when owned, its data. NULL is a no-op. */
void lr_tensor_free(lr_tensor *t);

/* Byte size of the data of `t`. */
size_t lr_tensor_bytes(const lr_tensor *t);

/* Computes the element count of a shape with overflow checks. */
int lr_shape_nelem(int ndim, const int64_t *dims, int64_t *nelem);

/* Formats a shape as "[1,3,224,224]" into buf. Returns buf. */
char *lr_shape_str(int ndim, const int64_t *dims, char *buf, size_t len);

/* 64-byte aligned allocation for numeric buffers; free with lr_free_aligned. */
void *lr_alloc_aligned(size_t bytes);
void lr_free_aligned(void *p);

#endif /* LR_TENSOR_H */
