/*
 * ops_convtranspose.c - ConvTranspose (opsets 1 and 11), any number of
 * spatial axes.
 *
 * DESIGN. A transposed convolution scatters each input pixel through the
 * kernel into the output. Per image and group it is one GEMM and a
 * col2im: col = W_g^T * X_g, a [M/group * K, S] matrix (K kernel
 * positions, S input positions), then every column entry is added to the
 * output position in * stride - pad_begin + k * dilation when that is
 * inside the output. The columns are produced in tiles of at most
 * CT_TILE_FLOATS floats, so the scratch memory is bounded whatever the
 * shapes (a hostile model cannot make it allocate more than the tile, or
 * one column when a single column is larger, which is no more than the
 * weights themselves). Units of parallel work are (image, group) pairs:
 * they write disjoint output channels, so no two threads add into the same
 * element; each thread has its own column buffer. OpenBLAS runs single
 * threaded inside (the engine's policy).
 *
 * The output size follows the ONNX formula (stride * (in - 1) +
 * output_padding + (k - 1) * dilation + 1 - pads). With output_shape, or
 * auto_pad SAME_UPPER/SAME_LOWER (output = in * stride), the total padding
 * is derived and split as the ONNX reference does: half = floor(total /
 * 2); SAME_UPPER puts half first, otherwise total - half goes first (so a
 * total of -1, an output one larger than the natural one, extends the
 * end, like output_padding). Derived
 * padding may be negative (an output larger than the natural one); those
 * positions hold only the bias. Float only.
 */
#include "config.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"

#define CT_MAXSP (LR_MAX_DIMS - 2)
#define CT_TILE_FLOATS ((int64_t)1 << 21) /* 8 MiB of columns per thread */

#define SHP(nd, d) lr_shape_str((nd), (d), (char[200]){ 0 }, 200)
#define TSHP(t) SHP((t)->ndim, (t)->dims)

struct ct_job {
	const float *x, *w, *b;
	float *y;
	float **col;            /* per-thread column buffers */
	int nsp;
	int64_t group, cg, mg;  /* channels per group in and out */
	int64_t kk;             /* kernel positions */
	int64_t sin, sout;      /* spatial sizes */
	int64_t tile;           /* columns per GEMM */
	int64_t in[CT_MAXSP], out[CT_MAXSP], k[CT_MAXSP];
	int64_t st[CT_MAXSP], dl[CT_MAXSP], pb[CT_MAXSP];
	int64_t ostr[CT_MAXSP];
};

/* Adds col (rows = mg * kk, columns s0 .. s0 + ns) into the group's output. */
static void ct_col2im(const struct ct_job *j, const float *col, float *y,
		      int64_t s0, int64_t ns)
{
	int nsp = j->nsp;

	for (int64_t r = 0; r < j->mg * j->kk; r++) {
		int64_t m = r / j->kk, kr = r % j->kk, kc[CT_MAXSP], base[CT_MAXSP];
		int64_t idx[CT_MAXSP], rem = s0;
		float *ym = y + m * j->sout;
		const float *cr = col + r * ns;

		for (int a = nsp - 1; a >= 0; a--) {
			kc[a] = kr % j->k[a];
			kr /= j->k[a];
			base[a] = kc[a] * j->dl[a] - j->pb[a];
			idx[a] = rem % j->in[a];
			rem /= j->in[a];
		}
		for (int64_t s = 0; s < ns; s++) {
			int64_t off = 0;
			int inside = 1;

			for (int a = 0; a < nsp; a++) {
				int64_t o = idx[a] * j->st[a] + base[a];

				if (o < 0 || o >= j->out[a]) {
					inside = 0;
					break;
				}
				off += o * j->ostr[a];
			}
			if (inside)
				ym[off] += cr[s];
			for (int a = nsp - 1; a >= 0; a--) {
				if (++idx[a] < j->in[a])
					break;
				idx[a] = 0;
			}
		}
	}
}

static void ct_units(void *arg, int64_t begin, int64_t end, int thread)
{
	const struct ct_job *j = arg;
	float *col = j->col[thread];

	for (int64_t u = begin; u < end; u++) {
		int64_t n = u / j->group, g = u % j->group;
		const float *xg = j->x + (n * j->group + g) * j->cg * j->sin;
		const float *wg = j->w + g * j->cg * j->mg * j->kk;
		float *yg = j->y + (n * j->group + g) * j->mg * j->sout;

		for (int64_t m = 0; m < j->mg; m++) {
			float bv = j->b != NULL ? j->b[g * j->mg + m] : 0.0f;

			for (int64_t i = 0; i < j->sout; i++)
				yg[m * j->sout + i] = bv;
		}
		for (int64_t s0 = 0; s0 < j->sin; s0 += j->tile) {
			int64_t ns = j->sin - s0 < j->tile ? j->sin - s0 : j->tile;

			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
				    (int)(j->mg * j->kk), (int)ns, (int)j->cg, 1.0f,
				    wg, (int)(j->mg * j->kk), xg + s0, (int)j->sin,
				    0.0f, col, (int)ns);
			ct_col2im(j, col, yg, s0, ns);
		}
	}
}

