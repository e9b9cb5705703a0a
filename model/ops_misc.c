/*
 * ops_misc.c - Det, ReverseSequence, Unique and MaxUnpool.
 *
 * DESIGN. Small kernels with little in common: Det factors each matrix by
 * Gaussian elimination with partial pivoting in double; ReverseSequence
 * and MaxUnpool move raw elements by computed positions, each position
 * checked first (MaxUnpool's indices are flat offsets into the whole
 * output, as MaxPool's Indices output produces them); Unique compares
 * elements (or whole slices along 'axis') with a sort of positions, so it
 * is O(n log n), and reports first occurrences, the inverse map and
 * counts. Unique's output sizes depend on the values, so a dry run
 * without the input's data reports LR_EUNSUPPORTED. Float data (int64
 * too where elements are only moved or compared).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"

#define SHP(nd, d) lr_shape_str((nd), (d), (char[200]){ 0 }, 200)
#define TSHP(t) SHP((t)->ndim, (t)->dims)

/* ---- Det ---------------------------------------------------------------- */

/* Det (11): X [..., M, M] -> [...], computed in double. */
int lr_op_det(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x;
	double *a = NULL;
	int64_t m, nmat;
	int rc;

	(void)nout;
	if ((rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT)) != 0)
		return rc;
	x = in[0];
	if (x->ndim < 2 || x->dims[x->ndim - 1] != x->dims[x->ndim - 2])
		return lr_op_fail(c, LR_ESHAPE, "input 0 (X) %s must end in a square matrix", TSHP(x));
	m = x->dims[x->ndim - 1];
	if (m > 4096)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (X) %s: matrices above 4096 x 4096 are not supported",
				  TSHP(x));
	rc = lr_op_output(c, out, LR_DT_FLOAT, x->ndim - 2, x->dims);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	nmat = (*out)->nelem;
	a = malloc((size_t)(m * m > 0 ? m * m : 1) * sizeof(double));
	if (a == NULL) {
		rc = lr_op_fail(c, LR_ENOMEM, "out of memory for a %lld x %lld matrix", (long long)m, (long long)m);
		goto fail;
	}
	for (int64_t k = 0; k < nmat; k++) {
		const float *p = (const float *)x->data + k * m * m;
		double det = 1.0;

		for (int64_t i = 0; i < m * m; i++)
			a[i] = p[i];
		for (int64_t col = 0; col < m && det != 0.0; col++) {
			int64_t piv = col;

			for (int64_t r = col + 1; r < m; r++)
				if (fabs(a[r * m + col]) > fabs(a[piv * m + col]))
					piv = r;
			if (a[piv * m + col] == 0.0) {
				det = 0.0;
				break;
			}
			if (piv != col) {
				for (int64_t j = 0; j < m; j++) {
					double t = a[col * m + j];

					a[col * m + j] = a[piv * m + j];
					a[piv * m + j] = t;
				}
				det = -det;
			}
			det *= a[col * m + col];
			for (int64_t r = col + 1; r < m; r++) {
				double f = a[r * m + col] / a[col * m + col];

				for (int64_t j = col; j < m; j++)
					a[r * m + j] -= f * a[col * m + j];
			}
		}
		((float *)(*out)->data)[k] = (float)det;
	}
	free(a);
	return 0;
fail:
	lr_tensor_free(*out);
	*out = NULL;
	return rc;
}

/* ---- ReverseSequence ---------------------------------------------------- */

/*
 * ReverseSequence (10): reverses the first sequence_lens[b] elements
 * along time_axis (default 0) of each batch b along batch_axis (default
 * 1); the axes are 0 and 1 in either order.
 */
