/*
 * inspect.h - the cost structure of a model: its Conv, Gemm and MatMul layers.
 *
 * DESIGN. A dry run of the engine at a given input shape yields every
 * layer's output size; from it and the weights come the layer's cost in
 * multiply-accumulates and its share of the total. The same pass records
 * whether the low-rank solver can decompose the layer (a Conv with
 * group 1 for which some rank d' < d makes d'(k^2 c + d) < d k^2 c) and,
 * when not, why. `lowrank inspect` prints this; the solver's rank
 * selection starts from it.
 */
#ifndef LR_INSPECT_H
#define LR_INSPECT_H

#include <stdint.h>

#include "model/lr.h"
#include "model/onnx.h"

typedef struct lr_layer_info {
	int node;               /* index into lr_model.nodes */
	const char *name;       /* node name (borrowed from the model) */
	const char *op_type;    /* "Conv", "Gemm" or "MatMul" (constant weight) */
	const char *weight;     /* weight initializer name, or NULL */
	int64_t kh, kw;         /* kernel size (1x1 for Gemm, MatMul) */
	int64_t c, d;           /* input channels / features, output channels */
	int64_t group;          /* Conv group (1 for Gemm, MatMul) */
	int64_t sh, sw;         /* strides */
	int64_t oh, ow;         /* output spatial size (1x1 for Gemm, MatMul) */
	double macs;            /* multiply-accumulates for the whole input batch */
	double share;           /* macs / total macs of all listed layers */
	int decomposable;       /* 1: the solver can decompose this layer */
	int64_t max_rank;       /* largest d' that is still faster (0 if none) */
	char reason[160];       /* why not decomposable (empty when it is) */
} lr_layer_info;

/*
 * Lists the Conv, Gemm and constant-weight MatMul layers of `m` for an input of shape
 * (ndim, dims) fed to the first graph input (other inputs, if any, use
 * their declared shapes with unknown dimensions set to 1). On success
 * *layers is a malloc'd array of *count entries the caller frees with
 * free(), and *total_macs the sum of their costs. Errors come from the
 * dry run and name the failing node.
 */
int lr_inspect(const lr_model *m, int ndim, const int64_t *dims,
	       lr_layer_info **layers, int *count, double *total_macs,
	       lr_msg *msg);

/*
 * Fills dims with the declared shape of graph input `i`, unknown
 * dimensions (symbolic batch) replaced by `fill`. Returns the rank, or
 * LR_EINVAL when the shape is not declared.
 */
int lr_input_shape(const lr_model *m, int i, int64_t fill, int64_t *dims);

#endif /* LR_INSPECT_H */
