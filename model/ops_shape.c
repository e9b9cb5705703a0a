/*
 * ops_shape.c - kernels that rearrange data without arithmetic: Concat,
 * Split, Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Identity,
 * Dropout, Constant, Shape, Gather, Slice and Pad (Cast is in ops_types.c).
 *
 * DESIGN. These kernels never look at element values (except Pad's fill
 * value and the int64 vectors that describe shapes), so each one works on
 * raw bytes of any element type (lr_dtype_size() bytes each; their data
 * inputs are native, see ops.h) and is written once. Kernels
 * that only relabel the shape (Reshape, Flatten, Squeeze, Unsqueeze,
 * Identity, Dropout, and Transpose/Slice when they turn out to be
 * no-ops) go through view_out(): it takes the input buffer with
 * lr_op_take() and just rewrites the header, and copies only when the
 * engine still needs the input. Every other movement is described as a
 * strided copy (nd_plan: extents plus source and destination byte strides
 * per dimension, copying `block` contiguous bytes per index). The plan is
 * simplified before it runs: unit dimensions vanish, dimensions that are
 * contiguous in both tensors merge, and a contiguous tail becomes one
 * memcpy block, so Slice of whole rows, Concat and Split degrade to a few
 * large memcpys and NCHW<->NHWC transposes become a batched 2-D transpose
 * that is walked in cache-sized tiles.
 *
 * Dry runs: an output of any type but int64 normally gets no buffer
 * (ops.h; "float" below stands for all of them) and the kernel
 * returns once its shape is known. When all the inputs a float output is
 * computed from have data (constants, initializers) and the output is
 * small (LR_DRY_VALUES_MAX elements), lr__ty_out() gives it a buffer anyway and
 * the kernel computes it, so values that decide shapes downstream (Resize
 * scales, Pad constants built from Constant/Concat/Cast) survive a dry
 * run. An int64 output always has a buffer; one whose values would come
 * from a float tensor without data (Cast float->int64 of an activation)
 * fails with a message instead of producing garbage.
 *
 * Opset differences (7..21) are handled where they occur: attributes
 * became inputs for Slice (10), Pad (11), Dropout ratio (12), Squeeze,
 * Unsqueeze and Split (13); Reshape gained allowzero (14), Shape
 * start/end (15), Split num_outputs (18), Pad axes (18) and wrap (19).
 * Negative axes are accepted at every opset (they are defined from 11;
 * older models simply do not use them, as onnxruntime also assumes).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/ops.h"

/* Dry runs compute float outputs of known inputs up to this many elements. */

/* A shape as "[a,b,c]" in a temporary buffer, for messages. */
#define SHP(nd, d) lr_shape_str((nd), (d), (char[200]){ 0 }, 200)
#define TSHP(t) SHP((t)->ndim, (t)->dims)

/* ---- helpers ------------------------------------------------------------ */

/*
 * Output = input i's elements under a new shape of the same size. Takes
 * the input's buffer when the engine allows it, else copies.
 */
static int view_out(lr_opctx *c, lr_tensor **in, int i, lr_tensor **out,
		    int ndim, const int64_t *dims)
{
	lr_tensor *src = in[i], *t;
	int64_t n = -1;
	int rc;

	LR_ASSERT(lr_shape_nelem(ndim, dims, &n) == 0 && n == src->nelem);
	t = lr_op_take(c, in, i);
	if (t != NULL) {
		t->ndim = ndim;
		if (ndim > 0)
			memmove(t->dims, dims, (size_t)ndim * sizeof(int64_t));
		*out = t;
		return 0;
	}
	rc = lr__ty_out(c, out, src->dtype, ndim, dims, src->data != NULL);
	if (rc == 0 && (*out)->data != NULL)
		memcpy((*out)->data, src->data, lr_tensor_bytes(src));
	return rc;
}

/* Product of dims[from..to) into *p, failing on overflow. */
static int dims_prod(lr_opctx *c, const int64_t *dims, int from, int to,
		     int64_t *p)
{
	int64_t v = 1;

	for (int k = from; k < to; k++)
		if (lr_mul_i64(v, dims[k], &v) != 0)
			return lr_op_fail(c, LR_ELIMIT, "a product of dimensions overflows");
	*p = v;
	return 0;
}

/* Frees outputs 0..n-1 and clears them (kernel failure path). */
static void free_outs(lr_tensor **out, int n)
{
	for (int k = 0; k < n; k++) {
		lr_tensor_free(out[k]);
		out[k] = NULL;
	}
}

/* Reads an ints attribute with a message when it is too long. 1 = absent. */
static int attr_ints(lr_opctx *c, const char *name, int64_t *buf, int max,
		     int *count)
{
	int rc = lr_node_attr_ints(c->node, name, buf, max, count);

	if (rc < 0)
		return lr_op_fail(c, LR_EMODEL, "attribute '%s' has more than %d entries",
				  name, max);
	return rc;
}

/* Checks that a list of normalised axes has no repeats. */
static int check_unique(lr_opctx *c, const char *what, const int *ax, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = 0; j < i; j++)
			if (ax[i] == ax[j])
				return lr_op_fail(c, LR_EMODEL, "%s repeats axis %d", what, ax[i]);
	return 0;
}

/* Fails when input i is present although this opset has no such input. */
static int no_input(lr_opctx *c, lr_tensor **in, int nin, int i,
		    const char *what, int since)
{
	if (i < nin && in[i] != NULL)
		return lr_op_fail(c, LR_EMODEL,
				  "input %d (%s) exists only from opset %d; the model uses opset %lld",
				  i, what, since, (long long)c->opset);
	return 0;
}

/* Requires input i to be present. */
static int need_in(lr_opctx *c, lr_tensor **in, int nin, int i, const char *what)
{
	if (i >= nin || in[i] == NULL)
		return lr_op_fail(c, LR_EMODEL, "input %d (%s) is required", i, what);
	return 0;
}

/* ---- strided copies ----------------------------------------------------- */

typedef struct nd_plan {
	int nd;                         /* loop dimensions */
	int64_t cnt[LR_MAX_DIMS];       /* extent of each dimension */
	int64_t ss[LR_MAX_DIMS];        /* source stride in bytes */
	int64_t ds[LR_MAX_DIMS];        /* destination stride in bytes */
	int64_t block;                  /* contiguous bytes copied per index */
} nd_plan;

/*
 * Drops unit dimensions, merges neighbours that are contiguous in both
 * tensors and folds a contiguous last dimension into the block. The plan
 * must not have a zero extent.
 */
static void nd_simplify(nd_plan *p)
{
	int n = 0;

	for (int k = 0; k < p->nd; k++) {
		if (p->cnt[k] == 1)
			continue;
		if (n > 0 && p->ss[n - 1] == p->cnt[k] * p->ss[k] &&
		    p->ds[n - 1] == p->cnt[k] * p->ds[k]) {
			p->cnt[n - 1] *= p->cnt[k];
			p->ss[n - 1] = p->ss[k];
			p->ds[n - 1] = p->ds[k];
			continue;
		}
		p->cnt[n] = p->cnt[k];
		p->ss[n] = p->ss[k];
		p->ds[n] = p->ds[k];
		n++;
	}
	p->nd = n;
	while (p->nd > 0 && p->ss[p->nd - 1] == p->block &&
	       p->ds[p->nd - 1] == p->block) {
		p->block *= p->cnt[p->nd - 1];
		p->nd--;
	}
}