int lr_op_reversesequence(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			  int nout)
{
	int64_t ta = lr_node_attr_int(c->node, "time_axis", 0);
	int64_t ba = lr_node_attr_int(c->node, "batch_axis", 1);
	const lr_tensor *x, *sl;
	int64_t T, B, inner = 1;
	size_t es;
	int rc;

	(void)nout;
	if (nin < 2 || in[0] == NULL || in[1] == NULL)
		return lr_op_fail(c, LR_EMODEL, "inputs 0 (input) and 1 (sequence_lens) are required");
	x = in[0];
	sl = in[1];
	if (sl->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EMODEL, "input 1 (sequence_lens) must be int64");
	if (!((ta == 0 && ba == 1) || (ta == 1 && ba == 0)))
		return lr_op_fail(c, LR_EMODEL, "time_axis %lld and batch_axis %lld must be 0 and 1",
				  (long long)ta, (long long)ba);
	if (x->ndim < 2 || sl->ndim != 1 || sl->dims[0] != x->dims[ba])
		return lr_op_fail(c, LR_ESHAPE, "input 1 (sequence_lens) %s must be [batch] for input 0 %s",
				  TSHP(sl), TSHP(x));
	if (sl->data == NULL)
		return lr_op_fail(c, LR_EINVAL, "input 1 (sequence_lens) has no data");
	T = x->dims[ta];
	B = x->dims[ba];
	for (int64_t b = 0; b < B; b++) {
		int64_t v = ((const int64_t *)sl->data)[b];

		if (v < 0 || v > T)
			return lr_op_fail(c, LR_EMODEL, "input 1 (sequence_lens) element %lld is %lld, outside [0, %lld]",
					  (long long)b, (long long)v, (long long)T);
	}
	rc = lr_op_output(c, out, x->dtype, x->ndim, x->dims);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	if (x->data == NULL) {
		lr_tensor_free(*out);
		*out = NULL;
		return lr_op_fail(c, LR_EINVAL, "input 0 (input) has no data");
	}
	for (int k = 2; k < x->ndim; k++)
		inner *= x->dims[k];
	es = lr_dtype_size(x->dtype);
	for (int64_t t = 0; t < T; t++)
		for (int64_t b = 0; b < B; b++) {
			int64_t len = ((const int64_t *)sl->data)[b], st = t < len ? len - 1 - t : t;
			int64_t dst = ta == 0 ? t * B + b : b * T + t;
			int64_t src = ta == 0 ? st * B + b : b * T + st;

			memcpy((char *)(*out)->data + (size_t)(dst * inner) * es,
			       (const char *)x->data + (size_t)(src * inner) * es, (size_t)inner * es);
		}
	return 0;
}

/* ---- Unique ------------------------------------------------------------- */

struct uq {
	const char *base;       /* slice k starts at base + k * stride bytes... */
	int64_t outer, len, inner; /* slice = outer x inner elements, stepping len */
	lr_dtype dt;
};

/* Compares slices a and b elementwise (lexicographic, ascending). */
static int uq_cmp(const struct uq *u, int64_t a, int64_t b)
{
	for (int64_t o = 0; o < u->outer; o++)
		for (int64_t i = 0; i < u->inner; i++) {
			int64_t ea = (o * u->len + a) * u->inner + i, eb = (o * u->len + b) * u->inner + i;

			if (u->dt == LR_DT_FLOAT) {
				float va = ((const float *)u->base)[ea], vb = ((const float *)u->base)[eb];

				if (va != vb)
					return va < vb ? -1 : 1;
			} else {
				int64_t va = ((const int64_t *)u->base)[ea], vb = ((const int64_t *)u->base)[eb];

				if (va != vb)
					return va < vb ? -1 : 1;
			}
		}
	return 0;
}

/* Merge sort of positions by slice, ties by position (stable, no qsort context). */
static void uq_sort(const struct uq *u, int64_t *p, int64_t *tmp, int64_t n)
{
	if (n < 2)
		return;
	uq_sort(u, p, tmp, n / 2);
	uq_sort(u, p + n / 2, tmp, n - n / 2);
	for (int64_t i = 0, j = n / 2, k = 0; k < n; k++) {
		if (j >= n || (i < n / 2 && uq_cmp(u, p[i], p[j]) <= 0))
			tmp[k] = p[i++];
		else
			tmp[k] = p[j++];
	}
	memcpy(p, tmp, (size_t)n * sizeof(int64_t));
}

/*
 * Unique (11): the distinct elements of X (flattened), or the distinct
 * slices along 'axis'; sorted=1 (default) orders them ascending
 * (lexicographically for slices), sorted=0 by first occurrence. Outputs:
 * Y, indices (first occurrence), inverse_indices, counts (int64).
 */
