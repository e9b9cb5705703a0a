/*
 * ops_control.c - control flow: If, Loop and Scan.
 *
 * DESIGN. The loader indexes each GRAPH attribute as a model of its own
 * (lr_model.parent, onnx.h). A name a subgraph reads without defining it
 * comes from an enclosing scope: the subgraph takes it as one of its last
 * graph inputs (lr_model.nouter), and the node as one of its hidden
 * inputs (lr_node.nhidden), so the engine computes and keeps it like any
 * input, and the kernel here hands it on (lr_model.outer_from). A kernel
 * runs its subgraph on an engine of its own, created for the call (one
 * thread, inline: control flow here is scalar bookkeeping around small
 * bodies) and freed at its end; a Loop or a Scan runs that one engine for
 * every iteration. Subgraph outputs are new tensors, so loop-carried
 * values pass from one iteration to the next without copies, and scan
 * outputs are stacked once at the end.
 *
 * Values are needed to choose a branch or count iterations, so a dry run
 * (shapes only) is refused as unsupported. A Loop stops after
 * LR_LOOP_MAX_ITER iterations (default 10,000,000) with an error: a model
 * whose condition never turns false would otherwise run forever.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "model/ops.h"

/* The truth value of a one-element tensor (bool, number). */
static int truth(lr_opctx *c, const lr_tensor *t, const char *what, int *out)
{
	if (t == NULL || t->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED, "%s has no value (a dry run)", what);
	if (t->nelem != 1)
		return lr_op_fail(c, LR_ESHAPE, "%s must have one element, it has %lld", what,
				  (long long)t->nelem);
	*out = lr_tensor_get_f64(t, 0) != 0.0;
	return 0;
}

/*
 * Runs subgraph s on engine e: its declared inputs from decl[0..ndecl)
 * (borrowed), its outer ones from the node's hidden inputs; outs gets its
 * noutputs results (owned by the caller).
 */
static int run_sub(lr_opctx *c, lr_engine *e, const lr_model *s, lr_tensor *const *decl,
		   int ndecl, lr_tensor **hidden, lr_tensor **outs)
{
	lr_tensor *stack[16], **ins = stack;
	int n = s->ninputs, rc;

	if (ndecl != n - s->nouter)
		return lr_op_fail(c, LR_EMODEL, "subgraph '%s' declares %d inputs; %d are given",
				  s->graph_attr, n - s->nouter, ndecl);
	if (n > 16 && (ins = calloc((size_t)n, sizeof(*ins))) == NULL)
		return LR_ENOMEM;
	for (int i = 0; i < ndecl; i++)
		ins[i] = decl[i];
	for (int j = 0; j < s->nouter; j++)
		ins[ndecl + j] = hidden[s->outer_from[j]];
	rc = lr_engine_run(e, ins, n, outs, s->noutputs, 0, c->msg);
	if (rc != 0)
		lr_msg_prefix(c->msg, "node '%s' (%s), subgraph '%s'", c->node->name,
			      c->node->op_type, s->graph_attr);
	if (ins != stack)
		free(ins);
	return rc;
}

/* The subgraph in attribute `attr` and an engine for it. */
static int open_sub(lr_opctx *c, const char *attr, const lr_model **s, lr_engine **e)
{
	*e = NULL;
	*s = lr_node_subgraph(c->node, attr);
	if (*s == NULL)
		return lr_op_fail(c, LR_EMODEL, "attribute '%s' (a graph) is missing", attr);
	if (lr_engine_create(e, *s, 1) != 0)
		return lr_op_fail(c, LR_ENOMEM, "out of memory for subgraph '%s'", attr);
	return 0;
}