/* Copies n blocks along one dimension. */
static void copy_line(char *dst, int64_t ds, const char *src, int64_t ss,
		      int64_t n, int64_t block)
{
	switch (block) {
	case 4:
		for (int64_t j = 0; j < n; j++)
			memcpy(dst + j * ds, src + j * ss, 4);
		break;
	case 8:
		for (int64_t j = 0; j < n; j++)
			memcpy(dst + j * ds, src + j * ss, 8);
		break;
	default:
		for (int64_t j = 0; j < n; j++)
			memcpy(dst + j * ds, src + j * ss, (size_t)block);
		break;
	}
}

/*
 * One tile of a 2-D transpose-like copy of element type T: rows i along
 * plan dimension a (unit source stride), columns j along b (unit
 * destination stride). Wide tiles write rows of the destination; narrow
 * ones (a few channels) read runs of the source instead.
 */
#define TILE_FN(name, T)                                                    \
	static void name(char *dst, const char *src, const nd_plan *p,      \
			 int64_t i0, int64_t i1, int64_t j0, int64_t j1)    \
	{                                                                   \
		int64_t da = p->ds[p->nd - 2] / (int64_t)sizeof(T);        \
		int64_t sb = p->ss[p->nd - 1] / (int64_t)sizeof(T);        \
		T *d = (T *)(void *)dst;                                    \
		const T *s = (const T *)(const void *)src;                  \
                                                                            \
		if (j1 - j0 >= 8) {                                         \
			for (int64_t i = i0; i < i1; i++)                   \
				for (int64_t j = j0; j < j1; j++)           \
					d[i * da + j] = s[i + j * sb];      \
		} else {                                                    \
			for (int64_t j = j0; j < j1; j++)                   \
				for (int64_t i = i0; i < i1; i++)           \
					d[i * da + j] = s[i + j * sb];      \
		}                                                           \
	}
TILE_FN(tile4, uint32_t)
TILE_FN(tile8, uint64_t)

/*
 * A 2-D transpose-like copy over the last two plan dimensions, walked in
 * tiles (64 rows x 16 columns) so that both the strided reads and the
 * contiguous writes stay in cache. Needs block 4 or 8, unit source stride
 * along dimension nd-2 and unit destination stride along nd-1.
 */
static void copy_tiled(char *dst, const char *src, const nd_plan *p)
{
	const int64_t TA = 64, TB = 16;
	int a = p->nd - 2, b = p->nd - 1;

	for (int64_t i0 = 0; i0 < p->cnt[a]; i0 += TA) {
		int64_t i1 = i0 + TA < p->cnt[a] ? i0 + TA : p->cnt[a];

		for (int64_t j0 = 0; j0 < p->cnt[b]; j0 += TB) {
			int64_t j1 = j0 + TB < p->cnt[b] ? j0 + TB : p->cnt[b];

			if (p->block == 4)
				tile4(dst, src, p, i0, i1, j0, j1);
			else
				tile8(dst, src, p, i0, i1, j0, j1);
		}
	}
}

/*
 * Runs a simplified plan. `src` points at the element of source index 0
 * (strides may be negative, as in Slice with negative steps).
 */
static void nd_run(const nd_plan *p, char *dst, const char *src)
{
	int64_t idx[LR_MAX_DIMS] = { 0 };
	int64_t so = 0, dof = 0;
	int nd = p->nd, tiled, outer;

	if (nd == 0) {
		memcpy(dst, src, (size_t)p->block);
		return;
	}
	/* Strided reads along the last dimension, unit reads along the one
	 * before it: a transpose, done in tiles. */
	tiled = nd >= 2 && (p->block == 4 || p->block == 8) &&
		p->ss[nd - 2] == p->block && p->ds[nd - 1] == p->block &&
		p->ss[nd - 1] % p->block == 0 && p->ds[nd - 2] % p->block == 0 &&
		p->cnt[nd - 2] >= 4;
	outer = tiled ? nd - 2 : nd - 1;
	for (;;) {
		int k;

		if (tiled)
			copy_tiled(dst + dof, src + so, p);
		else
			copy_line(dst + dof, p->ds[nd - 1], src + so, p->ss[nd - 1],
				  p->cnt[nd - 1], p->block);
		for (k = outer - 1; k >= 0; k--) {
			so += p->ss[k];
			dof += p->ds[k];
			if (++idx[k] < p->cnt[k])
				break;
			so -= p->ss[k] * p->cnt[k];
			dof -= p->ds[k] * p->cnt[k];
			idx[k] = 0;
		}
		if (k < 0)
			break;
	}
}

/* Contiguous (C order) byte strides of a shape. */
static void byte_strides(int ndim, const int64_t *dims, int64_t es, int64_t *st)
{
	int64_t s = es;

	for (int k = ndim - 1; k >= 0; k--) {
		st[k] = s;
		s *= dims[k];
	}
}

/* ---- Concat / Split ----------------------------------------------------- */

/*
 * Concat: joins the inputs (float or int64, same rank, same dims except
 * on `axis`) along `axis`; negative axes count from the end.
 */
int lr_op_concat(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x0;
	int64_t dims[LR_MAX_DIMS], outer, post, es, orow, off;
	int r, axis, rc, have = 1;

	for (int i = 0; i < nin; i++)
		if (in[i] == NULL)
			return lr_op_fail(c, LR_EMODEL, "input %d is missing", i);
	x0 = in[0];
	r = x0->ndim;
	if (r == 0)
		return lr_op_fail(c, LR_ESHAPE, "cannot concatenate scalars (input 0 has rank 0)");
	/* 'axis' is required from Concat-4; before, it defaults to 1 */
	if (c->opset >= 4 && lr_node_attr(c->node, "axis") == NULL)
		return lr_op_fail(c, LR_EMODEL, "attribute 'axis' is required");
	rc = lr_op_axis(c, lr_node_attr_int(c->node, "axis", 1), r, &axis);
	if (rc != 0)
		return rc;
	memcpy(dims, x0->dims, (size_t)r * sizeof(int64_t));
	dims[axis] = 0;
	for (int i = 0; i < nin; i++) {
		const lr_tensor *x = in[i];
		int match = x->ndim == r;

		if (x->dtype != x0->dtype)
			return lr_op_fail(c, LR_EMODEL, "input %d has type %s but input 0 has %s",
					  i, lr_dtype_name(x->dtype), lr_dtype_name(x0->dtype));
		for (int k = 0; k < r && match; k++)
			match = k == axis || x->dims[k] == x0->dims[k];
		if (!match)
			return lr_op_fail(c, LR_ESHAPE,
					  "input %d has shape %s, which does not match input 0 %s except on axis %d",
					  i, TSHP(x), TSHP(x0), axis);
		if (__builtin_add_overflow(dims[axis], x->dims[axis], &dims[axis]))
			return lr_op_fail(c, LR_ELIMIT, "the concatenated axis is too long");
		have &= x->data != NULL;
	}
	if (nin == 1)
		return view_out(c, in, 0, out, r, dims);
	rc = lr__ty_out(c, &out[0], x0->dtype, r, dims, have);
	if (rc != 0 || out[0]->data == NULL || out[0]->nelem == 0)
		return rc;
	/* All dims are nonzero now, so these products are bounded by nelem. */
	es = (int64_t)lr_dtype_size(x0->dtype);
	outer = 1;
	for (int k = 0; k < axis; k++)
		outer *= dims[k];
	post = es;
	for (int k = axis + 1; k < r; k++)
		post *= dims[k];
	orow = dims[axis] * post;
	off = 0;
	for (int i = 0; i < nin; i++) {
		int64_t row = in[i]->dims[axis] * post;
		const char *s = in[i]->data;
		char *d = (char *)out[0]->data + off;

		for (int64_t o = 0; o < outer && row > 0; o++)
			memcpy(d + o * orow, s + o * row, (size_t)row);
		off += row;
	}
	return 0;
}

