/*
 * ops.h - the operator kernel interface (internal to model/).
 *
 * DESIGN. Each ONNX operator is one function with the signature lr_op_fn.
 * It reads attributes through the node (lr_node_attr_*), checks its inputs'
 * types and shapes, allocates its outputs with lr_op_output() and computes
 * them. Shape computation and numeric work are in one function: in a dry
 * run (c->dry) lr_op_output() gives outputs of every type but int64 no
 * buffer and the kernel returns right after the shapes are known (some
 * kernels still compute small outputs whose inputs are known), while int64
 * outputs (shape arithmetic) are always computed, because Reshape or Slice
 * downstream may need their values. Which element types a kernel sees is
 * set per input in its lr_op_def (native_in, double_in; see below). A kernel that wants to write into an input's buffer
 * asks lr_op_take(); the engine grants it only when that node is the
 * value's last reader and the buffer belongs to the engine.
 *
 * Version differences across opsets 7..21 are handled inside each kernel,
 * from c->opset and from which optional inputs are present (e.g. Squeeze
 * axes as an attribute before opset 13 and as an input from 13 on).
 *
 * Every failure returns a negative code and, through lr_op_fail(), a
 * message that names the node and the offending input or attribute.
 */
#ifndef LR_OPS_H
#define LR_OPS_H

#include "model/lr.h"
#include "model/onnx.h"
#include "model/pool.h"
#include "model/tensor.h"

/* The execution context of one kernel call. */
typedef struct lr_opctx {
	const lr_node *node;    /* the node being run */
	int64_t opset;          /* default-domain opset of the model */
	int dry;                /* 1: shapes only for float outputs */
	lr_pool *pool;          /* threads for parallel loops (may be NULL) */
	lr_msg *msg;            /* where errors are written */
	unsigned takeable;      /* bit i: input i's buffer may be taken */
	struct lr_scratch *scratch; /* per-thread scratch buffers (engine-owned) */
	struct lr_node_cache *cache; /* this node's cache, or NULL (see below) */
	int cache_ro;           /* 1: read the cache, never store into it (the
				 * engine runs images in parallel) */
	int act;                /* Conv: activation fused into the output (LR_ACT_*) */
	float act_lo, act_hi;   /* LR_ACT_CLIP's bounds */
	int pricing;            /* 1: only kernels shaped like ONNX Runtime's
				 * (lr_engine_set_pricing) */
	int out_blocked;        /* Conv: write Y channel-blocked when the direct
				 * kernels take it (lr_tensor.blocked) */
	const lr_tensor *res;   /* Conv: a float tensor added to Y before c->act
				 * (the residual Add the engine fused into it),
				 * or NULL; the Conv ignores it, and c->act too,
				 * unless it has exactly Y's dims */
	int res_done;           /* Conv, out: 1 when Y = act(conv + res) */
	lr_tensor *res_take;    /* Conv: c->res itself when the Add is its last
				 * reader, or NULL: a kernel that adds the
				 * residual as it stores may compute Y in its
				 * buffer (lr__res_inplace) */
} lr_opctx;

/*
 * Activations the engine fuses into a Conv whose only reader is a Relu or
 * a Clip with constant bounds (engine.c). The Conv writes act(y) with the
 * activation's own NaN rules; the activation node then passes the tensor
 * on (or, when it cannot take it, runs: both are idempotent).
 * LR_ACT_SILU is a Sigmoid's only (SiLU, x * sigmoid(x)): the Sigmoid whose
 * one reader is Mul(x, Sigmoid(x)) writes the product, and the Mul passes
 * it on (it must: it is not idempotent).
 */
enum { LR_ACT_NONE = 0, LR_ACT_RELU = 1, LR_ACT_CLIP = 2, LR_ACT_SILU = 3 };

/* Applies activation `act` (LR_ACT_*) to y[0..n) in place. */
void lr__act_apply(int act, float lo, float hi, float *y, int64_t n);

/*
 * What a kernel derives from a node's constant weights and keeps across
 * runs (Winograd's transformed filters). The engine offers it only to nodes
 * whose input 1 is an initializer, frees it with the engine, and `key` is
 * that initializer's data pointer, which stays valid and constant while
 * the engine lives. With c->cache_ro set a kernel may use what the cache
 * holds but must not replace it: other threads read it at the same time
 * (what it would have stored it derives into memory of its own instead).
 */
