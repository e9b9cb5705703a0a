/*
 * inspect.c - per-layer cost and decomposability. See inspect.h.
 */
#include "config.h"

#include "model/inspect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"

struct collect {
	lr_layer_info *layers;  /* one per Conv/Gemm node */
	int count;
};

static int observe(void *ud, const lr_model *m, int ni, lr_tensor *const *outs,
		   int nout)
{
	struct collect *col = ud;
	const lr_node *n = &m->nodes[ni];
	lr_layer_info *L;

	if (strcmp(n->op_type, "Conv") != 0 && strcmp(n->op_type, "Gemm") != 0 &&
	    !(strcmp(n->op_type, "MatMul") == 0 && n->nin >= 2 && n->in[1] >= 0 &&
	      m->values[n->in[1]].init != NULL))
		return 0;
	if (nout < 1 || outs[0] == NULL || n->nin < 2 || n->in[1] < 0)
		return 0;
	L = &col->layers[col->count++];
	memset(L, 0, sizeof(*L));
	L->node = ni;
	L->name = n->name;
	L->op_type = n->op_type;
	L->weight = m->values[n->in[1]].init ? m->values[n->in[1]].name : NULL;
	if (strcmp(n->op_type, "Conv") == 0) {
		const lr_tensor *y = outs[0];
		const lr_value *wv = &m->values[n->in[1]];
		int64_t strides[2] = { 1, 1 };
		int cnt;

		L->group = lr_node_attr_int(n, "group", 1);
		L->d = y->dims[1];
		L->kh = y->ndim == 4 ? 0 : 1;
		if (wv->init != NULL && wv->init->ndim >= 3) {
			L->c = wv->init->dims[1] * L->group;
			L->kh = wv->init->ndim == 4 ? wv->init->dims[2] : 1;
			L->kw = wv->init->dims[wv->init->ndim - 1];
		}
		lr_node_attr_ints(n, "strides", strides, 2, &cnt);
		if (y->ndim == 4) {
			L->sh = strides[0];
			L->sw = cnt == 2 ? strides[1] : 1;
			L->oh = y->dims[2];
			L->ow = y->dims[3];
		} else {
			L->sh = 1;
			L->sw = strides[0];
			L->oh = 1;
			L->ow = y->ndim >= 3 ? y->dims[2] : 1;
		}
		L->macs = (double)y->dims[0] * (double)L->d * (double)(L->c / (L->group ? L->group : 1)) *
			  (double)L->kh * (double)L->kw * (double)L->oh * (double)L->ow;
		if (wv->init == NULL) {
			snprintf(L->reason, sizeof(L->reason), "the weights are not a constant initializer");
		} else if (L->group != 1) {
			snprintf(L->reason, sizeof(L->reason), "%s convolution (group=%lld)",
				 L->group == L->c ? "depthwise" : "grouped", (long long)L->group);
		} else if (L->c <= 3) {
			snprintf(L->reason, sizeof(L->reason),
				 "too few input channels (c=%lld): a channel decomposition saves little",
				 (long long)L->c);
		} else {
			double k2c = (double)(L->kh * L->kw * L->c);
			/* d' (k2c + d) < d k2c  <=>  d' < d k2c / (k2c + d) */
			double bound = (double)L->d * k2c / (k2c + (double)L->d);
			int64_t r = (int64_t)bound;

			if ((double)r >= bound)
				r--;
			if (r >= L->d)
				r = L->d - 1;
			L->max_rank = r > 0 ? r : 0;
			if (L->max_rank < 1)
				snprintf(L->reason, sizeof(L->reason), "no rank d' < d makes it faster");
			else
				L->decomposable = 1;
		}
	} else {
		/*
		 * A fully connected layer (Gemm, or MatMul with a constant 2-D
		 * weight) becomes two: c -> r, then r -> d. It is faster when
		 * r (c + d) < c d. The conditions mirror solver/fc.c's
		 * lr_fc_extract, which model/ cannot call.
		 */
		const lr_tensor *y = outs[0];
		const lr_tensor *w = m->values[n->in[1]].init;
		int gemm = strcmp(n->op_type, "Gemm") == 0;
		int64_t c = 0;

		L->group = 1;
		L->kh = L->kw = L->sh = L->sw = L->oh = L->ow = 1;
		L->d = 0;
		if (w != NULL && w->ndim == 2) {
			int tb = gemm && lr_node_attr_int(n, "transB", 0) != 0;

			c = tb ? w->dims[1] : w->dims[0];
			L->d = tb ? w->dims[0] : w->dims[1];
		}
		L->c = c;
		L->macs = (double)(y->ndim >= 2 ? y->dims[0] : 1) * (double)L->d * (double)c;
		if (w == NULL || w->ndim != 2) {
			snprintf(L->reason, sizeof(L->reason), "the weight is not a constant 2-D initializer");
		} else if (y->ndim != 2) {
			snprintf(L->reason, sizeof(L->reason),
				 "its output has rank %d; only 2-D (batch x features) layers are decomposed",
				 y->ndim);
		} else if (gemm && lr_node_attr_int(n, "transA", 0) != 0) {
			snprintf(L->reason, sizeof(L->reason), "transA = 1 is not decomposed");
		} else {
			/* r (c + d) < c d  <=>  r < c d / (c + d) */
			double bound = (double)c * (double)L->d / (double)(c + L->d);
			int64_t r = (int64_t)bound;

			if ((double)r >= bound)
				r--;
			L->max_rank = r > 0 ? r : 0;
			if (L->max_rank < 1)
				snprintf(L->reason, sizeof(L->reason), "no rank r < d makes it faster");
			else
				L->decomposable = 1;
		}
	}
	return 0;
}