/*
 * Split: cuts the input along `axis` into nout parts. Sizes come from the
 * 'split' attribute (opset < 13) or input 1 (opset >= 13); without them
 * the parts are equal, and from opset 18 ('num_outputs', or no sizes at
 * all) the last part may be smaller: every part has ceil(dim / n).
 */
int lr_op_split(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x = in[0];
	const lr_node *node = c->node;
	int64_t *sizes = NULL, dims[LR_MAX_DIMS], dim, sum = 0;
	int r = x->ndim, axis, rc, nsizes = 0;
	const Onnx__AttributeProto *a;

	if (r == 0)
		return lr_op_fail(c, LR_ESHAPE, "cannot split a scalar");
	rc = lr_op_axis(c, lr_node_attr_int(node, "axis", 0), r, &axis);
	if (rc != 0)
		return rc;
	dim = x->dims[axis];
	sizes = calloc((size_t)nout + 1, sizeof(int64_t));
	if (sizes == NULL)
		return lr_op_fail(c, LR_ENOMEM, "out of memory");

	/* Split-1 takes the sizes as input 1 or attribute; 2 to 12 as the attribute */
	if (c->opset < 13 && !(c->opset < 2 && nin > 1 && in[1] != NULL)) {
		rc = no_input(c, in, nin, 1, "split", 13);
		if (rc != 0)
			goto out;
		a = lr_node_attr(node, "split");
		if (a != NULL) {
			if (a->n_ints != (size_t)nout) {
				rc = lr_op_fail(c, LR_EMODEL,
						"attribute 'split' has %zu entries for %d outputs",
						a->n_ints, nout);
				goto out;
			}
			for (int k = 0; k < nout; k++)
				sizes[k] = a->ints[k];
			nsizes = nout;
		}
	} else if (nin > 1 && in[1] != NULL) {
		if (in[1]->nelem != nout) {
			rc = lr_op_fail(c, LR_EMODEL, "input 1 (split) has %lld entries for %d outputs",
					(long long)in[1]->nelem, nout);
			goto out;
		}
		rc = lr_op_ints_input(c, in, nin, 1, sizes, nout);
		if (rc < 0)
			goto out;
		nsizes = nout;
	}
	if (c->opset >= 18 && lr_node_attr(node, "num_outputs") != NULL) {
		int64_t no = lr_node_attr_int(node, "num_outputs", 0);

		if (nsizes > 0) {
			rc = lr_op_fail(c, LR_EMODEL, "input 'split' and attribute 'num_outputs' are both given");
			goto out;
		}
		if (no != nout) {
			rc = lr_op_fail(c, LR_EMODEL, "attribute 'num_outputs' is %lld but the node has %d outputs",
					(long long)no, nout);
			goto out;
		}
	}
	if (nsizes == 0) {
		int64_t part = dim / nout;

		if (dim % nout != 0) {
			if (c->opset < 18) {
				rc = lr_op_fail(c, LR_ESHAPE,
						"axis %d of size %lld cannot be split into %d equal parts",
						axis, (long long)dim, nout);
				goto out;
			}
			part++;
		}
		for (int k = 0; k < nout; k++)
			sizes[k] = k < nout - 1 ? part : dim - part * (nout - 1);
	}
	for (int k = 0; k < nout; k++) {
		if (sizes[k] < 0 || __builtin_add_overflow(sum, sizes[k], &sum)) {
			rc = lr_op_fail(c, LR_ESHAPE,
					"part %d would have size %lld when splitting axis %d of size %lld into %d parts",
					k, (long long)sizes[k], axis, (long long)dim, nout);
			goto out;
		}
	}
	if (sum != dim) {
		rc = lr_op_fail(c, LR_ESHAPE, "the split sizes add up to %lld but axis %d of %s has %lld",
				(long long)sum, axis, TSHP(x), (long long)dim);
		goto out;
	}
	memcpy(dims, x->dims, (size_t)r * sizeof(int64_t));
	if (nout == 1) {
		rc = node->out[0] >= 0 ? view_out(c, in, 0, out, r, dims) : 0;
		goto out;
	}
	{
		int64_t es = (int64_t)lr_dtype_size(x->dtype), outer = 1, post, off = 0;

		if (x->nelem > 0) {
			for (int k = 0; k < axis; k++)
				outer *= dims[k];
			post = es;
			for (int k = axis + 1; k < r; k++)
				post *= dims[k];
		} else {
			outer = 0;
			post = 0;
		}
		for (int k = 0; k < nout; k++) {
			int64_t row = sizes[k] * post;

			if (node->out[k] < 0) {
				off += row;
				continue;
			}
			dims[axis] = sizes[k];
			rc = lr__ty_out(c, &out[k], x->dtype, r, dims, x->data != NULL);
			if (rc != 0) {
				free_outs(out, k);
				goto out;
			}
			if (out[k]->data != NULL && row > 0)
				for (int64_t o = 0; o < outer; o++)
					memcpy((char *)out[k]->data + o * row,
					       (const char *)x->data + o * dim * post + off,
					       (size_t)row);
			off += row;
		}
	}
	rc = 0;
out:
	free(sizes);
	return rc < 0 ? rc : 0;
}

/* ---- views: Flatten, Reshape, Squeeze, Unsqueeze, Identity, Dropout ----- */

/*
 * Flatten: [d0..dn) -> [d0*..*d(axis-1), d(axis)*..*d(n-1)]; axis in
 * [-r, r], default 1.
 */