int lr_op_if(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_model *s;
	lr_engine *e;
	lr_tensor **res;
	int cond, rc;

	if (c->dry)
		return lr_op_fail(c, LR_EUNSUPPORTED, "If needs its condition's value; a dry run has none");
	if ((rc = truth(c, in[0], "condition", &cond)) != 0)
		return rc;
	if ((rc = open_sub(c, cond ? "then_branch" : "else_branch", &s, &e)) != 0)
		return rc;
	if (s->noutputs != nout) {
		lr_engine_free(e);
		return lr_op_fail(c, LR_EMODEL, "branch '%s' has %d outputs, the node %d",
				  s->graph_attr, s->noutputs, nout);
	}
	res = calloc((size_t)nout + 1, sizeof(*res));
	if (res == NULL) {
		lr_engine_free(e);
		return LR_ENOMEM;
	}
	rc = run_sub(c, e, s, NULL, 0, in + (nin - c->node->nhidden), res);
	for (int k = 0; k < nout; k++) {
		if (rc == 0)
			out[k] = res[k];
		else
			lr_tensor_free(res[k]);
	}
	free(res);
	lr_engine_free(e);
	return rc;
}

/* ---- stacking and slicing along an axis ---------------------------------- */

/*
 * out = the n tensors t[0..n) (same type and shape) stacked along a new
 * axis `axis` (0 <= axis <= rank), in reverse order when `rev`.
 */
static int stack_along(lr_opctx *c, lr_tensor *const *t, int64_t n, int64_t axis, int rev,
		       lr_tensor **out)
{
	const lr_tensor *t0 = t[0];
	int64_t dims[LR_MAX_DIMS], outer = 1, inner;
	size_t es = lr_dtype_size(t0->dtype);
	int rc;

	if (t0->ndim + 1 > LR_MAX_DIMS || axis < 0 || axis > t0->ndim)
		return lr_op_fail(c, LR_ESHAPE, "cannot stack rank-%d values along axis %lld",
				  t0->ndim, (long long)axis);
	for (int64_t i = 1; i < n; i++)
		if (t[i]->dtype != t0->dtype || t[i]->ndim != t0->ndim ||
		    memcmp(t[i]->dims, t0->dims, (size_t)t0->ndim * sizeof(int64_t)) != 0)
			return lr_op_fail(c, LR_ESHAPE,
					  "iteration %lld gave a scan output of another type or shape than iteration 0",
					  (long long)i);
	for (int d = 0, k = 0; d <= t0->ndim; d++)
		dims[d] = d == axis ? n : t0->dims[k++];
	for (int d = 0; d < axis; d++)
		outer *= t0->dims[d];
	inner = outer > 0 ? t0->nelem / outer : 0;
	rc = lr_tensor_create(out, t0->dtype, t0->ndim + 1, dims, 1);
	if (rc != 0)
		return lr_op_fail(c, rc, "out of memory for a scan output");
	for (int64_t i = 0; i < n; i++) {
		const char *src = t[rev ? n - 1 - i : i]->data;

		for (int64_t o = 0; o < outer; o++)
			memcpy((char *)(*out)->data + ((size_t)(o * n + i) * (size_t)inner) * es,
			       src + (size_t)(o * inner) * es, (size_t)inner * es);
	}
	return 0;
}

/* out = x's slice i along `axis` (that axis removed). */
static int slice_at(const lr_tensor *x, int64_t axis, int64_t i, lr_tensor **out)
{
	int64_t dims[LR_MAX_DIMS], outer = 1, inner = 1, len = x->dims[axis];
	size_t es = lr_dtype_size(x->dtype);
	int rc;

	for (int d = 0, k = 0; d < x->ndim; d++)
		if (d != axis)
			dims[k++] = x->dims[d];
	for (int d = 0; d < axis; d++)
		outer *= x->dims[d];
	for (int d = (int)axis + 1; d < x->ndim; d++)
		inner *= x->dims[d];
	rc = lr_tensor_create(out, x->dtype, x->ndim - 1, dims, 1);
	if (rc != 0)
		return rc;
	for (int64_t o = 0; o < outer; o++)
		memcpy((char *)(*out)->data + (size_t)(o * inner) * es,
		       (const char *)x->data + (size_t)((o * len + i) * inner) * es,
		       (size_t)inner * es);
	return 0;
}

/* A list of tensors that grows (a scan output's iterations). */
struct tlist {
	lr_tensor **t;
	int64_t n, cap;
};

static int tlist_push(struct tlist *l, lr_tensor *t)
{
	if (l->n == l->cap) {
		int64_t cap = l->cap ? 2 * l->cap : 16;
		lr_tensor **nt = realloc(l->t, (size_t)cap * sizeof(*nt));

		if (nt == NULL)
			return LR_ENOMEM;
		l->t = nt;
		l->cap = cap;
	}
	l->t[l->n++] = t;
	return 0;
}