int lr_op_unique(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x;
	const Onnx__AttributeProto *axa = lr_node_attr(c->node, "axis");
	int sorted = lr_node_attr_int(c->node, "sorted", 1) != 0;
	struct uq u;
	int64_t *pos = NULL, *tmp = NULL, *grp = NULL, *first = NULL, *cnt = NULL, *order = NULL;
	int64_t n, nu = 0, od[LR_MAX_DIMS];
	int a = -1, rc;
	size_t es;

	if (nin < 1 || in[0] == NULL)
		return lr_op_fail(c, LR_EMODEL, "input 0 (X) is required");
	x = in[0];
	if (x->data == NULL)
		return lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL,
				  "the output size depends on the values of input 0 (X)");
	if (axa != NULL && (rc = lr_op_axis(c, lr_node_attr_int(c->node, "axis", 0), x->ndim, &a)) != 0)
		return rc;
	u.base = x->data;
	u.dt = x->dtype;
	if (a < 0) {
		u.outer = 1;
		u.len = x->nelem;
		u.inner = 1;
	} else {
		u.outer = 1;
		u.inner = 1;
		for (int k = 0; k < a; k++)
			u.outer *= x->dims[k];
		for (int k = a + 1; k < x->ndim; k++)
			u.inner *= x->dims[k];
		u.len = x->dims[a];
	}
	n = u.len;
	pos = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
	tmp = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
	grp = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
	first = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
	cnt = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
	order = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
	for (int i = 0; i < 4 && i < nout; i++)
		out[i] = NULL;
	if (pos == NULL || tmp == NULL || grp == NULL || first == NULL || cnt == NULL || order == NULL) {
		rc = lr_op_fail(c, LR_ENOMEM, "out of memory for %lld elements", (long long)n);
		goto out;
	}
	for (int64_t k = 0; k < n; k++)
		pos[k] = k;
	uq_sort(&u, pos, tmp, n);
	/* groups in sorted order; the stable sort puts each first occurrence first */
	for (int64_t k = 0; k < n; k++) {
		if (k == 0 || uq_cmp(&u, pos[k - 1], pos[k]) != 0) {
			first[nu] = pos[k];
			cnt[nu] = 0;
			nu++;
		}
		cnt[nu - 1]++;
		grp[pos[k]] = nu - 1;
	}
	/* order[j] = sorted group shown at output position j */
	for (int64_t j = 0; j < nu; j++)
		order[j] = j;
	if (!sorted) {
		/* by first occurrence: sort group ids by first[] (insertion into tmp) */
		for (int64_t j = 0; j < nu; j++)
			tmp[j] = first[j];
		for (int64_t j = 1; j < nu; j++) {
			int64_t g = order[j], f = tmp[g], q = j - 1;

			while (q >= 0 && tmp[order[q]] > f) {
				order[q + 1] = order[q];
				q--;
			}
			order[q + 1] = g;
		}
	}
	/* rank[g] = output position of group g (reuse tmp) */
	for (int64_t j = 0; j < nu; j++)
		tmp[order[j]] = j;
	if (a < 0) {
		od[0] = nu;
	} else {
		memcpy(od, x->dims, sizeof(od));
		od[a] = nu;
	}
	rc = lr_op_output(c, &out[0], x->dtype, a < 0 ? 1 : x->ndim, od);
	if (rc == 0 && out[0]->data == NULL)
		rc = lr_tensor_alloc_data(out[0]) == 0 ? 0 : lr_op_fail(c, LR_ENOMEM, "out of memory");
	for (int i = 1; rc == 0 && i < 4 && i < nout; i++) {
		int64_t len = i == 2 ? n : nu;

		if (c->node->out[i] < 0)
			continue;
		rc = lr_op_output(c, &out[i], LR_DT_INT64, 1, &len);
	}
	if (rc != 0)
		goto out;
	es = lr_dtype_size(x->dtype);
	for (int64_t j = 0; j < nu; j++) {
		int64_t g = order[j], s = first[g];

		for (int64_t o = 0; o < u.outer; o++)
			memcpy((char *)out[0]->data + (size_t)((o * nu + j) * u.inner) * es,
			       (const char *)x->data + (size_t)((o * u.len + s) * u.inner) * es,
			       (size_t)u.inner * es);
		if (nout > 1 && out[1] != NULL)
			((int64_t *)out[1]->data)[j] = s;
		if (nout > 3 && out[3] != NULL)
			((int64_t *)out[3]->data)[j] = cnt[g];
	}
	if (nout > 2 && out[2] != NULL)
		for (int64_t k = 0; k < n; k++)
			((int64_t *)out[2]->data)[k] = tmp[grp[k]];
	rc = 0;
out:
	if (rc != 0)
		for (int i = 0; i < 4 && i < nout; i++) {
			lr_tensor_free(out[i]);
			out[i] = NULL;
		}
	free(pos);
	free(tmp);
	free(grp);
	free(first);
	free(cnt);
	free(order);
	return rc;
}

/* ---- MaxUnpool ---------------------------------------------------------- */

/*
 * MaxUnpool (9, 11): scatters X into zeros at the flat output offsets in
 * I (int64, X's shape). The output shape is (in - 1) * stride - pads +
 * kernel per spatial axis; input 2 (output_shape) may only restate it
 * (see the comment in the code).
 */