struct lr_node_cache {
	const void *key;        /* the weights the data was derived from */
	void *data;             /* 64-byte aligned, kernel-defined */
	size_t bytes;
};

/* Per-thread scratch memory kept by the engine across nodes and runs. */
struct lr_scratch {
	int n;                  /* one slot per pool thread */
	void **buf;             /* 64-byte aligned buffers */
	size_t *bytes;          /* their sizes */
};

/*
 * A kernel. `in[i]` is NULL for an omitted optional input (i < nin). The
 * kernel sets out[0..nout-1] (out[i] may stay NULL for an omitted output
 * whose value nobody reads; the engine tells by c->node->out[i] == -1).
 * On failure the kernel frees whatever it allocated.
 */
typedef int (*lr_op_fn)(lr_opctx *c, lr_tensor **in, int nin,
			lr_tensor **out, int nout);

typedef struct lr_op_def {
	const char *op_type;    /* ONNX op_type in the default domain */
	lr_op_fn run;           /* the kernel */
	int min_in, max_in;     /* accepted input counts */
	int min_out, max_out;   /* accepted output counts */
	unsigned native_in;     /* bit i (bit 31: inputs 31 and up): the kernel
				 * takes input i in any element type; see below */
	unsigned double_in;     /* bit i: the kernel also takes input i as
				 * double (and computes in double) */
} lr_op_def;

/*
 * 1 when op's kernel takes string tensors (LR_DT_STRING: Cast, CastLike,
 * StringNormalizer); the engine refuses them to every other kernel.
 */
int lr_op_strings(const lr_op_def *op);

/*
 * Element types at kernel entry. A kernel sees every input whose bit is
 * set in native_in in its own type and must check or handle it. Every
 * other input arrives as float32 or int64 (or double where double_in
 * says so): the engine widens the other
 * integer types and bool to int64 (lossless; how every integer tensor was
 * held before lowrank had narrow types) and refuses double and float16
 * there, naming the node, the input and its type, rather than compute a
 * double in float32.
 */
#define LR_NATIVE_ALL 0xffffffffu

/* 1 when input i of type dt of a node of kind `op` is passed as it is. */
static inline int lr_op_native(const lr_op_def *op, int i, lr_dtype dt)
{
	int b = i < 31 ? i : 31;

	return ((op->native_in >> b) & 1u) ||
	       (dt == LR_DT_DOUBLE && ((op->double_in >> b) & 1u));
}

/*
 * The generic kernels in ops_types.c: element types other than float32
 * and int64, in their own width. lr__typed_binary serves Add, Sub, Mul,
 * Div, Mod, Pow, Max, Min (kind: the LR_TB_* below) when an input is not
 * float32/int64; lr__typed_clip serves Clip on integer types and double
 * and float16.
 */
enum { LR_TB_ADD, LR_TB_SUB, LR_TB_MUL, LR_TB_DIV, LR_TB_MOD, LR_TB_POW,
       LR_TB_MAX, LR_TB_MIN };
int lr__typed_binary(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int kind);
int lr__typed_clip(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out);

/*
 * Helpers shared by the generic kernels (ops_types.c, ops_quant.c,
 * ops_signal.c).
 *
 * lr__ty_out creates output *out of type dt; `have` says every input it
 * is computed from has data. In a dry run it gets values when `have` and
 * small (LR_DRY_VALUES_MAX), else it is shape-only; an int64 output whose
 * inputs lack data fails (LR_EUNSUPPORTED in a dry run). On failure *out
 * is NULL and the message is set.
 */
int lr__ty_out(lr_opctx *c, lr_tensor **out, lr_dtype dt, int ndim, const int64_t *dims,
	       int have);
/* Fails (LR_EMODEL, naming it) unless input i is present. */
int lr__need_input(lr_opctx *c, lr_tensor **in, int nin, int i);
/* Fails (LR_EUNSUPPORTED, naming both) unless inputs a and b have one type. */
int lr__same_type(lr_opctx *c, lr_tensor **in, int a, int b);
/* Stores v as element k of a dt buffer: integers wrap, as Cast from int64. */
void lr__put_i64(lr_dtype dt, void *y, int64_t k, int64_t v);
/* Stores v as element k of a dt buffer, as Cast from double. */
void lr__put_f64(lr_dtype dt, void *y, int64_t k, double v);