int lr_op_flatten(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x = in[0];
	int64_t axis = lr_node_attr_int(c->node, "axis", 1), dims[2];
	int r = x->ndim, rc;

	if (axis < 0)
		axis += r;
	if (axis < 0 || axis > r)
		return lr_op_fail(c, LR_EMODEL, "attribute 'axis' = %lld is out of range for input %s",
				  (long long)lr_node_attr_int(c->node, "axis", 1), TSHP(x));
	rc = dims_prod(c, x->dims, 0, (int)axis, &dims[0]);
	if (rc == 0)
		rc = dims_prod(c, x->dims, (int)axis, r, &dims[1]);
	if (rc != 0)
		return rc;
	return view_out(c, in, 0, out, 2, dims);
}

/*
 * Reshape: the target comes from input 1 (int64). 0 copies the input's
 * dimension at that index unless allowzero=1 (opset >= 14), and at most
 * one -1 is inferred from the element count.
 */
int lr_op_reshape(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x = in[0];
	int64_t sh[LR_MAX_DIMS], dims[LR_MAX_DIMS], known = 1;
	int n, neg = -1, allowzero = 0, zero = 0;

	if (c->opset < 5) {
		/* Reshape-1: the target shape is the attribute 'shape' */
		const Onnx__AttributeProto *a = lr_node_attr(c->node, "shape");

		if (nin > 1 && in[1] != NULL)
			return lr_op_fail(c, LR_EMODEL,
					  "Reshape-%lld takes the shape as an attribute, not an input",
					  (long long)c->opset);
		if (a == NULL)
			return lr_op_fail(c, LR_EMODEL, "attribute 'shape' is required");
		if (a->n_ints > LR_MAX_DIMS)
			return lr_op_fail(c, LR_EUNSUPPORTED,
					  "the target shape has %zu dimensions; at most %d are supported",
					  a->n_ints, LR_MAX_DIMS);
		n = (int)a->n_ints;
		for (int i = 0; i < n; i++)
			sh[i] = a->ints[i];
	} else {
		if (nin < 2 || in[1] == NULL)
			return lr_op_fail(c, LR_EMODEL, "input 1 (shape) is required");
		if (in[1]->nelem > LR_MAX_DIMS)
			return lr_op_fail(c, LR_EUNSUPPORTED,
					  "the target shape has %lld dimensions; at most %d are supported",
					  (long long)in[1]->nelem, LR_MAX_DIMS);
		n = lr_op_ints_input(c, in, nin, 1, sh, LR_MAX_DIMS);
		if (n < 0)
			return n;
	}
	if (c->opset >= 14)
		allowzero = lr_node_attr_int(c->node, "allowzero", 0) != 0;
	for (int i = 0; i < n; i++) {
		int64_t v = sh[i];

		if (v == -1) {
			if (neg >= 0)
				return lr_op_fail(c, LR_EMODEL,
						  "the target shape %s has more than one -1",
						  SHP(n, sh));
			neg = i;
			dims[i] = 1;
			continue;
		}
		if (v == 0 && !allowzero) {
			if (i >= x->ndim)
				return lr_op_fail(c, LR_ESHAPE,
						  "target shape %s copies dimension %d (0), which input %s does not have",
						  SHP(n, sh), i, TSHP(x));
			v = x->dims[i];
		}
		if (v < 0)
			return lr_op_fail(c, LR_EMODEL, "the target shape %s has the invalid dimension %lld",
					  SHP(n, sh), (long long)v);
		zero |= sh[i] == 0;
		dims[i] = v;
		if (lr_mul_i64(known, v, &known) != 0)
			return lr_op_fail(c, LR_ELIMIT, "the target shape %s is too large", SHP(n, sh));
	}
	if (neg >= 0) {
		if (allowzero && zero)
			return lr_op_fail(c, LR_EMODEL,
					  "the target shape %s has both 0 and -1 with allowzero=1", SHP(n, sh));
		if (known == 0 || x->nelem % known != 0)
			goto bad;
		dims[neg] = x->nelem / known;
	} else if (known != x->nelem) {
		goto bad;
	}
	return view_out(c, in, 0, out, n, dims);
bad:
	return lr_op_fail(c, LR_ESHAPE, "cannot reshape input %s (%lld elements) to %s",
			  TSHP(x), (long long)x->nelem, SHP(n, sh));
}

/*
 * Reads the axes of Squeeze/Unsqueeze: the 'axes' attribute before opset
 * 13, input 1 from 13 on. Returns the count (0 when absent) or an error.
 */
static int read_axes(lr_opctx *c, lr_tensor **in, int nin, int64_t *axes, int max)
{
	int cnt, rc;

	if (c->opset < 13) {
		rc = no_input(c, in, nin, 1, "axes", 13);
		if (rc != 0)
			return rc;
		rc = attr_ints(c, "axes", axes, max, &cnt);
		return rc < 0 ? rc : cnt;
	}
	if (nin > 1 && in[1] != NULL && in[1]->nelem > max)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (axes) has %lld entries; at most %d fit",
				  (long long)in[1]->nelem, max);
	return lr_op_ints_input(c, in, nin, 1, axes, max);
}

/*
 * Squeeze: removes the listed size-1 dimensions, or every size-1
 * dimension when no axes are given.
 */
int lr_op_squeeze(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x = in[0];
	int64_t axes[LR_MAX_DIMS], dims[LR_MAX_DIMS];
	int ax[LR_MAX_DIMS], drop[LR_MAX_DIMS] = { 0 };
	int r = x->ndim, na, rc, n = 0;

	na = read_axes(c, in, nin, axes, LR_MAX_DIMS);
	if (na < 0)
		return na;
	for (int i = 0; i < na; i++) {
		rc = lr_op_axis(c, axes[i], r, &ax[i]);
		if (rc != 0)
			return rc;
		if (x->dims[ax[i]] != 1)
			return lr_op_fail(c, LR_ESHAPE,
					  "cannot squeeze axis %lld of input %s: its size is not 1",
					  (long long)axes[i], TSHP(x));
		drop[ax[i]] = 1;
	}
	rc = check_unique(c, "'axes'", ax, na);
	if (rc != 0)
		return rc;
	for (int k = 0; k < r; k++)
		if (!(na > 0 ? drop[k] : x->dims[k] == 1))
			dims[n++] = x->dims[k];
	return view_out(c, in, 0, out, n, dims);
}

/*
 * Unsqueeze: inserts size-1 dimensions at the listed axes, which index the
 * output (negative ones count from the output's end), in any order.
 */
int lr_op_unsqueeze(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x = in[0];
	int64_t axes[LR_MAX_DIMS], dims[LR_MAX_DIMS];
	int ax[LR_MAX_DIMS], ins[LR_MAX_DIMS] = { 0 };
	int r = x->ndim, na, rc, orank;

	na = read_axes(c, in, nin, axes, LR_MAX_DIMS);
	if (na < 0)
		return na;
	if (na == 0 && (c->opset < 13 ? lr_node_attr(c->node, "axes") == NULL
				      : nin < 2 || in[1] == NULL))
		return lr_op_fail(c, LR_EMODEL, "axes are required (%s)",
				  c->opset < 13 ? "attribute 'axes'" : "input 1");
	orank = r + na;
	if (orank > LR_MAX_DIMS)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "the output would have rank %d; at most %d is supported",
				  orank, LR_MAX_DIMS);
	for (int i = 0; i < na; i++) {
		rc = lr_op_axis(c, axes[i], orank, &ax[i]);
		if (rc != 0)
			return rc;
		ins[ax[i]] = 1;
	}
	rc = check_unique(c, "'axes'", ax, na);
	if (rc != 0)
		return rc;
	for (int k = 0, j = 0; k < orank; k++)
		dims[k] = ins[k] ? 1 : x->dims[j++];
	return view_out(c, in, 0, out, orank, dims);
}