static void tlist_free(struct tlist *l)
{
	for (int64_t i = 0; i < l->n; i++)
		lr_tensor_free(l->t[i]);
	free(l->t);
	l->t = NULL;
	l->n = l->cap = 0;
}

/* ---- Loop ------------------------------------------------------------------ */

/*
 * Loop(M, cond, v_initial...): body(i, cond, v...) -> (cond, v..., scan...)
 * while i < M (when given) and cond (when given); outputs the final v and
 * each scan output stacked along a new first axis.
 */
int lr_op_loop(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int ndecl = nin - c->node->nhidden, ncar = ndecl - 2, nscan, keep = 1, rc;
	int64_t trip = INT64_MAX, limit = 10000000, it = 0;
	const char *env = getenv("LR_LOOP_MAX_ITER");
	const lr_model *s;
	lr_engine *e = NULL;
	lr_tensor **car = NULL, **res = NULL, **ins = NULL, *itv = NULL, *cv = NULL;
	char *owned = NULL;
	struct tlist *scan = NULL;

	if (c->dry)
		return lr_op_fail(c, LR_EUNSUPPORTED, "Loop needs its trip count and condition; a dry run has none");
	if (env != NULL && atoll(env) > 0)
		limit = atoll(env);
	nscan = nout - ncar;
	if (ndecl < 2)
		return lr_op_fail(c, LR_EMODEL, "Loop takes M and cond (either may be empty) first");
	if (ncar < 0 || nscan < 0)
		return lr_op_fail(c, LR_EMODEL, "%d loop-carried inputs but %d outputs", ncar, nout);
	if (in[0] != NULL) {
		if (in[0]->data == NULL || in[0]->nelem != 1)
			return lr_op_fail(c, LR_ESHAPE, "trip count M must have one element");
		trip = (int64_t)lr_tensor_get_f64(in[0], 0);
	}
	if (in[1] != NULL && (rc = truth(c, in[1], "condition", &keep)) != 0)
		return rc;
	if ((rc = open_sub(c, "body", &s, &e)) != 0)
		return rc;
	if (s->noutputs != 1 + ncar + nscan) {
		rc = lr_op_fail(c, LR_EMODEL, "body has %d outputs; the node needs %d",
				s->noutputs, 1 + ncar + nscan);
		goto out;
	}
	car = calloc((size_t)ncar + 1, sizeof(*car));
	owned = calloc((size_t)ncar + 1, 1);
	res = calloc((size_t)s->noutputs + 1, sizeof(*res));
	ins = calloc((size_t)ndecl + 1, sizeof(*ins));
	scan = calloc((size_t)nscan + 1, sizeof(*scan));
	if (car == NULL || owned == NULL || res == NULL || ins == NULL || scan == NULL ||
	    lr_tensor_create(&itv, LR_DT_INT64, 0, NULL, 1) != 0 ||
	    lr_tensor_create(&cv, LR_DT_BOOL, 0, NULL, 1) != 0) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (int k = 0; k < ncar; k++)
		car[k] = in[2 + k];
	for (it = 0; it < trip && keep; it++) {
		if (it >= limit) {
			rc = lr_op_fail(c, LR_ELIMIT,
					"the loop ran %lld iterations and has not ended (LR_LOOP_MAX_ITER sets the limit)",
					(long long)limit);
			goto out;
		}
		*(int64_t *)itv->data = it;
		*(uint8_t *)cv->data = (uint8_t)keep;
		ins[0] = itv;
		ins[1] = cv;
		for (int k = 0; k < ncar; k++)
			ins[2 + k] = car[k];
		rc = run_sub(c, e, s, ins, ndecl, in + ndecl, res);
		if (rc != 0)
			goto out;
		rc = truth(c, res[0], "the body's condition", &keep);
		lr_tensor_free(res[0]);
		res[0] = NULL;
		for (int k = 0; k < ncar; k++) {
			if (owned[k])
				lr_tensor_free(car[k]);
			car[k] = res[1 + k];
			owned[k] = 1;
			res[1 + k] = NULL;
		}
		for (int k = 0; k < nscan; k++) {
			int r2 = tlist_push(&scan[k], res[1 + ncar + k]);

			if (r2 != 0 && rc == 0)
				rc = r2;
			if (r2 != 0)
				lr_tensor_free(res[1 + ncar + k]);
			res[1 + ncar + k] = NULL;
		}
		if (rc != 0)
			goto out;
	}
	for (int k = 0; k < ncar; k++) {
		if (owned[k]) {
			out[k] = car[k];
			owned[k] = 0;
		} else if ((rc = lr_tensor_clone(&out[k], car[k])) != 0) {
			goto out;
		}
	}
	for (int k = 0; k < nscan; k++) {
		if (scan[k].n == 0) {
			/* No iteration: an empty output (its element shape unknown). */
			int64_t z[1] = { 0 };

			rc = lr_tensor_create(&out[ncar + k], LR_DT_FLOAT, 1, z, 1);
		} else {
			rc = stack_along(c, scan[k].t, scan[k].n, 0, 0, &out[ncar + k]);
		}
		if (rc != 0)
			goto out;
	}
out:
	if (rc != 0)
		for (int k = 0; k < nout; k++) {
			lr_tensor_free(out[k]);
			out[k] = NULL;
		}
	for (int k = 0; car != NULL && owned != NULL && k < ncar; k++)
		if (owned[k])
			lr_tensor_free(car[k]);
	for (int k = 0; res != NULL && k < s->noutputs; k++)
		lr_tensor_free(res[k]);
	for (int k = 0; scan != NULL && k < nscan; k++)
		tlist_free(&scan[k]);
	free(car);
	free(owned);
	free(res);
	free(ins);
	free(scan);
	lr_tensor_free(itv);
	lr_tensor_free(cv);
	lr_engine_free(e);
	return rc;
}