int lr_input_shape(const lr_model *m, int i, int64_t fill, int64_t *dims)
{
	const lr_value *v;

	if (i >= m->ninputs)
		return LR_EINVAL;
	v = &m->values[m->inputs[i]];
	if (v->ndim < 0)
		return LR_EINVAL;
	for (int k = 0; k < v->ndim; k++)
		dims[k] = v->dims[k] >= 0 ? v->dims[k] : fill;
	return v->ndim;
}

int lr_inspect(const lr_model *m, int ndim, const int64_t *dims,
	       lr_layer_info **layers, int *count, double *total_macs,
	       lr_msg *msg)
{
	struct collect col = { NULL, 0 };
	lr_tensor *feeds[16] = { NULL };
	lr_tensor *outs[16] = { NULL };
	lr_engine *e = NULL;
	double total = 0.0;
	int rc = 0, nout;

	*layers = NULL;
	*count = 0;
	*total_macs = 0.0;
	if (m->ninputs < 1 || m->ninputs > 16)
		return lr_fail(msg, LR_EUNSUPPORTED, "the model has %d graph inputs; 1 to 16 are supported",
			       m->ninputs);
	col.layers = calloc((size_t)m->nnodes + 1, sizeof(lr_layer_info));
	if (col.layers == NULL)
		return LR_ENOMEM;
	for (int i = 0; i < m->ninputs; i++) {
		int64_t d[LR_MAX_DIMS];
		int nd = i == 0 ? ndim : lr_input_shape(m, i, 1, d);
		const lr_value *v = &m->values[m->inputs[i]];

		if (nd < 0) {
			rc = lr_fail(msg, LR_EINVAL, "graph input '%s' has no declared shape", v->name);
			goto out;
		}
		{
			/* Integer and bool inputs get zeros, float types no data. */
			lr_dtype dt = v->elem_type == 0 ? LR_DT_FLOAT : lr_dtype_from_onnx(v->elem_type);

			if (dt == 0) {
				rc = lr_fail(msg, LR_EUNSUPPORTED,
					     "graph input '%s' has type %s, which lowrank does not support",
					     v->name, lr_onnx_type_name(v->elem_type));
				goto out;
			}
			rc = lr_tensor_create(&feeds[i], dt, nd, i == 0 ? dims : d,
					      !lr_dtype_is_float(dt));
		}
		if (rc != 0) {
			rc = lr_fail(msg, rc, "graph input '%s': invalid shape", v->name);
			goto out;
		}
		if (feeds[i]->data != NULL)
			memset(feeds[i]->data, 0, lr_tensor_bytes(feeds[i]));
	}
	rc = lr_engine_create(&e, m, 1);
	if (rc != 0)
		goto out;
	lr_engine_set_observer(e, observe, &col);
	nout = m->noutputs < 16 ? m->noutputs : 16;
	rc = lr_engine_run(e, feeds, m->ninputs, outs, nout, 1, msg);
	for (int i = 0; i < nout; i++)
		lr_tensor_free(outs[i]);
	if (rc != 0)
		goto out;
	for (int i = 0; i < col.count; i++)
		total += col.layers[i].macs;
	for (int i = 0; i < col.count; i++)
		col.layers[i].share = total > 0 ? col.layers[i].macs / total : 0.0;
	*layers = col.layers;
	*count = col.count;
	*total_macs = total;
	col.layers = NULL;
out:
	lr_engine_free(e);
	for (int i = 0; i < 16; i++)
		lr_tensor_free(feeds[i]);
	free(col.layers);
	return rc;
}