/*
 * ConvTranspose: X [N, C, D1..Dn], W [C, M/group, k1..kn], optional B [M]
 * -> Y [N, M, O1..On]. Attributes: auto_pad, dilations, group,
 * kernel_shape (must match W), output_padding, output_shape, pads, strides.
 */
int lr_op_convtranspose(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			int nout)
{
	int64_t strides[CT_MAXSP], dil[CT_MAXSP], pads[2 * CT_MAXSP], opad[CT_MAXSP];
	int64_t oshape[CT_MAXSP + 2], ks[CT_MAXSP], od[LR_MAX_DIMS];
	struct ct_job j;
	const lr_tensor *x, *w, *b = NULL;
	char ap[32];
	const char *auto_pad;
	int nsp, cnt, nos = 0, rc, nthr = 0;
	lr_tensor *y = NULL;

	(void)nout;
	memset(&j, 0, sizeof(j));
	for (int i = 0; i < 2; i++)
		if ((rc = lr_op_need(c, in, nin, i, LR_DT_FLOAT)) != 0)
			return rc;
	x = in[0];
	w = in[1];
	if (nin > 2 && in[2] != NULL) {
		if ((rc = lr_op_need(c, in, nin, 2, LR_DT_FLOAT)) != 0)
			return rc;
		b = in[2];
	}
	if (x->ndim < 3)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (X) must have rank >= 3, got shape %s", TSHP(x));
	nsp = x->ndim - 2;
	if (w->ndim != x->ndim)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (W) of shape %s must have the rank of input 0 (X) %s",
				  TSHP(w), TSHP(x));
	j.group = lr_node_attr_int(c->node, "group", 1);
	if (j.group < 1 || x->dims[1] % j.group != 0 || w->dims[0] != x->dims[1])
		return lr_op_fail(c, LR_ESHAPE,
				  "input 1 (W) of shape %s needs C = %lld input channels divisible by group %lld (X %s)",
				  TSHP(w), (long long)x->dims[1], (long long)j.group, TSHP(x));
	j.cg = x->dims[1] / j.group;
	j.mg = w->dims[1];
	if (lr_mul_i64(j.mg, j.group, &od[1]) != 0)
		return lr_op_fail(c, LR_ELIMIT, "the output channel count overflows");
	if (b != NULL && (b->ndim != 1 || b->dims[0] != od[1]))
		return lr_op_fail(c, LR_ESHAPE, "input 2 (B) of shape %s must be [M] = [%lld]",
				  TSHP(b), (long long)od[1]);
	for (int a = 0; a < CT_MAXSP; a++) {
		strides[a] = dil[a] = 1;
		pads[a] = pads[CT_MAXSP + a] = opad[a] = 0;
	}
	if (lr_node_attr_ints(c->node, "kernel_shape", ks, nsp, &cnt) < 0 || (cnt != 0 && cnt != nsp))
		return lr_op_fail(c, LR_EMODEL, "attribute 'kernel_shape' must have %d entries", nsp);
	for (int a = 0; a < cnt; a++)
		if (ks[a] != w->dims[2 + a])
			return lr_op_fail(c, LR_ESHAPE, "attribute 'kernel_shape' does not match input 1 (W) %s",
					  TSHP(w));
	if (lr_node_attr_ints(c->node, "strides", strides, nsp, &cnt) < 0 || (cnt != 0 && cnt != nsp))
		return lr_op_fail(c, LR_EMODEL, "attribute 'strides' must have %d entries", nsp);
	if (lr_node_attr_ints(c->node, "dilations", dil, nsp, &cnt) < 0 || (cnt != 0 && cnt != nsp))
		return lr_op_fail(c, LR_EMODEL, "attribute 'dilations' must have %d entries", nsp);
	if (lr_node_attr_ints(c->node, "output_padding", opad, nsp, &cnt) < 0 || (cnt != 0 && cnt != nsp))
		return lr_op_fail(c, LR_EMODEL, "attribute 'output_padding' must have %d entries", nsp);
	if (lr_node_attr_ints(c->node, "pads", pads, 2 * nsp, &cnt) < 0 || (cnt != 0 && cnt != 2 * nsp))
		return lr_op_fail(c, LR_EMODEL, "attribute 'pads' must have %d entries", 2 * nsp);
	rc = lr_node_attr_ints(c->node, "output_shape", oshape, nsp + 2, &nos);
	if (rc < 0 || (rc == 0 && nos != nsp && nos != nsp + 2))
		return lr_op_fail(c, LR_EMODEL, "attribute 'output_shape' must have %d entries", nsp);
	if (rc == 1)
		nos = 0;
	if (nos == nsp + 2)
		memmove(oshape, oshape + 2, (size_t)nsp * sizeof(int64_t));
	auto_pad = lr_node_attr_str(c->node, "auto_pad", "NOTSET", ap, sizeof(ap));
	if (strcmp(auto_pad, "NOTSET") != 0 && strcmp(auto_pad, "VALID") != 0 &&
	    strcmp(auto_pad, "SAME_UPPER") != 0 && strcmp(auto_pad, "SAME_LOWER") != 0)
		return lr_op_fail(c, LR_EMODEL, "unknown auto_pad '%s'", auto_pad);
	j.nsp = nsp;
	j.kk = 1;
	j.sin = 1;
	j.sout = 1;
	od[0] = x->dims[0];
	for (int a = 0; a < nsp; a++) {
		int64_t k = w->dims[2 + a], st = strides[a], dl = dil[a], inn = x->dims[2 + a];
		int64_t full, o, pb = pads[a], pe = pads[nsp + a];
		int same = auto_pad[0] == 'S';

		if (k < 1 || st < 1 || dl < 1 || k > (1 << 20) || st > (1 << 20) || dl > (1 << 20) ||
		    pb < 0 || pe < 0 || pb > (1 << 20) || pe > (1 << 20) ||
		    opad[a] < 0 || opad[a] > (1 << 20) || inn > ((int64_t)1 << 40))
			return lr_op_fail(c, LR_EMODEL,
					  "kernel %lld, stride %lld, dilation %lld, pads %lld/%lld, output_padding %lld of axis %d are invalid",
					  (long long)k, (long long)st, (long long)dl, (long long)pb,
					  (long long)pe, (long long)opad[a], 2 + a);
		/* at most 2^40 * 2^20 + 2^41: no overflow */
		full = st * (inn - 1) + opad[a] + (k - 1) * dl + 1;
		if (nos > 0 || same) {
			int64_t want = nos > 0 ? oshape[a] : inn * st, total, half;

			if (want < 0 || want > ((int64_t)1 << 60))
				return lr_op_fail(c, LR_EMODEL, "output_shape entry %lld of axis %d is invalid",
						  (long long)want, 2 + a);
			total = full - want;
			/* floor(total / 2), as the ONNX reference computes it */
			half = total >= 0 ? total / 2 : -((1 - total) / 2);
			if (strcmp(auto_pad, "SAME_UPPER") == 0) {
				pb = half;
				pe = total - half;
			} else {
				pb = total - half;
				pe = half;
			}
		} else if (auto_pad[0] == 'V') {
			pb = pe = 0;
		}
		o = full - pb - pe;
		if (o < 1)
			return lr_op_fail(c, LR_ESHAPE, "the output extent of axis %d would be %lld",
					  2 + a, (long long)o);
		j.in[a] = inn;
		j.k[a] = k;
		j.st[a] = st;
		j.dl[a] = dl;
		j.pb[a] = pb;
		j.out[a] = o;
		od[2 + a] = o;
		j.kk *= k;
		j.sin *= inn;
	}
	rc = lr_op_output(c, &y, LR_DT_FLOAT, x->ndim, od);
	if (rc != 0)
		return rc;
	if (y->data == NULL || y->nelem == 0) {
		*out = y;
		return 0;
	}
	for (int a = nsp - 1; a >= 0; a--) {
		j.ostr[a] = j.sout;
		j.sout *= j.out[a];
	}
	if (j.mg * j.kk > INT32_MAX || j.sin > INT32_MAX || j.cg > INT32_MAX) {
		rc = lr_op_fail(c, LR_EUNSUPPORTED, "the GEMM dimensions exceed the BLAS int range");
		goto fail;
	}
	j.tile = CT_TILE_FLOATS / (j.mg * j.kk > 0 ? j.mg * j.kk : 1);
	if (j.tile < 1)
		j.tile = 1;
	if (j.tile > j.sin)
		j.tile = j.sin;
	nthr = lr_pool_size(c->pool);
	j.col = calloc((size_t)nthr, sizeof(float *));
	if (j.col == NULL) {
		rc = lr_op_fail(c, LR_ENOMEM, "out of memory");
		goto fail;
	}
	for (int t = 0; t < nthr; t++) {
		j.col[t] = lr_alloc_aligned((size_t)(j.mg * j.kk * (j.tile > 0 ? j.tile : 1)) * sizeof(float));
		if (j.col[t] == NULL) {
			rc = lr_op_fail(c, LR_ENOMEM, "out of memory for %lld column floats",
					(long long)(j.mg * j.kk * j.tile));
			goto fail;
		}
	}
	j.x = x->data;
	j.w = w->data;
	j.b = b != NULL ? b->data : NULL;
	j.y = y->data;
	lr_pool_run_indexed(c->pool, x->dims[0] * j.group, 1, ct_units, &j);
	for (int t = 0; t < nthr; t++)
		lr_free_aligned(j.col[t]);
	free(j.col);
	*out = y;
	return 0;
fail:
	if (j.col != NULL)
		for (int t = 0; t < nthr; t++)
			lr_free_aligned(j.col[t]);
	free(j.col);
	lr_tensor_free(y);
	return rc;
}