/* Identity: the input unchanged (its buffer is taken when allowed). */
int lr_op_identity(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t dims[LR_MAX_DIMS];

	memcpy(dims, in[0]->dims, sizeof(dims));
	return view_out(c, in, 0, out, in[0]->ndim, dims);
}

/*
 * Dropout at inference: the output is the input. The optional mask output
 * is all ones: float before opset 10 (type T), otherwise bool, which
 * lowrank holds as bool (one byte, 1). The ratio
 * (attribute before opset 12, input 1 from 12) does not matter; a true
 * training_mode (input 2, opset >= 12) is unsupported unless the ratio is
 * a known 0 (then nothing is dropped).
 */
int lr_op_dropout(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t dims[LR_MAX_DIMS];
	int ndim = in[0]->ndim, rc;

	if (c->opset < 7 && lr_node_attr_int(c->node, "is_test", 0) == 0)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "is_test=0 asks for training-mode dropout; lowrank only runs inference (opset %lld)",
				  (long long)c->opset);
	if (c->opset < 12) {
		rc = no_input(c, in, nin, 1, "ratio", 12);
		if (rc == 0)
			rc = no_input(c, in, nin, 2, "training_mode", 12);
		if (rc != 0)
			return rc;
	} else if (nin > 2 && in[2] != NULL) {
		const lr_tensor *tm = in[2];
		int on;

		if (tm->data == NULL || tm->nelem != 1)
			return lr_op_fail(c, LR_EUNSUPPORTED,
					  "input 2 (training_mode) must be a known scalar");
		on = tm->dtype == LR_DT_INT64 ? *(const int64_t *)tm->data != 0
					      : *(const float *)tm->data != 0.0f;
		/* Training with ratio 0 drops nothing: the same as inference. */
		if (on && in[1] != NULL && in[1]->data != NULL && in[1]->nelem == 1 &&
		    lr_tensor_get_f64(in[1], 0) == 0.0)
			on = 0;
		if (on)
			return lr_op_fail(c, LR_EUNSUPPORTED,
					  "input 2 (training_mode) is true with a nonzero ratio; lowrank only runs inference");
	}
	memcpy(dims, in[0]->dims, sizeof(dims));
	/* The mask first: nothing may fail after the input buffer is taken. */
	if (nout > 1 && c->node->out[1] >= 0) {
		if (c->opset < 10) {
			rc = lr__ty_out(c, &out[1], LR_DT_FLOAT, ndim, dims, 1);
			if (rc == 0 && out[1]->data != NULL)
				for (int64_t i = 0; i < out[1]->nelem; i++)
					((float *)out[1]->data)[i] = 1.0f;
		} else {
			rc = lr__ty_out(c, &out[1], LR_DT_BOOL, ndim, dims, 1);
			if (rc == 0 && out[1]->data != NULL)
				memset(out[1]->data, 1, (size_t)out[1]->nelem);
		}
		if (rc != 0)
			return rc;
	}
	rc = view_out(c, in, 0, out, ndim, dims);
	if (rc != 0)
		free_outs(out, nout);
	return rc;
}

/* ---- Transpose ---------------------------------------------------------- */

/* Transpose: output dim k is input dim perm[k]; default perm reverses. */
int lr_op_transpose(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x = in[0];
	int64_t perm[LR_MAX_DIMS], dims[LR_MAX_DIMS], ist[LR_MAX_DIMS];
	int r = x->ndim, np, rc, seen[LR_MAX_DIMS] = { 0 };
	nd_plan p;

	rc = attr_ints(c, "perm", perm, LR_MAX_DIMS, &np);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		np = r;
		for (int k = 0; k < r; k++)
			perm[k] = r - 1 - k;
	}
	if (np != r)
		return lr_op_fail(c, LR_EMODEL, "attribute 'perm' has %d entries for input %s",
				  np, TSHP(x));
	for (int k = 0; k < r; k++) {
		if (perm[k] < 0 || perm[k] >= r || seen[perm[k]])
			return lr_op_fail(c, LR_EMODEL,
					  "attribute 'perm' %s is not a permutation of 0..%d",
					  SHP(np, perm), r - 1);
		seen[perm[k]] = 1;
		dims[k] = x->dims[perm[k]];
	}
	if (x->nelem == 0)
		return lr__ty_out(c, &out[0], x->dtype, r, dims, x->data != NULL);
	p.nd = r;
	p.block = (int64_t)lr_dtype_size(x->dtype);
	byte_strides(r, x->dims, p.block, ist);
	byte_strides(r, dims, p.block, p.ds);
	for (int k = 0; k < r; k++) {
		p.cnt[k] = dims[k];
		p.ss[k] = ist[perm[k]];
	}
	nd_simplify(&p);
	if (p.nd == 0) /* the order of the elements does not change */
		return view_out(c, in, 0, out, r, dims);
	rc = lr__ty_out(c, &out[0], x->dtype, r, dims, x->data != NULL);
	if (rc == 0 && out[0]->data != NULL)
		nd_run(&p, out[0]->data, x->data);
	return rc;
}

/* ---- Constant / Shape --------------------------------------------------- */

/*
 * Constant: the 'value' tensor, or (opset 12 forms) value_float,
 * value_floats, value_int, value_ints. String and sparse values are
 * unsupported. The output is a copy the engine owns; in dry runs small
 * constants keep their data (see DESIGN).
 */
