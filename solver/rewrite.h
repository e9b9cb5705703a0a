/*
 * rewrite.h - graph rewrites on loaded ONNX models: BatchNormalization
 * folding, activation analysis, and replacing a Conv by its low-rank pair.
 *
 * DESIGN. Every rewrite takes a loaded model, leaves it untouched, and
 * returns a NEW model that was packed to protobuf bytes and loaded again
 * with lr_model_load_mem(), so the result passed the same validation as
 * any model read from disk and owns all its memory. Only the nodes,
 * initializers, value_info entries and metadata that a rewrite concerns
 * change; everything else (other nodes and their order, names, opset
 * imports, IR version, producer fields, doc strings, unknown fields) is
 * carried over as parsed. Graph input and output names never change.
 *
 * Names of new things follow docs/conventions.md C15 and are checked
 * against every existing name (values, initializers, nodes): when a name
 * is taken, ".1", ".2", ... is appended until it is free.
 *
 * Initializers that a rewrite leaves without a consumer (the original
 * weights of a replaced Conv, the statistics of a folded BatchNorm) are
 * dropped; initializers that were already unused stay.
 */
#ifndef LR_REWRITE_H
#define LR_REWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "model/lr.h"
#include "model/onnx.h"

/*
 * Folds inference BatchNormalization nodes into the Conv that feeds them.
 * A BN is folded when: its input X is the output of a Conv (any group,
 * same domain "" or "ai.onnx") that feeds only this BN and is not a graph
 * output; the Conv's W (and bias, if any) and the BN's scale, B, mean and
 * var are initializers of matching sizes; and the BN is in inference form
 * (one output, training_mode 0, spatial 1). With s = scale/sqrt(var+eps)
 * (eps = the "epsilon" attribute, default 1e-5), computed in double:
 *   W'[o,...] = W[o,...] * s[o],   b'[o] = (b[o] - mean[o]) * s[o] + B[o]
 * (b = 0 without a bias). The BN node is removed and the Conv produces the
 * BN's output name, so consumers and graph outputs are unchanged. W' and
 * b' replace W and b under the same names when no other node reads them,
 * else they are new initializers "<W>.folded" and "<b>.folded". Without a
 * Conv bias, b' replaces the BN's B the same way ("<B>.folded" when B is
 * shared). The BN's other inputs are dropped when nothing else reads them.
 *
 * On success *out is a new model owned by the caller (lr_model_free) and
 * *nfolded (may be NULL) the number of folded BNs; with nothing to fold
 * *out is still a fresh copy. `m` is not modified. Errors: LR_ENOMEM, or
 * LR_EMODEL / LR_EUNSUPPORTED / LR_ELIMIT when the result fails to load
 * again (message says so).
 */
int lr_rewrite_fold_bn(const lr_model *m, lr_model **out, int *nfolded,
		       lr_msg *msg);

/* What follows a Conv's output. */
enum lr_act {
	LR_ACT_NONE = 0, /* anything else: the solver treats it as linear */
	LR_ACT_RELU = 1, /* consumed only by one Relu node */
};

/*
 * Classifies the activation after Conv node `node` (index into m->nodes).
 * Returns LR_ACT_RELU when the Conv's output is read by exactly one node,
 * a Relu, and is not a graph output; otherwise LR_ACT_NONE and, when
 * `why` is not NULL, a short reason in why[0..len) such as "graph output",
 * "feeds Add", "feeds Concat", "feeds 2 nodes", "unused", "not a Conv, Gemm or
 * MatMul". Gemm and MatMul nodes (fully connected layers) are classified
 * the same way.
 * Run lr_rewrite_fold_bn() first: a Conv followed by a BatchNormalization
 * reports "feeds BatchNormalization". Returns LR_EINVAL for a node index
 * out of range.
 */
int lr_conv_activation(const lr_model *m, int node, char *why, size_t len);