/*
 * A numpy broadcast of up to 3 inputs, walked in output order:
 * lr__bc_init computes the shape (failing with LR_ESHAPE naming the
 * shapes), then off[i] is input i's element for output element 0, and
 * each lr__bc_next moves every off[] to the next output element.
 */
struct lr__bcast {
	int nt, nd;                         /* inputs, output rank */
	int64_t n;                          /* output elements */
	int64_t dims[LR_MAX_DIMS];          /* output shape */
	int64_t st[3][LR_MAX_DIMS];         /* element strides, 0 when broadcast */
	int64_t idx[LR_MAX_DIMS];           /* odometer */
	int64_t off[3];                     /* current element of each input */
};

int lr__bc_init(lr_opctx *c, const lr_tensor *const *t, int nt, struct lr__bcast *b);
void lr__bc_next(struct lr__bcast *b);

/* 1 for float32 and int64, the types every kernel takes. */
static inline int lr_dtype_is_legacy(lr_dtype dt)
{
	return dt == LR_DT_FLOAT || dt == LR_DT_INT64;
}

/* Finds the kernel for (domain, op_type); NULL when unsupported. */
const lr_op_def *lr_op_find(const char *domain, const char *op_type);

/* NULL-terminated list of the supported op types, for messages/docs. */
const char *const *lr_op_names(void);

/*
 * Allocates output tensor `*out` (float outputs get no buffer in a dry
 * run). Returns 0, LR_ENOMEM, or LR_ESHAPE/LR_ELIMIT for a bad shape
 * (with a message naming the node).
 */
int lr_op_output(lr_opctx *c, lr_tensor **out, lr_dtype dt, int ndim,
		 const int64_t *dims);

/*
 * Returns in[i] for reuse as an output buffer when the engine allows it
 * (see DESIGN), and sets in[i] to NULL so the engine does not free it;
 * otherwise returns NULL. Never grants in a dry run.
 */
lr_tensor *lr_op_take(lr_opctx *c, lr_tensor **in, int i);

/*
 * The residual a Conv kernel adds as it stores Y: c->res's data; or, when
 * the engine offered its buffer (c->res_take) and it matches Y (float,
 * owned, as many elements, and in `blocked`, the layout the kernel writes
 * Y in), Y's own data after the two tensors swap buffers, so that Y is
 * computed in the residual's place, as ONNX Runtime's Conv does with its
 * Sum input (one stream less: the stores land on lines the kernel has
 * just read). Only for kernels that read each residual element once, just
 * before storing that element of Y, and write Y nowhere else; once
 * swapped, c->res holds Y's old buffer. Call it when the kernel will
 * certainly run to the end. LR_NO_RES_INPLACE (set, read per call): never
 * swaps.
 */
const float *lr__res_inplace(lr_opctx *c, lr_tensor *y, int blocked);

/*
 * Returns thread `thread`'s scratch buffer of at least `bytes` (contents
 * undefined), growing it when needed; NULL on allocation failure. Valid
 * until the next call for the same thread. Safe to call concurrently for
 * different thread indices.
 */
void *lr_op_scratch(lr_opctx *c, int thread, size_t bytes);

/* Writes "node 'NAME' (OP): <formatted text>" into c->msg, returns code. */
int lr_op_fail(lr_opctx *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Checks that input i is present with dtype dt; message on failure. */
int lr_op_need(lr_opctx *c, lr_tensor **in, int nin, int i, lr_dtype dt);

/*
 * Reads an int64 vector from an optional input (i < nin, in[i] != NULL)
 * into buf; returns its length, 0 when absent, or a negative error.
 * Float inputs are accepted and truncated (old exporters). The tensor must
 * have data (not shape-only).
 */
int lr_op_ints_input(lr_opctx *c, lr_tensor **in, int nin, int i,
		     int64_t *buf, int max);

/* Normalises a possibly negative axis against rank; error when out of range. */
int lr_op_axis(lr_opctx *c, int64_t axis, int rank, int *out);

/*
 * Sets red[a] = 1 for each of the naxes (possibly negative) axes of a
 * rank-`rank` tensor, and for every axis when naxes is 0 (the reductions'
 * default); red[] must start zeroed. Errors: an axis out of range, or one
 * listed twice (LR_EMODEL, naming it).
 */
int lr_op_axes_mask(lr_opctx *c, const int64_t *axes, int naxes, int rank, int *red);

/* Numpy-style broadcast of two shapes into (ndim, dims). */
int lr_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b,
		       int *nout, int64_t *out);