int lr_op_maxunpool(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t ks[LR_MAX_DIMS], st[LR_MAX_DIMS], pads[2 * LR_MAX_DIMS], od[LR_MAX_DIMS + 1];
	const lr_tensor *x, *ix;
	int nsp, cnt, rc;

	(void)nout;
	if (nin < 2 || in[0] == NULL || in[1] == NULL)
		return lr_op_fail(c, LR_EMODEL, "inputs 0 (X) and 1 (I) are required");
	x = in[0];
	ix = in[1];
	if (x->dtype != LR_DT_FLOAT || ix->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (X) must be float and input 1 (I) int64");
	if (x->ndim < 3 || ix->ndim != x->ndim ||
	    memcmp(ix->dims, x->dims, (size_t)x->ndim * sizeof(int64_t)) != 0)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (I) %s must have the shape of input 0 (X) %s (rank >= 3)",
				  TSHP(ix), TSHP(x));
	nsp = x->ndim - 2;
	for (int i = 0; i < nsp; i++) {
		st[i] = 1;
		pads[i] = pads[nsp + i] = 0;
	}
	if (lr_node_attr_ints(c->node, "kernel_shape", ks, nsp, &cnt) != 0 || cnt != nsp)
		return lr_op_fail(c, LR_EMODEL, "attribute 'kernel_shape' must have %d entries", nsp);
	if (lr_node_attr_ints(c->node, "strides", st, nsp, &cnt) < 0 || (cnt != 0 && cnt != nsp))
		return lr_op_fail(c, LR_EMODEL, "attribute 'strides' must have %d entries", nsp);
	if (lr_node_attr_ints(c->node, "pads", pads, 2 * nsp, &cnt) < 0 || (cnt != 0 && cnt != 2 * nsp))
		return lr_op_fail(c, LR_EMODEL, "attribute 'pads' must have %d entries", 2 * nsp);
	od[0] = x->dims[0];
	od[1] = x->dims[1];
	for (int i = 0; i < nsp; i++) {
		if (ks[i] < 1 || ks[i] > (1 << 20) || st[i] < 1 || st[i] > (1 << 20) ||
		    pads[i] < 0 || pads[nsp + i] < 0 || pads[i] > (1 << 20) || pads[nsp + i] > (1 << 20) ||
		    x->dims[2 + i] > ((int64_t)1 << 40))
			return lr_op_fail(c, LR_EMODEL, "kernel, strides or pads of axis %d are invalid", 2 + i);
		od[2 + i] = (x->dims[2 + i] - 1) * st[i] - pads[i] - pads[nsp + i] + ks[i];
	}
	if (nin > 2 && in[2] != NULL) {
		int64_t os[LR_MAX_DIMS + 1];
		int n = lr_op_ints_input(c, in, nin, 2, os, LR_MAX_DIMS + 1);

		if (n < 0)
			return n;
		if (n != x->ndim || os[0] != x->dims[0] || os[1] != x->dims[1])
			return lr_op_fail(c, LR_ESHAPE, "input 2 (output_shape) %s does not fit input 0 (X) %s",
					  SHP(n > LR_MAX_DIMS ? 0 : n, os), TSHP(x));
		/*
		 * A larger output_shape is read two ways: ONNX's reference keeps
		 * the indices' coordinates in the default shape and pads, ONNX
		 * Runtime (and PyTorch's max_unpool) takes them as flat offsets
		 * into output_shape. Refuse rather than pick one.
		 */
		if (memcmp(os, od, (size_t)n * sizeof(int64_t)) != 0)
			return lr_op_fail(c, LR_EUNSUPPORTED,
					  "input 2 (output_shape) %s differs from the default %s, where ONNX's reference and ONNX Runtime disagree",
					  SHP(n, os), SHP(x->ndim, od));
	}
	for (int i = 2; i < x->ndim; i++)
		if (od[i] < 0)
			return lr_op_fail(c, LR_ESHAPE, "the output extent of axis %d would be %lld", i, (long long)od[i]);
	rc = lr_op_output(c, out, LR_DT_FLOAT, x->ndim, od);
	if (rc != 0 || (*out)->data == NULL)
		return rc;
	if (x->data == NULL || ix->data == NULL) {
		rc = lr_op_fail(c, LR_EINVAL, "an input has no data");
		goto fail;
	}
	for (int64_t e = 0; e < ix->nelem; e++) {
		int64_t v = ((const int64_t *)ix->data)[e];

		if (v < 0 || v >= (*out)->nelem) {
			rc = lr_op_fail(c, LR_EMODEL, "input 1 (I) element %lld is %lld, outside the output of %lld elements",
					(long long)e, (long long)v, (long long)(*out)->nelem);
			goto fail;
		}
	}
	memset((*out)->data, 0, lr_tensor_bytes(*out));
	for (int64_t e = 0; e < ix->nelem; e++)
		((float *)(*out)->data)[((const int64_t *)ix->data)[e]] = ((const float *)x->data)[e];
	return 0;
fail:
	lr_tensor_free(*out);
	*out = NULL;
	return rc;
}