/*
 * The two layers that replace one Conv (../shared/docs/method.md §2.1). With the Conv's
 * weight W of shape (d, c, k1, .., kn) and r = the rank d':
 *   wa: r*c*k1*..*kn floats, the first Conv's filters (r, c, k1, .., kn);
 *   ba: r floats, its bias, or NULL for none;
 *   wb: d*r floats, the 1x1 Conv (d, r, 1, .., 1);
 *   bb: d floats, its bias, or NULL for none.
 * The n* fields are the element counts of the arrays the caller passes;
 * they must match the sizes above (0 for a NULL bias).
 */
typedef struct lr_decomp {
	int node;              /* index into lr_model.nodes; a Conv, group 1 */
	int64_t r;             /* rank d', 1 <= r */
	const float *wa;       /* borrowed */
	const float *ba;
	const float *wb;
	const float *bb;
	size_t nwa, nba, nwb, nbb;
	/* Spatial + channel ("3d", spatial.h): with r2 = d'' > 0 a 2-D Conv
	 * (kh x kw) becomes three: V (kh x 1, c -> r2; the original's
	 * vertical stride, dilation and pads, no bias) reading X, then A
	 * (1 x kw, r2 -> r; the horizontal ones) with wa of r*r2*kw floats
	 * (r, r2, 1, kw), then B as above. auto_pad must be NOTSET or VALID.
	 * r2 = 0: the two-layer form. With r2 > 0 and wb NULL (nwb 0, no
	 * bb) there is no channel split: r must be d, and A (1 x kw,
	 * r2 -> d) writes the original output (V -> A only). */
	int64_t r2;
	const float *wv;       /* r2*c*kh floats (r2, c, kh, 1) */
	size_t nwv;
} lr_decomp;

/* One metadata_props entry to set on the result. */
typedef struct lr_meta {
	const char *key;
	const char *value;
} lr_meta;

/*
 * Replaces each listed Conv by Conv_A -> Conv_B (fully connected: below). Conv_A keeps the original
 * node's attributes (kernel_shape, strides, pads, dilations, auto_pad,
 * group), domain and doc string and reads the original input X; Conv_B is
 * a 1x1 Conv producing the ORIGINAL output name. Both take the original
 * node's place in the node list. New names, each collision-checked:
 *   initializers "<W>.lr_a", "<W>.lr_a_bias", "<W>.lr_b", "<W>.lr_b_bias"
 *   (and "<W>.lr_v" for a spatial split)
 *   intermediate value "<Y>.lr_mid" (and "<Y>.lr_vmid"), each with a float
 *   value_info entry
 *   nodes "<node>.lr_a", "<node>.lr_b" (and "<node>.lr_v"; <node> = the node name, or Y
 *   when the node has none)
 * where W is the original weight name and Y the original output name.
 * A fully connected node (Gemm with transA = 0, or MatMul; its input must
 * be 2-D, which the caller checks) with a 2-D weight of d outputs and c
 * inputs becomes Gemm(X, wa as (r, c), ba) -> Gemm(mid, wb as (d, r), bb),
 * both transB = 1 and alpha = beta = 1, under the same names: the caller
 * folds the original's alpha, beta, transB and bias into the factors
 * (solver/fc.h).
 * Weights are stored as float32 raw_data (little-endian). The original W
 * and bias are dropped when nothing else reads them. Then the `nmeta`
 * entries of `meta` are set in metadata_props, replacing the value of an
 * existing key and appending new keys in order.
 *
 * On success *out is a new model owned by the caller; `m` and the factor
 * arrays are not modified. Errors, each message naming the node:
 * LR_EINVAL (node index out of range or listed twice, not a Conv, Gemm or
 * MatMul, r < 1,
 * an array size that does not match, a NULL array, a non-finite factor
 * value, a NULL or empty metadata key), LR_EUNSUPPORTED (group != 1, the
 * weight or bias is not an initializer, the weight has fewer than 3
 * dimensions), LR_ENOMEM, or the loader's code when the result fails to
 * load again.
 */
int lr_rewrite_decompose(const lr_model *m, const lr_decomp *d, int nd,
			 const lr_meta *meta, int nmeta, lr_model **out,
			 lr_msg *msg);

#endif /* LR_REWRITE_H */