/* Geometry of a 1-D or 2-D convolution or pooling window (1-D: h = 1). */
struct lr_geom {
	int64_t n, c, h, w;        /* input batch, channels, height, width */
	int64_t kh, kw;            /* kernel */
	int64_t sh, sw;            /* strides */
	int64_t dh, dw;            /* dilations */
	int64_t pt, pl, pb, pr;    /* pads: top, left, bottom, right */
	int64_t oh, ow;            /* output height, width */
};

/*
 * Reads strides/dilations/pads/auto_pad of the node for the window
 * `kernel` over X (rank 3 or 4) and computes the output size; ceil_mode
 * is for pooling. Errors name the node and attribute.
 */
int lr__window_geom(lr_opctx *c, const lr_tensor *x, const int64_t *kernel,
		    int ceil_mode, struct lr_geom *g);

/* The window geometry of any rank (3-D pooling and convolution). */
#define LR_ND_MAX (LR_MAX_DIMS - 2) /* spatial axes */

struct lr_ndgeom {
	int nsp;
	int64_t n, c, plane, oplane;
	int64_t in[LR_ND_MAX], k[LR_ND_MAX], s[LR_ND_MAX], d[LR_ND_MAX];
	int64_t pb[LR_ND_MAX], pe[LR_ND_MAX], out[LR_ND_MAX];
	int64_t istr[LR_ND_MAX];   /* row-major strides within a plane */
	int64_t cstr[LR_ND_MAX];   /* column-major strides (storage_order=1) */
};

/*
 * Reads strides/dilations/pads/auto_pad of the node for window `kernel`
 * (x->ndim - 2 entries) over X of any rank >= 3, with the rules of
 * lr__window_geom (ceil_mode for pooling; extents bounded by 2^20, at
 * most 2^40 window positions per plane). Errors name node and attribute.
 */
int lr__nd_geom(lr_opctx *c, const lr_tensor *x, const int64_t *kernel, int ceil_mode,
		struct lr_ndgeom *g);

/*
 * Runs a 2-D convolution with group 1, 3x3 kernel, stride 1, dilation 1
 * by Winograd's minimal filtering (conv_winograd.c) into y (allocated,
 * shape [N, M, oh, ow] from g). Returns 0 when done, 1 when this shape is
 * better left to im2col (nothing written), LR_ENOMEM on allocation failure.
 */
int lr__conv_winograd(lr_opctx *c, const lr_tensor *x, const lr_tensor *w,
		      const lr_tensor *b, lr_tensor *y, const struct lr_geom *g);

/*
 * Runs a 2-D or 1-D convolution with group 1, any stride and dilation 1 by
 * the direct kernels of conv_direct.c into y (allocated, [N, M, oh, ow]
 * from g), packing the weights into c->cache when there is one, with the
 * fused activation c->act applied. Returns 0
 * when done, 1 when the CPU has no kernel for it or the shape is better
 * left to the other paths (nothing written), LR_ENOMEM.
 */
int lr__conv_direct(lr_opctx *c, const lr_tensor *x, const lr_tensor *w,
		    const lr_tensor *b, lr_tensor *y, const struct lr_geom *g);

/*
 * Runs a group-1, stride-1, undilated convolution with few filters with
 * output positions in the lanes (conv_lanes.c) into y (allocated, [N, M,
 * oh, ow] from g), keeping packed weights and masks in c->cache when there
 * is one, with the fused activation c->act applied. Returns 1 when done,
 * 0 when not taken (no AVX-512, LR_NO_CONV_LANES, c->pricing, or a shape it does not
 * take: nothing written), LR_ENOMEM.
 */
int lr__conv_lanes(lr_opctx *c, const lr_tensor *x, const lr_tensor *w, const lr_tensor *b,
		   lr_tensor *y, const struct lr_geom *g);

/* Whether lr__conv_lanes takes geometry g with m filters (CPU aside). */
int lr__conv_lanes_worth(const struct lr_geom *g, int64_t m);