int lr_op_constant(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	static const char *const unsupported[] = {
		"sparse_value", "value_string", "value_strings",
	};
	const lr_node *node = c->node;
	const Onnx__AttributeProto *a;
	lr_tensor *t = NULL;
	int64_t n;
	int rc;

	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
		if (lr_node_attr(node, unsupported[i]) != NULL)
			return lr_op_fail(c, LR_EUNSUPPORTED,
					  "attribute '%s' is not supported (only numeric dense constants are)",
					  unsupported[i]);
	if ((a = lr_node_attr(node, "value")) != NULL) {
		if (a->t == NULL)
			return lr_op_fail(c, LR_EMODEL, "attribute 'value' holds no tensor");
		rc = lr_tensor_from_proto(a->t, NULL, &t, c->msg);
		if (rc != 0) {
			lr_msg_prefix(c->msg, "node '%s' (%s), attribute 'value'",
				      node->name, node->op_type);
			return rc;
		}
		if (t->dtype == LR_DT_STRING) {
			out[0] = t; /* its own buffer (lr_tensor_from_proto copies strings) */
			return 0;
		}
		rc = lr__ty_out(c, &out[0], t->dtype, t->ndim, t->dims, 1);
		if (rc == 0 && out[0]->data != NULL)
			memcpy(out[0]->data, t->data, lr_tensor_bytes(t));
		lr_tensor_free(t);
		return rc;
	}
	if ((a = lr_node_attr(node, "value_float")) != NULL) {
		rc = lr__ty_out(c, &out[0], LR_DT_FLOAT, 0, NULL, 1);
		if (rc == 0)
			*(float *)out[0]->data = a->f;
		return rc;
	}
	if ((a = lr_node_attr(node, "value_int")) != NULL) {
		rc = lr__ty_out(c, &out[0], LR_DT_INT64, 0, NULL, 1);
		if (rc == 0)
			*(int64_t *)out[0]->data = a->i;
		return rc;
	}
	if ((a = lr_node_attr(node, "value_floats")) != NULL) {
		n = (int64_t)a->n_floats;
		rc = lr__ty_out(c, &out[0], LR_DT_FLOAT, 1, &n, 1);
		if (rc == 0 && out[0]->data != NULL && n > 0)
			memcpy(out[0]->data, a->floats, (size_t)n * sizeof(float));
		return rc;
	}
	if ((a = lr_node_attr(node, "value_ints")) != NULL) {
		n = (int64_t)a->n_ints;
		rc = lr__ty_out(c, &out[0], LR_DT_INT64, 1, &n, 1);
		if (rc == 0 && n > 0)
			memcpy(out[0]->data, a->ints, (size_t)n * sizeof(int64_t));
		return rc;
	}
	return lr_op_fail(c, LR_EMODEL,
			  "no value attribute (value, value_float(s), value_int(s))");
}

/*
 * Shape: the input's dimensions as int64 [r]; from opset 15 the slice
 * [start, end) of them (negative counts from the end, clamped).
 */
int lr_op_shape(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x = in[0];
	int64_t r = x->ndim, start = 0, end = r, n;
	int rc;

	if (c->opset >= 15) {
		start = lr_node_attr_int(c->node, "start", 0);
		end = lr_node_attr_int(c->node, "end", r);
	}
	if (start < 0)
		start += r;
	if (end < 0)
		end += r;
	start = start < 0 ? 0 : start > r ? r : start;
	end = end < 0 ? 0 : end > r ? r : end;
	n = end > start ? end - start : 0;
	rc = lr__ty_out(c, &out[0], LR_DT_INT64, 1, &n, 1);
	if (rc == 0 && n > 0)
		memcpy(out[0]->data, x->dims + start, (size_t)n * sizeof(int64_t));
	return rc;
}

/* ---- Gather ------------------------------------------------------------- */

/*
 * Gather: picks entries of data along `axis` by int64 indices (negative
 * ones count from the end); the output shape is data[:axis] + indices +
 * data[axis+1:]. Every index is checked, also in dry runs.
 */
int lr_op_gather(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x = in[0], *ix = in[1];
	int64_t dims[LR_MAX_DIMS], dim, es, outer = 1, post, ni;
	const int64_t *idx;
	int r = x->ndim, q, axis, rc, n = 0;

	if (ix == NULL)
		return lr_op_fail(c, LR_EMODEL, "input 1 (indices) is required");
	if (ix->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EMODEL, "input 1 (indices) has type %s; it must be an integer tensor",
				  lr_dtype_name(ix->dtype));
	if (ix->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 1 (indices) has no values");
	if (r == 0)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (data) is a scalar; Gather needs rank >= 1");
	rc = lr_op_axis(c, lr_node_attr_int(c->node, "axis", 0), r, &axis);
	if (rc != 0)
		return rc;
	q = ix->ndim;
	if (r - 1 + q > LR_MAX_DIMS)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "the output would have rank %d; at most %d is supported",
				  r - 1 + q, LR_MAX_DIMS);
	dim = x->dims[axis];
	idx = ix->data;
	ni = ix->nelem;
	for (int64_t k = 0; k < ni; k++)
		if (idx[k] < -dim || idx[k] >= dim)
			return lr_op_fail(c, LR_EMODEL,
					  "index %lld (entry %lld of input 1) is out of range for axis %d of size %lld",
					  (long long)idx[k], (long long)k, axis, (long long)dim);
	for (int k = 0; k < axis; k++)
		dims[n++] = x->dims[k];
	for (int k = 0; k < q; k++)
		dims[n++] = ix->dims[k];
	for (int k = axis + 1; k < r; k++)
		dims[n++] = x->dims[k];
	rc = lr__ty_out(c, &out[0], x->dtype, n, dims, x->data != NULL);
	if (rc != 0 || out[0]->data == NULL || out[0]->nelem == 0)
		return rc;
	es = (int64_t)lr_dtype_size(x->dtype);
	for (int k = 0; k < axis; k++)
		outer *= x->dims[k];
	post = es;
	for (int k = axis + 1; k < r; k++)
		post *= x->dims[k];
	{
		char *d = out[0]->data;
		const char *s = x->data;

		for (int64_t o = 0; o < outer; o++)
			for (int64_t k = 0; k < ni; k++) {
				int64_t v = idx[k] < 0 ? idx[k] + dim : idx[k];

				memcpy(d, s + (o * dim + v) * post, (size_t)post);
				d += post;
			}
	}
	return 0;
}

/* ---- Slice -------------------------------------------------------------- */

/*
 * Slice: for each listed axis takes start:end:step (numpy rules: negative
 * indices count from the end, out-of-range bounds such as INT64_MAX are
 * clamped, negative steps walk backwards). starts/ends/axes are
 * attributes before opset 10 and inputs 1..4 (with steps) from 10 on.
 */