/* ---- Scan ------------------------------------------------------------------ */

/* Reads an ints attribute of n entries (default `def` each) into v[0..n). */
static int scan_ints(lr_opctx *c, const char *name, int64_t *v, int n, int64_t def)
{
	int cnt = 0, rc;

	for (int i = 0; i < n; i++)
		v[i] = def;
	rc = n > 0 ? lr_node_attr_ints(c->node, name, v, n, &cnt) : 1;
	if (rc < 0 || (rc == 0 && cnt != n))
		return lr_op_fail(c, LR_EMODEL, "attribute %s must have %d entries", name, n);
	return 0;
}

/*
 * One Scan over states st[0..nst) and scan inputs x[0..nx) (opset 9
 * layout: no batch axis); results in fin[0..nst) and sc[0..nsc).
 */
static int scan_run(lr_opctx *c, lr_engine *e, const lr_model *s, lr_tensor **hidden,
		    lr_tensor *const *st, int nst, lr_tensor *const *x, int nx,
		    const int64_t *xdir, const int64_t *xaxis, const int64_t *ydir,
		    const int64_t *yaxis, int nsc, lr_tensor **fin, lr_tensor **sc)
{
	int64_t len = -1;
	lr_tensor **ins = calloc((size_t)(nst + nx) + 1, sizeof(*ins));
	lr_tensor **res = calloc((size_t)(nst + nsc) + 1, sizeof(*res));
	lr_tensor **cur = calloc((size_t)nst + 1, sizeof(*cur));
	struct tlist *lists = calloc((size_t)nsc + 1, sizeof(*lists));
	int rc = 0;

	if (ins == NULL || res == NULL || cur == NULL || lists == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (int j = 0; j < nx; j++) {
		int64_t a = xaxis[j] < 0 ? xaxis[j] + x[j]->ndim : xaxis[j];

		if (a < 0 || a >= x[j]->ndim) {
			rc = lr_op_fail(c, LR_ESHAPE, "scan input %d has rank %d; axis %lld is outside it",
					j, x[j]->ndim, (long long)xaxis[j]);
			goto out;
		}
		if (len >= 0 && x[j]->dims[a] != len) {
			rc = lr_op_fail(c, LR_ESHAPE, "scan inputs have different lengths (%lld and %lld)",
					(long long)len, (long long)x[j]->dims[a]);
			goto out;
		}
		len = x[j]->dims[a];
	}
	if (len <= 0) {
		rc = lr_op_fail(c, LR_EUNSUPPORTED, "a scan of length 0 is not supported");
		goto out;
	}
	for (int k = 0; k < nst; k++)
		cur[k] = st[k];
	for (int64_t t = 0; t < len; t++) {
		for (int j = 0; j < nx; j++) {
			int64_t a = xaxis[j] < 0 ? xaxis[j] + x[j]->ndim : xaxis[j];

			rc = slice_at(x[j], a, xdir[j] ? len - 1 - t : t, &ins[nst + j]);
			if (rc != 0)
				goto out;
		}
		for (int k = 0; k < nst; k++)
			ins[k] = cur[k];
		rc = run_sub(c, e, s, ins, nst + nx, hidden, res);
		for (int j = 0; j < nx; j++) {
			lr_tensor_free(ins[nst + j]);
			ins[nst + j] = NULL;
		}
		if (rc != 0)
			goto out;
		for (int k = 0; k < nst; k++) {
			if (t > 0)
				lr_tensor_free(cur[k]);
			cur[k] = res[k];
			res[k] = NULL;
		}
		for (int k = 0; k < nsc; k++) {
			if ((rc = tlist_push(&lists[k], res[nst + k])) != 0) {
				lr_tensor_free(res[nst + k]);
				res[nst + k] = NULL;
				goto out;
			}
			res[nst + k] = NULL;
		}
	}
	for (int k = 0; k < nst; k++) {
		fin[k] = cur[k];
		cur[k] = NULL;
	}
	for (int k = 0; k < nsc; k++) {
		int64_t a = yaxis[k] < 0 ? yaxis[k] + lists[k].t[0]->ndim + 1 : yaxis[k];

		rc = stack_along(c, lists[k].t, lists[k].n, a, ydir[k] != 0, &sc[k]);
		if (rc != 0)
			goto out;
	}
out:
	if (rc != 0) {
		for (int k = 0; k < nst; k++) {
			lr_tensor_free(fin[k]);
			fin[k] = NULL;
		}
		for (int k = 0; k < nsc; k++) {
			lr_tensor_free(sc[k]);
			sc[k] = NULL;
		}
	}
	/* cur[] owns what the body returned (from the second step on, or
	 * the first step's results once taken). */
	for (int k = 0; cur != NULL && len > 0 && k < nst; k++)
		if (cur[k] != st[k])
			lr_tensor_free(cur[k]);
	for (int k = 0; res != NULL && k < nst + nsc; k++)
		lr_tensor_free(res[k]);
	for (int k = 0; lists != NULL && k < nsc; k++)
		tlist_free(&lists[k]);
	free(ins);
	free(res);
	free(cur);
	free(lists);
	return rc;
}

/*
 * Scan. Opset 9 and later: inputs are the N initial states, then the M
 * scan inputs (num_scan_inputs) sliced along scan_input_axes (default 0),
 * forwards or backwards (scan_input_directions); outputs the final states
 * and the K scan outputs stacked along scan_output_axes. Opset 8: a first
 * input sequence_lens (must be absent or every length full) and a batch
 * axis 0 on every input and output; the scan axis is 1, `directions`.
 */
int lr_op_scan(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int ndecl = nin - c->node->nhidden, v8 = c->opset < 9, first = v8 ? 1 : 0;
	int64_t nx = lr_node_attr_int(c->node, "num_scan_inputs", -1);
	int64_t xdir[64] = { 0 }, xaxis[64] = { 0 }, ydir[64] = { 0 }, yaxis[64] = { 0 };
	int nst, nsc, rc;
	const lr_model *s;
	lr_engine *e = NULL;
	lr_tensor **hidden = in + ndecl;

	if (c->dry)
		return lr_op_fail(c, LR_EUNSUPPORTED, "Scan runs its body on values; a dry run has none");
	nst = ndecl - first - (int)nx;
	nsc = nout - nst;
	if (nx < 1 || nx > 64 || nst < 0 || nsc < 0 || nsc > 64)
		return lr_op_fail(c, LR_EMODEL,
				  "num_scan_inputs %lld does not fit %d inputs and %d outputs",
				  (long long)nx, ndecl - first, nout);
	for (int k = first; k < ndecl; k++)
		if (in[k] == NULL || in[k]->data == NULL)
			return lr_op_fail(c, LR_EMODEL, "input %d is required", k);
	if ((rc = scan_ints(c, v8 ? "directions" : "scan_input_directions", xdir, (int)nx, 0)) != 0 ||
	    (rc = scan_ints(c, "scan_input_axes", xaxis, v8 ? 0 : (int)nx, 0)) != 0 ||
	    (rc = scan_ints(c, "scan_output_directions", ydir, v8 ? 0 : nsc, 0)) != 0 ||
	    (rc = scan_ints(c, "scan_output_axes", yaxis, v8 ? 0 : nsc, 0)) != 0)
		return rc;
	if ((rc = open_sub(c, "body", &s, &e)) != 0)
		return rc;
	if (s->noutputs != nst + nsc) {
		rc = lr_op_fail(c, LR_EMODEL, "body has %d outputs; the node needs %d",
				s->noutputs, nst + nsc);
		goto out;
	}
	if (!v8) {
		rc = scan_run(c, e, s, hidden, in, nst, in + nst, (int)nx, xdir, xaxis, ydir, yaxis,
			      nsc, out, out + nst);
		goto out;
	}
	{
		/* Opset 8: batch b of every input through the opset-9 scan
		 * (scan axis 1 becomes 0), results stacked along axis 0. */
		int64_t nb = in[1]->ndim > 0 ? in[1]->dims[0] : -1;
		lr_tensor *st[64], *x[64], *fin[64], *sc[64];
		struct tlist rs[128];

		memset(rs, 0, sizeof(rs));
		if (nst + nx > 64 || nb <= 0) {
			rc = lr_op_fail(c, LR_ESHAPE, "opset-8 Scan needs a batch axis on every input");
			goto out;
		}
		if (in[0] != NULL) {
			for (int64_t i = 0; i < in[0]->nelem; i++)
				if ((int64_t)lr_tensor_get_f64(in[0], i) != in[1 + nst]->dims[1]) {
					rc = lr_op_fail(c, LR_EUNSUPPORTED,
							"sequence_lens shorter than the scan inputs are not supported");
					goto out;
				}
		}
		for (int k = 0; k < nst + nx; k++)
			if (in[1 + k]->ndim < 1 || in[1 + k]->dims[0] != nb) {
				rc = lr_op_fail(c, LR_ESHAPE, "input %d does not have the batch size %lld",
						1 + k, (long long)nb);
				goto out;
			}
		for (int64_t b = 0; b < nb && rc == 0; b++) {
			memset(st, 0, sizeof(st));
			memset(x, 0, sizeof(x));
			memset(fin, 0, sizeof(fin));
			memset(sc, 0, sizeof(sc));
			for (int k = 0; k < nst && rc == 0; k++)
				rc = slice_at(in[1 + k], 0, b, &st[k]);
			for (int j = 0; j < nx && rc == 0; j++)
				rc = slice_at(in[1 + nst + j], 0, b, &x[j]);
			if (rc == 0)
				rc = scan_run(c, e, s, hidden, st, nst, x, (int)nx, xdir, xaxis, ydir,
					      yaxis, nsc, fin, sc);
			for (int k = 0; k < nst + nsc; k++) {
				lr_tensor *t = k < nst ? fin[k] : sc[k - nst];

				if (t == NULL || (rc == 0 && tlist_push(&rs[k], t) == 0))
					continue;
				if (rc == 0)
					rc = LR_ENOMEM;
				lr_tensor_free(t);
			}
			for (int k = 0; k < nst; k++)
				lr_tensor_free(st[k]);
			for (int j = 0; j < nx; j++)
				lr_tensor_free(x[j]);
		}
		for (int k = 0; k < nst + nsc && rc == 0; k++)
			rc = stack_along(c, rs[k].t, rs[k].n, 0, 0, &out[k]);
		for (int k = 0; k < nst + nsc; k++)
			tlist_free(&rs[k]);
		if (rc != 0)
			for (int k = 0; k < nout; k++) {
				lr_tensor_free(out[k]);
				out[k] = NULL;
			}
	}
out:
	lr_engine_free(e);
	return rc;
}