/* Engines that price (lr_engine_set_pricing) run thin layers whose output
 * maps are smaller than this as ONNX Runtime does (conv_lanes.c). */
#define LR_PRICE_MAP (112 * 112)

/*
 * src + i floats as an address, for i possibly < 0 or past the buffer:
 * for masked vector loads whose lanes outside the buffer are masked off
 * (computed as an integer, so forming it is defined behaviour).
 */
static inline const float *lr__masked_at(const float *src, int64_t i)
{
	return (const float *)((uintptr_t)src + (uintptr_t)(i * (int64_t)sizeof(float)));
}

/* The direct kernels' instruction set: 0 none, 1 AVX2, 2 AVX-512. */
int lr__conv_direct_isa(void);

/*
 * A zero-padded stride phase of one plane src [h][w]: dst [hq][wq] row r,
 * column cc holds src[r * sy + ro][cc * sx + co] where that is inside
 * src, else 0 (conv_direct.c; AVX-512 for sx = 1, 2, masks computed once
 * per plane, not per row).
 */
void lr__phase_plane(const float *src, int64_t h, int64_t w, int64_t sy, int64_t sx,
		     int64_t ro, int64_t co, float *dst, int64_t hq, int64_t wq);

/* Whether lr__conv_direct takes geometry g with m filters on kernels isa. */
int lr__conv_direct_worth(int isa, const struct lr_geom *g, int64_t m);

/*
 * exp(x) for x <= 0 (x > 0 is treated as 0; below -87.34 the result is 0;
 * NaN stays NaN), within about 1 ulp: Cody-Waite reduction by ln 2 and the
 * Cephes polynomial. It has no branches and clamps on the bits, so loops
 * calling it vectorise at -O2 (it must inline to do so). Used by Sigmoid,
 * Tanh, Softmax and LogSoftmax (a row with a NaN, or the NaN of inf - inf,
 * is all NaN there, as in ONNX Runtime; NaN used to come out as 1 or 0).
 */
static inline float lr_exp_neg(float x)
{
	union { float f; int32_t i; uint32_t u; } v, s;
	uint32_t pos, tiny, nan, xb;
	float t, n, r, p;

	/* masks, not selects: GCC must not turn them into branches */
	v.f = x;
	xb = v.u;
	nan = 0u - (uint32_t)((xb & 0x7fffffffu) > 0x7f800000u);
	pos = (v.u >> 31) - 1u;                         /* all ones: x >= +0 */
	v.u ^= (v.u ^ 0x80000000u) & pos;               /* ... becomes -0 */
	/* x < -87.33654 (bits 0xC2AEAC4F): negative floats' bits grow with |x| */
	tiny = 0u - ((uint32_t)(-0x3D5153B1 - v.i) >> 31);
	v.u ^= (v.u ^ 0xC2AEAC4Fu) & tiny;
	x = v.f;
	t = x * 1.44269504088896341f + 12582912.f;      /* round(x / ln 2) */
	n = t - 12582912.f;
	r = x - n * 0.693359375f;
	r = r - n * -2.12194440e-4f;
	p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.f;
	s.i = ((int32_t)n + 127) * (1 << 23);           /* 2^n, n in [-126, 0] */
	v.f = p * s.f;
	v.u ^= v.u & tiny;                              /* underflow: 0 */
	v.u ^= (v.u ^ xb) & nan;
	return v.f;
}

#if defined(__GNUC__) && !defined(__clang__)
#define LR_IVDEP _Pragma("GCC ivdep")
#else
#define LR_IVDEP
#endif

/*
 * Runs `stmt` for i in [0, n): the first n & ~15 iterations as a loop GCC
 * vectorises at -O2 without alias checks, then the scalar tail.
 */
#define LR_EACH(n, i, stmt)                                                 \
	do {                                                                \
		int64_t ew_n_ = (n), ew_m_ = ew_n_ & ~(int64_t)15, i;       \
		LR_IVDEP                                                    \
		for (i = 0; i < ew_m_; i++) {                               \
			stmt;                                               \
		}                                                           \
		for (; i < ew_n_; i++) {                                    \
			stmt;                                               \
		}                                                           \
	} while (0)

/*
 * Dry runs still compute float outputs whose inputs all have data when
 * they have at most this many elements (Resize scales, Pad values built
 * from Constant/Mul/Concat chains).
 */