int lr_op_slice(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x = in[0];
	int64_t starts[LR_MAX_DIMS], ends[LR_MAX_DIMS], axes[LR_MAX_DIMS];
	int64_t steps[LR_MAX_DIMS], st[LR_MAX_DIMS], sp[LR_MAX_DIMS];
	int64_t dims[LR_MAX_DIMS], ist[LR_MAX_DIMS], base = 0;
	int ax[LR_MAX_DIMS], r = x->ndim, ns, ne, na = -1, nst = -1, rc, full = 1;
	nd_plan p;

	if (c->opset < 10) {
		for (int i = 1; i < nin; i++)
			if (in[i] != NULL)
				return lr_op_fail(c, LR_EMODEL,
						  "Slice takes starts/ends/axes as attributes before opset 10 (the model uses %lld)",
						  (long long)c->opset);
		if ((rc = attr_ints(c, "starts", starts, LR_MAX_DIMS, &ns)) != 0 ||
		    (rc = attr_ints(c, "ends", ends, LR_MAX_DIMS, &ne)) != 0)
			return rc < 0 ? rc : lr_op_fail(c, LR_EMODEL,
							"attributes 'starts' and 'ends' are required");
		if ((rc = attr_ints(c, "axes", axes, LR_MAX_DIMS, &na)) < 0)
			return rc;
		if (rc == 1)
			na = -1;
	} else {
		static const char *const names[] = { "", "starts", "ends", "axes", "steps" };
		int64_t *bufs[] = { NULL, starts, ends, axes, steps };
		int cnt[5] = { 0, 0, 0, -1, -1 };

		for (int i = 1; i <= 4; i++) {
			if (i >= nin || in[i] == NULL) {
				if (i <= 2)
					return need_in(c, in, nin, i, names[i]);
				continue;
			}
			if (in[i]->nelem > LR_MAX_DIMS)
				return lr_op_fail(c, LR_ESHAPE,
						  "input %d (%s) has %lld entries; the input has rank %d",
						  i, names[i], (long long)in[i]->nelem, r);
			cnt[i] = lr_op_ints_input(c, in, nin, i, bufs[i], LR_MAX_DIMS);
			if (cnt[i] < 0)
				return cnt[i];
		}
		ns = cnt[1];
		ne = cnt[2];
		na = cnt[3];
		nst = cnt[4];
	}
	if (ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
		return lr_op_fail(c, LR_EMODEL,
				  "starts, ends, axes and steps have %d, %d, %d and %d entries; they must match",
				  ns, ne, na < 0 ? ns : na, nst < 0 ? ns : nst);
	if (ns > r)
		return lr_op_fail(c, LR_EMODEL, "%d axes are sliced but input %s has rank %d",
				  ns, TSHP(x), r);
	for (int k = 0; k < r; k++) {
		st[k] = 0;
		sp[k] = 1;
		dims[k] = x->dims[k];
	}
	for (int i = 0; i < ns; i++) {
		int64_t s = starts[i], e = ends[i], step = nst >= 0 ? steps[i] : 1, dim, len;

		rc = lr_op_axis(c, na >= 0 ? axes[i] : i, r, &ax[i]);
		if (rc != 0)
			return rc;
		if (step == 0)
			return lr_op_fail(c, LR_EMODEL, "step %d is 0", i);
		dim = x->dims[ax[i]];
		if (s < 0)
			s += dim;
		if (e < 0)
			e += dim;
		if (step > 0) {
			s = s < 0 ? 0 : s > dim ? dim : s;
			e = e < 0 ? 0 : e > dim ? dim : e;
			len = e > s ? (e - s - 1) / step + 1 : 0;
		} else {
			s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
			e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
			len = s > e ? (int64_t)((uint64_t)(s - e - 1) / (0 - (uint64_t)step)) + 1 : 0;
		}
		if (dim == 0)
			len = 0;
		st[ax[i]] = len > 0 ? s : 0;
		sp[ax[i]] = len > 1 ? step : 1;
		dims[ax[i]] = len;
	}
	rc = check_unique(c, "'axes'", ax, ns);
	if (rc != 0)
		return rc;
	for (int k = 0; k < r; k++)
		full &= st[k] == 0 && sp[k] == 1 && dims[k] == x->dims[k];
	if (full)
		return view_out(c, in, 0, out, r, dims);
	rc = lr__ty_out(c, &out[0], x->dtype, r, dims, x->data != NULL);
	if (rc != 0 || out[0]->data == NULL || out[0]->nelem == 0)
		return rc;
	p.nd = r;
	p.block = (int64_t)lr_dtype_size(x->dtype);
	byte_strides(r, x->dims, p.block, ist);
	byte_strides(r, dims, p.block, p.ds);
	for (int k = 0; k < r; k++) {
		p.cnt[k] = dims[k];
		p.ss[k] = sp[k] * ist[k]; /* |step| < dim when the extent is > 1 */
		base += st[k] * ist[k];
	}
	nd_simplify(&p);
	nd_run(&p, out[0]->data, (const char *)x->data + base);
	return 0;
}

/* ---- Pad ---------------------------------------------------------------- */

enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

/* Source index in [0, n) for position j of a padded axis of length n. */
static int64_t pad_index(enum pad_mode mode, int64_t j, int64_t n)
{
	int64_t period;

	if (j >= 0 && j < n)
		return j;
	switch (mode) {
	case PAD_EDGE:
		return j < 0 ? 0 : n - 1;
	case PAD_WRAP:
		return ((j % n) + n) % n;
	case PAD_REFLECT:
		if (n == 1)
			return 0;
		period = 2 * (n - 1);
		j = ((j % period) + period) % period;
		return j < n ? j : period - j;
	default:
		return -1;
	}
}

/*
 * Pad: adds pads[i] elements before and pads[r+i] after axis i (negative
 * values crop). Modes: constant (value from the 'value' attribute before
 * opset 11, optional input 2 from 11), reflect, edge and wrap (opset 19).
 * pads is an attribute before opset 11 and input 1 from 11; opset 18 adds
 * the optional axes input 3 that pads refer to. Non-constant modes pad
 * the input as cropped by the negative pads.
 */
int lr_op_pad(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x = in[0];
	int64_t raw[2 * LR_MAX_DIMS], axes[LR_MAX_DIMS], pb[LR_MAX_DIMS], pe[LR_MAX_DIMS];
	int64_t dims[LR_MAX_DIMS], cb[LR_MAX_DIMS], cn[LR_MAX_DIMS], lo[LR_MAX_DIMS];
	int64_t ist[LR_MAX_DIMS], idx[LR_MAX_DIMS] = { 0 }, *maps[LR_MAX_DIMS];
	int64_t *mapbuf = NULL, es, rows, total = 0, last;
	int r = x->ndim, np, na = -1, rc, have = x->data != NULL;
	union { float f; int64_t i; unsigned char b[8]; } fill;
	float fval = 0.0f;
	const lr_tensor *cv = NULL;
	enum pad_mode mode;
	char mbuf[16];
	const char *ms = lr_node_attr_str(c->node, "mode", "constant", mbuf, sizeof(mbuf));
	char *d;
	const char *s;

	if (strcmp(ms, "constant") == 0)
		mode = PAD_CONSTANT;
	else if (strcmp(ms, "reflect") == 0)
		mode = PAD_REFLECT;
	else if (strcmp(ms, "edge") == 0)
		mode = PAD_EDGE;
	else if (strcmp(ms, "wrap") == 0 && c->opset >= 19)
		mode = PAD_WRAP;
	else
		return lr_op_fail(c, LR_EUNSUPPORTED, "attribute 'mode' = '%s' is not supported at opset %lld",
				  ms, (long long)c->opset);

	if (c->opset < 11) {
		if ((rc = no_input(c, in, nin, 1, "pads", 11)) != 0 ||
		    (rc = no_input(c, in, nin, 2, "constant_value", 11)) != 0)
			return rc;
		const char *an = c->opset < 2 ? "paddings" : "pads"; /* renamed in Pad-2 */

		rc = attr_ints(c, an, raw, 2 * LR_MAX_DIMS, &np);
		if (rc != 0)
			return rc < 0 ? rc : lr_op_fail(c, LR_EMODEL, "attribute '%s' is required", an);
		fval = lr_node_attr_float(c->node, "value", 0.0f);
	} else {
		if ((rc = need_in(c, in, nin, 1, "pads")) != 0)
			return rc;
		if (in[1]->nelem > 2 * LR_MAX_DIMS)
			return lr_op_fail(c, LR_ESHAPE, "input 1 (pads) has %lld entries for input %s",
					  (long long)in[1]->nelem, TSHP(x));
		np = lr_op_ints_input(c, in, nin, 1, raw, 2 * LR_MAX_DIMS);
		if (np < 0)
			return np;
		if (nin > 2 && in[2] != NULL) {
			cv = in[2];
			if (cv->nelem != 1)
				return lr_op_fail(c, LR_ESHAPE,
						  "input 2 (constant_value) has shape %s; it must be a scalar",
						  TSHP(cv));
			have &= cv->data != NULL;
		}
		if (c->opset < 18) {
			if ((rc = no_input(c, in, nin, 3, "axes", 18)) != 0)
				return rc;
		} else if (nin > 3 && in[3] != NULL) {
			if (in[3]->nelem > LR_MAX_DIMS)
				return lr_op_fail(c, LR_ESHAPE, "input 3 (axes) has %lld entries for input %s",
						  (long long)in[3]->nelem, TSHP(x));
			na = lr_op_ints_input(c, in, nin, 3, axes, LR_MAX_DIMS);
			if (na < 0)
				return na;
		}
	}
	for (int k = 0; k < r; k++)
		pb[k] = pe[k] = 0;
	if (na >= 0) {
		int ax[LR_MAX_DIMS];

		if (np != 2 * na)
			return lr_op_fail(c, LR_EMODEL, "pads has %d entries for %d axes", np, na);
		for (int i = 0; i < na; i++) {
			if ((rc = lr_op_axis(c, axes[i], r, &ax[i])) != 0)
				return rc;
			pb[ax[i]] = raw[i];
			pe[ax[i]] = raw[na + i];
		}
		if ((rc = check_unique(c, "input 3 (axes)", ax, na)) != 0)
			return rc;
	} else {
		if (np != 2 * r)
			return lr_op_fail(c, LR_EMODEL, "pads has %d entries; input %s needs %d",
					  np, TSHP(x), 2 * r);
		for (int k = 0; k < r; k++) {
			pb[k] = raw[k];
			pe[k] = raw[r + k];
		}
	}
	for (int k = 0; k < r; k++) {
		int64_t n = x->dims[k];

		cb[k] = pb[k] < 0 ? -pb[k] : 0;
		lo[k] = pb[k] > 0 ? pb[k] : 0;
		if (__builtin_add_overflow(n, pb[k], &dims[k]) ||
		    __builtin_add_overflow(dims[k], pe[k], &dims[k]) || dims[k] < 0)
			return lr_op_fail(c, LR_ESHAPE, "pads %lld/%lld do not fit axis %d of input %s",
					  (long long)pb[k], (long long)pe[k], k, TSHP(x));
		cn[k] = n - cb[k] - (pe[k] < 0 ? -pe[k] : 0);
		if (cn[k] < 0)
			return lr_op_fail(c, LR_ESHAPE, "pads %lld/%lld crop more than axis %d of input %s holds",
					  (long long)pb[k], (long long)pe[k], k, TSHP(x));
		if (mode != PAD_CONSTANT && cn[k] == 0 && dims[k] > 0)
			return lr_op_fail(c, LR_ESHAPE, "cannot pad the empty axis %d of input %s in %s mode",
					  k, TSHP(x), ms);
	}
	rc = lr__ty_out(c, &out[0], x->dtype, r, dims, have);
	if (rc != 0 || out[0]->data == NULL || out[0]->nelem == 0)
		return rc;
	if (r == 0) {
		memcpy(out[0]->data, x->data, lr_tensor_bytes(x));
		return 0;
	}

	/* The fill value, in the tensor's type. */
	if (cv != NULL)
		fval = cv->dtype == LR_DT_FLOAT ? *(const float *)cv->data
						: (float)*(const int64_t *)cv->data;
	if (x->dtype == LR_DT_FLOAT)
		fill.f = fval;
	else if (cv != NULL && cv->dtype == LR_DT_INT64)
		fill.i = *(const int64_t *)cv->data;
	else
		fill.i = (fval > -9.2e18f && fval < 9.2e18f) ? (int64_t)fval : 0;
	if (x->dtype != LR_DT_FLOAT && x->dtype != LR_DT_INT64) {
		/* Other types: the value converted as Cast would. */
		memset(&fill, 0, sizeof(fill));
		lr_tensor_convert(cv != NULL ? &(lr_tensor){ .dtype = cv->dtype, .nelem = 1,
							    .data = cv->data }
					     : &(lr_tensor){ .dtype = LR_DT_FLOAT, .nelem = 1,
							     .data = &fval },
				  x->dtype, fill.b);
	}

	/* maps[k][o]: source index of output position o on axis k, or -1. */
	for (int k = 0; k < r; k++)
		total += dims[k];
	mapbuf = malloc((size_t)total * sizeof(int64_t));
	if (mapbuf == NULL) {
		free_outs(out, 1);
		return lr_op_fail(c, LR_ENOMEM, "out of memory");
	}
	total = 0;
	for (int k = 0; k < r; k++) {
		maps[k] = mapbuf + total;
		total += dims[k];
		for (int64_t o = 0; o < dims[k]; o++) {
			int64_t j = pad_index(mode, o - lo[k], cn[k]);

			maps[k][o] = j < 0 ? -1 : j + cb[k];
		}
	}
	es = (int64_t)lr_dtype_size(x->dtype);
	byte_strides(r, x->dims, es, ist);
	last = dims[r - 1];
	rows = out[0]->nelem / last;
	d = out[0]->data;
	s = x->data;
	for (int64_t row = 0; row < rows; row++, d += last * es) {
		int64_t so = 0, j0 = lo[r - 1], jn = cn[r - 1];
		int inside = 1;

		for (int k = 0; k < r - 1; k++) {
			if (maps[k][idx[k]] < 0)
				inside = 0;
			else
				so += maps[k][idx[k]] * ist[k];
		}
		if (!inside) {
			for (int64_t o = 0; o < last; o++)
				memcpy(d + o * es, &fill, (size_t)es);
		} else {
			for (int64_t o = 0; o < last; o++) {
				int64_t m;

				if (o == j0 && jn > 0) {
					memcpy(d + o * es, s + so + cb[r - 1] * es, (size_t)(jn * es));
					o += jn - 1;
					continue;
				}
				m = maps[r - 1][o];
				if (m < 0)
					memcpy(d + o * es, &fill, (size_t)es);
				else
					memcpy(d + o * es, s + so + m * es, (size_t)es);
			}
		}
		for (int k = r - 2; k >= 0; k--) {
			if (++idx[k] < dims[k])
				break;
			idx[k] = 0;
		}
	}
	free(mapbuf);
	return 0;
}