#define LR_DRY_VALUES_MAX 65536

/*
 * Allocates the output of a windowed operator over X: shape
 * [N, channels, oh, ow] (or [N, channels, ow] for 1-D) from g.
 */
int lr__window_output(lr_opctx *c, const lr_tensor *x, const struct lr_geom *g,
		      int64_t channels, lr_tensor **y);

/* Kernels, grouped by file. */
/* ops_conv.c */
int lr_op_conv(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_gemm(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_matmul(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_pool.c */
int lr_op_maxpool(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_averagepool(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_globalaveragepool(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_globalmaxpool(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_lppool(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_globallppool(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_elementwise.c */
int lr_op_relu(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_leakyrelu(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_prelu(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_clip(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_sigmoid(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_hardsigmoid(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_hardswish(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_tanh(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_elu(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_add(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_sub(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_mul(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_div(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_pow(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_mod(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_max(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_min(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_sum(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_mean(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_math.c */
int lr_op_batchnorm(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_lrn(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_softmax(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_logsoftmax(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_reducemean(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_resize(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_upsample(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_shape.c */
int lr_op_concat(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_split(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_flatten(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_reshape(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_transpose(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_squeeze(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_unsqueeze(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_identity(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_dropout(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_constant(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_shape(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_gather(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_slice(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_pad(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_types.c */
int lr_op_cast(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_stringnormalizer(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_castlike(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_equal(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_less(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_lessorequal(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_greater(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_greaterorequal(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_and(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_or(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_xor(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_not(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_bitshift(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_where(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_isinf(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_isnan(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_nonzero(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_compress(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_einsum(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_maxpool_any(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_quant.c */
int lr_op_quantizelinear(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_dequantizelinear(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_dynamicquantizelinear(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_matmulinteger(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_convinteger(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_qlinearmatmul(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_qlinearconv(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_signal.c */
int lr_op_hannwindow(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_hammingwindow(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_blackmanwindow(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_dft(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_stft(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_melweightmatrix(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_unary.c */
int lr_op_abs(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_neg(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_sign(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_exp(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_log(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_sqrt(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_reciprocal(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_floor(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_ceil(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_round(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_erf(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_sin(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_cos(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_tan(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_asin(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_acos(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_atan(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_sinh(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_cosh(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_asinh(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_acosh(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_atanh(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_softplus(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_softsign(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_mish(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_selu(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_celu(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_gelu(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_thresholdedrelu(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_shrink(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_reduce.c */
int lr_op_reducesum(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_reducemax(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_reducemin(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_reduceprod(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_reducel1(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_reducel2(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_reducelogsum(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_reducelogsumexp(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_reducesumsquare(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_argmax(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_argmin(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_gen.c */
int lr_op_expand(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_tile(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_constantofshape(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_range(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_size(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_eyelike(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_trilu(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_depthtospace(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_spacetodepth(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_cumsum(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_gatherelements(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_onehot(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_tfidfvectorizer(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* Control flow (ops_control.c): subgraphs run on engines of their own. */
int lr_op_if(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_loop(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_scan(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_norm.c */
int lr_op_instancenorm(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_layernorm(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_mvn(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_lpnorm(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_hardmax(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_convtranspose.c */
int lr_op_convtranspose(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_loss.c */
int lr_op_nllloss(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_sceloss(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_index.c */
int lr_op_topk(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_gathernd(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_scatterelements(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_scatternd(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_detect.c */
int lr_op_nms(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_roialign(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_gridsample(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_misc.c */
int lr_op_det(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_reversesequence(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_unique(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_maxunpool(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
/* ops_rnn.c */
int lr_op_rnn(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_gru(lr_opctx *, lr_tensor **, int, lr_tensor **, int);
int lr_op_lstm(lr_opctx *, lr_tensor **, int, lr_tensor **, int);

/*
 * Hot loops get an AVX2 clone on x86-64, chosen at load time by GCC's
 * function multiversioning: the build targets baseline x86-64, where
 * 8-lane vectors split into SSE halves.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define LR_CLONES __attribute__((target_clones("avx2", "default")))
/* Compute-bound maps (Sigmoid's exp and division) also get AVX-512. */
#define LR_CLONES512 __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LR_CLONES
#define LR_CLONES512
#endif

#endif /* LR_OPS_H */
